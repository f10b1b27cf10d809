"""The high-dimensional task suite (cchmi.data.hd_tasks): closed forms against Monte Carlo at small
dimensions, the maps' invertibility, the suite's truths, determinism, argument errors, and the
``--suite hd`` option of the accuracy benchmark."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import special, stats

from cchmi.cli import _bench_module
from cchmi.data import correlated_gaussian, gaussian_mi
from cchmi.data import hd_tasks as hd
from cchmi.theory import gaussian_mi as block_gaussian_mi

# Tolerances (nats unless said otherwise)
MC_N = 200_000  # draws behind each plug-in check
PLUGIN_ATOL = 0.02  # Gaussian log-det / plug-in count MI at <= 18 joint dims and MC_N draws (bias < 1e-3, noise)
Z = 4.0  # density Monte Carlo: within 4 standard errors
EXACT_ATOL = 1e-9  # closed forms against each other, truths against their targets
INVERSE_RTOL = 1e-9  # a map's inverse applied to its output, against the input
CDF_INVERSE_ATOL = 1e-7  # Phi's float64 resolution near 1: eps / phi(a), 2e-8 at a = 6



def _plugin_gaussian(x, y) -> float:
    return gaussian_mi(np.cov(np.hstack([x, y]).T), x.shape[1])


@pytest.mark.parametrize("task", [hd.gauss_dense(4, 1.5), hd.gauss_sparse(6, 2.0)], ids=lambda t: t.name)
def test_gaussians_match_the_sample_covariance(task):
    s = task.sample(MC_N, 0)
    assert s.mi == task.mi
    assert _plugin_gaussian(s.x, s.y) == pytest.approx(task.mi, abs=PLUGIN_ATOL)


def test_dense_gaussian_is_rotated_and_sparse_keeps_noise_apart():
    dense = hd.gauss_dense(6, 3.0).sample(20_000, 1)
    corr = np.corrcoef(dense.x.T, dense.y.T)[:6, 6:]
    diagonal = np.sum(np.diag(corr) ** 2)
    assert np.sum(corr**2) - diagonal > diagonal  # not axis-aligned pairs: most of it off the diagonal
    sparse = hd.gauss_sparse(8, 4.0, pairs=2).sample(20_000, 1)
    corr = np.corrcoef(sparse.x.T, sparse.y.T)[:8, 8:]
    assert np.abs(np.diag(corr)[:2]).min() > 0.8 and np.abs(corr[2:, 2:]).max() < 0.05


FORWARD = {"half_cube": lambda a: a * np.sqrt(np.abs(a)), "asinh": np.arcsinh, "normal_cdf": special.ndtr}
INVERSE = {"half_cube": lambda b: np.sign(b) * np.abs(b) ** (2.0 / 3.0), "asinh": np.sinh, "normal_cdf": special.ndtri}


@pytest.mark.parametrize("transform", hd.TRANSFORMS)
def test_transforms_are_coordinatewise_invertible(transform):
    """MI is invariant under an injective map of each side: the sample is the Gaussian of the stated MI
    with a strictly increasing map applied to each coordinate, and undoing it gives that Gaussian back."""
    task = hd.transformed(transform, 4, 1.5)
    s = task.sample(MC_N, 3)
    base = correlated_gaussian(MC_N, 4, 4, mi=1.5, random_state=3)
    forward, inverse = FORWARD[transform], INVERSE[transform]
    assert np.array_equal(s.x, forward(base.x)) and np.array_equal(s.y, forward(base.y))
    grid = np.linspace(-6.0, 6.0, 10_001)
    assert np.all(np.diff(forward(grid)) > 0)
    atol = CDF_INVERSE_ATOL if transform == "normal_cdf" else 1e-9
    np.testing.assert_allclose(inverse(forward(grid)), grid, rtol=INVERSE_RTOL, atol=atol)
    assert _plugin_gaussian(inverse(s.x), inverse(s.y)) == pytest.approx(task.mi, abs=PLUGIN_ATOL)


def test_student_closed_form_matches_density_monte_carlo():
    """The stated MI against the mean of the exact log-density ratio of the multivariate Student-t
    (scale: the correlated Gaussian's correlation matrix; marginals: Student-t with scale I)."""
    dim, dof = 3, 3
    task = hd.student(dim, 1.2, dof=dof)
    assert task.mi == pytest.approx(1.2, abs=EXACT_ATOL)
    s = task.sample(MC_N, 5)
    share = task.mi - hd.student_t_mi_correction(dim, dim, dof)
    rho = math.sqrt(-math.expm1(-2.0 * share / dim))
    scale = np.block([[np.eye(dim), rho * np.eye(dim)], [rho * np.eye(dim), np.eye(dim)]])
    joint = stats.multivariate_t(np.zeros(2 * dim), scale, df=dof).logpdf(np.hstack([s.x, s.y]))
    marginal = stats.multivariate_t(np.zeros(dim), np.eye(dim), df=dof)
    ratio = joint - marginal.logpdf(s.x) - marginal.logpdf(s.y)
    assert abs(ratio.mean() - task.mi) <= Z * ratio.std(ddof=1) / math.sqrt(ratio.size)


@pytest.mark.parametrize("intrinsic,dim", [(1, 8), (4, 8), (16, 20)])
def test_embedding_is_injective_and_nonlinear(intrinsic, dim):
    """The lift's left inverse gives back the latent Gaussian exactly (so the MI is the latent's), and
    the lifted sample fills more than `intrinsic` linear dimensions (the lift is not linear)."""
    task = hd.embedded(intrinsic, dim, 1.0)
    s = task.sample(5_000, 2)
    fx, fy = hd.embed_lifts(task.name, intrinsic, dim)
    base = correlated_gaussian(5_000, intrinsic, intrinsic, mi=1.0, random_state=2)
    np.testing.assert_allclose(fx.invert(s.x), base.x, rtol=INVERSE_RTOL, atol=1e-9)
    np.testing.assert_allclose(fy.invert(s.y), base.y, rtol=INVERSE_RTOL, atol=1e-9)
    singular = np.linalg.svd(s.x - s.x.mean(0), compute_uv=False)
    assert np.sum(singular > 1e-3 * singular[0]) > intrinsic
    assert not np.allclose(fx(base.x[:10]), fy(base.x[:10]))  # each side its own lift


def test_embedding_latent_mi_matches_sample_covariance():
    task = hd.embedded(4, 8, 2.0)
    s = task.sample(MC_N, 0)
    fx, fy = hd.embed_lifts(task.name, 4, 8)
    assert _plugin_gaussian(fx.invert(s.x), fy.invert(s.y)) == pytest.approx(task.mi, abs=PLUGIN_ATOL)


def _field_covariance(side: int, sigma: float) -> np.ndarray:
    """The joint covariance of (X, Y) of the field task, built from the sampler's own maps applied to
    the pixel basis (no Fourier algebra)."""
    d = side * side
    lam, beta = hd.field_spectra(side)
    basis = np.eye(d).reshape(d, side, side)
    root = hd._circulant(basis, np.sqrt(lam)).reshape(d, d)  # X = root @ w, w white
    blur = hd._circulant(basis, beta).reshape(d, d)  # Y = blur @ X + sigma e
    cx = root @ root.T
    return np.block([[cx, cx @ blur.T], [blur @ cx, blur @ cx @ blur.T + sigma**2 * np.eye(d)]])


@pytest.mark.parametrize("side", [8, 16])
def test_field_closed_form_matches_the_covariance_determinants(side):
    task = hd.image_field(side, 3.0)
    assert task.mi == pytest.approx(3.0, abs=EXACT_ATOL) and task.dim_x == side * side
    sigma = hd.field_sigma(side, 3.0)
    cov = _field_covariance(side, sigma)
    d = side * side
    assert np.allclose(np.diag(cov)[:d], 1.0)  # unit pixel variance
    assert block_gaussian_mi(cov, np.arange(d), d + np.arange(d)) == pytest.approx(task.mi, abs=1e-8)


def test_field_matches_the_sample_covariance():
    task = hd.image_field(3, 2.0)
    s = task.sample(MC_N, 4)
    assert _plugin_gaussian(s.x, s.y) == pytest.approx(task.mi, abs=PLUGIN_ATOL)


def test_label_channel_matches_plug_in_count():
    """Decoding each side's class from its feature and counting (C_x, C_y) gives the stated MI, which
    is H(C) (1 - H_2(beta)); each side is standard Gaussian marginally."""
    dim, target = 6, 1.0
    task = hd.label_channel(dim, target)
    bits, beta = hd.label_channel_params(target)
    assert bits == 2 and task.mi == pytest.approx(target, abs=EXACT_ATOL)
    h2 = -(beta * math.log2(beta) + (1 - beta) * math.log2(1 - beta))
    assert task.mi == pytest.approx(bits * math.log(2.0) * (1.0 - h2), abs=EXACT_ATOL)
    s = task.sample(MC_N, 6)
    qx, qy = hd.label_rotations(task.name, dim)
    weights = 2 ** np.arange(bits)
    cx = ((s.x @ qx)[:, :bits] > 0) @ weights
    cy = ((s.y @ qy)[:, :bits] > 0) @ weights
    joint = np.zeros((2**bits, 2**bits))
    np.add.at(joint, (cx, cy), 1.0)
    joint /= joint.sum()
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    plugin = float(np.sum(joint * np.log(joint / outer)))
    assert plugin == pytest.approx(task.mi, abs=PLUGIN_ATOL)
    assert np.abs(s.x.mean(0)).max() < 0.02 and np.abs(np.cov(s.x.T) - np.eye(dim)).max() < 0.02


def test_suite_truths_names_and_dims():
    tasks = hd.hd_suite()
    names = [t.name for t in tasks]
    assert len(names) == len(set(names)) and set(hd.HD_QUICK_TASKS) <= set(names)
    for t in tasks:
        match = re.fullmatch(r"hd-(.+)-(\d+)-([0-9.]+)", t.name)
        assert match, t.name
        assert match.group(1) in hd.HD_FAMILIES or match.group(1) == f"student-df{hd.STUDENT_DOF}"
        assert t.dim_x == t.dim_y == int(match.group(2)) and t.dim_x in hd.HD_DIMS
        assert math.isfinite(t.mi) and 0.5 <= t.mi <= 10.0
        assert t.mi == pytest.approx(float(match.group(3)), abs=EXACT_ATOL)
        assert t.kind == "continuous"
    assert {t.dim_x for t in tasks if t.name.startswith("hd-field-")} == {64, 256, 1024}  # the square dims
    expected = sum(len(levels) * (3 if family == "field" else 5) for family, levels in hd.HD_LEVELS.items())
    assert len(tasks) == expected
    assert [t.name for t in hd.hd_suite(dims=(128,), families=("label",))] == ["hd-label-128-0.5", "hd-label-128-4"]


def test_samplers_are_deterministic_with_a_seed():
    for t in hd.hd_suite(dims=(64,)):
        a, b, c = t.sample(40, 3), t.sample(40, 3), t.sample(40, 4)
        assert a.x.shape == a.y.shape == (40, 64) and np.isfinite(a.x).all() and np.isfinite(a.y).all()
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y), t.name
        assert not np.array_equal(a.x, c.x), t.name
        assert a.mi == pytest.approx(t.mi, abs=EXACT_ATOL)


