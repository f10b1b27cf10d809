"""Offline multi-view datasets: the bundled UCI digits, the Fashion-MNIST reader and its views (on fake
IDX files) and the synthetic MFH-style generator with its known input MI and two-class Bayes facts.

Tolerances:
  MC_SE        Monte Carlo checks of closed forms allow 4 binomial / sampling standard errors.
  BLUR_ABS     1e-6: our float32 blur against SciPy's float64 gaussian_filter (float32 rounding).
  NOISE_REL    0.03: the measured s.d. of the student's added noise (n * 392 values, s.e. ~0.5%).
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

import cchmi
from cchmi.data.multiview import (
    FASHION_ALL_VIEWS,
    FASHION_VIEWS,
    MFEAT_VIEWS,
    fashion_options,
    fashion_views,
    gaussian_blur,
    load_fashion_mnist,
    load_mfeat,
)
from cchmi.data.synthetic import mfh_classification

MC_SE = 4.0
BLUR_ABS = 1e-6
NOISE_REL = 0.03

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
        np.frombuffer(gzip.open(fake_fashion / f"{p}-images-idx3-ubyte.gz").read(), np.uint8,
                      offset=16).reshape(-1, 28, 28)
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


def _images(folder, prefix):
    return np.frombuffer(gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz").read(), np.uint8,
                         offset=16).reshape(-1, 28, 28)


@pytest.mark.parametrize("overlap", [0, 1, 7, 13, 14])
def test_fashion_teacher_window_overlaps_student_half_by_overlap_rows(fake_fashion, overlap):
    d = load_fashion_mnist(fake_fashion, split="train", views=["teacher", "student"], overlap=overlap)
    images = _images(fake_fashion, "train").astype(np.float32) / 255.0
    assert tuple(d.views) == ("teacher", "student")
    assert d.views["teacher"].shape == d.views["student"].shape == (40, 14 * 28)
    assert np.array_equal(d.views["teacher"], images[:, overlap : overlap + 14].reshape(40, -1))
    assert np.array_equal(d.views["student"], images[:, 14:].reshape(40, -1))  # no blur, no noise
    teacher_rows = range(*d.extra["teacher_rows"])
    assert d.extra["student_rows"] == (14, 28) and teacher_rows == range(overlap, overlap + 14)
    assert len(set(teacher_rows) & set(range(14, 28))) == overlap
    assert d.image_shapes == {"teacher": (1, 14, 28), "student": (1, 14, 28)}


def test_fashion_student_blur_matches_scipy_and_stays_in_its_half():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    for sigma in (0.4, 1.0, 2.5, 7.0):  # 7: the kernel (radius 28) is wider than the half (14 rows)
        student = fashion_views(images, ["student"], student_blur=sigma)["student"].reshape(5, 14, 28)
        expected = ndimage.gaussian_filter(images[:, 14:].astype(np.float64) / 255.0, sigma, mode="reflect",
                                           axes=(1, 2))
        assert np.abs(student - expected).max() < BLUR_ABS
    changed = images.copy()
    changed[:, :14] = rng.integers(0, 256, (5, 14, 28))
    assert np.array_equal(fashion_views(changed, ["student"], student_blur=3.0)["student"],
                          fashion_views(images, ["student"], student_blur=3.0)["student"])
    assert np.array_equal(gaussian_blur(images[:, 14:], 0.0), images[:, 14:].astype(np.float32))
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        gaussian_blur(images, -1.0)
    with pytest.raises(ValueError, match=r"images must be a \(n, H, W\) stack"):
        gaussian_blur(images[0], 1.0)
    with pytest.raises(ValueError, match=r"images must be \(n, 28, 28\)"):
        fashion_views(images[:, :20])


def test_fashion_student_noise_is_seeded(fake_fashion):
    def load(**kw):
        return load_fashion_mnist(fake_fashion, views=["student", "teacher"], overlap=5, **kw)

    clean, a = load(), load(student_noise=0.3, student_blur=1.0, random_state=4)
    again, other = (load(student_noise=0.3, student_blur=1.0, random_state=seed) for seed in (4, 5))
    assert np.array_equal(a.views["student"], again.views["student"])
    assert not np.array_equal(a.views["student"], other.views["student"])
    assert np.array_equal(a.views["teacher"], clean.views["teacher"])  # the teacher is never blurred or noised
    blurred = load(student_blur=1.0).views["student"]
    assert np.std(a.views["student"] - blurred) == pytest.approx(0.3, rel=NOISE_REL)
    # The subset of n images is the one drawn without noise (the noise comes after it).
    assert np.array_equal(load(n=25, random_state=2).labels, load(n=25, random_state=2, student_noise=0.1).labels)
    assert load_fashion_mnist(fake_fashion, views=FASHION_ALL_VIEWS).views.keys() == set(FASHION_ALL_VIEWS)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(overlap=15), ValueError, "overlap must be between 0 and 14"),
    (dict(overlap=-1), ValueError, "overlap must be between 0 and 14"),
    (dict(overlap=2.0), TypeError, "overlap must be an integer"),
    (dict(student_blur=-0.5), ValueError, "student_blur must be a finite number >= 0"),
    (dict(student_noise=-1.0), ValueError, "student_noise must be a finite number >= 0"),
    (dict(student_blur=float("nan")), ValueError, "student_blur"),
    (dict(views=["side"]), ValueError, "views must be a non-empty list"),
    (dict(views="teacher"), ValueError, "views must be a non-empty list"),
    (dict(views=[]), ValueError, "views must be a non-empty list"),
    (dict(views=["teacher", "teacher"]), ValueError, "distinct names"),
    (dict(overlap=3), ValueError, "overlap shape"),
    (dict(views=["teacher"], student_noise=0.2), ValueError, "student_noise shape"),
])
def test_fashion_view_option_errors(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        fashion_options(**kwargs)
    with pytest.raises(error, match=message):  # checked before any file is read
        load_fashion_mnist(tmp_path / "nowhere", **kwargs)
    assert fashion_options() == {"views": FASHION_VIEWS, "overlap": 0, "student_blur": 0.0, "student_noise": 0.0,
                                 "degraded_sigma": 1.5, "degraded_noise": 0.3}


def test_fashion_whole_image_and_its_degraded_copy(fake_fashion):
    from cchmi.data.views import degraded_view

    d = load_fashion_mnist(fake_fashion, views=["image", "degraded"], degraded_sigma=2.0, degraded_noise=0.2,
                           random_state=3)
    images = load_fashion_mnist(fake_fashion, views=["image"]).views["image"].reshape(-1, 28, 28)
    assert np.array_equal(d.views["image"].reshape(-1, 28, 28), images)
    assert d.image_shapes == {"image": (1, 28, 28), "degraded": (1, 28, 28)}
    expected = degraded_view(images, 2.0, 0.2, np.random.default_rng(3))
    assert np.array_equal(d.views["degraded"], expected.reshape(d.n, -1))
    again = load_fashion_mnist(fake_fashion, views=["image", "degraded"], degraded_sigma=2.0, degraded_noise=0.2,
                               random_state=3)
    assert np.array_equal(again.views["degraded"], d.views["degraded"])
    with pytest.raises(ValueError, match="degraded_noise shape"):
        load_fashion_mnist(fake_fashion, degraded_noise=0.5)


def _teacher_bayes_predictions(d, seen):
    """The two-class Bayes rule of the unmixed teacher view: the sign of sum_i s_i x_i over its decisive
    copies, s = W[:, 0] - W[:, 1] (label 0 where the sum is positive)."""
    s = np.sign(d.extra["weights"][:, 0] - d.extra["weights"][:, 1])
    return (d.views["teacher"][:, :seen] @ s[:seen] < 0).astype(np.int64)


def test_mfh_teacher_accuracy_is_held_across_shared_fractions():
    n, target = 60_000, 0.75
    se = math.sqrt(target * (1 - target) / n)
    for student_only in (1, 3):
        first = None
        for fraction in (0.0, 0.5, 1.0):
            d = mfh_classification(n, teacher_decisive=4, shared_fraction=fraction, student_only=student_only,
                                   nuisance=1, teacher_accuracy=target, mix=False, random_state=7, task_seed=1)
            assert d.extra["config"]["shared"] == 4 * fraction and d.extra["config"]["teacher_only"] == 4 - 4 * fraction
            assert d.extra["teacher_bayes_accuracy"] == pytest.approx(target, abs=1e-12)
            measured = np.mean(_teacher_bayes_predictions(d, 4) == d.labels)
            assert abs(measured - target) < MC_SE * se
            if first is None:
                first = d
            else:  # the teacher's view and the labels do not depend on the shared fraction
                assert np.array_equal(d.views["teacher"], first.views["teacher"])
                assert np.array_equal(d.labels, first.labels)
                assert not np.array_equal(d.views["student"], first.views["student"])
    # So for any number of classes and with mixing, and with a fixed teacher_noise instead of a target.
    mixed = [mfh_classification(500, teacher_decisive=3, shared_fraction=f, n_classes=4, teacher_noise=0.3,
                                random_state=1, task_seed=2) for f in (0.0, 1 / 3, 1.0)]
    for d in mixed[1:]:
        assert np.array_equal(d.views["teacher"], mixed[0].views["teacher"])
        assert np.array_equal(d.labels, mixed[0].labels)


def test_mfh_student_accuracy_and_bayes_logit_mi_match_monte_carlo():
    n = 60_000
    d = mfh_classification(n, shared=2, teacher_only=1, student_only=2, nuisance=2, noise=0.8, teacher_noise=0.4,
                           label_noise=0.1, mix=False, random_state=2)
    s = np.sign(d.extra["weights"][:, 0] - d.extra["weights"][:, 1])
    a_teacher = d.views["teacher"][:, :3] @ s[:3]
    a_student = d.views["student"][:, :4] @ np.concatenate([s[:2], s[3:]])
    acc = d.extra["student_bayes_accuracy"]
    assert abs(np.mean((a_student < 0) == d.labels) - acc) < MC_SE * math.sqrt(acc * (1 - acc) / n)
    # corr(a_T, a_S)^2 = shared^2 / (m_T (1 + noise_T^2) m_S (1 + noise_S^2)); the Bayes logits are
    # increasing functions of a_T and a_S, so their MI is that of a Gaussian pair.
    c2 = 4 / (3 * 1.16 * 4 * 1.64)
    assert d.extra["mi_bayes_logits"] == pytest.approx(-0.5 * math.log(1 - c2), rel=1e-12)
    corr_se = (1 - c2) / math.sqrt(n)  # of a sample correlation; of its square about 2 |corr| times that
    assert np.corrcoef(a_teacher, a_student)[0, 1] ** 2 == pytest.approx(c2, abs=MC_SE * 2 * math.sqrt(c2) * corr_se)
    assert d.extra["mi_inputs"] == pytest.approx(4 * -0.5 * math.log1p(-1 / (1.16 * 1.64)), rel=1e-12)
    assert d.extra["config"]["teacher_noise"] == 0.4
    three = mfh_classification(100, n_classes=3)
    assert three.extra["teacher_bayes_accuracy"] is None and three.extra["mi_bayes_logits"] is None


def test_mfh_calibrated_noise_tracks_the_hidden_coordinates():
    """More student-only coordinates hide more of the label from the teacher: the calibrated teacher
    noise falls so that the Bayes accuracy stays at the target."""
    noises = [mfh_classification(2, teacher_decisive=4, shared_fraction=0.5, student_only=k, teacher_accuracy=0.7,
                                 label_noise=0.0).extra["config"]["teacher_noise"] for k in (0, 1, 2, 4)]
    assert all(a > b for a, b in zip(noises, noises[1:]))


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(teacher_decisive=4), ValueError, "go together"),
    (dict(teacher_decisive=4, shared_fraction=0.5, shared=2), ValueError, "not both"),
    (dict(teacher_decisive=4, shared_fraction=0.3), ValueError, "multiple of 1/4"),
    (dict(teacher_decisive=0, shared_fraction=0.0), ValueError, "teacher_decisive must be >= 1"),
    (dict(teacher_decisive=4, shared_fraction=1.5), ValueError, "shared_fraction must be a finite number in"),
    (dict(teacher_accuracy=0.99), ValueError, r"teacher_accuracy must be in \(0.5, 0.816667\)"),
    (dict(teacher_accuracy=0.5), ValueError, "teacher_accuracy must be"),
    (dict(teacher_accuracy=0.7, teacher_noise=0.3), ValueError, "not both"),
    (dict(teacher_accuracy=0.7, n_classes=3), ValueError, "needs n_classes=2"),
    (dict(teacher_accuracy=0.7, shared=0, teacher_only=0), ValueError, "sees a decisive coordinate"),
    (dict(teacher_noise=0.0), ValueError, "teacher_noise must be"),
    (dict(teacher_noise="0.3"), TypeError, "teacher_noise must be"),
])
def test_mfh_layout_and_calibration_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        mfh_classification(100, **kwargs)


def _gz(path, header_shape, body: bytes):
    with gzip.open(path, "wb") as fh:
        fh.write(bytes([0, 0, 0x08, len(header_shape)]) + b"".join(int(s).to_bytes(4, "big") for s in header_shape))
        fh.write(body)


def test_fashion_idx_files_are_read_within_their_header(tmp_path, fake_fashion):
    """A gzip bomb (a small file that decompresses to far more than its header announces), headers
    asking for too many items or for other shapes, and truncated files are refused without reading
    them whole: the loader decompresses at most one byte past what the header announces."""
    import tracemalloc

    labels = fake_fashion / "t10k-labels-idx1-ubyte.gz"
    _gz(labels, (20,), bytes(20) + bytes(40_000_000))  # 40 MB of zeros: about 40 KB compressed
    assert labels.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="holds more than the 20 values its header says"):
            load_fashion_mnist(fake_fashion, split="test")
        assert tracemalloc.get_traced_memory()[1] < 8_000_000
    finally:
        tracemalloc.stop()
    _gz(labels, (10**9,), bytes(100))
    with pytest.raises(ValueError, match=r"header says shape \(1000000000,\); expected \(items,\) with at most"):
        load_fashion_mnist(fake_fashion, split="test")
    images = fake_fashion / "t10k-images-idx3-ubyte.gz"
    _gz(images, (20, 30000, 30000), bytes(100))
    with pytest.raises(ValueError, match=r"expected \(items, 28, 28\)"):
        load_fashion_mnist(fake_fashion, split="test")
    _gz(images, (20, 28, 28), bytes(100))
    with pytest.raises(ValueError, match=r"header says \(20, 28, 28\) but the file holds 100 values"):
        load_fashion_mnist(fake_fashion, split="test")
    images.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        load_fashion_mnist(fake_fashion, split="test")
