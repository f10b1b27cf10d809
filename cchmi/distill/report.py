"""Aggregation and reporting of KD runs: does the CCH verdict predict the sign of the KD gain?

A configuration is everything but the seed. Over its seeds: mean and s.d. of the test accuracies
and of the gain (KD student minus baseline), a 95% t-interval for the mean gain, and the same for
the CCH gap. The configuration's gain is "+" or "-" when its interval excludes 0, else "0"; its
verdict is "distil" / "do not distil" when the gap's interval excludes 0, else "undecided".

Agreement is measured among configurations with a gain of definite sign: the share whose mean gap
has the same sign (Wilson 95% interval), next to what always predicting the more frequent sign of
the gain would score (the base rate the agreement has to beat). The gap is compared with teacher accuracy alone as a
predictor of the gain by Spearman rank correlation (bootstrap 95% interval over configurations).

Predictors (:data:`PREDICTORS`, from each summary's "predictors"; a configuration's value is their
mean over seeds) are scored the same way, pooled and per regime (the values of one sweep axis):
sign agreement on the configurations with a definite gain (a value of 0 predicts no sign: it
counts as a miss) with its Wilson interval; AUROC of the value for a positive against a negative
definite gain (ties count one half; DeLong 95% interval, clipped to [0, 1]); Spearman correlation
with the mean gain over every configuration (bootstrap interval). ``majority_sign`` always
predicts the more frequent definite sign of its group (pooled, or the regime): the base rate.
Summaries without "predictors" (older runs) give two of them from their own fields: the CCH gap
of their representation and teacher_minus_student_acc = teacher - baseline test accuracy.

When the KD weight or temperature is a sweep axis, the report also picks, per remaining
configuration and seed, the KD student with the best validation accuracy ("selected"; ties go to
the first in sweep order) and reports its test gain and the predictors on those selections.
Gains are printed in accuracy points; the data files keep the summaries' fractions.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from cchmi import _io
from cchmi.distill.summary import PREDICTORS, TEACHER_PREDICTOR

# Two-sided 95% Student t quantiles for 1..30 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t (table to 30 degrees of freedom, 1.96 + 2.4 / df beyond)."""
    if df < 1:
        return math.inf
    return _T975[df - 1] if df <= 30 else 1.96 + 2.4 / df


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (nan, nan when total is 0)."""
    if total == 0:
        return math.nan, math.nan
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)  # rounding gave -1e-17 at 0 successes


def _ranks(a: np.ndarray) -> np.ndarray:
    """0-based ranks of a 1-d array of numbers, tied values sharing their average rank."""
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts + 1) / 2)[inverse.reshape(-1)]


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _row_ranks(codes: np.ndarray, width: int) -> np.ndarray:
    """Average ranks (0-based, ties sharing their mean) within each row of integer codes in
    [0, width): one sort of all rows, each row's codes shifted into a range of its own."""
    rows, n = codes.shape
    keys = codes + width * np.arange(rows)[:, None]
    flat = np.sort(keys, axis=None)
    start = n * np.arange(rows)[:, None]
    below = np.searchsorted(flat, keys, "left") - start
    through = np.searchsorted(flat, keys, "right") - start
    return (below + through - 1) / 2


def spearman_interval(a, b, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(rho, 2.5% and 97.5% bootstrap quantiles over resampled configurations); resamples whose
    ranks are constant on a side are left out. All resamples are ranked at once."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rho = spearman(a, b)
    if a.size < 4 or math.isnan(rho):
        return rho, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, a.size, (n_boot, a.size))
    centred = []
    for side in (a, b):
        _, codes = np.unique(side, return_inverse=True)
        r = _row_ranks(codes.reshape(-1)[idx], a.size)
        centred.append(r - r.mean(axis=1, keepdims=True))
    ra, rb = centred
    norm = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    ok = norm > 0
    if not ok.any():
        return rho, math.nan, math.nan
    boots = (ra * rb).sum(axis=1)[ok] / norm[ok]
    return rho, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def auroc(scores, positive) -> tuple[float, float, float]:
    """(AUROC, DeLong 95% interval clipped to [0, 1]) of `scores` for the boolean labels `positive`:
    the probability that a positive scores above a negative, ties counting one half (midranks).
    nan when a class is empty; the interval is nan with fewer than two of either class."""
    s, y = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        return math.nan, math.nan, math.nan
    ranks = _ranks(s)
    # Structural components: v10[i] = share of negatives below positive i (ties one half), v01[j] =
    # share of positives above negative j; each a difference of ranks in all and in its own class.
    v10 = (ranks[y] - _ranks(s[y])) / n
    v01 = 1 - (ranks[~y] - _ranks(s[~y])) / m
    auc = float(v10.mean())
    if m < 2 or n < 2:
        return auc, math.nan, math.nan
    half = 1.96 * math.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    return auc, max(0.0, auc - half), min(1.0, auc + half)


