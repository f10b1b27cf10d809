"""The CCH task catalogue (cchmi.data.cch_tasks): its truths, maps, coverage and samples."""

import importlib
import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import cchmi
from cchmi.data import CCHTask, cch_tasks, gaussian_classes, hd_cch_tasks

# `cchmi.data.cch_tasks` is the function; the module holds the tables and the model internals.
catalogue = importlib.import_module("cchmi.data.cch_tasks")

# Tolerances (nats unless said otherwise)
Z = 4.0  # statistical checks: within 4 standard errors
DESIGN_ATOL = 1e-9  # determinant formula against the MIs the Gaussian rows were built for
ESTIMATOR_ATOL = 0.1  # KSG / mixed KSG at 1 + 1 dims and n = 3000 against the truth (bias + noise)
GAUSS_MC_N = 20_000  # draws for the Monte Carlo of the Gaussian log-density ratios
SEED_MC_N = 40_000  # draws per seed in the stated-standard-error check

TASKS = cch_tasks()
BY_NAME = {t.name: t for t in TASKS}
SMALL_GAUSS = [t for t in TASKS if t.family == "gauss" and t.dim_t + t.dim_s + t.dim_y <= 40]


def test_gaussian_rows_hit_their_design():
    for row in catalogue.GAUSS_ROWS:
        truth = catalogue._gauss_truth(row)
        assert truth.i_ts == pytest.approx(row[3], abs=DESIGN_ATOL)
        assert truth.i_sy == pytest.approx(row[4], abs=DESIGN_ATOL)
        assert truth.gap == truth.i_ts - truth.i_sy
        _, cov = catalogue._gauss_model(row)
        assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0
    with pytest.raises(ValueError, match="invalid Gaussian CCH row"):
        catalogue._gauss_truth((2, 2, 1, 0.5, 0.5, 3, 0.0))  # k_ts > min(dim_t, dim_s)


@pytest.mark.parametrize("task", SMALL_GAUSS, ids=lambda t: t.name)
def test_gaussian_closed_form_matches_density_monte_carlo(task):
    _, cov = catalogue._gauss_model(task.params)
    t, s, y = task.sample(GAUSS_MC_N, random_state=3)
    it = np.arange(task.dim_t)
    is_ = task.dim_t + np.arange(task.dim_s)
    iy = task.dim_t + task.dim_s + np.arange(task.dim_y)

    def logpdf(idx, *parts):
        return multivariate_normal(np.zeros(len(idx)), cov[np.ix_(idx, idx)]).logpdf(np.hstack(parts))

    log_s = logpdf(is_, s)
    f_ts = logpdf(np.concatenate([it, is_]), t, s) - logpdf(it, t) - log_s
    f_sy = logpdf(np.concatenate([is_, iy]), s, y) - log_s - logpdf(iy, y)
    for f, truth in ((f_ts, task.i_ts), (f_sy, task.i_sy)):
        assert abs(f.mean() - truth) <= Z * f.std(ddof=1) / math.sqrt(len(f))
    assert task.truth_stderr == 0.0


def test_monte_carlo_truth_standard_error_is_honest():
    for row in (catalogue.CLASS_ROWS[2], catalogue.CLASS_ROWS[5]):
        a, b = catalogue._classes_truth(row, SEED_MC_N, 1), catalogue._classes_truth(row, SEED_MC_N, 2)
        for field in ("i_ts", "i_sy", "gap"):
            se_a, se_b = getattr(a, field + "_stderr"), getattr(b, field + "_stderr")
            assert 0 < se_a < 0.02
            assert abs(getattr(a, field) - getattr(b, field)) <= Z * math.hypot(se_a, se_b)
    with pytest.raises(ValueError, match="invalid class CCH row"):
        catalogue._classes_truth((2, 1, 1, 1.0, 1.0, 0.0, None), 10, 0)  # rho must be in (-1, 1)


def test_monte_carlo_i_sy_matches_quadrature():
    for task in TASKS:
        if task.family == "classes" and task.params[6] is None:  # uniform priors: gaussian_classes' model
            exact = gaussian_classes(4, task.n_classes, separation=task.params[3]).mi
            truth = task.truth()
            assert abs(truth.i_sy - exact) <= Z * truth.i_sy_stderr, task.name


