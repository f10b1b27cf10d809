"""cchmi.distill.report.endpoints and the statistics under it, on cases with known answers: the
two-stage cluster bootstrap against the pair-level variance (and a naive bootstrap that misses it),
Holm's textbook numbers, teacher-selection regret on a hand-made table (ties: the random pick's
regret), a slope recovered from synthetic data, the sign of an AUROC difference, the power line and
the checker's errors. Small bootstrap counts: each test runs in well under a second."""

import math

import numpy as np
import pytest

from cchmi.distill.report import format_endpoints
from cchmi.distill.report.endpoints import DEFAULTS, check_endpoints, compute_endpoints
from cchmi.distill.report.stats import (
    auroc,
    bootstrap_p,
    cluster_bootstrap,
    cluster_weights,
    holm,
    percentile_interval,
    t_quantile,
    weighted_auroc,
    within_slope,
)

AXES = ["p", "data.nuisance", "budget.student_labels_per_class"]


def _run(teacher, student, seed, gain_points, predictors, point=None, dataset="toy"):
    """A run summary with the fields the endpoints read (gain as a fraction, as summaries hold it)."""
    return {"dataset": dataset, "teacher_view": teacher, "student_view": student, "pairing": "aligned",
            "seed": seed, "gain": gain_points / 100, "job": {"point": point or {}},
            "predictors": {name: {"value": value, "ci_low": None, "ci_high": None}
                           for name, value in predictors.items()}}


def _endpoints(**kw):
    return check_endpoints({"bootstrap": 200, **kw}, AXES)


# -- the cluster bootstrap ---------------------------------------------------------------------------

def _pair_effect_rows(pairs=8, seeds=10, pair_sd=1.0, seed_sd=0.1):
    rng = np.random.default_rng(3)
    effect = rng.normal(scale=pair_sd, size=pairs)
    y = np.repeat(effect, seeds) + rng.normal(scale=seed_sd, size=pairs * seeds)
    return y, np.repeat(np.arange(pairs), seeds), np.tile(np.arange(seeds), pairs), effect


def _mean(y):
    return lambda w: (w * y).sum(axis=1) / w.sum(axis=1)


def test_cluster_bootstrap_reflects_the_pair_level_variance_and_an_iid_bootstrap_does_not():
    y, pair, seed, effect = _pair_effect_rows()
    draws = cluster_bootstrap(_mean(y), pair, seed, n_boot=2000, seed=1)[:, 0]
    # The grand mean's s.e. is that of the 8 pair means: the bootstrap's is its plug-in, sd * sqrt((K-1)/K) / sqrt(K).
    means = y.reshape(8, 10).mean(axis=1)
    expected = means.std(ddof=0) / math.sqrt(8)
    assert draws.std() == pytest.approx(expected, rel=0.15)
    naive = cluster_bootstrap(_mean(y), np.arange(y.size), np.zeros(y.size), n_boot=2000, seed=1)[:, 0]
    low, high = percentile_interval(draws)
    naive_low, naive_high = percentile_interval(naive)
    assert naive_high - naive_low < 0.5 * (high - low)  # rows treated as independent: far too narrow
    assert low < means.mean() < high


def test_cluster_weights_draw_seeds_once_per_shared_group():
    # Pairs (a, x) and (b, x) share student x: at every replicate both hold the same seeds, equally often.
    clusters = [("a", "x")] * 4 + [("b", "x")] * 4 + [("a", "y")] * 4
    units = [0, 1, 2, 3] * 3
    shared = [c[1] for c in clusters]
    w = np.concatenate(list(cluster_weights(clusters, units, shared, n_boot=300, seed=0)))
    assert w.shape == (300, 12)
    seeds_ax, seeds_bx = w[:, :4], w[:, 4:8]
    both = (seeds_ax.sum(axis=1) > 0) & (seeds_bx.sum(axis=1) > 0)
    ratio = seeds_ax[both].sum(axis=1) / seeds_bx[both].sum(axis=1)
    np.testing.assert_allclose(seeds_ax[both], seeds_bx[both] * ratio[:, None])  # the cluster counts differ only
    with pytest.raises(ValueError, match="shared must be constant within each cluster"):
        next(cluster_weights(clusters, units, ["x"] * 11 + ["y"]))


