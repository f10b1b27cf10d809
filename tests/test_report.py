"""cchmi.distill.report: the statistics against scipy.stats, the order and wording of the text
tables (regimes in numeric order, no nan printed, terminal width), the plot's groups, the files'
permissions and the package's layout. No torch needed (the report reads summaries only)."""

import ast
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from cchmi import _io
from cchmi.distill import report
from cchmi.distill.report import (
    aggregate,
    auroc,
    check_endpoints,
    config_control,
    format_agreement,
    format_predictors,
    format_table,
    predictor_report,
    regime_order,
    spearman,
    t975,
    wilson,
    write_report,
)

PACKAGE = Path(report.__file__).parent
REGIME = "budget.student_labels_per_class"


def _summary(view, seed, gain, gap, point, dataset="toy", teacher=0.9):
    """A run summary as the trainer writes it (the fields the report reads)."""
    return {
        "dataset": dataset, "teacher_view": view, "student_view": "s", "pairing": "aligned", "p": 0.0, "seed": seed,
        "accuracy": {"teacher": teacher, "baseline": 0.8, "kd": 0.8 + gain}, "gain": gain,
        "cch": {"i_ts": 1.0 + gap, "i_sy": 1.0, "gap": gap, "gap_ci_low": gap - 0.1, "gap_ci_high": gap + 0.1,
                "verdict": "undecided"},
        "seconds": 1.0, "config_hash": f"{view}{seed}", "job": {"key": f"{view}{seed}{point}", "point": point},
        "predictors": {"cch_gap_logits": {"value": gap}, "teacher_minus_student_acc": {"value": teacher - 0.8}},
    }


def _sweep(budgets=(10, 70, 5, 250), views="ab", seeds=3, long_axis=False):
    """Two views per budget, in the order given; the gain's sign follows the budget's parity."""
    out = []
    for i, budget in enumerate(budgets):
        for j, view in enumerate(views):
            point = {REGIME: budget, "control": [None, "random_transfer_pairing"][j % 2]}
            if long_axis:
                point["data.a_rather_long_axis_name_for_the_width_test"] = "a value that is long as well"
            for seed in range(seeds):
                gain = (0.05 if i % 2 else -0.04) + 0.01 * j + 0.001 * seed
                out.append(_summary(view, seed, gain, 0.1 * (i - j) + 0.001 * seed, point))
    return out


# -- statistics, against scipy.stats -----------------------------------------------------------------

def test_t975_is_scipys_quantile_to_the_tables_three_decimals():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in range(1, 31):
        assert t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=5.1e-4)
    for df in (31, 40, 60, 120, 1000, 10**5):  # the 1.96 + 2.4 / df tail: within 0.11% (the most at 31)
        assert t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=1.1e-3)
    assert t975(0) == math.inf


def test_wilson_is_scipys():
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in ((0, 1), (0, 7), (3, 7), (8, 10), (10, 10), (37, 120)):
        ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=2e-4)  # z = 1.96, scipy's 1.95996...


def test_spearman_and_auroc_are_scipys():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(11)
    for size in (5, 12, 40):
        a, b = np.round(rng.standard_normal(size), 1), np.round(rng.standard_normal(size), 1)  # ties
        assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic, abs=1e-12)
        positive = rng.random(size) < 0.5
        positive[:2] = [True, False]
        u = scipy_stats.mannwhitneyu(a[positive], a[~positive]).statistic  # AUROC = U / (m n), ties one half
        assert auroc(a, positive)[0] == pytest.approx(u / (positive.sum() * (~positive).sum()), abs=1e-12)


# -- the text -------------------------------------------------------------------------------------------

def test_regimes_in_numeric_order():
    assert regime_order(["10", "70", "5", "250"]) == ["5", "10", "70", "250"]
    assert regime_order(["label", "aligned"]) == ["aligned", "label"]
    assert regime_order(["0.5", "1e-3", "2"]) == ["1e-3", "0.5", "2"]
    stats = predictor_report(aggregate(_sweep()), REGIME)
    text = format_predictors(stats, REGIME, width=100)
    heads = [line for line in text.splitlines() if line.startswith(f"### {REGIME} = ")]
    assert heads == [f"### {REGIME} = {v}" for v in (5, 10, 70, 250)]


