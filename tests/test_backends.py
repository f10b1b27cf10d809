"""Every kNN estimator gives the same estimate on every backend (same float32/float64 input, same
counts), backend selection, and the backends' errors. The triton backend runs under
TRITON_INTERPRET=1 here when there is no GPU (small sizes; conftest.py sets it); faiss is tested
with faiss-cpu. The ops themselves, on every backend, are in test_knn.py and test_count.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cchmi
from cchmi import ops
from cchmi.ops import registry

HAS_TRITON = registry.triton_usable()
HAS_FAISS = registry.faiss_module() is not None
OTHERS = ["numpy"] + (["triton"] if HAS_TRITON else []) + (["faiss"] if HAS_FAISS else [])


def _data(n=120, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = x[:, :1] + 0.7 * rng.standard_normal((n, 1))
    z = x[:, 1:] + rng.standard_normal((n, 1))
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
    return x.astype(dtype), y.astype(dtype), z.astype(dtype), labels


ESTIMATES = {
    "ksg1": lambda x, y, z, lab, be: cchmi.ksg_mi(x, y, backend=be),
    "ksg2": lambda x, y, z, lab, be: cchmi.ksg_mi(x, y, variant=2, backend=be),
    "gao": lambda x, y, z, lab, be: cchmi.ksg_mi(np.round(x, 1), np.round(y, 1), ties="exact", backend=be),
    "ksg1-interval": lambda x, y, z, lab, be: cchmi.ksg_mi(x, y, confidence=0.9, n_subsamples=3, backend=be),
    "mixed": lambda x, y, z, lab, be: cchmi.mixed_mi(x, lab, backend=be),
    "mixed-exact": lambda x, y, z, lab, be: cchmi.mixed_mi(np.round(x, 1), lab, ties="exact", backend=be),
    "entropy": lambda x, y, z, lab, be: cchmi.entropy(x, backend=be),
    "cmi": lambda x, y, z, lab, be: cchmi.cmi(x, y, z, backend=be),
    "permutation": lambda x, y, z, lab, be: cchmi.permutation_test(x, y, n_permutations=4, backend=be),
}


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.parametrize("what", sorted(ESTIMATES))
def test_every_backend_gives_the_cpu_estimate(what, other):
    x, y, z, lab = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rounded data: surviving ties are warned about
        want = ESTIMATES[what](x, y, z, lab, "cpu")
        got = ESTIMATES[what](x, y, z, lab, other)
    assert got.backend == other
    assert got.estimate == want.estimate
    assert getattr(got, "stderr", None) == getattr(want, "stderr", None)
    np.testing.assert_array_equal(getattr(got, "null", 0), getattr(want, "null", 0))


@pytest.mark.skipif(not HAS_TRITON, reason="triton not installed")
def test_triton_float64_and_torch_inputs():
    x, y, _, _ = _data(dtype=np.float64)
    want = cchmi.ksg_mi(x, y, backend="cpu")
    assert cchmi.ksg_mi(x, y, backend="triton").estimate == want.estimate
    # CPU tensors are host data: prepared like NumPy arrays, so the estimate is the same.
    assert cchmi.ksg_mi(torch.from_numpy(x), torch.from_numpy(y), backend="triton").estimate == want.estimate


@pytest.mark.skipif(not HAS_TRITON, reason="triton not installed")
def test_device_preparation_matches_the_host_without_jitter():
    """The torch path of the preparation (used for CUDA tensors) standardises like the host path."""
    from cchmi.estimators.options import KnnOptions
    from cchmi.estimators.problem import prepare_arrays

    x, y, _, _ = _data(dtype=np.float64)
    be = ops.resolve("triton")
    rng = np.random.default_rng(0)
    exact = KnnOptions(ties="none")
    f64 = np.dtype(np.float64)
    host, log_host = prepare_arrays(be, {"x": x, "y": y}, exact, f64, rng)
    dev, log_dev = prepare_arrays(be, {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, exact, f64, rng)
    for a, b in zip(host, dev):
        np.testing.assert_allclose(a.cpu().numpy(), b.cpu().numpy(), rtol=0, atol=1e-12)
    assert log_dev == pytest.approx(log_host, abs=1e-12)
    jittered, _ = prepare_arrays(be, {"x": torch.from_numpy(x)}, KnnOptions(noise=1e-3), np.dtype(np.float32), rng)
    assert jittered[0].dtype == torch.float32
    spread = (jittered[0].double() - dev[0]).abs()
    assert 0 < float(spread.max()) < 0.01


def test_auto_stays_on_the_cpu_for_small_host_problems():
    x, y, _, _ = _data()
    assert cchmi.ksg_mi(x, y).backend == "cpu"
    if not torch.cuda.is_available():
        # The Triton interpreter is never chosen automatically, however large the problem.
        assert registry.auto(None, 10**7) == "cpu"


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
def test_faiss_refuses_float64_with_a_clear_error():
    x, y, _, _ = _data(dtype=np.float64)
    with pytest.raises(ValueError, match="faiss.*float32.*dtype='float32'"):
        cchmi.ksg_mi(x, y, backend="faiss")
    assert cchmi.ksg_mi(x, y, backend="faiss", dtype="float32").estimate == \
        cchmi.ksg_mi(x, y, backend="cpu", dtype="float32").estimate


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
@pytest.mark.parametrize("kind", ["dup", "grid", "discrete"])
def test_faiss_neighbours_are_exact_with_ties(kind):
    """faiss orders ties its own way; the backend must still return the reference's neighbours."""
    from conftest import make_points

    from cchmi import reference

    pts = make_points(kind, 301, 3, np.float32, seed=5)
    be = ops.resolve("faiss")
    for k in (1, 4, 9):
        dist, idx = be.knn(pts, k)
        ref_d, ref_i = reference.knn(pts, k)
        np.testing.assert_array_equal(dist, ref_d)
        np.testing.assert_array_equal(idx, ref_i)


