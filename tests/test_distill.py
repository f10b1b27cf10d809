"""The reference KD trainer, the experiment runner and the report (torch, small sizes)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cchmi.data.synthetic import mfh_classification
from cchmi.distill import SplitConfig, TrainConfig, pairing_index, run_kd
from cchmi.distill.experiment import expand_jobs, run_experiment
from cchmi.distill.losses import kd_loss
from cchmi.distill.report import aggregate, agreement, spearman, t975, wilson, write_report
from cchmi.distill.trainer import split_indices

TINY = TrainConfig(epochs=3, hidden=16, batch_size=32, patience=3)


# -- pairing --------------------------------------------------------------------------------------

def test_pairings_keep_classes():
    labels = np.repeat(np.arange(4), 25)
    assert np.array_equal(pairing_index(labels, "aligned"), np.arange(100))
    lab = pairing_index(labels, "label", random_state=1)
    assert np.array_equal(labels[lab], labels) and np.all(lab != np.arange(100))
    assert np.array_equal(np.sort(lab), np.arange(100))  # a permutation
    moved = [np.mean(pairing_index(labels, "shuffled", 0.5, random_state=s) != np.arange(100)) for s in range(40)]
    assert 0.42 < np.mean(moved) < 0.52  # p, less the chosen rows alone in their class
    assert np.array_equal(pairing_index(labels, "shuffled", 0.0), np.arange(100))
    with pytest.raises(ValueError, match="pairing must be one of"):
        pairing_index(labels, "random")
    with pytest.raises(ValueError, match="probability p"):
        pairing_index(labels, "shuffled", 1.5)


# -- losses ---------------------------------------------------------------------------------------

def test_kd_loss_formula_and_scale():
    torch.manual_seed(0)
    s, t = torch.randn(8, 5, dtype=torch.float64), torch.randn(8, 5, dtype=torch.float64)
    temp = 3.0
    p = torch.softmax(t / temp, 1)
    manual = temp**2 * (p * (torch.log(p) - torch.log_softmax(s / temp, 1))).sum(1).mean()
    assert float(kd_loss(s, t, temp)) == pytest.approx(float(manual), rel=1e-12)
    assert float(kd_loss(t, t, temp)) == pytest.approx(0.0, abs=1e-12)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: kd_loss(a, t, temp), (s,))


# -- splits and configs ---------------------------------------------------------------------------

def test_split_indices_are_disjoint_and_stratified():
    labels = np.repeat(np.arange(5), 40)
    rows = split_indices(labels, SplitConfig(val=0.2, test=0.25, teacher=0.2, unlabelled=0.1),
                         np.random.default_rng(0))
    parts = [rows[k] for k in ("train", "val", "test", "teacher_only", "unlabelled")]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(200))
    assert np.array_equal(np.bincount(labels[rows["test"]]), np.full(5, 10))
    assert np.array_equal(rows["teacher_train"], rows["teacher_only"])
    plain = split_indices(labels, SplitConfig(), np.random.default_rng(0))
    assert np.array_equal(plain["teacher_train"], plain["train"]) and plain["unlabelled"].size == 0


@pytest.mark.parametrize("make,message", [
    (lambda: TrainConfig(epochs=0), "epochs must be >= 1"),
    (lambda: TrainConfig(temperature=0.0), "temperature"),
    (lambda: TrainConfig(model="resnet"), "model must be one of"),
    (lambda: TrainConfig.from_dict({"epoch": 3}), "unknown training option"),
    (lambda: SplitConfig(val=0.5, test=0.5), "sum to 1: they must leave rows for training"),
    (lambda: SplitConfig(test=0.0), "must be > 0"),
])
def test_config_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_split_fractions_have_no_floor_and_a_float_tolerance():
    """.1 + .2 + .3 + .3 was refused (its float sum exceeds .9, the old 10% floor); small training
    shares are fine as long as every class keeps training rows when the split is drawn."""
    labels = np.repeat(np.arange(3), 100)
    rows = split_indices(labels, SplitConfig(val=0.1, test=0.2, teacher=0.3, unlabelled=0.3), np.random.default_rng(0))
    assert rows["train"].size == 30 and np.unique(labels[rows["train"]]).size == 3
    rows = split_indices(labels, SplitConfig(val=0.3, test=0.3, teacher=0.3, unlabelled=0.07), np.random.default_rng(0))
    assert rows["train"].size == 9
    with pytest.raises(ValueError, match="the train split has fewer than two classes"):
        split_indices(np.repeat(np.arange(3), 10), SplitConfig(val=0.3, test=0.3, teacher=0.3, unlabelled=0.09),
                      np.random.default_rng(0))


# -- the trainer ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def task():
    return mfh_classification(400, shared=3, teacher_only=1, student_only=1, nuisance=1, random_state=0)


def test_run_kd_writes_logs_and_summary(task, tmp_path):
    s = run_kd(task, "teacher", "student", train=TINY, seed=1, out_dir=tmp_path)
    assert set(s["accuracy"]) == {"teacher", "baseline", "kd"}
    assert all(0.0 <= a <= 1.0 for a in s["accuracy"].values())
    assert s["gain"] == pytest.approx(s["accuracy"]["kd"] - s["accuracy"]["baseline"])
    assert s["cch"]["verdict"] in ("distil", "do not distil", "undecided")
    assert s["cch"]["n"] == s["n"]["val"] + s["n"]["test"] and s["cch"]["dims"] == [2, 2]  # logits of 2 classes
    assert len(s["config_hash"]) == 16 and len(s["data_fingerprint"]) == 16
    lines = [json.loads(x) for x in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert [sum(r["phase"] == ph for r in lines) for ph in ("teacher", "baseline", "kd")] == [3, 3, 3]
    assert all("loss_kd" in r for r in lines if r["phase"] == "kd")
    assert json.loads((tmp_path / "summary.json").read_text())["gain"] == s["gain"]


def test_run_kd_is_reproducible_and_paired(task):
    a = run_kd(task, "teacher", "student", train=TINY, seed=2)
    b = run_kd(task, "teacher", "student", train=TINY, seed=2)
    assert a["accuracy"] == b["accuracy"] and a["cch"]["gap"] == b["cch"]["gap"]
    # Same initial weights, batches and dropout masks: with a zero KD weight the KD student is the baseline.
    zero = run_kd(task, "teacher", "student", train=TrainConfig(epochs=3, hidden=16, kd_weight=0.0), seed=2)
    assert zero["gain"] == 0.0


def test_run_kd_options(task, tmp_path):
    opts = TrainConfig(epochs=2, hidden=16, feature_kd_weight=0.5)
    s = run_kd(task, "teacher", "student", train=opts, split=SplitConfig(teacher=0.2, unlabelled=0.2),
               pairing="shuffled", p=0.5, cch_representation="features", cch_pca=3, seed=0, out_dir=tmp_path)
    assert s["n"]["teacher_only"] > 0 and s["n"]["unlabelled"] > 0
    assert s["cch"]["dims"] == [3, 3]
    kd_lines = [json.loads(x) for x in (tmp_path / "run.jsonl").read_text().splitlines() if '"kd"' in x]
    assert all(r["loss_feature_kd"] > 0 for r in kd_lines)
    with pytest.raises(ValueError, match="has no view"):
        run_kd(task, "teacher", "audio", train=TINY)
    with pytest.raises(ValueError, match="pairing must be one of"):
        run_kd(task, "teacher", "student", pairing="random", train=TINY)
    with pytest.raises(ValueError, match="needs a view that is an image"):
        run_kd(task, "teacher", "student", train=TrainConfig(model="cnn", epochs=1))


@pytest.mark.slow
def test_cnn_on_image_views():
    from cchmi.data.multiview import MultiView, fashion_views

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 120)
    images = (rng.random((120, 28, 28)) * 80 + labels[:, None, None] * 60).astype(np.uint8)
    data = MultiView("toy", fashion_views(images), labels, "toy images",
                     image_shapes={"top": (1, 14, 28), "bottom": (1, 14, 28)})
    cnn = TrainConfig(model="cnn", epochs=20, hidden=16, lr=3e-3, batch_size=16)
    s = run_kd(data, "top", "bottom", train=cnn, seed=0)
    assert s["accuracy"]["teacher"] > 0.6  # brightness tells the classes apart; chance is 1/3


# -- the report -----------------------------------------------------------------------------------

def test_statistics_helpers():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 9, 30, 45, 200):
        assert t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=3e-3)
    lo, hi = wilson(8, 10)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert all(math.isnan(v) for v in wilson(0, 0))
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(30), rng.standard_normal(30)
    b[:5] = b[0]  # ties
    assert spearman(a, b) == pytest.approx(scipy_stats.spearmanr(a, b).statistic, abs=1e-12)
    assert math.isnan(spearman(a, np.ones(30)))


def _fake_summary(teacher_view, seed, gain, gap, pairing="aligned"):
    return {
        "dataset": "toy", "teacher_view": teacher_view, "student_view": "s", "pairing": pairing, "p": 0.0,
        "seed": seed, "accuracy": {"teacher": 0.9, "baseline": 0.8, "kd": 0.8 + gain}, "gain": gain,
        "cch": {"i_ts": 1.0 + gap, "i_sy": 1.0, "gap": gap, "gap_ci_low": gap - 0.1, "gap_ci_high": gap + 0.1,
                "verdict": "distil" if gap > 0.1 else "undecided"},
        "seconds": 1.0, "config_hash": f"{teacher_view}{seed}",
    }


def test_aggregate_and_agreement(tmp_path):
    summaries = []
    for seed, noise in enumerate([-0.002, 0.0, 0.002]):
        summaries.append(_fake_summary("helps", seed, 0.05 + noise, 0.5 + noise))
        summaries.append(_fake_summary("hurts", seed, -0.04 + noise, -0.3 + noise))
        summaries.append(_fake_summary("wrong", seed, 0.03 + noise, -0.2 + noise))
        summaries.append(_fake_summary("noise", seed, [0.05, -0.05, 0.0][seed], 0.01 * seed))
    configs = {c["config"].split("->")[0]: c for c in aggregate(summaries)}
    assert configs["helps"]["gain_sign"] == "+" and configs["helps"]["verdict"] == "distil"
    assert configs["hurts"]["agree"] == "yes" and configs["wrong"]["agree"] == "no"
    assert configs["noise"]["gain_sign"] == "0" and configs["noise"]["agree"] == ""
    assert configs["helps"]["gain_sd"] == pytest.approx(0.002)
    stats = agreement(list(configs.values()))
    assert stats["with_definite_gain"] == 3 and stats["agree"] == 2
    assert stats["agreement"] == pytest.approx(2 / 3)
    assert (stats["gains_positive"], stats["gains_negative"]) == (2, 1)
    assert stats["majority_baseline"] == pytest.approx(2 / 3)
    written = write_report(summaries, tmp_path)
    assert written["agree"] == 2
    for name in ("runs.csv", "configs.csv", "report.json", "report.md", "gain_vs_gap.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "gain_vs_gap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the experiment runner ------------------------------------------------------------------------

CONFIG = {
    "name": "tiny",
    "seeds": 2,
    "pairs": [["teacher", "student"]],
    "data": {"name": "mfh", "n": 300, "shared": 2, "teacher_only": 1, "student_only": 1, "nuisance": 1},
    "train": {"epochs": 2, "hidden": 16},
    "sweep": {"pairing": ["aligned", "label"]},
}


def test_expand_jobs():
    jobs = expand_jobs(CONFIG)
    assert len(jobs) == 4 and len({j["key"] for j in jobs}) == 4
    assert expand_jobs(CONFIG)[0]["key"] == jobs[0]["key"]  # stable
    mfeat = expand_jobs({"data": {"name": "mfeat"}, "seeds": [0]})
    assert len(mfeat) == 30  # every ordered pair of six views
    for bad, message in [
        ({**CONFIG, "colour": 1}, "unknown config key"),
        ({**CONFIG, "seeds": 0}, "seeds must be"),
        ({**CONFIG, "pairs": [["teacher", "audio"]]}, "is not a view"),
        ({**CONFIG, "sweep": {"lr": [1e-3]}}, "sweep key"),
        ({**CONFIG, "sweep": {"pairing": []}}, "non-empty list"),
        ({**CONFIG, "data": {"name": "imagenet"}}, "data.name must be one of"),
        ({**CONFIG, "cch": {"estimator": "mine"}}, "unknown cch option"),
    ]:
        with pytest.raises(ValueError, match=message):
            expand_jobs(bad)


@pytest.mark.slow
def test_run_experiment_resumes(tmp_path):
    first = run_experiment(CONFIG, tmp_path, progress=False)
    assert len(first) == 4
    stamps = sorted(p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/summary.json"))
    again = run_experiment(CONFIG, tmp_path, progress=False)  # everything done: nothing reruns
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/summary.json")) == stamps
    assert [s["gain"] for s in again] == [s["gain"] for s in first]
    bigger = run_experiment({**CONFIG, "seeds": 3}, tmp_path, progress=False)  # only the new seed runs
    assert len(bigger) == 6
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.glob("runs/*/summary.json"))[:4] == stamps


@pytest.mark.slow
def test_torchrun_ddp_matches_one_process(tmp_path):
    """Two processes (gloo on the CPU) share each batch; without dropout the gradient average equals
    the one-process batch gradient, so the results are those of a one-process run."""
    import subprocess
    import sys

    config = tmp_path / "tiny.toml"
    config.write_text('name = "tiny"\nseeds = 1\npairs = [["teacher", "student"]]\n[data]\nname = "mfh"\nn = 300\n'
                      "[train]\nepochs = 3\nhidden = 16\ndropout = 0.0\n")
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "cchmi",
         "experiment", str(config), "--out", str(tmp_path / "ddp"), "--no-progress"],
        capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr
    assert ddp.stdout.count("teacher->student aligned") == 1  # one report, from rank 0
    single = run_experiment({"name": "tiny", "seeds": 1, "pairs": [["teacher", "student"]],
                             "data": {"name": "mfh", "n": 300}, "train": {"epochs": 3, "hidden": 16, "dropout": 0.0}},
                            tmp_path / "single", progress=False)
    summary = json.loads(next((tmp_path / "ddp").glob("runs/*/summary.json")).read_text())
    assert summary["accuracy"] == single[0]["accuracy"]
    assert summary["config_hash"] == single[0]["config_hash"]
