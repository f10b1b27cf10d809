"""From run summaries to the report's numbers: one flat row per run, one row per configuration (over
seeds), the agreement of the CCH verdict with the gain, each predictor's statistics pooled and per
regime, and the KD students selected by validation accuracy. The conventions are the package's
(:mod:`cchmi.distill.report`)."""

from __future__ import annotations

import json
import math

import numpy as np

from cchmi.distill.report.stats import auroc, mean_ci, spearman_interval, wilson
from cchmi.distill.summary import PREDICTORS, TEACHER_PREDICTOR

MAJORITY = "majority_sign"
# Sweep axes over which the report also selects the KD student by validation accuracy.
SELECTION_AXES = ("train.kd_weight", "student.kd_weight", "train.temperature", "student.temperature")


def number(value) -> float:
    """A summary's number as a float: null (how strict JSON writes NaN) reads as nan."""
    return math.nan if value is None else value


def predictor_values(summary: dict) -> dict:
    """name -> value of each of :data:`PREDICTORS` for one run (nan where the run has none); older
    summaries without "predictors" (schema 1) give the CCH gap of their representation and the
    teacher-minus-student accuracy as they recorded it, on the test rows that also score the gain
    (schema 3 takes it from validation rows): kept so old result folders still report."""
    if "predictors" in summary:
        given = summary["predictors"]
        return {name: number(given[name]["value"]) if name in given else math.nan for name in PREDICTORS}
    values = dict.fromkeys(PREDICTORS, math.nan)
    values[f"cch_gap_{summary.get('cch_representation', 'logits')}"] = number(summary["cch"]["gap"])
    values[TEACHER_PREDICTOR] = number(summary["accuracy"]["teacher"]) - number(summary["accuracy"]["baseline"])
    return values


def config_label(summary: dict) -> str:
    """"teacher->student pairing (axis=value, ...)": the run's configuration, its sweep point but
    the pairing in the order of the axes' names."""
    point = summary.get("job", {}).get("point", {})
    extra = ", ".join(f"{k}={v}" for k, v in sorted(point.items()) if k != "pairing")
    label = f"{summary['teacher_view']}->{summary['student_view']} {summary['pairing']}"
    return f"{label} ({extra})" if extra else label


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
            "p": number(s["p"]),
            "point": json.dumps(job.get("point", {}), sort_keys=True),
            "seed": s["seed"],
            "acc_teacher": number(s["accuracy"]["teacher"]),
            "acc_baseline": number(s["accuracy"]["baseline"]),
            "acc_kd": number(s["accuracy"]["kd"]),
            "gain": number(s["gain"]),
            "i_ts": number(c["i_ts"]),
            "i_sy": number(c["i_sy"]),
            "gap": number(c["gap"]),
            "gap_ci_low": number(c["gap_ci_low"]),
            "gap_ci_high": number(c["gap_ci_high"]),
            "verdict": c["verdict"],
            "val_acc_kd": number(val.get("kd")),
            **{f"pred_{name}": v for name, v in predictor_values(s).items()},
            "seconds": number(s["seconds"]),
            "config_hash": s["config_hash"],
        })
    return rows


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
    unreliable: set[str] = set()  # configurations with a run whose CCH result was marked unreliable
    for row, summary in zip(run_rows(summaries), summaries):
        key = row["config"] + "|" + row["dataset"]
        groups.setdefault(key, []).append(row)
        reliability = summary["cch"].get("reliability")  # older summaries have none
        if isinstance(reliability, dict) and reliability.get("reliable") is False:
            unreliable.add(key)
    out = []
    for key, rows in groups.items():
        gain = np.array([r["gain"] for r in rows])
        gap = np.array([r["gap"] for r in rows])
        g_mean, g_sd, g_lo, g_hi = mean_ci(gain)
        d_mean, d_sd, d_lo, d_hi = mean_ci(gap)
        gain_sign = _sign(g_lo, g_hi) if len(rows) > 1 else "0"
        verdict = {"+": "distil", "-": "do not distil", "0": "undecided"}[_sign(d_lo, d_hi)] if len(rows) > 1 \
            else rows[0]["verdict"]
        if key in unreliable:  # a verdict on the seeds' gaps would rest on an estimate that cannot be trusted
            verdict = "undecided"
        if np.isnan(gap).any():  # a run whose CCH failed after training (its summary's cch.verdict "failed")
            verdict = "failed"
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
            "agree": "" if gain_sign == "0" or math.isnan(d_mean) else ("yes" if (d_mean > 0) == (gain_sign == "+")
                                                                         else "no"),
            **{f"pred_{name}": _nanmean([r[f"pred_{name}"] for r in rows]) for name in PREDICTORS},
        })
    out.sort(key=lambda r: (math.isnan(r["gap"]), -r["gap"]))  # configurations without a gap last
    return out