def test_no_nan_is_printed_and_what_is_missing_is_said(tmp_path):
    summaries = _sweep()
    stats = predictor_report(aggregate(summaries), REGIME)
    for markdown in (False, True):
        text = format_predictors(stats, REGIME, markdown=markdown, width=100)
        assert "nan" not in text
        # Two configurations per budget, both of one sign: no AUROC, too few for Spearman's interval.
        assert "AUROC n/a: it needs a definite gain of each sign." in text
        assert "(no CI)" in text and "its bootstrap interval needs >= 8 configurations (here 2)" in text
        assert "n/a everywhere: these runs did not compute the predictor." in text  # label_mi_gap
    one_seed = aggregate([s for s in summaries if s["seed"] == 0])  # no definite gain anywhere
    text = " ".join(format_agreement(report.agreement(one_seed), width=100).split())  # unwrapped
    assert "nan" not in text and "n/a (no configuration has a gain of definite sign)" in text
    write_report(summaries, tmp_path, regime=REGIME)
    assert "nan" not in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("width", [60, 100, 140])
def test_text_tables_fit_the_width_and_keep_the_labels(width, monkeypatch):
    configs = aggregate(_sweep(long_axis=True))
    stats = predictor_report(configs, REGIME)
    monkeypatch.setenv("COLUMNS", str(width))  # the default width is the terminal's
    for text in (format_table(configs), format_predictors(stats, REGIME),
                 format_agreement(report.agreement(configs))):
        assert max(len(line) for line in text.splitlines()) <= width
    words = " ".join(format_table(configs).split())
    assert all(" ".join(c["config"].split()) in words for c in configs)  # wrapped, not cut
    markdown = format_table(configs, markdown=True)
    assert all(f"| {c['config']} |" in markdown for c in configs)  # report.md: the full rows


def test_a_table_that_fits_is_one_line_per_row():
    configs = aggregate(_sweep(budgets=(5,), views="a"))
    lines = format_table(configs, width=200).splitlines()
    assert lines[0].startswith("configuration") and "seeds" in lines[0] and len(lines) == 3


# -- the plot and the files --------------------------------------------------------------------------------

def test_config_control_from_the_sweep_axis_or_the_pairing():
    configs = {c["teacher_view"]: c for c in aggregate(_sweep(budgets=(5,)))}
    assert (config_control(configs["a"]), config_control(configs["b"])) == ("none", "random_transfer_pairing")
    label = aggregate([{**_summary("c", 0, 0.0, 0.0, {}), "pairing": "label"}])[0]
    assert config_control(label) == "label"


def test_plot_draws_a_panel_per_dataset_with_and_without_a_regime(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    summaries = _sweep() + [{**s, "dataset": "other"} for s in _sweep(budgets=(5, 70))]
    panels = []
    real = plt.subplots
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: panels.append(a[:2]) or real(*a, **k))
    for regime in (REGIME, None):
        report.plot(aggregate(summaries), tmp_path / "p.png", "title", regime)
        assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert panels == [(1, 2), (1, 2)]


def test_the_plot_names_a_control_that_is_no_sweep_axis(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(report, "plot", lambda configs, path, title, regime: drawn.append((title, regime)))
    fixed = [{**s, "control": "random_transfer_pairing", "job": {"point": {REGIME: 5}}} for s in _sweep()]
    write_report(fixed, tmp_path, "t", regime=REGIME)
    write_report(_sweep(), tmp_path, "t", regime=REGIME)  # swept: the markers show it
    assert drawn == [("t (control: random_transfer_pairing)", REGIME), ("t", REGIME)]


def test_files_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "f.txt"
        target.write_text("old")
        target.chmod(0o600)
        _io.write_atomic(target, "new")  # a replaced file: the new file's mode, not the old one's
        assert stat.S_IMODE(target.stat().st_mode) == 0o644 and target.read_text() == "new"
        write_report(_sweep(), tmp_path / "report", regime=REGIME)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "report").iterdir()}
        assert modes == dict.fromkeys(("runs.csv", "configs.csv", "report.json", "report.md", "gain_vs_gap.png"),
                                      0o644)
        os.umask(0o077)
        _io.write_atomic(tmp_path / "private.txt", b"x")
        assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".*.tmp"))


