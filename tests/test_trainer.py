"""The reference KD trainer: pairings, losses, splits, run_kd (torch, small sizes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cchmi.data.synthetic import mfh_classification
from cchmi.distill import SplitConfig, TrainConfig, pairing_index, run_kd
from cchmi.distill.losses import kd_loss
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