def agreement(configs: list[dict]) -> dict:
    """Agreement of the gap's sign with the gain's, and the rank correlations (see the package text)."""
    total = len(configs)
    configs = [c for c in configs if not math.isnan(c["gap"])]  # a failed CCH predicts nothing (nan ranks last)
    decided = [c for c in configs if c["gain_sign"] != "0"]
    agree = sum(c["agree"] == "yes" for c in decided)
    positive = sum(c["gain_sign"] == "+" for c in decided)
    lo, hi = wilson(agree, len(decided))
    gains = [c["gain"] for c in configs]
    rho_gap = spearman_interval([c["gap"] for c in configs], gains)
    rho_teacher = spearman_interval([c["acc_teacher"] for c in configs], gains)
    return {
        "configurations": total,
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
    gain over `configs` (see the package text): sign agreement, AUROC and Spearman, with intervals."""
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


def regime_value(config: dict, regime: str) -> str:
    """The value of the sweep axis `regime` at a configuration, as report.json names it (a string
    as it is, any other value as JSON); ValueError when `regime` is not one of its axes."""
    point = json.loads(config["point"])
    if regime not in point:
        raise ValueError(f"regime {regime!r} is not a sweep axis of configuration {config['config']!r}")
    value = point[regime]
    return value if isinstance(value, str) else json.dumps(value)


def config_control(config: dict) -> str:
    """The control a configuration ran: the value of its "control" sweep axis ("none" for null), else
    its pairing when that is not "aligned" ("label", "shuffled"), else "none"."""
    point = json.loads(config["point"])
    if "control" in point:
        return point["control"] or "none"
    return "none" if config["pairing"] == "aligned" else config["pairing"]


def regime_order(values) -> list[str]:
    """Regime values in reading order: by number when every one is a number (5, 10, 70, 250), else
    as text."""
    values = list(values)
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def predictor_report(configs: list[dict], regime: str | None = None) -> dict:
    """name -> :func:`predictor_stats` pooled over `configs`, with "regimes": value of the sweep
    axis `regime` -> the stats over that value's configurations (empty without a regime; in the
    order the values first occur in `configs`, :func:`regime_order` sorts them)."""
    groups: dict[str, list[dict]] = {}
    if regime is not None:
        for c in configs:
            groups.setdefault(regime_value(c, regime), []).append(c)
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
    if not axes or any(math.isnan(number(s.get("val_accuracy", {}).get("kd"))) for s in summaries):
        return axes, []
    groups: dict[str, list[dict]] = {}
    for s in summaries:
        point = s["job"]["point"]
        rest = {k: v for k, v in point.items() if k not in axes}
        groups.setdefault(json.dumps([s["dataset"], s["teacher_view"], s["student_view"], s["pairing"], rest,
                                      s["seed"]], sort_keys=True), []).append(s)
    selected = []
    for runs in groups.values():
        best = max(runs, key=lambda r: number(r["val_accuracy"]["kd"]))  # max keeps the first of equals
        point = best["job"]["point"]
        job = {**best["job"], "point": {k: v for k, v in point.items() if k not in axes}}
        selected.append({**best, "job": job, "selected": {k: point[k] for k in axes if k in point}})
    return axes, selected
