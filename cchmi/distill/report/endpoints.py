"""The pre-registered endpoints of a KD sweep (its config's ``[endpoints]`` table, fixed before the
runs), with intervals that respect what runs share.

- ``selection``: teacher-selection regret. A selection problem is one student view at one setting
  (dataset, pairing, sweep point) with its teachers; for each seed, the teacher with the largest
  predictor value is picked (a tie: the average over the tied teachers, so a predictor constant
  across teachers scores exactly the random pick's regret). The regret of a problem is the best
  teacher's mean gain over seeds minus the mean over seeds of the picked teacher's mean gain; the
  endpoint is its mean over problems, in accuracy points. Next to it: the random pick's expected
  regret (the best mean gain minus the teachers' average) and the seed oracle's (the teacher with
  the largest test gain at that seed: what even a perfect predictor of one seed's gain loses to seed
  noise). Seeds missing for a teacher or a predictor leave that seed out of the problem.
- ``dose_response``: the OLS slope, per unit of each dose axis, of the gain (points; entry
  "gain") and of each predictor, with a level per everything else (teacher and student view,
  other settings, seed): a within slope, over the runs whose value of the axis is a number. The
  CCH predicts that the gain moves with the gap (up with a shared nuisance that raises it).
- ``auroc``: the AUROC of each run's predictor value for "gain > 0", over every run with both
  (pooled, and per value of the report's regime axis), and its difference from the comparator's.
- ``power``: per configuration (everything but the seed) the mean gain, its s.d. over seeds, the
  seeds, and the minimal detectable effect of a two-sided paired t-test at level alpha with 80%
  power, (t(1 - alpha/2) + t(0.8)) s.d. / sqrt(n), both at n - 1 degrees of freedom.

Intervals are percentile intervals of a cluster bootstrap (:func:`~.stats.cluster_weights`): the
(teacher view, student view) pairs are resampled, then seeds, the seeds drawn once per student
view (and dataset) for every pair of it, because runs of one student view and seed share their
baseline student (and so every student-only predictor) whatever the teacher. Selection problems
compare the teachers of one student view, so their bootstrap resamples only seeds, again once per
student view for all of its problems. p-values are two-sided bootstrap p-values of a paired
difference (:func:`~.stats.bootstrap_p`: a predictor against the comparator, or a slope against 0),
Holm-adjusted (:func:`~.stats.holm`) across the predictors of an endpoint (of a dose axis; the
gain's slopes across the dose axes).
"""

from __future__ import annotations

import json
import math

import numpy as np

from cchmi.distill.report.aggregate import config_label, number, regime_value
from cchmi.distill.report.stats import (
    bootstrap_p,
    cluster_bootstrap,
    holm,
    percentile_interval,
    t_quantile,
    weighted_auroc,
    within_slope,
)
from cchmi.distill.summary import PREDICTORS, SENSITIVITY_PREFIX

DEFAULTS = {"primary": "cch_gap_logits", "predictors": None, "comparator": "teacher_acc", "selection": True,
            "dose": [], "auroc": True, "bootstrap": 2000, "seed": 0, "alpha": 0.05}
MIN_BOOTSTRAP = 100
POWER = 0.8


def known_predictor(name) -> bool:
    """Whether `name` is a predictor a summary can hold: one of :data:`~cchmi.distill.summary.PREDICTORS`
    or a sensitivity entry "cch_gap_logits@<estimator>"."""
    return isinstance(name, str) and (name in PREDICTORS
                                      or (name.startswith(SENSITIVITY_PREFIX) and len(name) > len(SENSITIVITY_PREFIX)))