def test_cluster_bootstrap_is_seeded_and_textbook_two_stage_without_shared():
    y, pair, seed, _ = _pair_effect_rows(pairs=5, seeds=4)
    one = cluster_bootstrap(_mean(y), pair, seed, n_boot=300, seed=7)
    assert np.array_equal(one, cluster_bootstrap(_mean(y), pair, seed, n_boot=300, seed=7))
    w = np.concatenate(list(cluster_weights(pair, seed, n_boot=300, seed=7)))
    # Each drawn copy of a pair draws 4 seeds: a replicate holds 4 rows per drawn pair, 20 in all.
    np.testing.assert_array_equal(w.sum(axis=1), 20)


def test_bootstrap_p_and_percentile_interval():
    assert bootstrap_p(np.full(99, 1.0)) == pytest.approx(2 / 100)
    assert bootstrap_p(np.r_[np.full(50, -1.0), np.full(50, 1.0)]) == 1.0
    assert math.isnan(bootstrap_p(np.array([math.nan])))
    assert percentile_interval(np.r_[np.arange(101.0), math.nan], 0.1) == (5.0, 95.0)


# -- Holm, t quantiles, weighted AUROC and slope -----------------------------------------------------

def test_holm_textbook():
    # m = 4: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 -> 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    out = holm([0.01, math.nan, 0.02])  # nan: no test, not counted in m
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_t_quantile_is_scipys():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 9, 19, 49):
        for q in (0.8, 0.975, 0.995):
            assert t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-8)
    assert t_quantile(0.975, 0) == math.inf


def test_weighted_auroc_is_auroc_of_the_repeated_rows():
    rng = np.random.default_rng(0)
    s, y = rng.integers(0, 5, 40).astype(float), rng.random(40) < 0.5  # ties on purpose
    w = rng.integers(0, 3, (3, 40))
    for row in w:
        assert weighted_auroc(s, y, row)[0] == pytest.approx(auroc(np.repeat(s, row), np.repeat(y, row))[0])
    assert math.isnan(weighted_auroc(s, y, w[0] * ~y)[0])  # no positive weight


def test_within_slope_removes_group_levels():
    x = np.tile([0.0, 0.5, 1.0], 4)
    groups = np.repeat(np.arange(4), 3)
    y = 100 * groups + 2.0 * x  # levels far apart: a pooled slope would be dominated by them if x differed
    assert within_slope(x, y, groups, np.ones(12))[0] == pytest.approx(2.0)
    assert math.isnan(within_slope(np.zeros(12), y, groups, np.ones(12))[0])


# -- the endpoints -----------------------------------------------------------------------------------

# Gains in points of teachers a, b, c for student x at seeds 0 and 1 (means 2, 0, 3; best c).
GAINS = {"a": (1.0, 3.0), "b": (0.0, 0.0), "c": (4.0, 2.0)}


def _selection_runs(predictor):
    """Runs of the hand-made selection problem, `predictor[teacher][seed]` as "cch_gap_logits"."""
    teacher_acc = {"a": 0.9, "b": 0.8, "c": 0.7}  # picks a at every seed: regret 3 - 2 = 1
    return [_run(t, "x", s, GAINS[t][s], {"cch_gap_logits": predictor[t][s], "teacher_acc": teacher_acc[t]})
            for t in GAINS for s in (0, 1)]


def test_selection_regret_on_a_hand_made_table():
    # Seed 0 picks b (mean 0), seed 1 picks c (mean 3): regret 3 - (0 + 3) / 2 = 1.5.
    runs = _selection_runs({"a": (0, 0), "b": (1, 0), "c": (0, 1)})
    out = compute_endpoints(runs, _endpoints(auroc=False))["selection"]
    gap, acc = out["cch_gap_logits"], out["teacher_acc"]
    assert gap["regret"] == pytest.approx(1.5) and acc["regret"] == pytest.approx(1.0)
    assert gap["random"] == pytest.approx(3 - 5 / 3)  # the teachers' average mean gain is 5/3
    assert gap["oracle"] == pytest.approx(0.5)  # seed 0's best gain is c (3), seed 1's a (2)
    assert gap["minus_comparator"] == pytest.approx(0.5) and gap["problems"] == 1
    assert gap["regret_ci_low"] <= gap["regret"] <= gap["regret_ci_high"]
    assert math.isnan(acc["minus_comparator"]) and math.isnan(acc["p_holm"])


