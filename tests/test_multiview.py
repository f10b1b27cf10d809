"""Offline multi-view datasets: the bundled UCI digits, the Fashion-MNIST reader (on fake IDX files)
and the synthetic MFH-style generator with its known input MI."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

import cchmi
from cchmi.data.multiview import FASHION_VIEWS, MFEAT_VIEWS, load_fashion_mnist, load_mfeat
from cchmi.data.synthetic import mfh_classification

MFEAT_DIMS = {"fourier": 76, "profile": 216, "karhunen_loeve": 64, "pixel": 240, "zernike": 47, "morphological": 6}


def test_mfeat_is_bundled_whole():
    d = load_mfeat()
    assert tuple(d.views) == MFEAT_VIEWS
    assert {k: v.shape for k, v in d.views.items()} == {k: (2000, m) for k, m in MFEAT_DIMS.items()}
    assert np.array_equal(np.bincount(d.labels), np.full(10, 200))
    assert d.n == 2000 and d.n_classes == 10 and d.licence == "CC BY 4.0" and "Duin" in d.citation
    for v in d.views.values():
        assert v.dtype == np.float64 and np.isfinite(v).all()
    # Spot values of the UCI files (first row of two views).
    assert d.views["morphological"][0].tolist() == [1.0, 0.0, 0.0, 133.15, 1.3117, 1620.2]
    assert d.views["fourier"][0, 0] == 0.065882
    assert load_mfeat(["pixel", "fourier"]).views.keys() == {"pixel", "fourier"}
    with pytest.raises(ValueError, match="views must be a non-empty subset"):
        load_mfeat(["pixels"])
    with pytest.raises(ValueError, match="has no view 'colour'"):
        d.view("colour")


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fashion(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return tmp_path


def test_fashion_views_from_idx_files(fake_fashion):
    d = load_fashion_mnist(fake_fashion)
    assert d.n == 60 and tuple(d.views) == FASHION_VIEWS
    assert {k: v.shape[1] for k, v in d.views.items()} == {"top": 392, "bottom": 392, "thumbnail": 49, "fourier": 64}
    images = np.concatenate([
        np.frombuffer(gzip.open(fake_fashion / f"{p}-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 28, 28)
        for p in ("train", "t10k")])
    assert np.allclose(d.views["top"], images[:, :14].reshape(60, -1) / 255.0)
    assert np.allclose(d.views["thumbnail"][0, 0], images[0, :4, :4].mean() / 255.0)
    assert d.image_shapes["top"] == (1, 14, 28)
    assert load_fashion_mnist(fake_fashion, split="test").n == 20
    sub = load_fashion_mnist(fake_fashion, n=25, random_state=1)
    assert sub.n == 25


def test_fashion_errors(tmp_path, fake_fashion, monkeypatch):
    monkeypatch.delenv("CCHMI_FASHION_MNIST", raising=False)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")
    monkeypatch.setenv("CCHMI_FASHION_MNIST", str(fake_fashion))
    assert load_fashion_mnist().n == 60  # the environment variable is used
    with pytest.raises(ValueError, match="split must be"):
        load_fashion_mnist(split="validation")
    with pytest.raises(ValueError, match="n must be an integer"):
        load_fashion_mnist(n=10_000)
    with gzip.open(fake_fashion / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(b"\x00\x00\x08\x03garbage")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_fashion_mnist()


def test_mfh_input_mi_is_known():
    d = mfh_classification(4000, shared=1, teacher_only=1, student_only=1, nuisance=1, noise=0.7, random_state=3)
    r = 1 / (1 + 0.7**2)
    assert d.extra["mi_inputs"] == pytest.approx(2 * -0.5 * math.log1p(-r * r), rel=1e-12)
    estimate = cchmi.ksg_mi(d.views["teacher"], d.views["student"]).estimate
    assert abs(estimate - d.extra["mi_inputs"]) < 0.06  # KSG at n=4000 in 2+2 dims


def test_mfh_structure_and_seeds():
    a = mfh_classification(500, shared=2, teacher_only=1, student_only=3, nuisance=2, n_classes=3,
                           random_state=1, task_seed=9)
    assert a.views["teacher"].shape == (500, 5) and a.views["student"].shape == (500, 7)
    assert set(np.unique(a.labels)) == {0, 1, 2}
    b = mfh_classification(500, shared=2, teacher_only=1, student_only=3, nuisance=2, n_classes=3,
                           random_state=1, task_seed=9)
    assert np.array_equal(a.views["teacher"], b.views["teacher"]) and np.array_equal(a.labels, b.labels)
    c = mfh_classification(500, shared=2, teacher_only=1, student_only=3, nuisance=2, n_classes=3,
                           random_state=2, task_seed=9)
    assert not np.array_equal(a.labels, c.labels)
    # Without label noise and without mixing, the label is a function of the decisive coordinates:
    # a model seeing all of them (a teacher with every decisive coordinate) is nearly exact.
    full = mfh_classification(3000, shared=3, teacher_only=0, student_only=0, nuisance=0, noise=0.05,
                              label_noise=0.0, mix=False, random_state=4)
    from sklearn.linear_model import LogisticRegression

    x, y = full.views["teacher"], full.labels
    assert LogisticRegression().fit(x[:2000], y[:2000]).score(x[2000:], y[2000:]) > 0.95


@pytest.mark.parametrize("kwargs,message", [
    (dict(shared=0, teacher_only=0, student_only=0), "decisive coordinate"),
    (dict(shared=0, teacher_only=0, nuisance=0), "each modality"),
    (dict(noise=0.0), "noise must be"),
    (dict(label_noise=1.5), "label_noise"),
    (dict(n_classes=1), "n_classes"),
])
def test_mfh_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mfh_classification(100, **kwargs)
