"""The real co-observed datasets read from Debian packages (cchmi.data.emoji, .omics, .views): each
loader on a small real sample. A test that needs a package skips, naming it, where it is absent;
.ci/data_packages installs them (and unpacks miniACC; its last line is the CCHMI_MINIACC export)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cchmi.data import emoji as E
from cchmi.data.emoji import (
    EMOJI_VOICES,
    hash_text_features,
    load_emoji,
    log_mel_summary,
    mel_filterbank,
    read_emoji_test,
)
from cchmi.data.multiview import MultiView, load_fashion_mnist
from cchmi.data.omics import MINIACC_ASSAYS, load_miniacc
from cchmi.data.views import add_degraded_view, degraded_view, with_view


def _emoji_or_skip(**kwargs) -> MultiView:
    try:
        return load_emoji(**kwargs)
    except FileNotFoundError as exc:
        pytest.skip(f"emoji packages absent: {exc}")


def _miniacc_or_skip(**kwargs) -> MultiView:
    try:
        return load_miniacc(**kwargs)
    except FileNotFoundError as exc:
        pytest.skip(f"r-bioc-multiassayexperiment absent (run .ci/data_packages, export CCHMI_MINIACC): {exc}")


@pytest.fixture(scope="module")
def emoji_sample() -> MultiView:
    return _emoji_or_skip(languages=("en", "ja"), max_items=60, image_size=16, random_state=0)


# --- emoji: image <-> text ---------------------------------------------------------------------------------


def test_emoji_sample_views_shapes_and_labels(emoji_sample):
    mv = emoji_sample
    assert mv.n == 60 and set(mv.views) == {"image", "text_en", "text_ja"}
    assert mv.views["image"].shape == (60, 3 * 16 * 16) and mv.image_shapes["image"] == (3, 16, 16)
    assert mv.views["image"].dtype == np.float32 and 0.0 <= mv.views["image"].min() <= mv.views["image"].max() <= 1.0
    for lang in ("en", "ja"):
        text = mv.views[f"text_{lang}"]
        assert text.shape == (60, 512) and np.allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    # labels are 0..C-1 in emoji-test.txt order and name each item's group
    classes = mv.extra["classes"]
    assert sorted(set(mv.labels.tolist())) == list(range(len(classes)))
    assert [classes[c] for c in mv.labels] == mv.extra["groups"]
    assert set(classes) <= {"Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink",
                            "Travel & Places", "Activities", "Objects", "Symbols", "Flags"}
    assert "Emoji" in mv.description and mv.citation and "SIL Open Font" in mv.licence


def test_emoji_full_set_counts():
    """All items (tiny images, one language): about 1,870 emoji without skin tones, 9 groups, 99
    subgroups; the few CLDR 41 does not name yet are left out, with the reason."""
    mv = _emoji_or_skip(languages=("en",), image_size=4, grey=True, label="subgroup", text_dim=16)
    assert 1800 <= mv.n <= 1900 and mv.n_classes == 99 and len(set(mv.extra["groups"])) == 9
    assert mv.views["image"].shape == (mv.n, 16) and mv.image_shapes["image"] == (1, 4, 4)
    assert all(reason.startswith("no CLDR name") for reason in mv.extra["left_out"].values())
    assert not any(0x1F3FB <= ord(ch) <= 0x1F3FF for e in mv.extra["emoji"] for ch in e)


def test_emoji_is_deterministic_for_a_seed(emoji_sample):
    again = _emoji_or_skip(languages=("en", "ja"), max_items=60, image_size=16, random_state=0)
    assert again.extra["emoji"] == emoji_sample.extra["emoji"]
    for name, view in emoji_sample.views.items():
        assert np.array_equal(view, again.views[name])
    other = _emoji_or_skip(languages=("en", "ja"), max_items=60, image_size=16, random_state=1)
    assert other.extra["emoji"] != emoji_sample.extra["emoji"]


def test_emoji_missing_packages_are_named(tmp_path):
    packages = "fonts-noto-color-emoji unicode-cldr-core unicode-data"
    with pytest.raises(FileNotFoundError, match=f"apt-get install {packages}"):
        load_emoji(root=tmp_path)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"languages": "en"}, "languages must be a non-empty list"),
    ({"languages": ("en", "en")}, "languages must be a non-empty list of distinct"),
    ({"languages": ("../en",)}, "languages must be CLDR locale names"),
    ({"label": "colour"}, "label must be one of"),
    ({"image_size": 200}, "image_size must be between 4 and 136"),
    ({"speech": True, "voices": ()}, "voices must be a non-empty list"),
])
def test_emoji_refuses_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_emoji(**kwargs)


def test_emoji_unknown_language_lists_the_known_ones():
    with pytest.raises(ValueError, match="no CLDR annotations for 'xx'.*there are"):
        _emoji_or_skip(languages=("en", "xx"), max_items=3)


def test_read_emoji_test_skips_skin_tones_and_keeps_groups(tmp_path):
    path = tmp_path / "emoji-test.txt"
    pad = " " * 40
    path.write_text("# group: People & Body\n# subgroup: hand-fingers-open\n"
                    f"1F44B{pad}; fully-qualified     # \U0001F44B E0.6 waving hand\n"
                    f"1F44B 1F3FB{pad}; fully-qualified     # \U0001F44B\U0001F3FB E1.0 waving hand: light skin tone\n"
                    f"263A{pad}; unqualified         # \u263A E0.6 smiling face\n", encoding="utf-8")
    assert read_emoji_test(path) == [("\U0001F44B", "waving hand", "People & Body", "hand-fingers-open")]


def test_hash_text_features_is_row_wise_and_documented():
    feats = hash_text_features(["cat | kitten", "cat | kitten", "dog", ""], dim=64)
    assert feats.shape == (4, 64) and feats.dtype == np.float32
    assert np.array_equal(feats[0], feats[1]) and not np.array_equal(feats[0], feats[2])
    assert not feats[3].any()  # an empty text: a zero row
    # the same row alone gives the same vector: nothing is fitted across rows
    assert np.array_equal(hash_text_features(["dog"], dim=64)[0], feats[2])
    with pytest.raises(ValueError, match="ngrams must be"):
        hash_text_features(["a"], ngrams=(3, 1))


# --- emoji: speech --------------------------------------------------------------------------------------------


def test_log_mel_summary_finds_a_tone():
    rate = E.SAMPLE_RATE
    t = np.arange(rate // 2) / rate
    tone = np.concatenate([np.zeros(2000), 0.5 * np.sin(2 * np.pi * 1000.0 * t), np.zeros(2000)])
    summary = log_mel_summary(tone)
    assert summary.shape == (2 * E.N_MELS,) and summary.dtype == np.float32
    bank = mel_filterbank()
    assert bank.shape == (E.N_MELS, E.FRAME // 2 + 1) and np.isclose(bank.max(), 1.0, atol=0.1)
    loudest = int(np.argmax(summary[:E.N_MELS]))
    assert bank[loudest, int(round(1000.0 * E.FRAME / rate))] > 0.5
    assert summary[E.N_MELS + loudest] < 0.1  # a steady tone, with its silence cut: its band barely moves
    assert np.all(np.isfinite(log_mel_summary(np.zeros(10))))


def test_speak_names_the_package_when_espeak_is_missing(monkeypatch):
    monkeypatch.setattr(E.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        E.speak("cat", "en-us", 170, 50)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng absent: apt-get install espeak-ng")
def test_emoji_speech_view_is_seeded():
    mv = _emoji_or_skip(languages=("en",), max_items=4, image_size=8, speech=True, random_state=5)
    assert mv.views["speech"].shape == (4, 80) and np.all(np.isfinite(mv.views["speech"]))
    assert set(mv.extra["speech"]["voice"]) <= set(EMOJI_VOICES) and "SYNTHETIC speech" in mv.description
    assert all(E.EMOJI_RATE[0] <= r <= E.EMOJI_RATE[1] for r in mv.extra["speech"]["rate"])
    again = load_emoji(languages=("en",), max_items=4, image_size=8, speech=True, random_state=5)
    assert np.array_equal(mv.views["speech"], again.views["speech"])


# --- TCGA adrenocortical carcinoma (miniACC) -------------------------------------------------------------------


def test_miniacc_all_assays_of_the_same_patients():
    mv = _miniacc_or_skip()
    assert mv.n == 43 and tuple(mv.views) == MINIACC_ASSAYS
    dims = {name: view.shape[1] for name, view in mv.views.items()}
    assert dims == {"RNASeq2GeneNorm": 198, "gistict": 198, "RPPAArray": 33, "Mutations": 97, "miRNASeqGene": 471}
    assert all(view.shape[0] == 43 and np.all(np.isfinite(view)) for view in mv.views.values())
    assert set(np.unique(mv.views["Mutations"])) == {0.0, 1.0}
    assert set(np.unique(mv.views["gistict"])) <= {-2.0, -1.0, 0.0, 1.0, 2.0}
    assert mv.extra["classes"] == ["alive", "deceased"] and np.bincount(mv.labels).tolist() == [30, 13]
    assert "exploratory" in mv.description and "Zheng" in mv.citation


def test_miniacc_values_and_labels_match_the_source():
    """RNA-seq of DIRAS3 and MAPK14 for patient TCGA-OR-A5J1 as R prints them (the column-major matrix
    read the right way round); dropping RPPA keeps more patients; stage labels are clinical."""
    mv = _miniacc_or_skip(assays=("RNASeq2GeneNorm",), log_counts=False)
    row = mv.extra["patients"].index("TCGA-OR-A5J1")
    genes = mv.extra["features"]["RNASeq2GeneNorm"]
    assert np.isclose(mv.views["RNASeq2GeneNorm"][row, genes.index("DIRAS3")], 1487.0317)
    assert np.isclose(mv.views["RNASeq2GeneNorm"][row, genes.index("MAPK14")], 778.5783)
    logged = load_miniacc(assays=("RNASeq2GeneNorm",))
    assert np.allclose(logged.views["RNASeq2GeneNorm"], np.log2(1.0 + mv.views["RNASeq2GeneNorm"]))
    assert load_miniacc(assays=[a for a in MINIACC_ASSAYS if a != "RPPAArray"]).n == 75
    stage = load_miniacc(label="pathologic_stage")
    assert stage.extra["classes"] == ["stage i", "stage ii", "stage iii", "stage iv"]
    assert np.bincount(stage.labels).tolist() == [2, 24, 10, 7]
    late = load_miniacc(label="stage_late")
    assert np.array_equal(late.labels, (stage.labels >= 2).astype(np.int64))


def test_miniacc_missing_file_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="r-bioc-multiassayexperiment.*apt-get download"):
        load_miniacc(root=tmp_path)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"assays": "gistict"}, "assays must be a non-empty list"),
    ({"assays": ("gistict", "RNA")}, "assays must be a non-empty list of distinct names"),
    ({"label": "COC"}, "label must be one of"),
])
def test_miniacc_refuses_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_miniacc(**kwargs)


# --- degraded whole-image view -----------------------------------------------------------------------------------


def test_degraded_view_blur_and_noise():
    flat = np.full((3, 10, 12), 0.5, dtype=np.float32)
    assert np.array_equal(degraded_view(flat, sigma=0.0, noise=0.0), flat)
    assert np.allclose(degraded_view(flat, sigma=2.0, noise=0.0), 0.5)  # normalised kernel, mirrored edges
    noisy = degraded_view(flat, sigma=1.0, noise=0.3, random_state=4)
    assert noisy.shape == flat.shape and noisy.dtype == np.float32 and abs((noisy - 0.5).std() - 0.3) < 0.03
    assert np.array_equal(noisy, degraded_view(flat, sigma=1.0, noise=0.3, random_state=4))
    assert not np.array_equal(noisy, degraded_view(flat, sigma=1.0, noise=0.3, random_state=5))
    with pytest.raises(ValueError, match="images must be a non-empty"):
        degraded_view(flat[0])
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        degraded_view(flat, noise=-1.0)


def test_add_degraded_view_on_fashion_mnist():
    try:
        mv = load_fashion_mnist(split="test", n=50, views=["top", "bottom"])
    except FileNotFoundError as exc:
        pytest.skip(f"dataset-fashion-mnist absent: {exc}")
    images = np.concatenate([mv.views["top"], mv.views["bottom"]], axis=1).reshape(50, 28, 28)
    out = add_degraded_view(mv, images, sigma=1.5, noise=0.2, random_state=0)
    assert set(out.views) == {"top", "bottom", "degraded"} and "degraded" not in mv.views
    assert out.views["degraded"].shape == (50, 784) and out.image_shapes["degraded"] == (1, 28, 28)
    assert out.extra["degraded"] == {"sigma": 1.5, "noise": 0.2} and out.views["top"] is mv.views["top"]
    expected = degraded_view(images, 1.5, 0.2, random_state=0).reshape(50, -1)
    assert np.array_equal(out.views["degraded"], expected)
    with pytest.raises(ValueError, match="already has a view 'top'"):
        with_view(mv, "top", images)
    with pytest.raises(ValueError, match="values must be .* with n=50 rows"):
        with_view(mv, "x", images[:10])
    with pytest.raises(ValueError, match="image_shape must be"):
        with_view(mv, "x", images, image_shape=(1, 28, 27))