MAJORITY = "majority_sign"
# Sweep axes over which the report also selects the KD student by validation accuracy.
SELECTION_AXES = ("train.kd_weight", "student.kd_weight", "train.temperature", "student.temperature")


def _num(value) -> float:
    return math.nan if value is None else value


def predictor_values(summary: dict) -> dict:
    """name -> value of each of :data:`PREDICTORS` for one run (nan where the run has none); older
    summaries without "predictors" give the CCH gap of their representation and teacher accuracy."""
    if "predictors" in summary:
        given = summary["predictors"]
        return {name: _num(given[name]["value"]) if name in given else math.nan for name in PREDICTORS}
    values = dict.fromkeys(PREDICTORS, math.nan)
    values[f"cch_gap_{summary.get('cch_representation', 'logits')}"] = _num(summary["cch"]["gap"])
    values[TEACHER_PREDICTOR] = _num(summary["accuracy"]["teacher"]) - _num(summary["accuracy"]["baseline"])
    return values


def run_rows(summaries: list[dict]) -> list[dict]:
    """One flat row per run (null numbers read as nan)."""
    rows = []
    for s in summaries:
        c = s["cch"]
        job = s.get("job", {})
        val = s.get("val_accuracy", {})
        rows.append({
            "config": config_label(s),
            "dataset": s["dataset"],
            "teacher_view": s["teacher_view"],
            "student_view": s["student_view"],
            "pairing": s["pairing"],
            "p": _num(s["p"]),
            "point": json.dumps(job.get("point", {}), sort_keys=True),
            "seed": s["seed"],
            "acc_teacher": _num(s["accuracy"]["teacher"]),
            "acc_baseline": _num(s["accuracy"]["baseline"]),
            "acc_kd": _num(s["accuracy"]["kd"]),
            "gain": _num(s["gain"]),
            "i_ts": _num(c["i_ts"]),
            "i_sy": _num(c["i_sy"]),
            "gap": _num(c["gap"]),
            "gap_ci_low": _num(c["gap_ci_low"]),
            "gap_ci_high": _num(c["gap_ci_high"]),
            "verdict": c["verdict"],
            "val_acc_kd": _num(val.get("kd")),
            **{f"pred_{name}": v for name, v in predictor_values(s).items()},
            "seconds": _num(s["seconds"]),
            "config_hash": s["config_hash"],
        })
    return rows


def config_label(summary: dict) -> str:
    point = summary.get("job", {}).get("point", {})
    extra = ", ".join(f"{k}={v}" for k, v in sorted(point.items()) if k != "pairing")
    label = f"{summary['teacher_view']}->{summary['student_view']} {summary['pairing']}"
    return f"{label} ({extra})" if extra else label


def _mean_ci(values: np.ndarray) -> tuple[float, float, float, float]:
    m = float(values.mean())
    sd = float(values.std(ddof=1)) if values.size > 1 else math.nan
    half = t975(values.size - 1) * sd / math.sqrt(values.size) if values.size > 1 else math.nan
    return m, sd, m - half, m + half


def _nanmean(values: list[float]) -> float:
    """Mean of the values, nan when any is nan (a predictor missing from one seed is missing)."""
    return float(np.mean(values)) if not any(math.isnan(v) for v in values) else math.nan


def _sign(lo: float, hi: float) -> str:
    if lo > 0:
        return "+"
    if hi < 0:
        return "-"
    return "0"