def test_selection_ties_average_and_a_constant_predictor_scores_the_random_regret():
    tied = compute_endpoints(_selection_runs({"a": (1, 0), "b": (0, 1), "c": (1, 0)}), _endpoints(auroc=False))
    # Seed 0: a and c tie (means 2 and 3: 2.5); seed 1 picks b (0): regret 3 - 1.25.
    assert tied["selection"]["cch_gap_logits"]["regret"] == pytest.approx(1.75)
    constant = compute_endpoints(_selection_runs({t: (0.3, 0.3) for t in GAINS}), _endpoints(auroc=False))
    entry = constant["selection"]["cch_gap_logits"]
    assert entry["regret"] == pytest.approx(entry["random"]) and entry["minus_random"] == pytest.approx(0)


def test_selection_problems_are_per_student_view_and_setting():
    runs = _selection_runs({"a": (0, 0), "b": (1, 0), "c": (0, 1)})
    runs += [_run(t, "y", s, 1.0, {"cch_gap_logits": 0.0, "teacher_acc": 0.5}) for t in "ab" for s in (0, 1)]
    out = compute_endpoints(runs, _endpoints(auroc=False))["selection"]["cch_gap_logits"]
    assert out["problems"] == 2 and out["regret"] == pytest.approx((1.5 + 0) / 2)  # y's teachers gain alike


def test_dose_response_recovers_the_slope_and_its_sign():
    rng = np.random.default_rng(5)
    runs = []
    for student in "xy":
        for teacher in "abc":
            level = rng.normal(scale=3)
            for seed in range(6):
                for p in (0.0, 0.5, 1.0):
                    gain = level - 2.0 * p + rng.normal(scale=0.2)
                    runs.append(_run(teacher, student, seed, gain, {"cch_gap_logits": level - p, "teacher_acc": 0.9},
                                     {"p": p}))
    out = compute_endpoints(runs, _endpoints(dose=["p"], selection=False, auroc=False))["dose_response"]
    gain = out["gain"]["p"]
    assert gain["slope"] == pytest.approx(-2.0, abs=0.1)
    assert gain["slope_ci_low"] < -2.0 < gain["slope_ci_high"] and gain["slope_ci_high"] < 0
    assert gain["p_holm"] < 0.05 and gain["runs"] == 108
    assert out["cch_gap_logits"]["p"]["slope"] == pytest.approx(-1.0)
    assert out["teacher_acc"]["p"]["slope"] == pytest.approx(0, abs=1e-12)  # the same at every p


def test_auroc_difference_has_the_right_sign_and_holm():
    rng = np.random.default_rng(2)
    runs = []
    for student in "xyz":
        for teacher in "abcd":
            for seed in range(5):
                gain = rng.normal()
                runs.append(_run(teacher, student, seed, gain, {"cch_gap_logits": gain + rng.normal(scale=0.1),
                                                                  "teacher_acc": rng.random(), "random": rng.random()},
                                 {"budget.student_labels_per_class": 10 * (seed % 2 + 1)}))
    out = compute_endpoints(runs, _endpoints(selection=False), regime="budget.student_labels_per_class")["auroc"]
    gap = out["cch_gap_logits"]
    assert gap["auroc"] > 0.95 and gap["minus_comparator"] > 0.2 and gap["minus_comparator_ci_low"] > 0
    assert gap["p_holm"] < 0.05 and gap["p_holm"] >= gap["p_value"]
    assert out["random"]["minus_comparator_ci_low"] < 0 < out["random"]["minus_comparator_ci_high"]
    assert set(gap["regimes"]) == {"10", "20"} and gap["regimes"]["10"]["runs"] == 36