def test_monte_carlo_i_ts_matches_quadrature():
    """I(T; S) of a class task by quadrature of the two-dimensional mixture on a grid."""
    task = BY_NAME["cch-classes2-1x1-sep3-rho0.4531-a1"]
    n_classes, _, _, sep, rho, alpha, _ = task.params
    mu_s = sep * (np.arange(n_classes) - 0.5 * (n_classes - 1))
    grid = np.linspace(-12.0, 12.0, 1201)
    step = grid[1] - grid[0]
    tt, ss = np.meshgrid(grid, grid, indexing="ij")
    joint = np.zeros_like(tt)
    for m in mu_s:
        dt, ds = tt - alpha * m, ss - m
        joint += np.exp(-0.5 * (dt * dt - 2 * rho * dt * ds + ds * ds) / (1 - rho * rho)) / (
            2 * math.pi * math.sqrt(1 - rho * rho) * n_classes)
    p_t, p_s = joint.sum(axis=1) * step, joint.sum(axis=0) * step
    ratio = np.log(np.maximum(joint, 1e-300)) - np.log(np.outer(p_t, p_s) + 1e-300)
    exact = float(np.sum(joint * ratio) * step * step)
    truth = task.truth()
    assert abs(truth.i_ts - exact) <= Z * truth.i_ts_stderr
    assert task.truth() is truth  # cached


@pytest.mark.parametrize("task", [t for t in TASKS if t.family == "mapped"], ids=lambda t: t.name)
def test_maps_keep_the_truth_and_change_the_samples(task):
    transform, base = task.params
    assert task.truth() == base.truth()
    assert (task.dim_t, task.dim_s, task.dim_y, task.n_classes) == (base.dim_t, base.dim_s, base.dim_y, base.n_classes)
    t, s, y = task.sample(200, random_state=5)
    t0, s0, y0 = base.sample(200, random_state=5)
    np.testing.assert_array_equal(y, y0)
    for mapped, original in ((t, t0), (s, s0)):
        if transform == "rotate":
            np.testing.assert_allclose(np.linalg.norm(mapped, axis=1), np.linalg.norm(original, axis=1))
        else:  # the inverse map recovers the original
            inverse = np.sinh(mapped) if transform == "asinh" else np.sign(mapped) * np.abs(mapped) ** (2 / 3)
            np.testing.assert_allclose(inverse, original, rtol=1e-9, atol=1e-12)
        if transform != "rotate" or mapped.shape[1] > 1:
            assert not np.allclose(mapped, original)
    np.testing.assert_array_equal(task.sample(200, random_state=5)[0], t)  # the map is fixed per task


def test_catalogue_coverage():
    assert len({t.name for t in TASKS}) == len(TASKS) >= 30
    assert all(isinstance(t, CCHTask) for t in TASKS)
    assert {t.family for t in TASKS} == {"gauss", "classes", "mapped"}
    for side in ("dim_t", "dim_s"):
        dims = [getattr(t, side) for t in TASKS]
        assert min(dims) == 1 and max(dims) == 64
    classes = {t.n_classes for t in TASKS}
    assert 0 in classes and min(classes - {0}) == 2 and max(classes) == 10
    gaps = np.array([t.gap for t in TASKS])
    assert gaps.min() >= -1.01 and gaps.max() <= 1.01
    assert gaps.min() <= -0.9 and gaps.max() >= 0.9
    near = gaps[np.abs(gaps) < 0.1]
    assert (near > 0).sum() >= 5 and (near < 0).sum() >= 5
    for t in TASKS:  # a near-zero gap's sign is known: it stands clear of its standard error
        assert abs(t.gap) > Z * t.truth_stderr, t.name
        assert t.gap == pytest.approx(t.i_ts - t.i_sy, abs=1e-12)