def aggregate(summaries: list[dict]) -> list[dict]:
    """One row per configuration (over seeds), sorted by mean gap (largest first)."""
    groups: dict[str, list[dict]] = {}
    for row in run_rows(summaries):
        groups.setdefault(row["config"] + "|" + row["dataset"], []).append(row)
    out = []
    for rows in groups.values():
        gain = np.array([r["gain"] for r in rows])
        gap = np.array([r["gap"] for r in rows])
        g_mean, g_sd, g_lo, g_hi = _mean_ci(gain)
        d_mean, d_sd, d_lo, d_hi = _mean_ci(gap)
        gain_sign = _sign(g_lo, g_hi) if len(rows) > 1 else "0"
        verdict = {"+": "distil", "-": "do not distil", "0": "undecided"}[_sign(d_lo, d_hi)] if len(rows) > 1 \
            else rows[0]["verdict"]
        out.append({
            "config": rows[0]["config"],
            "point": rows[0]["point"],
            "dataset": rows[0]["dataset"],
            "teacher_view": rows[0]["teacher_view"],
            "student_view": rows[0]["student_view"],
            "pairing": rows[0]["pairing"],
            "seeds": len(rows),
            "acc_teacher": float(np.mean([r["acc_teacher"] for r in rows])),
            "acc_baseline": float(np.mean([r["acc_baseline"] for r in rows])),
            "acc_kd": float(np.mean([r["acc_kd"] for r in rows])),
            "gain": g_mean, "gain_sd": g_sd, "gain_ci_low": g_lo, "gain_ci_high": g_hi, "gain_sign": gain_sign,
            "i_ts": float(np.mean([r["i_ts"] for r in rows])),
            "i_sy": float(np.mean([r["i_sy"] for r in rows])),
            "gap": d_mean, "gap_sd": d_sd, "gap_ci_low": d_lo, "gap_ci_high": d_hi,
            "verdict": verdict,
            "agree": "" if gain_sign == "0" else ("yes" if (d_mean > 0) == (gain_sign == "+") else "no"),
            **{f"pred_{name}": _nanmean([r[f"pred_{name}"] for r in rows]) for name in PREDICTORS},
        })
    out.sort(key=lambda r: -r["gap"])
    return out


def agreement(configs: list[dict]) -> dict:
    """Agreement of the gap's sign with the gain's, and the rank correlations (see the module text)."""
    decided = [c for c in configs if c["gain_sign"] != "0"]
    agree = sum(c["agree"] == "yes" for c in decided)
    positive = sum(c["gain_sign"] == "+" for c in decided)
    lo, hi = wilson(agree, len(decided))
    gains = [c["gain"] for c in configs]
    rho_gap = spearman_interval([c["gap"] for c in configs], gains)
    rho_teacher = spearman_interval([c["acc_teacher"] for c in configs], gains)
    return {
        "configurations": len(configs),
        "with_definite_gain": len(decided),
        "agree": agree,
        "agreement": agree / len(decided) if decided else math.nan,
        "agreement_ci": [lo, hi],
        "gains_positive": positive,
        "gains_negative": len(decided) - positive,
        # What always predicting the more frequent sign would score: agreement must beat it to mean much.
        "majority_baseline": max(positive, len(decided) - positive) / len(decided) if decided else math.nan,
        "verdict_undecided": sum(c["verdict"] == "undecided" for c in configs),
        "spearman_gap_gain": list(rho_gap),
        "spearman_teacher_acc_gain": list(rho_teacher),
    }


def predictor_stats(configs: list[dict], name: str) -> dict:
    """How well one predictor (a name of :data:`PREDICTORS`, or ``majority_sign``) foretells the
    gain over `configs` (see the module text): sign agreement, AUROC and Spearman, with intervals."""
    decided = [c for c in configs if c["gain_sign"] != "0"]
    positive = sum(c["gain_sign"] == "+" for c in decided)
    if name == MAJORITY:  # the base rate: the more frequent definite sign of these configurations
        majority = 1.0 if 2 * positive >= len(decided) else -1.0
        values = np.full(len(configs), majority)
    else:
        values = np.array([c[f"pred_{name}"] for c in configs], dtype=float)
    gains = np.array([c["gain"] for c in configs], dtype=float)
    known = ~np.isnan(values)
    sign_ok = [np.sign(v) == (1 if c["gain_sign"] == "+" else -1) for v, c, k in zip(values, configs, known)
               if k and c["gain_sign"] != "0"]
    agree, total = int(sum(sign_ok)), len(sign_ok)
    lo, hi = wilson(agree, total)
    scored = [(v, c["gain_sign"] == "+") for v, c, k in zip(values, configs, known) if k and c["gain_sign"] != "0"]
    auc = auroc([v for v, _ in scored], [y for _, y in scored]) if scored else (math.nan,) * 3
    both = known & ~np.isnan(gains)
    rho = spearman_interval(values[both], gains[both]) if both.sum() > 1 else (math.nan,) * 3
    return {
        "configurations": int(known.sum()),
        "with_definite_gain": total,
        "agree": agree,
        "agreement": agree / total if total else math.nan,
        "agreement_ci": [lo, hi],
        "auroc": auc[0], "auroc_ci": [auc[1], auc[2]],
        "spearman": rho[0], "spearman_ci": [rho[1], rho[2]],
    }