def test_missing_faiss_names_the_extra(monkeypatch):
    monkeypatch.setattr(registry, "faiss_module", lambda: None)
    with pytest.raises(ValueError, match=r"pip install cchmi\[faiss\]"):
        cchmi.ksg_mi(*_data()[:2], backend="faiss")


def test_missing_cuda_module_says_how_to_build(monkeypatch):
    real = registry.import_compiled
    monkeypatch.setattr(registry, "import_compiled", lambda name: None if name == "_cuda" else real(name))
    with pytest.raises(ValueError, match="CCHMI_CUDA=ON"):
        cchmi.ksg_mi(*_data()[:2], backend="cuda")


@pytest.mark.skipif(not HAS_TRITON, reason="triton not installed")
def test_k_above_the_gpu_limit_is_refused_by_name():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, 1)).astype(np.float32)
    with pytest.raises(ValueError, match="k=65 is above the triton backend's limit"):
        cchmi.entropy(x, k=65, backend="triton")


@pytest.mark.parametrize("backend", ["cpu"] + (["triton"] if HAS_TRITON else []))
def test_ksg_mi_batch_equals_single_calls(backend):
    rng = np.random.default_rng(4)
    teachers = rng.standard_normal((3, 90, 2)).astype(np.float32)
    student = (teachers[0][:, :1] + rng.standard_normal((90, 1))).astype(np.float32)
    results = cchmi.ksg_mi_batch(teachers, student, k=4, ties="none", backend=backend)
    assert [r.backend for r in results] == [backend] * 3
    for t, r in zip(teachers, results):
        assert r.estimate == cchmi.ksg_mi(t, student, k=4, ties="none", backend="cpu").estimate
    # A sequence of arrays is a batch too; variant 2 runs problem by problem.
    seq = cchmi.ksg_mi_batch(list(teachers), [student] * 3, k=4, ties="none", variant=2, backend=backend)
    assert seq[1].estimate == cchmi.ksg_mi(teachers[1], student, k=4, ties="none", variant=2).estimate
    # With jitter (one stream for the batch) the estimates are the same on every backend.
    jittered = cchmi.ksg_mi_batch(teachers, student, backend=backend)
    assert [r.estimate for r in jittered] == [r.estimate for r in cchmi.ksg_mi_batch(teachers, student, backend="cpu")]


def test_ksg_mi_batch_rejects_mismatched_problems():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="same number of problems"):
        cchmi.ksg_mi_batch(rng.standard_normal((3, 20, 2)), rng.standard_normal((2, 20, 1)))
    with pytest.raises(ValueError, match=r"shapes of the first: x\[1\]"):
        cchmi.ksg_mi_batch([rng.standard_normal((20, 2)), rng.standard_normal((20, 3))], rng.standard_normal((20, 1)))
    with pytest.raises(ValueError, match="same number of samples"):
        cchmi.ksg_mi_batch(rng.standard_normal((3, 20, 2)), rng.standard_normal((21, 1)))
    with pytest.raises(ValueError, match=r"x\[2\] contains NaN"):
        bad = rng.standard_normal((3, 20, 2))
        bad[2, 5, 1] = np.nan
        cchmi.ksg_mi_batch(bad, rng.standard_normal((20, 1)))


@pytest.mark.skipif(not HAS_TRITON, reason="triton not installed")
def test_cch_on_a_device_backend_equals_cpu():
    x, y, _, lab = _data()
    a = cchmi.cch(x, y, lab, confidence=0.9, n_subsamples=3, backend="triton")
    b = cchmi.cch(x, y, lab, confidence=0.9, n_subsamples=3, backend="cpu")
    assert a.backend == "triton"
    assert (a.i_ts, a.i_sy, a.gap, a.gap_stderr) == (b.i_ts, b.i_sy, b.gap, b.gap_stderr)
