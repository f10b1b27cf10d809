"""Neural estimators: every bound against a hand-computed value and gradcheck; the row-statistics
form against the score-matrix form; the fused Triton kernels (TRITON_INTERPRET=1 on the CPU)
against the torch reference; estimates on Gaussians with known MI; errors."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():  # before triton is imported: its kernels then run on the CPU
    os.environ.setdefault("TRITON_INTERPRET", "1")

import cchmi  # noqa: E402
from cchmi.data import correlated_gaussian  # noqa: E402
from cchmi.neural import bounds as B  # noqa: E402
from cchmi.neural.rowstats import bound_from_stats, row_stats, row_stats_reference  # noqa: E402

# Tolerances (reasons):
FP32_STATS = 2e-5  # fp32 tiles accumulated in another order than torch's matmul + logsumexp
FP64 = 1e-12  # the same formulas in float64
GAUSS_BAND = (1.45, 2.2)  # truth 2 nats, 10+10 dims, n=6000: the bounds sit 0.1-0.4 below the truth

S = torch.tensor([[2.0, 0.0], [1.0, 3.0]], dtype=torch.float64)
E = math.e


def sp(v):
    return math.log1p(math.exp(v))


HAND = {
    "infonce": ((2 - math.log(E**2 + 1)) + (3 - math.log(E + E**3))) / 2 + math.log(2),
    "nwj": 2.5 - (math.exp(-1) + 1) / 2,
    "mine": 2.5 - math.log((1 + E) / 2),
    "smile": 2.5 - math.log((1 + math.exp(0.5)) / 2),  # tau = 0.5 clips the off-diagonal 1.0
    "js": 3.5 - (1 + E) / 2,  # NWJ of f + 1
}


@pytest.mark.parametrize("name", B.BOUNDS)
def test_bounds_against_hand_computed_values(name):
    assert float(B.estimate(name, S, tau=0.5)) == pytest.approx(HAND[name], abs=FP64)


def test_js_objective_by_hand():
    expected = -(sp(-2) + sp(-3)) / 2 - (sp(0) + sp(1)) / 2
    assert float(B.js(S)) == pytest.approx(expected, abs=FP64)
    assert float(B.training_objective("js", S, tau=5.0, state={})) == pytest.approx(expected, abs=FP64)


def test_infonce_ceiling():
    perfect = torch.eye(64, dtype=torch.float64) * 1e3
    assert float(B.infonce(perfect)) == pytest.approx(math.log(64), abs=1e-9)
    assert float(B.infonce(torch.randn(64, 64, dtype=torch.float64) * 10)) <= math.log(64)


@pytest.mark.parametrize("fn", [B.infonce, B.nwj, B.dv, B.js, B.js_estimate], ids=lambda f: f.__name__)
def test_gradcheck(fn):
    scores = torch.randn(5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (scores,))


def test_smile_has_the_clipped_dv_value_and_the_js_gradient():
    scores = torch.randn(6, 6, dtype=torch.float64) * 3
    s1, s2 = scores.clone().requires_grad_(True), scores.clone().requires_grad_(True)
    value = B.smile(s1, tau=1.0)
    clipped = scores.clone()
    off = ~torch.eye(6, dtype=torch.bool)
    clipped[off] = clipped[off].clamp(-1.0, 1.0)
    expected = scores.diagonal().mean() - (torch.logsumexp(clipped[off], 0) - math.log(30))
    assert value.item() == pytest.approx(float(expected), abs=FP64)
    value.backward()
    B.js(s2).backward()
    assert torch.allclose(s1.grad, s2.grad)


def test_mine_surrogate_gradient_uses_the_moving_average():
    state: dict = {}
    scores = torch.randn(6, 6, dtype=torch.float64)
    B.mine_surrogate(scores, state)
    state["ma"] = state["ma"] * 4  # as if earlier batches had larger partition terms
    s = scores.clone().requires_grad_(True)
    value = B.mine_surrogate(s, state, alpha=0.0)
    value.backward()
    off = ~torch.eye(6, dtype=torch.bool)
    expected = torch.where(off, -torch.exp(scores) / (30 * state["ma"]), torch.eye(6, dtype=torch.float64) / 6)
    assert torch.allclose(s.grad, expected)
    assert value.item() == pytest.approx(float(B.dv(scores)), abs=FP64)


@pytest.mark.parametrize("name", B.BOUNDS)
@pytest.mark.parametrize("objective", [False, True])
def test_row_statistics_form_equals_the_score_form(name, objective):
    a = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    tau = 1.0
    by_scores = (B.training_objective(name, a @ b.T, tau=tau, state={}) if objective
                 else B.estimate(name, a @ b.T, tau=tau))
    by_stats = bound_from_stats(name, a, b, tau=tau, state={}, objective=objective)
    assert by_stats.item() == pytest.approx(by_scores.item(), abs=1e-10)
    g1 = torch.autograd.grad(by_scores, (a, b))
    g2 = torch.autograd.grad(by_stats, (a, b))
    for x, y in zip(g1, g2):
        assert torch.allclose(x, y, atol=1e-10)


# -- fused kernels (Triton) -----------------------------------------------------------------------

triton = pytest.importorskip("triton")


@pytest.mark.parametrize("n,d,tau", [(2, 3, math.inf), (37, 5, math.inf), (70, 20, 1.5), (33, 40, 0.5)])
def test_fused_row_stats_match_the_reference(n, d, tau):
    gen = torch.Generator().manual_seed(n * 100 + d)
    a = (torch.randn(n, d, generator=gen) * 0.7).requires_grad_(True)
    b = (torch.randn(n, d, generator=gen) * 0.7).requires_grad_(True)
    fused = row_stats(a, b, tau, fused=True)
    ref = row_stats_reference(a, b, tau)
    for f, r in zip(fused, ref):
        assert torch.allclose(f, r, atol=FP32_STATS, rtol=FP32_STATS)
    weights = [torch.randn(n, generator=gen) for _ in range(3)]
    g_fused = torch.autograd.grad(sum((f * w).sum() for f, w in zip(fused, weights)), (a, b))
    g_ref = torch.autograd.grad(sum((r * w).sum() for r, w in zip(ref, weights)), (a, b))
    for f, r in zip(g_fused, g_ref):
        assert torch.allclose(f, r, atol=10 * FP32_STATS, rtol=10 * FP32_STATS)


def test_fused_handles_ties_and_large_scores():
    a = torch.ones(20, 4) * 3.0  # every score equal (ties) and large: the log-sum-exps must not overflow
    b = torch.ones(20, 4) * 3.0
    for f, r in zip(row_stats(a, b, math.inf, fused=True), row_stats_reference(a, b, math.inf)):
        assert torch.isfinite(f).all() and torch.allclose(f, r, rtol=1e-6)


def test_fused_bf16_error_is_at_most_twice_torch_bf16():
    gen = torch.Generator().manual_seed(3)
    a32, b32 = torch.randn(48, 16, generator=gen), torch.randn(48, 16, generator=gen)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    exact = row_stats_reference(a16.double(), b16.double())  # the truth for the bf16 inputs
    fused = row_stats(a16, b16, math.inf, fused=True)
    s16 = (a16 @ b16.T).float()  # what torch does in bf16: scores rounded to bf16
    eye = torch.eye(48, dtype=torch.bool)
    torch_bf16 = (torch.logsumexp(s16, 1), torch.logsumexp(s16.masked_fill(eye, -math.inf), 1),
                  torch.nn.functional.softplus(s16).masked_fill(eye, 0).sum(1))
    for f, t, x in zip(fused, torch_bf16, exact):
        assert (f.double() - x).abs().max() <= 2 * (t.double() - x).abs().max() + 1e-6
    a, b = a16.clone().requires_grad_(True), b16.clone().requires_grad_(True)
    ga, gb = torch.autograd.grad(row_stats(a, b, math.inf, fused=True)[0].sum(), (a, b))
    assert ga.dtype == torch.bfloat16 and gb.dtype == torch.bfloat16


@pytest.mark.parametrize("name", B.BOUNDS)
def test_fused_bounds_equal_the_torch_bounds(name):
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(40, 8, generator=gen) * 0.5, torch.randn(40, 8, generator=gen) * 0.5
    fused = bound_from_stats(name, a, b, tau=1.0, fused=True, state={})
    ref = bound_from_stats(name, a, b, tau=1.0, fused=False, state={})
    assert fused.item() == pytest.approx(ref.item(), abs=1e-5)


def test_fused_dimension_limit_is_checked_at_the_boundary():
    from cchmi._triton.rowstats import MAX_DIM

    a, b = torch.randn(20, MAX_DIM) * 0.1, torch.randn(20, MAX_DIM) * 0.1
    for f, r in zip(row_stats(a, b, math.inf, fused=True), row_stats_reference(a, b)):
        assert torch.allclose(f, r, atol=FP32_STATS)
    with pytest.raises(ValueError, match=f"embedding dims up to {MAX_DIM}, got {MAX_DIM + 1}"):
        row_stats(torch.randn(20, MAX_DIM + 1), torch.randn(20, MAX_DIM + 1), fused=True)


def test_fused_refuses_other_dtypes():
    with pytest.raises(TypeError, match="float32 or bfloat16"):
        row_stats(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64), fused=True)


# -- estimators -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gauss():
    return correlated_gaussian(6000, 10, 10, mi=2.0, random_state=0)


@pytest.mark.slow
@pytest.mark.parametrize("bound", ["smile", "infonce"])
def test_neural_mi_on_gaussians(gauss, bound):
    r = cchmi.neural_mi(gauss.x, gauss.y, bound=bound, epochs=40, patience=8)
    assert GAUSS_BAND[0] < r.estimate < GAUSS_BAND[1], r
    assert r.estimator == f"{bound}/separable" and r.backend == "torch-cpu" and r.n == 1200
    assert r.n_subsamples == 4 and r.ci_low < r.estimate < r.ci_high


def test_neural_mi_is_reproducible_and_the_class_agrees(gauss):
    kwargs = dict(bound="nwj", epochs=3, batch_size=128)
    a = cchmi.neural_mi(gauss.x[:2000], gauss.y[:2000], **kwargs)
    b = cchmi.neural_mi(gauss.x[:2000], gauss.y[:2000], **kwargs)
    assert a.estimate == b.estimate
    est = cchmi.NeuralMI(**kwargs).fit(gauss.x[:2000], gauss.y[:2000])
    assert est.mi_ == a.estimate and len(est.history_) == 3 and est.result_.stderr == a.stderr


@pytest.mark.slow
def test_infonce_respects_log_batch(gauss):
    strong = correlated_gaussian(3000, 4, 4, mi=6.0, random_state=1)
    r = cchmi.neural_mi(strong.x, strong.y, bound="infonce", batch_size=32, epochs=15, patience=5)
    assert r.estimate <= math.log(32) + 1e-9


@pytest.mark.parametrize("critic", ["bilinear", "joint"])
def test_other_critics_run(gauss, critic):
    r = cchmi.neural_mi(gauss.x[:1500], gauss.y[:1500], critic=critic, bound="mine", epochs=2, batch_size=64,
                        hidden=32)
    assert math.isfinite(r.estimate) and r.estimator == f"mine/{critic}"


@pytest.mark.slow
def test_neural_mi_fused_path_runs_under_the_interpreter(gauss):
    # 120 test rows make one test batch: no interval (confidence=None, else a warning says so).
    kwargs = dict(bound="infonce", epochs=1, batch_size=64, hidden=16, embed_dim=16, confidence=None)
    r = cchmi.neural_mi(gauss.x[:600], gauss.y[:600], fused=True, **kwargs)
    ref = cchmi.neural_mi(gauss.x[:600], gauss.y[:600], fused=False, **kwargs)
    assert r.backend == "triton" and r.estimate == pytest.approx(ref.estimate, abs=1e-3)


@pytest.mark.slow
def test_latent_mi_recovers_a_low_dimensional_dependence():
    # 2+2 latent Gaussian (1 nat) embedded linearly in 30 dims per side with small noise (which lowers
    # the MI a little): the learned 2-d embeddings keep it.
    s = correlated_gaussian(4000, 2, 2, mi=1.0, random_state=2)
    rng = np.random.default_rng(3)
    x = s.x @ rng.standard_normal((2, 30)) + 0.05 * rng.standard_normal((4000, 30))
    y = s.y @ rng.standard_normal((2, 30)) + 0.05 * rng.standard_normal((4000, 30))
    r = cchmi.latent_mi(x, y, embed_dim=2, epochs=60)
    assert 0.75 < r.estimate < 1.1, r
    assert r.estimator == "latent-ksg1" and r.ci_low < r.estimate


@pytest.mark.slow
def test_latent_mi_with_labels():
    c = cchmi.data.gaussian_classes(2000, 3, separation=1.5, dim=6, random_state=0)
    r = cchmi.latent_mi(c.x, c.y, labels=True, epochs=40)
    assert abs(r.estimate - c.mi) < 0.1 and r.estimator == "latent-ross"


def test_latent_mi_that_never_gives_a_finite_validation_loss_says_so():
    # lr=1e10 blows the weights up in the first pass; the early stopping had no weights to restore
    # and failed with a TypeError from load_state_dict(None).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 3))
    with pytest.raises(FloatingPointError, match="the validation loss was not finite at any evaluation: lower lr"):
        cchmi.latent_mi(x, x + rng.standard_normal((300, 3)), lr=1e10, epochs=5)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(bound="dv"), ValueError, "bound must be one of"),
    (dict(critic="deep"), ValueError, "critic must be one of"),
    (dict(critic="joint", fused=True), ValueError, "separable critic"),
    (dict(batch_size=500), ValueError, "batch_size=500 is above the smallest split"),
    (dict(val_fraction=0.6, test_fraction=0.4), ValueError, "at least 10%"),
    (dict(tau=0.0), ValueError, "tau must be"),
    (dict(random_state=None), TypeError, "random_state must be an integer"),
])
def test_neural_errors(kwargs, error, message):
    s = correlated_gaussian(1000, 2, 2, mi=0.5, random_state=0)
    with pytest.raises(error, match=message):
        cchmi.neural_mi(s.x, s.y, **kwargs)


def test_neural_input_errors():
    x = np.random.default_rng(0).standard_normal((100, 2))
    bad = x.copy()
    bad[5, 0] = np.inf
    with pytest.raises(ValueError, match="y contains NaN or infinite"):
        cchmi.neural_mi(x, bad)
    with pytest.raises(ValueError, match="y has 50 rows|same number of samples"):
        cchmi.neural_mi(x, x[:50])
    with pytest.raises(ValueError, match="batch_size=256"):
        cchmi.neural_mi(x, x)  # 100 rows cannot fill a batch of 256
    with pytest.raises(ValueError, match="batch_size=128 is above the 50 training rows"):
        cchmi.latent_mi(x, x)
