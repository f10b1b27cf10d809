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
with the gain over every configuration (bootstrap interval). ``majority_sign`` always
predicts the more frequent definite sign of its group (pooled, or the regime): the base rate.
Summaries without "predictors" (older runs) give two of them from their own fields: the CCH gap
of their representation and teacher_minus_student_acc = teacher - baseline test accuracy.

When the KD weight or temperature is a sweep axis, the report also picks, per remaining
configuration and seed, the KD student with the best validation accuracy ("selected"; ties go to
the first in sweep order) and reports its test gain and the predictors on those selections.
Gains are printed in accuracy points; the data files keep the summaries' fractions.

These pooled intervals assume independent configurations, which runs sharing a baseline student
are not (report.md says so under the table). The pre-registered endpoints of a sweep (its config's
``[endpoints]``: teacher-selection regret, dose-response slopes, AUROC of "gain > 0" against the
comparator, power) come with cluster-bootstrap intervals and Holm-adjusted p-values
(:mod:`.endpoints`).

Modules: :mod:`.stats` (the statistics, numpy only), :mod:`.aggregate` (summaries to the numbers),
:mod:`.endpoints` (the pre-registered endpoints), :mod:`.tables` (Markdown and terminal text),
:mod:`.plots` (gain_vs_gap.png); :func:`write_report` writes the files. The schema of the summaries
is :mod:`cchmi.distill.summary`'s.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cchmi import _io
from cchmi.distill.report.aggregate import (
    MAJORITY,
    SELECTION_AXES,
    aggregate,
    agreement,
    config_control,
    config_label,
    number,
    predictor_report,
    predictor_stats,
    predictor_values,
    regime_order,
    regime_value,
    run_rows,
    select_by_validation,
)
from cchmi.distill.report.endpoints import check_endpoints, compute_endpoints
from cchmi.distill.report.plots import plot
from cchmi.distill.report.stats import (
    auroc,
    bootstrap_p,
    cluster_bootstrap,
    cluster_weights,
    holm,
    mean_ci,
    percentile_interval,
    spearman,
    spearman_interval,
    t975,
    t_quantile,
    wilson,
)
from cchmi.distill.report.tables import (
    beats_baselines,
    format_agreement,
    format_endpoints,
    format_failures,
    format_predictors,
    format_run_notes,
    format_selected,
    format_table,
    predictor_table,
    render_table,
    terminal_width,
)
from cchmi.distill.summary import PREDICTORS, TEACHER_PREDICTOR

__all__ = [
    "MAJORITY", "PREDICTORS", "SELECTION_AXES", "TEACHER_PREDICTOR", "aggregate", "agreement",
    "auroc", "beats_baselines", "bootstrap_p", "check_endpoints", "cluster_bootstrap", "cluster_weights",
    "compute_endpoints", "config_control", "config_label", "format_agreement", "format_endpoints", "format_failures",
    "format_predictors", "format_run_notes", "format_selected", "format_table", "holm", "mean_ci", "number",
    "percentile_interval", "plot", "predictor_report", "predictor_stats", "predictor_table", "predictor_values",
    "regime_order", "regime_value", "render_table", "run_rows", "select_by_validation", "spearman",
    "spearman_interval", "t975", "t_quantile", "terminal_width", "wilson", "write_report",
]


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    _io.write_atomic(path, text.getvalue())


def _plot_title(summaries: list[dict], title: str) -> str:
    """`title`, with the control when every run has the same one and it is no sweep axis."""
    controls = {s.get("control") for s in summaries}
    swept = any("control" in s.get("job", {}).get("point", {}) for s in summaries)
    fixed = next(iter(controls)) if len(controls) == 1 else None
    return f"{title} (control: {fixed})" if fixed and not swept else title


def write_report(summaries: list[dict], out, title: str = "KD gain against the CCH gap", failures=(),
                 regime: str | None = None, endpoints: dict | None = None) -> dict:
    """runs.csv, configs.csv, report.json, report.md and gain_vs_gap.png in `out` (each written
    atomically; report.json is strict JSON, undefined statistics as null); returns the agreement
    stats. `failures` (dicts with "key" and "error": jobs that did not finish) are listed in
    report.json and report.md. `regime`: a sweep axis (a config's ``[report] regime``) whose values
    get the predictors' statistics each, besides the pooled ones. report.json holds "predictors"
    (:func:`predictor_report`) and, when the KD weight or temperature was swept, "selected".
    `endpoints`: a config's endpoint table as :func:`check_endpoints` returns it; report.json then
    holds "endpoints" (:func:`compute_endpoints` over `summaries` with `regime`) and report.md its
    section after the predictors' (whose pooled intervals assume independent configurations, and
    say so). None: no endpoints."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = aggregate(summaries)
    stats = agreement(configs)
    predictors = predictor_report(configs, regime)
    failures = list(failures)
    report = {"agreement": stats, "regime": regime, "predictors": predictors, "configurations": configs,
              "failures": failures}
    sections = [format_agreement(stats, markdown=True), format_predictors(predictors, regime, markdown=True)]
    notes = format_run_notes(summaries)
    if notes:
        sections.insert(0, notes)
    if endpoints is not None:
        report["endpoints"] = compute_endpoints(summaries, endpoints, regime)
        sections.append(format_endpoints(report["endpoints"], markdown=True))
    axes, selected = select_by_validation(summaries)
    if axes:
        chosen = aggregate(selected) if selected else []
        report["selected"] = {
            "axes": axes,
            "runs": [{"config": config_label(s), "seed": s["seed"], "selected": s["selected"],
                      "val_acc_kd": number(s["val_accuracy"]["kd"]), "gain": number(s["gain"])} for s in selected],
            "configurations": chosen,
            "predictors": predictor_report(chosen, regime if regime not in axes else None) if chosen else {},
        }
        sections.append(format_selected(axes, selected, chosen, markdown=True))
        if chosen:
            picked = report["selected"]["predictors"]
            sections.append("### Predictors of the selected students' gain (pooled)\n\n"
                            f"{predictor_table(picked, None, markdown=True)}\n\n"
                            f"{beats_baselines(picked, None, markdown=True)}")
    _write_csv(out / "runs.csv", run_rows(summaries))
    _write_csv(out / "configs.csv", configs)
    _io.write_atomic(out / "report.json", _io.dumps_json(report))
    failed = f"{format_failures(failures, markdown=True)}\n\n" if failures else ""
    _io.write_atomic(out / "report.md", f"# {title}\n\n{failed}" + "\n\n".join(sections)
                     + f"\n\n## Configurations\n\n{format_table(configs, markdown=True)}\n")
    plot(configs, out / "gain_vs_gap.png", _plot_title(summaries, title), regime)
    return stats