def test_power_gives_the_minimal_detectable_effect():
    gains = [1.0, 2.0, 3.0, 4.0, 5.0]  # mean 3, s.d. sqrt(2.5)
    runs = [_run("a", "x", s, g, {"teacher_acc": 0.9}) for s, g in enumerate(gains)]
    power = compute_endpoints(runs, _endpoints(selection=False, auroc=False))["power"]
    config = power["configurations"][0]
    mde = (t_quantile(0.975, 4) + t_quantile(0.8, 4)) * math.sqrt(2.5) / math.sqrt(5)
    assert config["seeds"] == 5 and config["gain"] == pytest.approx(3.0) and config["mde"] == pytest.approx(mde)
    assert config["detectable"] and power["summary"]["detectable"] == 1


def test_compute_endpoints_scores_present_predictors_and_the_comparator():
    runs = _selection_runs({"a": (0, 0), "b": (1, 0), "c": (0, 1)})
    for r in runs:
        r["predictors"]["cch_gap_logits@gaussian"] = {"value": 0.1}
        r["predictors"]["apriori_i_ts_given_y"] = {"value": 0.2}  # a component, no predictor
    out = compute_endpoints(runs, _endpoints(auroc=False))
    assert out["settings"]["predictors"] == ["cch_gap_logits", "teacher_acc", "cch_gap_logits@gaussian"]
    chosen = compute_endpoints(runs, _endpoints(auroc=False, predictors=["cch_gap_logits"]))
    assert list(chosen["selection"]) == ["cch_gap_logits", "teacher_acc"]


# -- the checker -------------------------------------------------------------------------------------

def test_check_endpoints_fills_the_defaults():
    assert check_endpoints(None, []) == DEFAULTS
    out = check_endpoints({"dose": ["p", "p"], "predictors": ["cch_gap_logits@ksg", "random"]}, AXES)
    assert out["dose"] == ["p"] and out["predictors"] == ["cch_gap_logits@ksg", "random"]


@pytest.mark.parametrize("table, message", [
    ([], r"endpoints must be a table, got \[\]"),
    ({"bootstraps": 10}, "endpoints.bootstraps is no endpoint setting"),
    ({"dose": ["temperature"]}, "endpoints.dose: 'temperature' is not a sweep axis"),
    ({"dose": "p"}, "endpoints.dose must be a list of sweep axes, got 'p'"),
    ({"predictors": ["cch_gap"]}, "endpoints.predictors: 'cch_gap' is no predictor"),
    ({"predictors": []}, "endpoints.predictors must be a non-empty list"),
    ({"primary": "gap"}, "endpoints.primary must name a predictor .* got 'gap'"),
    ({"comparator": "cch_gap_logits@"}, "endpoints.comparator must name a predictor"),
    ({"selection": 1}, "endpoints.selection must be true or false, got 1"),
    ({"bootstrap": 10}, "endpoints.bootstrap must be an int >= 100, got 10"),
    ({"seed": -1}, "endpoints.seed must be an int >= 0, got -1"),
    ({"alpha": 1.0}, r"endpoints.alpha must be a number in \(0, 1\), got 1.0"),
])
def test_check_endpoints_names_the_key_and_the_value(table, message):
    with pytest.raises(ValueError, match=message):
        check_endpoints(table, AXES)


def test_runs_without_predictors_give_undefined_endpoints_and_no_warning():
    runs = [_run(t, "x", s, 1.0 + s, {}, {"p": p}) for t in "ab" for s in range(3) for p in (0.0, 1.0)]
    for run in runs:
        del run["predictors"]  # older summaries
    out = compute_endpoints(runs, _endpoints(dose=["p"]))
    assert out["settings"]["predictors"] == ["teacher_acc"]
    assert out["selection"]["teacher_acc"]["problems"] == 0 and math.isnan(out["selection"]["teacher_acc"]["regret"])
    assert math.isnan(out["auroc"]["teacher_acc"]["auroc"])
    assert math.isnan(out["dose_response"]["teacher_acc"]["p"]["slope"])
    assert out["dose_response"]["gain"]["p"]["slope"] == pytest.approx(0)
    assert out["power"]["summary"]["configurations"] == 4
    text = format_endpoints(out)
    assert "nan" not in text and "Along p the gain shows no detectable trend" in text