def _regime_name(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def predictor_report(configs: list[dict], regime: str | None = None) -> dict:
    """name -> :func:`predictor_stats` pooled over `configs`, with "regimes": value of the sweep
    axis `regime` -> the stats over that value's configurations (empty without a regime)."""
    groups: dict[str, list[dict]] = {}
    if regime is not None:
        for c in configs:
            point = json.loads(c["point"])
            if regime not in point:
                raise ValueError(f"regime {regime!r} is not a sweep axis of configuration {c['config']!r}")
            groups.setdefault(_regime_name(point[regime]), []).append(c)
    return {name: {**predictor_stats(configs, name),
                   "regimes": {value: predictor_stats(group, name) for value, group in groups.items()}}
            for name in (*PREDICTORS, MAJORITY)}


def select_by_validation(summaries: list[dict]) -> tuple[list[str], list[dict]]:
    """(the selection axes swept, the selected runs). Runs that differ only in the swept KD weight
    or temperature (:data:`SELECTION_AXES`) form a group per seed; its run with the best validation
    accuracy of the KD student is kept (the first in sweep order on ties), its job point without
    the selection axes and with "selected" = the chosen values. Nothing without such an axis or
    when a run lacks val_accuracy."""
    axes = sorted({k for s in summaries for k in s.get("job", {}).get("point", {}) if k in SELECTION_AXES})
    if not axes or any(math.isnan(_num(s.get("val_accuracy", {}).get("kd"))) for s in summaries):
        return axes, []
    groups: dict[str, list[dict]] = {}
    for s in summaries:
        point = s["job"]["point"]
        rest = {k: v for k, v in point.items() if k not in axes}
        groups.setdefault(json.dumps([s["dataset"], s["teacher_view"], s["student_view"], s["pairing"], rest,
                                      s["seed"]], sort_keys=True), []).append(s)
    selected = []
    for runs in groups.values():
        best = max(runs, key=lambda r: _num(r["val_accuracy"]["kd"]))  # max keeps the first of equals
        point = best["job"]["point"]
        job = {**best["job"], "point": {k: v for k, v in point.items() if k not in axes}}
        selected.append({**best, "job": job, "selected": {k: point[k] for k in axes if k in point}})
    return axes, selected


def _fmt(v, spec=".3f"):
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_table(configs: list[dict], limit: int | None = None) -> str:
    """A Markdown table of configurations."""
    head = ("| configuration | seeds | teacher acc | I(T;S) | I(S;Y) | gap [95% CI] | verdict | KD gain [points] (sd) "
            "| agree |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for c in configs[:limit]:
        lines.append(
            f"| {c['config']} | {c['seeds']} | {_fmt(c['acc_teacher'])} | {_fmt(c['i_ts'])} | {_fmt(c['i_sy'])} | "
            f"{_fmt(c['gap'], '+.3f')} [{_fmt(c['gap_ci_low'], '+.3f')}, {_fmt(c['gap_ci_high'], '+.3f')}] | "
            f"{c['verdict']} | {_fmt(100 * c['gain'], '+.2f')} ({_fmt(100 * c['gain_sd'], '.2f')}) | "
            f"{c['agree'] or '-'} |")
    return "\n".join(lines)


def format_agreement(stats: dict) -> str:
    a = stats
    rg, rt = a["spearman_gap_gain"], a["spearman_teacher_acc_gain"]
    return (
        f"configurations: {a['configurations']}, with a KD gain of definite sign (95% CI excludes 0): "
        f"{a['with_definite_gain']}\n"
        f"sign of the CCH gap agrees with the sign of the gain: {a['agree']}/{a['with_definite_gain']} = "
        f"{_fmt(a['agreement'], '.2f')} (Wilson 95% CI [{_fmt(a['agreement_ci'][0], '.2f')}, "
        f"{_fmt(a['agreement_ci'][1], '.2f')}]); verdict undecided for {a['verdict_undecided']} configurations\n"
        f"definite gains: {a['gains_positive']} positive, {a['gains_negative']} negative; always predicting the more "
        f"frequent sign would agree {_fmt(a['majority_baseline'], '.2f')}\n"
        f"Spearman rank correlation with the gain: CCH gap {_fmt(rg[0], '+.2f')} [{_fmt(rg[1], '+.2f')}, "
        f"{_fmt(rg[2], '+.2f')}], teacher accuracy {_fmt(rt[0], '+.2f')} [{_fmt(rt[1], '+.2f')}, {_fmt(rt[2], '+.2f')}]"
    )


def _interval(v, ci, spec) -> str:
    return f"{_fmt(v, spec)} [{_fmt(ci[0], spec)}, {_fmt(ci[1], spec)}]"


def _predictor_table(stats: dict, regime: str | None) -> str:
    """A Markdown table: one row per predictor (pooled, or the stats of one regime value)."""
    lines = ["| predictor | sign agreement [Wilson 95%] | AUROC [DeLong 95%] | Spearman with the gain [95%] |",
             "|---|---|---|---|"]
    for name, st in stats.items():
        st = st if regime is None else st["regimes"][regime]
        lines.append(f"| {name} | {st['agree']}/{st['with_definite_gain']} = "
                     f"{_interval(st['agreement'], st['agreement_ci'], '.2f')} | "
                     f"{_interval(st['auroc'], st['auroc_ci'], '.2f')} | "
                     f"{_interval(st['spearman'], st['spearman_ci'], '+.2f')} |")
    return "\n".join(lines)


def _beats_baselines(stats: dict, regime: str | None) -> str:
    """Plain sentences: which predictors beat teacher accuracy and the majority sign (point
    estimates: sign agreement, then AUROC), or that none does."""
    def get(name, key):
        st = stats[name] if regime is None else stats[name]["regimes"][regime]
        return st[key]

    candidates = [n for n in PREDICTORS if n != TEACHER_PREDICTOR and not math.isnan(get(n, "agreement"))]
    lines = []
    for key, label, baselines in (("agreement", "sign agreement", (TEACHER_PREDICTOR, MAJORITY)),
                                  ("auroc", "AUROC", (TEACHER_PREDICTOR, MAJORITY))):
        base = {b: get(b, key) for b in baselines if not math.isnan(get(b, key))}
        if not base:
            lines.append(f"- {label}: no baseline is defined here (no configuration with a definite gain of "
                         "each sign); nothing to compare.")
            continue
        bar = max(base.values())
        against = " and ".join(f"{'teacher accuracy' if b == TEACHER_PREDICTOR else 'the majority sign'} "
                               f"{_fmt(v, '.2f')}" for b, v in base.items())
        winners = [n for n in candidates if not math.isnan(get(n, key)) and get(n, key) > bar]
        if not winners:
            best = max(candidates, key=lambda n: -math.inf if math.isnan(get(n, key)) else get(n, key),
                       default=None)
            shown = f" (best: {best} {_fmt(get(best, key), '.2f')})" if best else ""
            lines.append(f"- {label}: no predictor beats teacher accuracy or the majority sign{shown}; "
                         f"against {against}.")
            continue
        for n in winners:
            ci = get(n, f"{key}_ci")
            inside = not math.isnan(ci[0]) and ci[0] <= bar
            lines.append(f"- {label}: {n} {_interval(get(n, key), ci, '.2f')} beats {against}"
                         + (f"; its interval includes {_fmt(bar, '.2f')}, so not clearly." if inside else "."))
    return "\n".join(lines)


def format_predictors(stats: dict, regime: str | None = None) -> str:
    """The predictors' section of report.md: pooled, then per regime value."""
    parts = ["## Predictors of the sign of the KD gain", "", "### Pooled", "", _predictor_table(stats, None), "",
             _beats_baselines(stats, None)]
    for value in next(iter(stats.values()))["regimes"]:
        parts += ["", f"### {regime} = {value}", "", _predictor_table(stats, value), "", _beats_baselines(stats, value)]
    return "\n".join(parts)


def format_selected(axes: list[str], selected: list[dict], configs: list[dict]) -> str:
    """The validation-selected section of report.md (gains in points)."""
    head = f"## KD student selected by validation accuracy over {', '.join(axes)}"
    if not selected:
        return f"{head}\n\nNot available: some runs have no validation accuracy (older summaries)."
    lines = [head, "", "| configuration | seed | selected | val acc (KD) | test gain [points] |",
             "|---|---|---|---|---|"]
    for s in selected:
        chosen = ", ".join(f"{k}={v}" for k, v in s["selected"].items())
        lines.append(f"| {config_label(s)} | {s['seed']} | {chosen} | {_fmt(_num(s['val_accuracy']['kd']))} | "
                     f"{_fmt(100 * _num(s['gain']), '+.2f')} |")
    lines += ["", "| configuration | seeds | selected gain [points] [95% CI] | sign |", "|---|---|---|---|"]
    for c in configs:
        lines.append(f"| {c['config']} | {c['seeds']} | {_fmt(100 * c['gain'], '+.2f')} "
                     f"[{_fmt(100 * c['gain_ci_low'], '+.2f')}, {_fmt(100 * c['gain_ci_high'], '+.2f')}] | "
                     f"{c['gain_sign']} |")
    return "\n".join(lines)


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    _io.write_atomic(path, text.getvalue())


def _half_widths(configs: list[dict], key: str) -> list[float]:
    """Error bar lengths: mean - lower 95% bound (0 where a single seed gives no interval)."""
    return [0.0 if math.isnan(c[f"{key}_ci_low"]) else c[key] - c[f"{key}_ci_low"] for c in configs]


def plot(configs: list[dict], path: Path, title: str) -> None:
    """Gain against gap, 95% intervals as error bars, coloured by pairing."""
    from cchmi._extras import require

    matplotlib = require("matplotlib", "plot", "the gain-vs-gap plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    colours = {"aligned": "tab:blue", "shuffled": "tab:orange", "label": "tab:red"}
    for pairing in colours:
        sel = [c for c in configs if c["pairing"] == pairing]
        if not sel:
            continue

        ax.errorbar([c["gap"] for c in sel], [100 * c["gain"] for c in sel], xerr=_half_widths(sel, "gap"),
                    yerr=[100 * e for e in _half_widths(sel, "gain")], fmt="o", ms=4, capsize=2, lw=0.8,
                    color=colours[pairing], label=pairing)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("CCH gap I(T;S) - I(S;Y) [nats]")
    ax.set_ylabel("KD gain [test accuracy points]")
    ax.set_title(title, fontsize=10)
    ax.legend(title="pairing", fontsize=8)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    _io.write_atomic(path, png.getvalue())


def format_failures(failures: list[dict]) -> str:
    """One line per failed job (its key and error)."""
    return "\n".join([f"{len(failures)} job(s) failed, left out of the report (a rerun retries them):"] +
                     [f"- {f['key']}: {f['error']}" for f in failures])


def write_report(summaries: list[dict], out, title: str = "KD gain against the CCH gap", failures=(),
                 regime: str | None = None) -> dict:
    """runs.csv, configs.csv, report.json, report.md and gain_vs_gap.png in `out` (each written
    atomically; report.json is strict JSON, undefined statistics as null); returns the agreement
    stats. `failures` (dicts with "key" and "error": jobs that did not finish) are listed in
    report.json and report.md. `regime`: a sweep axis (a config's ``[report] regime``) whose values
    get the predictors' statistics each, besides the pooled ones. report.json holds "predictors"
    (:func:`predictor_report`) and, when the KD weight or temperature was swept, "selected"."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = aggregate(summaries)
    stats = agreement(configs)
    predictors = predictor_report(configs, regime)
    failures = list(failures)
    report = {"agreement": stats, "regime": regime, "predictors": predictors, "configurations": configs,
              "failures": failures}
    sections = [format_agreement(stats), format_predictors(predictors, regime)]
    axes, selected = select_by_validation(summaries)
    if axes:
        chosen = aggregate(selected) if selected else []
        report["selected"] = {
            "axes": axes,
            "runs": [{"config": config_label(s), "seed": s["seed"], "selected": s["selected"],
                      "val_acc_kd": _num(s["val_accuracy"]["kd"]), "gain": _num(s["gain"])} for s in selected],
            "configurations": chosen,
            "predictors": predictor_report(chosen, regime if regime not in axes else None) if chosen else {},
        }
        sections.append(format_selected(axes, selected, chosen))
        if chosen:
            picked = report["selected"]["predictors"]
            sections.append("### Predictors of the selected students' gain (pooled)\n\n"
                            f"{_predictor_table(picked, None)}\n\n{_beats_baselines(picked, None)}")
    _write_csv(out / "runs.csv", run_rows(summaries))
    _write_csv(out / "configs.csv", configs)
    _io.write_atomic(out / "report.json", _io.dumps_json(report))
    failed = f"{format_failures(failures)}\n\n" if failures else ""
    _io.write_atomic(out / "report.md", f"# {title}\n\n{failed}" + "\n\n".join(sections)
                     + f"\n\n## Configurations\n\n{format_table(configs)}\n")
    plot(configs, out / "gain_vs_gap.png", title)
    return stats