def check_endpoints(table: dict | None, axes: list[str]) -> dict:
    """A config's ``[endpoints]`` table checked, its defaults (:data:`DEFAULTS`) filled in; `axes`:
    the config's sweep axes (dose axes must be among them). ValueError naming ``endpoints.<key>``
    and the value at the first unknown key or wrong value."""
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ValueError(f"endpoints must be a table, got {table!r}")
    for key in table:
        if key not in DEFAULTS:
            raise ValueError(f"endpoints.{key} is no endpoint setting (settings: {', '.join(DEFAULTS)})")
    out = {**DEFAULTS, **table}
    for key in ("primary", "comparator"):
        if not known_predictor(out[key]):
            raise ValueError(f"endpoints.{key} must name a predictor ({', '.join(PREDICTORS)} or "
                             f"{SENSITIVITY_PREFIX}<estimator>), got {out[key]!r}")
    names = out["predictors"]
    if names is not None:
        if not isinstance(names, list) or not names:
            raise ValueError(f"endpoints.predictors must be a non-empty list of predictor names, got {names!r}")
        for name in names:
            if not known_predictor(name):
                raise ValueError(f"endpoints.predictors: {name!r} is no predictor ({', '.join(PREDICTORS)} "
                                 f"or {SENSITIVITY_PREFIX}<estimator>)")
        out["predictors"] = list(dict.fromkeys(names))
    for key in ("selection", "auroc"):
        if not isinstance(out[key], bool):
            raise ValueError(f"endpoints.{key} must be true or false, got {out[key]!r}")
    dose = out["dose"]
    if not isinstance(dose, list) or not all(isinstance(a, str) for a in dose):
        raise ValueError(f"endpoints.dose must be a list of sweep axes, got {dose!r}")
    for axis in dose:
        if axis not in axes:
            raise ValueError(f"endpoints.dose: {axis!r} is not a sweep axis (axes: {', '.join(axes) or 'none'})")
    out["dose"] = list(dict.fromkeys(dose))
    for key, low in (("bootstrap", MIN_BOOTSTRAP), ("seed", 0)):
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < low:
            raise ValueError(f"endpoints.{key} must be an int >= {low}, got {out[key]!r}")
    alpha = out["alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"endpoints.alpha must be a number in (0, 1), got {alpha!r}")
    return out


class _Runs:
    """The runs as arrays: gain in points, each predictor's values (nan where missing), and the
    labels the bootstrap and the endpoints group by."""

    def __init__(self, summaries: list[dict], names: list[str]):
        self.n = len(summaries)
        self.gain = np.array([100 * number(s["gain"]) for s in summaries], dtype=float)
        self.values = {name: np.array([number(s.get("predictors", {}).get(name, {}).get("value"))
                                       for s in summaries], dtype=float) for name in names}
        self.points = [s.get("job", {}).get("point", {}) for s in summaries]
        self.seed = [s["seed"] for s in summaries]
        self.teacher = [s["teacher_view"] for s in summaries]
        self.pair = [(s["dataset"], s["teacher_view"], s["student_view"]) for s in summaries]
        self.student = [(s["dataset"], s["student_view"]) for s in summaries]
        self.setting = [json.dumps([s["dataset"], s["student_view"], s["pairing"], p], sort_keys=True)
                        for s, p in zip(summaries, self.points)]
        self.pairing = [s["pairing"] for s in summaries]
        self.config = [(config_label(s), s["dataset"]) for s in summaries]


def _interval(value: float, draws: np.ndarray, alpha: float, key: str = "") -> dict:
    lo, hi = percentile_interval(draws, alpha)
    return {key or "value": value, f"{key}_ci_low" if key else "ci_low": lo, f"{key}_ci_high" if key else "ci_high": hi}


def _holm_into(entries: dict, names: list[str]) -> None:
    for name, p in zip(names, holm([entries[n]["p_value"] for n in names])):
        entries[name]["p_holm"] = p


def _selection_problems(runs: _Runs, name: str) -> list[tuple]:
    """(student group, seeds, gains, pick shares, oracle shares) per selection problem with two or
    more teachers: gains seeds x teachers; a pick row spreads 1 over the teachers of the largest
    predictor value at that seed."""
    cells: dict[str, dict] = {}
    for i in range(runs.n):
        if not (math.isnan(runs.gain[i]) or math.isnan(runs.values[name][i])):
            cells.setdefault(runs.setting[i], {}).setdefault(runs.seed[i], {})[runs.teacher[i]] = i
    problems = []
    for setting, by_seed in cells.items():
        teachers = sorted({t for row in by_seed.values() for t in row})
        seeds = [s for s in sorted(by_seed) if len(by_seed[s]) == len(teachers)]
        if len(teachers) < 2 or not seeds:
            continue
        idx = np.array([[by_seed[s][t] for t in teachers] for s in seeds])
        gains, values = runs.gain[idx], runs.values[name][idx]
        picks, oracle = (np.where(m == m.max(axis=1, keepdims=True), 1.0, 0.0) for m in (values, gains))
        problems.append((runs.student[idx[0, 0]], seeds, gains, picks / picks.sum(axis=1, keepdims=True),
                         oracle / oracle.sum(axis=1, keepdims=True)))
    return problems


def _seed_weights(problems: list[tuple], endpoints: dict) -> list[np.ndarray]:
    """Per problem: seed weights (replicates x its seeds), the first replicate all ones, the others
    drawn once per student group for all of its problems (a seed drawn that a problem lacks is left
    out of it)."""
    groups: dict = {}
    for student, seeds, *_ in problems:
        groups.setdefault(student, set()).update(seeds)
    rng = np.random.default_rng(endpoints["seed"])
    counts = {}
    for student, seeds in groups.items():
        seeds = sorted(seeds)
        k = len(seeds)
        drawn = rng.multinomial(k, np.full(k, 1 / k), size=endpoints["bootstrap"])
        counts[student] = {s: np.r_[1.0, drawn[:, j]] for j, s in enumerate(seeds)}
    return [np.stack([counts[student][s] for s in seeds], axis=1) for student, seeds, *_ in problems]


def _regrets(problems: list[tuple], weights: list[np.ndarray]) -> np.ndarray:
    """(replicates x 3): the mean over problems of the predictor's, the random pick's and the seed
    oracle's regret, each replicate weighting seeds by `weights`."""
    total_regret, counted = 0.0, 0
    for (_, _, gains, picks, oracle), w in zip(problems, weights):
        total = w.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = w @ gains / total  # each teacher's mean gain over the replicate's seeds
            best = mean.max(axis=1)
            chosen = [((w @ share) / total * mean).sum(axis=1) for share in (picks, oracle)]
        regret = np.stack([best - chosen[0], best - mean.mean(axis=1), best - chosen[1]], axis=1)
        drawn = ~np.isnan(regret)  # a replicate that drew none of the problem's seeds leaves it out
        total_regret = total_regret + np.where(drawn, regret, 0.0)
        counted = counted + drawn
    with np.errstate(invalid="ignore", divide="ignore"):
        return total_regret / np.where(counted > 0, counted, math.nan)


def _selection(runs: _Runs, names: list[str], endpoints: dict) -> dict:
    alpha, comparator, out = endpoints["alpha"], endpoints["comparator"], {}
    draws = {}
    for name in names:
        problems = _selection_problems(runs, name)
        reg = _regrets(problems, _seed_weights(problems, endpoints)) if problems else np.full((1, 3), math.nan)
        draws[name] = reg
        vs_random = reg[:, 0] - reg[:, 1]
        out[name] = {**_interval(float(reg[0, 0]), reg[1:, 0], alpha, "regret"),
                     **_interval(float(reg[0, 1]), reg[1:, 1], alpha, "random"),
                     "oracle": float(reg[0, 2]), "problems": len(problems),
                     **_interval(float(vs_random[0]), vs_random[1:], alpha, "minus_random"),
                     "p_random": bootstrap_p(vs_random[1:])}
    for name in names:  # paired with the comparator: the same seed draws (one generator seed)
        if name == comparator or comparator not in draws or draws[name].shape != draws[comparator].shape:
            out[name].update(minus_comparator=math.nan, minus_comparator_ci_low=math.nan,
                             minus_comparator_ci_high=math.nan, p_value=math.nan)
            continue
        diff = draws[name][:, 0] - draws[comparator][:, 0]
        out[name].update(_interval(float(diff[0]), diff[1:], alpha, "minus_comparator"), p_value=bootstrap_p(diff[1:]))
    _holm_into(out, names)
    for name, p in zip(names, holm([out[n]["p_random"] for n in names])):
        out[name]["p_random_holm"] = p
    return out


def _dose(runs: _Runs, names: list[str], endpoints: dict) -> dict:
    alpha, out = endpoints["alpha"], {"gain": {}, **{name: {} for name in names}}
    for axis in endpoints["dose"]:
        at = [i for i in range(runs.n) if isinstance(runs.points[i].get(axis), (int, float))
              and not isinstance(runs.points[i].get(axis), bool)]
        if not at:
            continue
        x = np.array([runs.points[i][axis] for i in at], dtype=float)
        groups = [json.dumps([runs.pair[i], runs.pairing[i], runs.seed[i],
                              {k: v for k, v in runs.points[i].items() if k != axis}], sort_keys=True) for i in at]
        ys = [runs.gain[at]] + [runs.values[name][at] for name in names]

        def statistic(w, x=x, groups=groups, ys=ys):
            return np.stack([within_slope(x, np.nan_to_num(y), groups, w * ~np.isnan(y)) for y in ys], axis=1)

        point = statistic(np.ones((1, len(at))))[0]
        draws = cluster_bootstrap(statistic, [runs.pair[i] for i in at], [runs.seed[i] for i in at],
                                  [runs.student[i] for i in at], endpoints["bootstrap"], endpoints["seed"])
        for j, name in enumerate(["gain", *names]):
            out[name][axis] = {**_interval(float(point[j]), draws[:, j], alpha, "slope"), "runs": len(at),
                               "p_value": bootstrap_p(draws[:, j]) if not math.isnan(point[j]) else math.nan}
        _holm_into({n: out[n][axis] for n in names}, names)
    _holm_into(out["gain"], list(out["gain"]))
    return out


def _auroc_group(runs: _Runs, rows: np.ndarray, names: list[str], endpoints: dict) -> dict:
    """AUROC of each predictor for gain > 0 over `rows`, and its paired difference from the comparator."""
    alpha, comparator = endpoints["alpha"], endpoints["comparator"]
    positive = runs.gain[rows] > 0
    known = ~np.isnan(runs.gain[rows])

    def statistic(w):
        return np.stack([weighted_auroc(np.nan_to_num(runs.values[n][rows]), positive,
                                        w * (known & ~np.isnan(runs.values[n][rows]))) for n in names], axis=1)

    point = statistic(np.ones((1, rows.size)))[0]
    draws = cluster_bootstrap(statistic, [runs.pair[i] for i in rows], [runs.seed[i] for i in rows],
                              [runs.student[i] for i in rows], endpoints["bootstrap"], endpoints["seed"])
    out = {}
    c = names.index(comparator) if comparator in names else None
    for j, name in enumerate(names):
        runs_with = int((known & ~np.isnan(runs.values[name][rows])).sum())
        out[name] = {**_interval(float(point[j]), draws[:, j], alpha, "auroc"), "runs": runs_with,
                     "positive": int((positive & ~np.isnan(runs.values[name][rows])).sum())}
        if c is None or j == c:
            out[name].update(minus_comparator=math.nan, minus_comparator_ci_low=math.nan,
                             minus_comparator_ci_high=math.nan, p_value=math.nan)
        else:
            diff = draws[:, j] - draws[:, c]
            out[name].update(_interval(float(point[j] - point[c]), diff, alpha, "minus_comparator"),
                             p_value=bootstrap_p(diff))
    _holm_into(out, names)
    return out


def _auroc(runs: _Runs, names: list[str], endpoints: dict, regime: str | None) -> dict:
    out = _auroc_group(runs, np.arange(runs.n), names, endpoints)
    for name in names:
        out[name]["regimes"] = {}
    if regime is not None:
        groups: dict[str, list[int]] = {}
        for i, point in enumerate(runs.points):
            config = {"point": json.dumps(point), "config": runs.config[i][0]}
            groups.setdefault(regime_value(config, regime), []).append(i)
        for value, rows in groups.items():
            for name, entry in _auroc_group(runs, np.array(rows), names, endpoints).items():
                out[name]["regimes"][value] = entry
    return out


def _power(runs: _Runs, alpha: float) -> dict:
    groups: dict[tuple, list[float]] = {}
    for config, gain in zip(runs.config, runs.gain):
        if not math.isnan(gain):
            groups.setdefault(config, []).append(float(gain))
    configs = []
    for (config, dataset), gains in groups.items():
        n, g = len(gains), np.array(gains)
        sd = float(g.std(ddof=1)) if n > 1 else math.nan
        mde = (t_quantile(1 - alpha / 2, n - 1) + t_quantile(POWER, n - 1)) * sd / math.sqrt(n) if n > 1 else math.nan
        configs.append({"config": config, "dataset": dataset, "seeds": n,
                        "gain": float(g.mean()), "gain_sd": sd, "mde": mde,
                        "detectable": bool(abs(g.mean()) >= mde) if not math.isnan(mde) else False})
    mdes = [c["mde"] for c in configs if not math.isnan(c["mde"])]
    summary = {"configurations": len(configs), "alpha": alpha, "power": POWER,
               "median_seeds": float(np.median([c["seeds"] for c in configs])) if configs else math.nan,
               "median_gain_sd": float(np.median([c["gain_sd"] for c in configs if not math.isnan(c["gain_sd"])]))
               if mdes else math.nan,
               "median_mde": float(np.median(mdes)) if mdes else math.nan,
               "detectable": sum(c["detectable"] for c in configs)}
    return {"summary": summary, "configurations": configs}


def present_predictors(summaries: list[dict]) -> list[str]:
    """The predictors the summaries hold (:func:`known_predictor` names; other entries, such as an
    estimate's components, are no predictors): those of :data:`~cchmi.distill.summary.PREDICTORS`
    in its order, then the sensitivity entries in the order they first occur."""
    seen = dict.fromkeys(name for s in summaries for name in s.get("predictors", {}) if known_predictor(name))
    return list(dict.fromkeys(n for n in (*PREDICTORS, *seen) if n in seen))


def compute_endpoints(summaries: list[dict], endpoints: dict, regime: str | None = None) -> dict:
    """The endpoints of `endpoints` (a table :func:`check_endpoints` returned) over the run summaries:
    {"selection" | "dose_response" | "auroc": {predictor: {numbers, intervals, p_value, p_holm}},
    "power": {"summary", "configurations"}, "settings": the table with the predictors scored and the regime}.
    Gains and regrets are in accuracy points; the comparator is always scored. `regime`: a sweep
    axis whose values get AUROCs of their own (under each predictor's "regimes")."""
    names = list(endpoints["predictors"] or present_predictors(summaries))
    if endpoints["comparator"] not in names:
        names.append(endpoints["comparator"])
    runs = _Runs(summaries, names)
    out: dict = {}
    if endpoints["selection"]:
        out["selection"] = _selection(runs, names, endpoints)
    if endpoints["dose"]:
        out["dose_response"] = _dose(runs, names, endpoints)
    if endpoints["auroc"]:
        out["auroc"] = _auroc(runs, names, endpoints, regime)
    out["power"] = _power(runs, endpoints["alpha"])
    out["settings"] = {**endpoints, "predictors": names, "regime": regime}
    return out
