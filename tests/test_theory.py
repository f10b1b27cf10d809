"""The joint Gaussian KD model: every closed form against Monte Carlo, and the CCH's sufficiency
conditions (with counterexamples where they are dropped)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cchmi import data
from cchmi.theory import LinearKD, fit_student, gaussian_mi, random_model, scalar_gaussian_mi


def linear_model_cov(mixing: np.ndarray) -> np.ndarray:
    """Covariance of A z for z ~ N(0, I)."""
    return mixing @ mixing.T


def test_gaussian_mi_matches_the_sampler_formula():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((5, 8))
    cov = g @ g.T / 8 + 0.1 * np.eye(5)
    assert gaussian_mi(cov, [0, 1], [2, 3, 4]) == pytest.approx(data.gaussian_mi(cov, 2), rel=1e-12)
    assert gaussian_mi(cov, [0], [1]) == pytest.approx(
        scalar_gaussian_mi(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])), rel=1e-12)
    with pytest.raises(ValueError, match="disjoint"):
        gaussian_mi(cov, [0, 1], [1, 2])


def test_risk_of_a_weight_against_a_test_sample():
    m = random_model(2, 3, random_state=1)
    w = np.array([0.3, -0.2, 0.5])
    _, x2, y, _ = m.sample(400_000, random_state=2)
    empirical = np.mean((y - x2 @ w) ** 2)
    assert m.risk(w) == pytest.approx(empirical, rel=0.01)
    assert m.risk(m.beta_y) == pytest.approx(m.moments.s_y, rel=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 4.0])
def test_expected_risk_against_monte_carlo(lam):
    m = random_model(3, 4, random_state=3)
    n, reps = 12, 20_000
    _, x2, y, t = m.sample(n * reps, random_state=4)
    w = fit_student(x2.reshape(reps, n, -1), y.reshape(reps, n), t.reshape(reps, n), lam)
    diff = w - m.beta_y
    risks = m.moments.s_y + np.einsum("ri,ij,rj->r", diff, m.s22, diff)
    se = risks.std() / np.sqrt(reps)
    assert abs(risks.mean() - m.expected_risk(lam, n)) < 4 * se


def test_slope_and_optimal_lambda_agree_with_the_risk_curve():
    for seed in range(20):
        m = random_model(2, 3, random_state=seed, teacher_scale=[0.5, 1.0, 2.5][seed % 3])
        n = 10
        h = 1e-6
        numeric = (m.expected_risk(h, n) - m.expected_risk(0.0, n)) / h
        assert m.risk_slope_at_zero(n) == pytest.approx(numeric, rel=1e-3, abs=1e-9)
        assert m.kd_helps() == (m.risk_slope_at_zero(n) < 0)
        lam = m.optimal_lambda(n)
        grid = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 400)])
        best_on_grid = min(m.expected_risk(g, n) for g in grid)
        if np.isfinite(lam):
            assert m.expected_risk(lam, n) <= best_on_grid + 1e-12
        if not m.kd_helps():
            assert lam == 0.0


def test_mi_of_the_representations_against_samples():
    m = random_model(3, 2, random_state=5)
    _, x2, y, t = m.sample(200_000, random_state=6)
    h2 = x2 @ m.beta_y
    rho_th = np.corrcoef(t, h2)[0, 1]
    rho_hy = np.corrcoef(h2, y)[0, 1]
    assert m.rho_teacher_student() == pytest.approx(rho_th, abs=0.01)
    assert m.rho_student_label() == pytest.approx(abs(rho_hy), abs=0.01)
    assert m.mi_teacher_student() == pytest.approx(scalar_gaussian_mi(rho_th), abs=0.01)
    assert m.mi_student_label() == pytest.approx(scalar_gaussian_mi(rho_hy), abs=0.01)
    assert m.cch_holds() == (m.mi_teacher_student() > m.mi_student_label())


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.05, 3.0), d1=st.integers(1, 4), d2=st.integers(1, 4))
def test_cch_is_sufficient_for_an_aligned_teacher_on_the_label_scale(seed, scale, d1, d2):
    m = random_model(d1, d2, random_state=seed, teacher_scale=scale)
    if m.cch_sufficient_conditions() and m.cch_holds():
        assert m.kd_helps()


def test_cch_is_not_necessary_an_independent_teacher_helps():
    # X1 independent of (X2, Y): T carries nothing, the CCH fails, a small KD weight still helps
    # (it shrinks the noisy target).
    rng = np.random.default_rng(7)
    a = np.zeros((4, 4))
    a[0, 0] = 1.0  # X1
    a[1:3, 1:3] = rng.standard_normal((2, 2)) + 2 * np.eye(2)  # X2
    a[3, 1:3] = [0.7, -0.4]  # Y = b^T X2 + e
    a[3, 3] = 1.0
    m = LinearKD(linear_model_cov(a), 1, 2, teacher=[1.0])  # (the least-squares teacher would be 0)
    assert m.rho_teacher_student() == pytest.approx(0.0, abs=1e-12)
    assert not m.cch_holds() and m.kd_helps()


def test_cch_is_not_sufficient_for_a_teacher_on_a_larger_scale():
    # X1 = Y + delta H2 (+ a little noise), teacher T = alpha X1 with alpha = 3: T correlates with H2
    # more than Y does (the CCH holds), yet Cov(Y, T | X2) = alpha Var(Y | X2) > Var(Y | X2): KD hurts.
    b, delta, alpha = np.array([0.8, 0.5]), 1.0, 3.0
    # latent z = (x2_1, x2_2, e, eps); rows: X1, X2_1, X2_2, Y
    y_row = np.array([b[0], b[1], 1.0, 0.0])
    x1_row = y_row + delta * np.array([b[0], b[1], 0.0, 0.0]) + np.array([0, 0, 0, 0.01])
    a = np.vstack([x1_row, [1, 0, 0, 0], [0, 1, 0, 0], y_row])
    cov = linear_model_cov(a)
    m = LinearKD(cov, 1, 2, teacher=[alpha])
    assert m.cch_holds() and not m.kd_helps()
    assert m.moments.var_t > m.moments.var_y and not m.cch_sufficient_conditions()
    # The same teacher on the label's scale satisfies the conditions, and then KD helps.
    scaled = LinearKD(cov, 1, 2, teacher=[np.sqrt(cov[3, 3] / cov[0, 0])])
    assert scaled.cch_sufficient_conditions() and scaled.cch_holds() and scaled.kd_helps()


def test_validation():
    m = random_model(2, 3, random_state=0)
    with pytest.raises(ValueError, match="n \\(rows"):
        m.expected_risk(0.5, 4)  # n must exceed d2 + 1
    with pytest.raises(ValueError, match="lam"):
        m.expected_risk(-1.0, 20)
    with pytest.raises(ValueError, match="shape"):
        LinearKD(np.eye(5), 2, 3)
    with pytest.raises(ValueError, match="positive definite"):
        LinearKD(-np.eye(6), 2, 3)
    with pytest.raises(ValueError, match="teacher must be 2"):
        LinearKD(np.eye(6), 2, 3, teacher=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="w must have 3"):
        m.risk([1.0, 2.0])
