"""Aggregation and reporting of KD runs: does the CCH verdict predict the sign of the KD gain?

A configuration is everything but the seed. Over its seeds: mean and s.d. of the test accuracies
and of the gain (KD student minus baseline), a 95% t-interval for the mean gain, and the same for
the CCH gap. The configuration's gain is "+" or "-" when its interval excludes 0, else "0"; its
verdict is "distil" / "do not distil" when the gap's interval excludes 0, else "undecided".

Agreement is measured among configurations with a gain of definite sign: the share whose mean gap
has the same sign (Wilson 95% interval), next to what always predicting the more frequent sign of
the gain would score (the base rate the agreement has to beat). The gap is compared with teacher accuracy alone as a
predictor of the gain by Spearman rank correlation (bootstrap 95% interval over configurations).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from cchmi import _io

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
    return centre - half, centre + half


def _ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(a.size)
    ranks[order] = np.arange(a.size)
    for v in np.unique(a):  # average ranks over ties
        tied = a == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def spearman_interval(a, b, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(rho, 2.5% and 97.5% bootstrap quantiles over resampled configurations)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rho = spearman(a, b)
    if a.size < 4:
        return rho, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = [spearman(a[i], b[i]) for i in (rng.integers(0, a.size, a.size) for _ in range(n_boot))]
    boots = np.asarray([r for r in boots if not math.isnan(r)])
    if boots.size == 0:
        return rho, math.nan, math.nan
    return rho, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


# What the report reads from a summary: (key, kind) with kind "str", "int", "number" (None allowed:
# summaries are strict JSON, where a NaN is written as null) or a table of such entries.
SUMMARY_FIELDS = {
    "dataset": "str", "teacher_view": "str", "student_view": "str", "pairing": "str", "p": "number", "seed": "int",
    "accuracy": {"teacher": "number", "baseline": "number", "kd": "number"}, "gain": "number",
    "cch": {"i_ts": "number", "i_sy": "number", "gap": "number", "gap_ci_low": "number", "gap_ci_high": "number",
            "verdict": "str"},
    "seconds": "number", "config_hash": "str",
}


def _kind_ok(value, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int)
    return value is None or isinstance(value, (int, float))


def check_summary(summary, fields: dict = SUMMARY_FIELDS, where: str = "") -> None:
    """ValueError naming the first missing or mistyped entry of a run summary."""
    if not isinstance(summary, dict):
        raise ValueError(f"{where or 'the summary'} is not a JSON object")
    for key, kind in fields.items():
        name = f"{where}.{key}" if where else key
        if key not in summary:
            raise ValueError(f"{name} is missing")
        if isinstance(kind, dict):
            check_summary(summary[key], kind, name)
        elif not _kind_ok(summary[key], kind):
            raise ValueError(f"{name} must be a {'number or null' if kind == 'number' else kind}, "
                             f"got {summary[key]!r}")


def _num(value) -> float:
    return math.nan if value is None else value


def run_rows(summaries: list[dict]) -> list[dict]:
    """One flat row per run (null numbers read as nan)."""
    rows = []
    for s in summaries:
        c = s["cch"]
        job = s.get("job", {})
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


def _fmt(v, spec=".3f"):
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_table(configs: list[dict], limit: int | None = None) -> str:
    """A Markdown table of configurations."""
    head = ("| configuration | seeds | teacher acc | I(T;S) | I(S;Y) | gap [95% CI] | verdict | KD gain (sd) | agree |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for c in configs[:limit]:
        lines.append(
            f"| {c['config']} | {c['seeds']} | {_fmt(c['acc_teacher'])} | {_fmt(c['i_ts'])} | {_fmt(c['i_sy'])} | "
            f"{_fmt(c['gap'], '+.3f')} [{_fmt(c['gap_ci_low'], '+.3f')}, {_fmt(c['gap_ci_high'], '+.3f')}] | "
            f"{c['verdict']} | {_fmt(c['gain'], '+.4f')} ({_fmt(c['gain_sd'], '.4f')}) | {c['agree'] or '-'} |")
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


def write_report(summaries: list[dict], out, title: str = "KD gain against the CCH gap", failures=()) -> dict:
    """runs.csv, configs.csv, report.json, report.md and gain_vs_gap.png in `out` (each written
    atomically; report.json is strict JSON, undefined statistics as null); returns the stats.
    `failures` (dicts with "key" and "error": jobs that did not finish) are listed in report.json
    and report.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = aggregate(summaries)
    stats = agreement(configs)
    failures = list(failures)
    _write_csv(out / "runs.csv", run_rows(summaries))
    _write_csv(out / "configs.csv", configs)
    _io.write_atomic(out / "report.json",
                     _io.dumps_json({"agreement": stats, "configurations": configs, "failures": failures}))
    failed = f"{format_failures(failures)}\n\n" if failures else ""
    _io.write_atomic(out / "report.md", f"# {title}\n\n{failed}{format_agreement(stats)}\n\n{format_table(configs)}\n")
    plot(configs, out / "gain_vs_gap.png", title)
    return stats
