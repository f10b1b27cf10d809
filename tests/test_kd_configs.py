"""The bundled experiment configs of the CCH issue (primary, knobs, transfer, GPU) are valid and make
the jobs their headers say; the datasets of the sweep registry (emoji, miniACC beside mfeat, mfh,
Fashion-MNIST) check their options by name before any job runs; the shared nuisance knob adds
I(T;S) and no label information, and at strength 0 leaves the data bit-identical."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from cchmi.data import registry
from cchmi.data.multiview import load_mfeat
from cchmi.data.views import add_nuisance, with_view
from cchmi.estimators.gaussian import gaussian_label_mi, gaussian_mi

pytest.importorskip("torch")

from cchmi.distill import sweep  # noqa: E402
from cchmi.distill.sweep import config as sweep_config  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "cchmi" / "distill" / "configs"
# The CCH issue's configs and their job counts (sweep points x view pairs x seeds), as their headers say.
ISSUE_CONFIGS = {
    "primary_digits.toml": 600,  # 15 pairs x 2 N x 20 seeds
    "primary_emoji.toml": 240,  # 12 pairs x 20 seeds
    "primary_omics.toml": 400,  # 20 pairs x 20 seeds
    "knobs_digits.toml": 200,  # 5 p x 2 pairs x 20 seeds
    "knobs_nuisance_digits.toml": 160,  # 4 levels x 2 pairs x 20 seeds
    "transfer_digits.toml": 200,  # 2 controls x 5 pairs x 20 seeds
    "transfer_repair_digits.toml": 120,  # 3 p x 2 pairs x 20 seeds
    "gpu/fashion_70k.toml": 1200,  # 3 blurs x 2 budgets x 4 pairs x 50 seeds
    "gpu/emoji_cnn.toml": 600,  # 12 pairs x 50 seeds
}


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.toml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_bundled_config_is_checked_and_expands(path):
    config = sweep.load_config(path)
    assert config.jobs and len({job["key"] for job in config.jobs}) == len(config.jobs)
    assert isinstance(config.endpoints, dict) and config.endpoints["comparator"] == "teacher_acc"


@pytest.mark.parametrize("name", sorted(ISSUE_CONFIGS))
def test_the_issue_configs_make_the_runs_their_headers_say(name):
    text = (CONFIGS / name).read_text()
    config = sweep.load_config(CONFIGS / name)
    assert len(config.jobs) == ISSUE_CONFIGS[name]
    assert re.search(rf"\b{ISSUE_CONFIGS[name]} runs\b", text), "the header states the number of runs"
    assert "Endpoints fixed before any run" in text and "[endpoints]" in text
    values = config.values
    assert len(values["seeds"]) >= (50 if name.startswith("gpu/") else 20)
    assert values["cch"]["estimator"] == "ksg" and values["cch"]["representation"] == "logits"
    assert values["cch"]["k"] == 3 and "gaussian" in values["cch"]["sensitivity"]
    assert values["train"]["hidden"] == 64 and values["train"]["steps"] == 300
    # miniACC's 43 patients need more validation rows for the MI intervals (its header says why)
    assert values["split"] == {"val": 0.4 if name == "primary_omics.toml" else 0.2, "test": 0.3}
    job_config = sweep.job_config(config.jobs[-1])
    assert job_config.regime == ("transfer" if name.startswith("transfer") else "primary")
    if name.startswith("gpu/"):
        assert "FOR A GPU" in text
    for axis in config.endpoints["dose"]:
        assert axis in values["sweep"]


def test_the_primary_digits_config_gives_every_student_all_five_teachers():
    config = sweep.load_config(CONFIGS / "primary_digits.toml")
    pairs = {(job["teacher_view"], job["student_view"]) for job in config.jobs}
    for student in ("fourier", "karhunen_loeve", "zernike"):
        assert {t for t, s in pairs if s == student} == set(registry.view_names({"name": "mfeat"})) - {student}


# ---- the registry: options checked by name, before any job --------------------------------------------

@pytest.mark.parametrize("data, named", [
    ({"name": "emoji", "colour": True}, "colour"),
    ({"name": "emoji", "image_size": 2}, "data.image_size"),
    ({"name": "emoji", "languages": "en"}, "data.languages"),
    ({"name": "emoji", "label": "emotion"}, "data.label"),
    ({"name": "emoji", "speech": 1}, "data.speech"),
    ({"name": "emoji", "voices": ["en-us"]}, "data.voices"),
    ({"name": "emoji", "max_items": 1}, "data.max_items"),
    ({"name": "miniacc", "assays": ["RNASeq2GeneNorm", "proteome"]}, "data.assays"),
    ({"name": "miniacc", "label": "survival"}, "data.label"),
    ({"name": "miniacc", "log_counts": "yes"}, "data.log_counts"),
    ({"name": "miniacc", "root": 3}, "data.root"),
    ({"name": "fashion_mnist", "degraded_sigma": -1.0, "views": ["image", "degraded"]}, "degraded_sigma"),
    ({"name": "fashion_mnist", "degraded_noise": 0.5}, "degraded_noise"),
    ({"name": "mfeat", "nuisance": -0.5}, "data.nuisance"),
    ({"name": "mfeat", "nuisance_dims": 0}, "data.nuisance_dims"),
])
def test_dataset_options_are_refused_by_name(data, named):
    with pytest.raises((ValueError, TypeError), match=re.escape(named)):
        registry.check_data(data)


def test_the_registry_names_views_for_pairs_all():
    assert registry.view_names({"name": "emoji", "languages": ["en", "de"], "speech": True}) == [
        "image", "text_en", "text_de", "speech"]
    assert registry.view_names({"name": "emoji"}) == ["image", "text_en", "text_de", "text_ja"]
    assert registry.view_names({"name": "miniacc", "assays": ["gistict", "Mutations"]}) == ["gistict", "Mutations"]
    config = sweep.check_config({"data": {"name": "miniacc", "assays": ["gistict", "Mutations", "RPPAArray"]},
                                 "seeds": 1})
    assert len(config.jobs) == 6
    with pytest.raises(ValueError, match="'text_fr' is not a view of emoji"):
        sweep.check_config({"data": {"name": "emoji", "languages": ["en"]}, "pairs": [["text_fr", "image"]]})


def test_a_swept_data_option_is_checked_at_every_point():
    with pytest.raises(ValueError, match=r"data.image_size.*sweep point"):
        sweep.check_config({"data": {"name": "emoji"}, "sweep": {"data.image_size": [16, 1]}})


def test_the_nuisance_refuses_image_views_by_name():
    with pytest.raises(ValueError, match="'image' of emoji is an image"):
        sweep.check_config({"data": {"name": "emoji", "nuisance": 0.5}})
    config = sweep.check_config({"data": {"name": "emoji", "nuisance": 0.5}, "pairs": [["text_en", "text_de"]]})
    assert len(config.jobs) == 3
    data = with_view(load_mfeat(["fourier"]), "glyph", np.zeros((2000, 1, 2, 2)), image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="view 'glyph' of mfeat is an image"):
        add_nuisance(data, 1.0, views=["glyph", "fourier"])
    assert add_nuisance(data, 1.0).views["glyph"].shape == (2000, 4)  # images are left as they are


def test_endpoints_are_checked_with_the_config():
    base = {"data": {"name": "mfeat"}, "seeds": 1, "pairs": [["pixel", "fourier"]], "sweep": {"p": [0.0, 1.0]},
            "control": "within_class_shuffle"}
    config = sweep.check_config({**base, "endpoints": {"dose": ["p"], "bootstrap": 500}})
    assert config.endpoints["dose"] == ["p"] and config.endpoints["bootstrap"] == 500
    assert config.endpoints["primary"] == "cch_gap_logits"  # the defaults filled in
    assert sweep.check_config(dict(config.values)).endpoints == config.endpoints
    with pytest.raises(ValueError, match="endpoints.dose"):
        sweep.check_config({**base, "endpoints": {"dose": ["data.nuisance"]}})
    with pytest.raises(ValueError, match="endpoints.power"):
        sweep.check_config({**base, "endpoints": {"power": 0.8}})


# ---- the nuisance knob -------------------------------------------------------------------------------

def test_nuisance_zero_leaves_the_data_bit_identical():
    plain = load_mfeat()
    loaded = registry.load_data({"name": "mfeat", "nuisance": 0.0, "nuisance_dims": 4}, seed=3)
    assert list(loaded.views) == list(plain.views)
    for name, values in plain.views.items():
        assert loaded.views[name].dtype == values.dtype and np.array_equal(loaded.views[name], values)
    assert np.array_equal(loaded.labels, plain.labels) and "nuisance" not in loaded.extra
    assert add_nuisance(plain, 0.0) is plain


def test_nuisance_raises_the_views_mi_and_adds_no_label_information():
    plain = load_mfeat(["fourier", "zernike"])
    t, s, y = plain.views["fourier"], plain.views["zernike"], plain.labels
    base_ts = gaussian_mi(t, s)
    base_label = {name: gaussian_label_mi(v, y) for name, v in plain.views.items()}
    previous = base_ts
    for strength in (0.5, 1.0, 2.0):
        data = registry.load_data({"name": "mfeat", "views": ["fourier", "zernike"], "nuisance": strength}, seed=0)
        assert np.array_equal(data.labels, y)
        for name, values in plain.views.items():
            assert data.views[name].shape == (plain.n, values.shape[1] + 8)
            assert np.array_equal(data.views[name][:, :values.shape[1]], values)  # the original columns untouched
            # LDA label MI: the 8 appended columns carry none (their estimate's bias: 8 x 9 / (2 n) = 0.018 nats)
            assert abs(gaussian_label_mi(data.views[name], y) - base_label[name]) < 0.05
        added = data.extra["nuisance"]["added_i_ts_nats"]
        rho = strength**2 / (1 + strength**2)
        assert added == pytest.approx(-4 * math.log(1 - rho**2))
        ts = gaussian_mi(data.views["fourier"], data.views["zernike"])
        assert ts > previous  # rises with the strength
        # the canonical correlations' upward bias, about d_t d_s / (2 n), grows by the appended dims
        (d_t, d_s), n = (t.shape[1], s.shape[1]), plain.n
        bias = ((d_t + 8) * (d_s + 8) - d_t * d_s) / (2 * n)
        assert ts - base_ts == pytest.approx(added + bias, abs=0.1 + 0.05 * added)
        columns = gaussian_mi(data.views["fourier"][:, -8:], data.views["zernike"][:, -8:])
        assert columns == pytest.approx(added, abs=0.05 + 0.05 * added)
        previous = ts


def test_nuisance_is_a_fixed_draw_per_view():
    """The same columns for every run seed and whichever other views are loaded; levels share the draw."""
    one = registry.load_data({"name": "mfeat", "views": ["pixel", "fourier"], "nuisance": 1.0}, seed=0)
    other = registry.load_data({"name": "mfeat", "views": ["fourier"], "nuisance": 1.0}, seed=7)
    assert np.array_equal(one.views["fourier"], other.views["fourier"])
    strong = registry.load_data({"name": "mfeat", "views": ["fourier"], "nuisance": 2.0}, seed=0)
    weak_cols, strong_cols = one.views["fourier"][:, -8:], strong.views["fourier"][:, -8:]
    assert np.corrcoef(weak_cols[:, 0], strong_cols[:, 0])[0, 1] > 0.8
    assert abs(np.std(strong_cols) - 1) < 0.05  # unit-variance columns at every strength


# ---- the real datasets, through the sweep's loader ---------------------------------------------------

def _emoji_or_skip():
    from cchmi.data.emoji import EMOJI_FILES, emoji_files

    try:
        emoji_files(None)
    except FileNotFoundError:
        pytest.skip(f"emoji data absent: install {' '.join(sorted({pkg for _, pkg in EMOJI_FILES.values()}))}")


def _miniacc_or_skip():
    pytest.importorskip("rdata", reason="load_miniacc reads miniACC.RData with the rdata package")
    from cchmi.data.omics import MINIACC_DEFAULT_ROOT, MINIACC_FILE

    folder = Path(os.environ.get("CCHMI_MINIACC") or MINIACC_DEFAULT_ROOT)
    if not (folder / MINIACC_FILE).is_file():
        pytest.skip("miniACC absent: install r-bioc-multiassayexperiment (or set CCHMI_MINIACC)")


def test_emoji_loads_through_the_sweep_with_the_nuisance_on_its_text_views():
    _emoji_or_skip()
    data = {"name": "emoji", "languages": ["en", "de"], "image_size": 8, "max_items": 300, "nuisance": 1.0}
    registry.check_data(data)
    first, second = registry.load_data(data, seed=0), registry.load_data(data, seed=1)
    assert list(first.views) == registry.view_names(data) == ["image", "text_en", "text_de"]
    assert first.views["image"].shape[1] == 3 * 8 * 8  # the image is left as it is
    assert first.views["text_en"].shape[1] == 512 + 8 and first.extra["nuisance"]["views"] == ["text_en", "text_de"]
    for name in first.views:  # a copy per load (kept per process), the same values
        assert np.array_equal(first.views[name], second.views[name])
        assert not np.shares_memory(first.views[name], second.views[name])


def test_miniacc_loads_through_the_sweep():
    _miniacc_or_skip()
    data = {"name": "miniacc", "label": "vital_status", "nuisance": 0.5}
    loaded = sweep_config.load_dataset(data, seed=0)
    assert list(loaded.views) == registry.view_names(data)
    assert loaded.n == 43 and sorted(np.bincount(loaded.labels)) == [13, 30]
    assert loaded.views["RPPAArray"].shape == (43, 33 + 8)