# -- the package's layout ----------------------------------------------------------------------------

def test_every_name_the_callers_import_is_exported():
    for name in ("aggregate", "agreement", "auroc", "format_agreement", "format_failures", "format_predictors",
                 "format_table", "predictor_report", "spearman", "spearman_interval", "t975", "wilson",
                 "write_report", "PREDICTORS", "check_endpoints", "compute_endpoints", "format_endpoints",
                 "cluster_bootstrap", "holm"):
        assert name in report.__all__ and hasattr(report, name)


def test_report_modules_are_short_and_import_only_the_schema_and_each_other():
    allowed = ("cchmi.distill.report", "cchmi.distill.summary", "cchmi._io", "cchmi._extras")
    for path in PACKAGE.glob("*.py"):
        source = path.read_text()
        assert len(source.splitlines()) <= 450, path.name
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cchmi"):
                target = f"{node.module}.{node.names[0].name}" if node.module == "cchmi" else node.module
                assert target.startswith(allowed), (path.name, node.module)
                if node.module.startswith("cchmi.distill"):  # no private name across modules
                    assert not [a.name for a in node.names if a.name.startswith("_")], (path.name, node.module)


def test_an_unreliable_run_makes_its_configuration_undecided():
    point = {"budget.student_labels_per_class": 10}
    runs = [_summary("a", seed, 0.05, 0.5 + 0.01 * seed, point) for seed in range(3)]
    assert report.aggregate(runs)[0]["verdict"] == "distil"  # the seeds' gaps are all well above 0
    runs[1]["cch"]["reliability"] = {"reliable": False, "reasons": ["dims 64+64 are outside ..."]}
    assert report.aggregate(runs)[0]["verdict"] == "undecided"


def test_a_failed_cch_is_left_out_of_the_agreement_and_the_rank_correlation():
    point = {"budget.student_labels_per_class": 10}
    runs = [_summary(view, seed, gain, gap, point) for view, gain, gap in
            (("a", 0.05, 0.5), ("b", 0.02, 0.2), ("c", -0.03, -0.3), ("d", -0.06, -0.6)) for seed in range(3)]
    clean = report.agreement(report.aggregate(runs))
    for run in runs:
        if run["teacher_view"] == "d":
            run["cch"].update(i_ts=None, gap=None, gap_ci_low=None, gap_ci_high=None, verdict="failed")
    failed = report.agreement(report.aggregate(runs))
    assert failed["configurations"] == clean["configurations"] == 4
    assert failed["with_definite_gain"] == 3  # the failed configuration is no miss (nan ranked largest before)
    assert failed["agree"] == 3


def test_write_report_with_endpoints_and_the_pooled_intervals_labelled(tmp_path):
    runs = _sweep(budgets=(10, 70), views="abc", seeds=4)
    for run in runs:
        run["predictors"]["teacher_acc"] = {"value": run["accuracy"]["teacher"] + 0.01 * ord(run["teacher_view"])}
    endpoints = check_endpoints({"bootstrap": 100, "dose": [REGIME]}, [REGIME, "control"])
    write_report(runs, tmp_path, regime=REGIME, endpoints=endpoints)
    ends = json.loads((tmp_path / "report.json").read_text())["endpoints"]
    assert set(ends) == {"selection", "dose_response", "auroc", "power", "settings"}
    assert set(ends["selection"]) == {"cch_gap_logits", "teacher_minus_student_acc", "teacher_acc"}
    assert ends["auroc"]["cch_gap_logits"]["regimes"].keys() == {"10", "70"}
    text = (tmp_path / "report.md").read_text()
    assert "## Pre-registered endpoints" in text and "### Teacher selection" in text and "### Power" in text
    assert "assume independent configurations" in text
    write_report(runs, tmp_path / "plain", regime=REGIME)
    assert "endpoints" not in json.loads((tmp_path / "plain" / "report.json").read_text())
    assert "## Pre-registered endpoints" not in (tmp_path / "plain" / "report.md").read_text()