def test_arguments_are_checked_by_name():
    with pytest.raises(ValueError, match="dims must be >= 32, got 16"):
        hd.hd_suite(dims=(16,))
    with pytest.raises(ValueError, match="families must be one of"):
        hd.hd_suite(families=("gauss",))
    with pytest.raises(ValueError, match="mi must exceed .* degrees of freedom"):
        hd.student(64, 1.0)
    with pytest.raises(ValueError, match="dim must exceed intrinsic=16"):
        hd.embedded(16, 16, 1.0)
    with pytest.raises(ValueError, match="dim must be at least 8"):
        hd.label_channel(4, 4.0)
    with pytest.raises(ValueError, match="transform must be one of"):
        hd.transformed("square", 8, 1.0)
    with pytest.raises(ValueError, match="pairs must be between 1 and 7"):
        hd.gauss_sparse(8, 1.0, pairs=8)
    with pytest.raises(ValueError, match="mi must be a finite number > 0"):
        hd.gauss_dense(8, 0.0)


def test_bench_accuracy_runs_the_hd_suite(tmp_path):
    accuracy = _bench_module("bench_accuracy")
    cat, quick = accuracy.suite_tasks("hd")
    assert quick == hd.HD_QUICK_TASKS and "hd-gauss-dense-1024-10" in cat
    assert "gauss-1x1-1" in accuracy.suite_tasks("catalogue")[0]
    with pytest.raises(ValueError, match="suite must be one of catalogue, hd; got 'big'"):
        accuracy.suite_tasks("big")
    with pytest.raises(ValueError, match="unknown task.s. gauss-1x1-1"):
        accuracy.main_accuracy(tmp_path, quick=True, seeds=1, tasks=["gauss-1x1-1"], neural=False, device=None,
                               timeout=1, progress=False, suite="hd")
    text = accuracy.main_accuracy(tmp_path, quick=False, seeds=1, tasks=["hd-gauss-sparse-64-2"], neural=False,
                                  device=None, timeout=120, progress=False, sizes=[300],
                                  methods=["cchmi KSG-1 / Ross"], suite="hd")
    assert "cchmi bench accuracy --suite hd --n 300 --seeds 1" in text
    assert "| hd-gauss-sparse-64-2 | 300 | cchmi KSG-1 / Ross | 2.000 |" in text