def _check_samples(task):
    """Shapes, dtypes and labels as stated; the same seed gives the same arrays, another seed others."""
    t, s, y = task.sample(50, random_state=11)
    assert t.shape == (50, task.dim_t) and s.shape == (50, task.dim_s)
    assert t.dtype == s.dtype == np.float64 and np.isfinite(t).all() and np.isfinite(s).all()
    if task.n_classes:
        assert y.shape == (50,) and y.dtype == np.int64 and y.min() >= 0 and y.max() < task.n_classes
    else:
        assert y.shape == (50, task.dim_y) and y.dtype == np.float64
    again, other = task.sample(50, random_state=11), task.sample(50, random_state=12)
    for a, b in zip((t, s, y), again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(s, other[1])


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_samples_have_the_stated_shapes_and_follow_the_seed(task):
    _check_samples(task)


def test_estimators_land_near_the_truth_in_low_dimension():
    gauss = BY_NAME["cch-gauss-1x1y1-ts0.6-sy0.55-k1-p0"]
    t, s, y = gauss.sample(3000, random_state=0)
    assert cchmi.ksg_mi(t, s, k=3).estimate == pytest.approx(gauss.i_ts, abs=ESTIMATOR_ATOL)
    assert cchmi.ksg_mi(s, y, k=3).estimate == pytest.approx(gauss.i_sy, abs=ESTIMATOR_ATOL)
    classes = BY_NAME["cch-classes3-1x1-sep2-rho0.7007-a0.5"]
    t, s, y = classes.sample(3000, random_state=0)
    assert cchmi.ksg_mi(t, s, k=3).estimate == pytest.approx(classes.i_ts, abs=ESTIMATOR_ATOL)
    assert cchmi.mixed_mi(s, y, k=3).estimate == pytest.approx(classes.i_sy, abs=ESTIMATOR_ATOL)


# -- the high-dimensional suite (cch_tasks(suite="hd")) -----------------------------------------------

HD = cch_tasks("hd")
HD_BY_NAME = {t.name: t for t in HD}
HD64 = [t for t in HD if t.dim_t == 64]
INVERT_ATOL = 1e-8  # the lift's left inverse and the padding's un-rotation against the base sample


def test_hd_suite_tables_and_truths():
    assert cch_tasks() == TASKS and cch_tasks("catalogue") == TASKS  # the default list is unchanged
    with pytest.raises(ValueError, match="suite must be one of 'catalogue', 'hd'; got 'bogus'"):
        cch_tasks("bogus")
    with pytest.raises(ValueError, match="dims must be >= 9"):
        hd_cch_tasks(dims=[8])
    assert len({t.name for t in HD}) == len(HD) == 20 * len(catalogue.HD_CCH_DIMS)
    assert not {t.name for t in HD} & set(BY_NAME)
    assert set(catalogue.HD_CCH_QUICK_TASKS) <= {t.name for t in HD64}
    for d in catalogue.HD_CCH_DIMS:
        at_d = [t for t in HD if t.dim_t == d]
        assert all(t.dim_s == d for t in at_d)
        counts = {f: sum(t.family == f for t in at_d) for f in ("lifted", "padded", "gauss")}
        assert counts == {"lifted": 8, "padded": 8, "gauss": 4}
    for t in HD:
        if t.family in ("lifted", "padded"):
            dim, base = t.params
            assert dim == t.dim_t and base.name in BY_NAME and max(base.dim_t, base.dim_s) <= 8
            assert t.truth() == base.truth() and (t.dim_y, t.n_classes) == (base.dim_y, base.n_classes)
            assert t.name == ("lift" if t.family == "lifted" else "pad") + f"{dim}-{base.name}"
        else:
            assert t.truth().i_ts == pytest.approx(t.params[3], abs=DESIGN_ATOL)
            assert t.truth().i_sy == pytest.approx(t.params[4], abs=DESIGN_ATOL)
    for family in ("lifted", "padded", "gauss"):  # both signs, clear of 0.1 nats, in every family
        gaps = np.array([t.gap for t in HD64 if t.family == family])
        assert gaps.max() >= 0.1 and gaps.min() <= -0.1


HD512 = ("lift512-cch-classes5-2x4-sep1.5-rho0.7133-a1", "pad512-cch-gauss-4x4y2-ts0.5-sy1-k4-p0",
         "cch-gauss-512x512y2-ts0.5-sy1-k512-p0.3")


@pytest.mark.parametrize("task", HD64 + [HD_BY_NAME[n] for n in HD512], ids=lambda t: t.name)
def test_hd_samples_have_the_stated_shapes_and_follow_the_seed(task):
    _check_samples(task)


@pytest.mark.parametrize("name", ["lift64-cch-gauss-4x4y2-ts0.5-sy1-k4-p0",
                                  "lift128-cch-classes5-2x4-sep1.5-rho0.7133-a1"])
def test_lift_is_injective_on_the_sample(name):
    task = HD_BY_NAME[name]
    dim, base = task.params
    t, s, y = task.sample(400, random_state=7)
    t0, s0, y0 = base.sample(400, random_state=7)
    np.testing.assert_array_equal(y, y0)
    lift_t, lift_s = catalogue._lifts(task.name, base.dim_t, base.dim_s, dim)
    assert (lift_t.a1.shape[0], lift_s.a1.shape[0], lift_t.q.shape[0]) == (base.dim_t, base.dim_s, dim)
    np.testing.assert_allclose(lift_t.invert(t), t0, rtol=0, atol=INVERT_ATOL)
    np.testing.assert_allclose(lift_s.invert(s), s0, rtol=0, atol=INVERT_ATOL)
    assert not np.allclose(lift_t.q, lift_s.q)  # one lift per side
    other = HD_BY_NAME[name.replace(f"lift{dim}", "lift256")]
    assert not np.allclose(catalogue._lifts(other.name, base.dim_t, base.dim_s, 256)[0].a1, lift_t.a1)  # per name


@pytest.mark.parametrize("name", ["pad64-cch-gauss-8x8y1-ts1.5-sy1-k8-p0", "pad64-cch-classes2-1x1-sep2-rho0-a0"])
def test_padding_is_independent_noise_rotated(name):
    task = HD_BY_NAME[name]
    dim, base = task.params
    n = 4000
    t, s, y = task.sample(n, random_state=3)
    t0, s0, y0 = base.sample(n, random_state=3)
    np.testing.assert_array_equal(y, y0)
    rot_t, rot_s = catalogue._pad_rotations(task.name, dim)
    for rot in (rot_t, rot_s):
        np.testing.assert_allclose(rot.T @ rot, np.eye(dim), atol=1e-12)
    assert not np.allclose(rot_t, rot_s)
    back_t, back_s = t @ rot_t, s @ rot_s
    np.testing.assert_allclose(back_t[:, : base.dim_t], t0, rtol=0, atol=INVERT_ATOL)
    np.testing.assert_allclose(back_s[:, : base.dim_s], s0, rtol=0, atol=INVERT_ATOL)
    pad = np.hstack([back_t[:, base.dim_t:], back_s[:, base.dim_s:]])
    everything = np.hstack([t0, s0, y0.reshape(n, -1).astype(np.float64), pad])
    corr = np.corrcoef(everything, rowvar=False)
    first = everything.shape[1] - pad.shape[1]
    off = corr[first:, :] - np.eye(corr.shape[0])[first:, :]
    assert np.abs(off).max() < Z * 1.5 / math.sqrt(n)  # the padding: uncorrelated with all else (max of ~10^4)
    assert np.abs(pad.mean(axis=0)).max() < Z * 1.2 / math.sqrt(n) and np.allclose(pad.var(axis=0), 1.0, atol=0.15)


def test_hd_gaussian_truth_against_the_pair_formula_and_the_samples():
    """I(T; S) and I(S; Y) of the canonical construction: a sum over the correlated coordinate pairs of
    -1/2 log(1 - rho^2), with the cross-covariance blocks diagonal (so the pairs are independent)."""
    for name in ("cch-gauss-512x512y2-ts0.5-sy1-k512-p0.3", "cch-gauss-64x64y4-ts1-sy1.5-k8-p0"):
        task = HD_BY_NAME[name]
        d, dim_y = task.dim_t, task.dim_y
        _, cov = catalogue._gauss_model(task.params)
        t, s, y = slice(0, d), slice(d, 2 * d), slice(2 * d, 2 * d + dim_y)
        for block in (cov[t, t], cov[s, s], cov[y, y]):
            np.testing.assert_allclose(block, np.eye(block.shape[0]), atol=1e-12)
        ts, sy = cov[t, s], cov[s, y]
        np.testing.assert_array_equal(ts, np.diag(np.diag(ts)))
        np.testing.assert_array_equal(sy[:dim_y], np.diag(np.diag(sy[:dim_y])))
        assert not sy[dim_y:].any()
        pairs = np.diag(ts)
        assert (pairs != 0).sum() == task.params[5]
        assert task.i_ts == pytest.approx(-0.5 * np.log1p(-pairs**2).sum(), abs=1e-9)
        assert task.i_sy == pytest.approx(-0.5 * np.log1p(-np.diag(sy) ** 2).sum(), abs=1e-9)
    task = HD_BY_NAME["cch-gauss-64x64y4-ts1-sy1.5-k8-p0"]
    n = 20_000
    sample = np.hstack(task.sample(n, random_state=1))
    _, cov = catalogue._gauss_model(task.params)
    assert np.abs(np.cov(sample, rowvar=False) - cov).max() < Z * 1.5 / math.sqrt(n)
