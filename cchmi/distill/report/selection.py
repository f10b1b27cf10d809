"""The teacher-selection table: for each student view (and everything else but the teacher and the
seed), every candidate teacher's mean KD gain over seeds with its 95% t-interval, the mean of each
shown predictor, and how often each predictor picked that teacher (the share of seeds in which
its value was the largest among the teachers; ties share the pick). The teacher with the best mean
gain is marked. It is the table behind the "selection" endpoint
(:mod:`cchmi.distill.report.endpoints`, whose regret and intervals are the statistics to quote);
this one is for reading.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from cchmi.distill.report.aggregate import number
from cchmi.distill.report.stats import mean_ci
from cchmi.distill.report.tables import fmt, render_table

SHOWN = ("cch_gap_logits", "teacher_acc", "apriori_gap")


def _problem(summary: dict) -> tuple:
    """What a selection problem shares: dataset, student view and the sweep point."""
    point = summary.get("job", {}).get("point", {})
    return (summary["dataset"], summary["student_view"], summary["pairing"],
            tuple(sorted((k, repr(v)) for k, v in point.items())))


def _value(summary: dict, name: str) -> float:
    entry = summary.get("predictors", {}).get(name)
    return math.nan if entry is None else number(entry["value"])


def teacher_selection(summaries: list[dict], shown=SHOWN) -> list[dict]:
    """One row per (selection problem, teacher): dataset, student, teacher, point, seeds, gain (mean,
    ci_low, ci_high; fractions), best (the best mean gain of its problem), and per shown predictor
    its mean ("<name>") and the share of the problem's seeds in which it picked this teacher
    ("<name>_picked")."""
    problems = defaultdict(lambda: defaultdict(dict))  # problem -> teacher -> seed -> summary
    for s in summaries:
        problems[_problem(s)][s["teacher_view"]][s["seed"]] = s
    rows = []
    for problem, teachers in problems.items():
        names = sorted(teachers)
        seeds = sorted(set.intersection(*(set(by_seed) for by_seed in teachers.values())))
        picks = {name: dict.fromkeys(names, 0.0) for name in shown}
        for seed in seeds:
            for name in shown:
                values = np.array([_value(teachers[t][seed], name) for t in names])
                if np.isnan(values).all():
                    continue
                top = np.flatnonzero(values == np.nanmax(values))
                for i in top:
                    picks[name][names[i]] += 1 / top.size
        problem_rows = []
        for teacher in names:
            gains = np.array([number(teachers[teacher][seed]["gain"]) for seed in seeds])
            mean, _, lo, hi = mean_ci(gains) if gains.size else (math.nan,) * 4
            row = {"dataset": problem[0], "student": problem[1], "teacher": teacher,
                   "point": ", ".join(f"{k}={v}" for k, v in problem[3]), "seeds": len(seeds),
                   "gain": mean, "gain_ci_low": lo, "gain_ci_high": hi}
            for name in shown:
                row[name] = float(np.nanmean([_value(teachers[teacher][seed], name) for seed in seeds])) \
                    if seeds else math.nan
                row[f"{name}_picked"] = picks[name][teacher] / len(seeds) if seeds else math.nan
            problem_rows.append(row)
        best = max((r["gain"] for r in problem_rows if not math.isnan(r["gain"])), default=math.nan)
        for r in problem_rows:
            r["best"] = r["gain"] == best
        rows += problem_rows
    return rows


def format_teacher_selection(rows: list[dict], shown=SHOWN, markdown: bool = False, width: int | None = None) -> str:
    """The table of :func:`teacher_selection` rows: gain in accuracy points with its 95% t-interval
    over seeds ("*": the best mean gain of its student), each predictor's mean and, in brackets, the
    share of seeds in which it picked the teacher."""
    headers = ["student", "teacher", "seeds", "KD gain (pts) [95% CI]"] + [f"{n} (picked)" for n in shown]
    body = []
    for r in rows:
        gain = (f"{fmt(100 * r['gain'], '+.2f')} [{fmt(100 * r['gain_ci_low'], '+.2f')}, "
                f"{fmt(100 * r['gain_ci_high'], '+.2f')}]" + (" *" if r["best"] else ""))
        student = f"{r['dataset']}:{r['student']}" + (f" ({r['point']})" if r["point"] else "")
        body.append([student, r["teacher"], str(r["seeds"]), gain]
                    + [f"{fmt(r[n])} ({fmt(100 * r[n + '_picked'], '.0f')}%)" for n in shown])
    title = "### Teacher selection" if markdown else "Teacher selection"
    legend = ("KD gain: test accuracy of the KD student minus the baseline student's, mean over seeds with its 95% "
              "t-interval; * the best teacher of its student by mean gain. Each predictor (validation rows): its mean, "
              "and how often it picked the teacher (the share of seeds where it was the largest). The regret of "
              "these picks, with cluster-bootstrap intervals, is the selection endpoint.")
    return f"{title}\n\n{render_table(headers, body, markdown=markdown, width=width)}\n\n{legend}"
