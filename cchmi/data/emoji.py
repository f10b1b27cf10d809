"""Emoji as co-observed modalities, all offline from Debian packages: the glyph (image), its CLDR name
and keywords in several languages (text), and, optionally, its English name spoken by espeak-ng
(synthetic speech). Labels: the Unicode emoji group (9 classes) or subgroup (about 100).

* ``fonts-noto-color-emoji``: NotoColorEmoji.ttf, a colour bitmap (CBDT) font drawn at its one
  strike, 109 px (a 136 x 128 glyph), by Pillow with complex layout (raqm) so that ZWJ sequences,
  flags and keycaps become one glyph;
* ``unicode-data``: emoji/emoji-test.txt, the fully-qualified emoji with their group and subgroup;
* ``unicode-cldr-core``: cldr/common/annotations{,Derived}/<language>.xml, names and keywords;
* ``espeak-ng`` (only with ``speech=True``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np

from cchmi import _validate as V
from cchmi._extras import require
from cchmi.data.multiview import MultiView

EMOJI_DEFAULT_ROOT = "/usr"
EMOJI_FILES = {  # path under root -> the Debian package that installs it
    "font": ("share/fonts/truetype/noto/NotoColorEmoji.ttf", "fonts-noto-color-emoji"),
    "emoji_test": ("share/unicode/emoji/emoji-test.txt", "unicode-data"),
    "annotations": ("share/unicode/cldr/common/annotations", "unicode-cldr-core"),
    "derived": ("share/unicode/cldr/common/annotationsDerived", "unicode-cldr-core"),
}
EMOJI_LABELS = ("group", "subgroup")
EMOJI_LANGUAGES = ("en", "de", "ja")
EMOJI_VOICES = ("en-us", "en-us+f2", "en-gb", "en-gb+f4", "en-gb-scotland", "en-029+m3")
EMOJI_RATE = (140, 200)  # espeak-ng words per minute, drawn uniformly per item (inclusive)
EMOJI_PITCH = (30, 70)  # espeak-ng pitch 0-99 (50 is its default), drawn uniformly per item (inclusive)
EMOJI_CITATION = (
    "Unicode Technical Standard #51, Unicode Emoji, version 15.0 (emoji-test.txt); Unicode Common Locale Data "
    "Repository (CLDR) 41, annotations; Noto Color Emoji 2.042, Google (https://github.com/googlefonts/noto-emoji); "
    "speech: eSpeak NG 1.51 (https://github.com/espeak-ng/espeak-ng)."
)
EMOJI_LICENCE = ("Unicode-DFS-2016 (emoji-test.txt, CLDR annotations); SIL Open Font License 1.1 (Noto Color "
                 "Emoji glyphs); speech synthesised by eSpeak NG (GPL-3.0-or-later program)")
GLYPH_STRIKE = 109  # the font size of NotoColorEmoji's only bitmap strike
GLYPH_BOX = (136, 128)  # width, height of one glyph at that strike
SKIN_TONES = range(0x1F3FB, 0x1F400)
SAMPLE_RATE = 22050  # espeak-ng's output rate
N_MELS = 40
FRAME, HOP = 512, 220  # 23.2 ms Hann frames every 10 ms at 22 050 Hz
MEL_FMAX = 8000.0

_TEST_LINE = re.compile(r"^([0-9A-F ]+?)\s*;\s*fully-qualified\s*#\s*\S+\s+E\d+\.\d+\s+(.+)$")


def emoji_files(root=None) -> dict:
    """The data paths under `root` (else $CCHMI_EMOJI_ROOT, else /usr); FileNotFoundError naming the
    Debian package of every one that is missing."""
    base = Path(root or os.environ.get("CCHMI_EMOJI_ROOT") or EMOJI_DEFAULT_ROOT)
    paths = {key: base / rel for key, (rel, _) in EMOJI_FILES.items()}
    missing = sorted({pkg for key, (rel, pkg) in EMOJI_FILES.items() if not paths[key].exists()})
    if missing:
        absent = ", ".join(str(path) for path in paths.values() if not path.exists())
        raise FileNotFoundError(
            f"emoji data not found under {base} (missing {absent}). Install it with "
            f"'sudo apt-get install {' '.join(missing)}' (Debian/Ubuntu), or pass root= (or set "
            "CCHMI_EMOJI_ROOT to) a folder laid out as /usr: share/fonts/truetype/noto/NotoColorEmoji.ttf, "
            "share/unicode/emoji/emoji-test.txt, share/unicode/cldr/common/annotations{,Derived}/"
        )
    return paths


def read_emoji_test(path) -> list:
    """The fully-qualified emoji of an emoji-test.txt, in file (CLDR) order, without skin-tone variants
    (any code point U+1F3FB..U+1F3FF): a list of (emoji string, English name, group, subgroup)."""
    items, group, subgroup = [], None, None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("# group:"):
                group = line.split(":", 1)[1].strip()
            elif line.startswith("# subgroup:"):
                subgroup = line.split(":", 1)[1].strip()
            elif (match := _TEST_LINE.match(line.rstrip("\n"))) is not None:
                points = [int(p, 16) for p in match.group(1).split()]
                if group is None or subgroup is None:
                    raise ValueError(f"{path}: an emoji line comes before any group/subgroup header: {line!r}")
                if not any(p in SKIN_TONES for p in points):
                    items.append(("".join(map(chr, points)), match.group(2).strip(), group, subgroup))
    if not items:
        raise ValueError(f"{path}: no fully-qualified emoji lines found (not an emoji-test.txt?)")
    return items


def _key(emoji: str) -> str:
    """The lookup key of an emoji: without variation selector 16, as CLDR writes its annotations."""
    return emoji.replace("\ufe0f", "")


def read_annotations(paths) -> dict:
    """CLDR annotation files merged: {emoji key: (name, [keywords])}, the key without U+FE0F; an
    entry without a name ("tts" annotation) is left out."""
    names, keywords = {}, {}
    for path in paths:
        for node in ET.parse(path).getroot().iter("annotation"):
            cp, text = node.get("cp"), (node.text or "").strip()
            if cp is None or not text or text == "↑↑↑":  # CLDR's "inherit from the parent locale" marker
                continue
            if node.get("type") == "tts":
                names[_key(cp)] = text
            else:
                keywords[_key(cp)] = [k.strip() for k in text.split("|") if k.strip()]
    return {k: (name, keywords.get(k, [])) for k, name in names.items()}


def hash_text_features(texts, dim: int = 512, ngrams=(1, 3)) -> np.ndarray:
    """Signed hashing of character n-grams (feature hashing, Weinberger et al. 2009), row by row, so
    no statistic is shared across rows (no fitting, nothing learned from the test rows).

    Each text is NFKC-normalised and case-folded and split into phrases at "|" (blank ones dropped); every n-gram of
    length ngrams[0]..ngrams[1] of " phrase " (padded with one space) is hashed with CRC-32 of
    "<n>:<gram>" (UTF-8): bucket crc % dim, sign + when bit 31 is 0, else -. A row is then
    sign(c) log1p(|c|) of its bucket sums, scaled to unit Euclidean norm (zero rows stay zero).
    Returns (len(texts), dim) float32.
    """
    dim = V.as_int(dim, "dim", 16, 1 << 20)
    lo, hi = (V.as_int(v, "ngrams", 1, 8) for v in ngrams)
    if lo > hi:
        raise ValueError(f"ngrams must be (shortest, longest) with shortest <= longest, got {ngrams!r}")
    out = np.zeros((len(texts), dim), dtype=np.float64)
    for row, text in enumerate(texts):
        for phrase in unicodedata.normalize("NFKC", text).casefold().split("|"):
            if not phrase.strip():
                continue
            padded = f" {phrase.strip()} "
            for n in range(lo, hi + 1):
                for i in range(len(padded) - n + 1):
                    h = zlib.crc32(f"{n}:{padded[i:i + n]}".encode())
                    out[row, h % dim] += -1.0 if h & 0x80000000 else 1.0
    out = np.sign(out) * np.log1p(np.abs(out))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def render_glyphs(emojis, font_path, size: int = 32, grey: bool = False):
    """Each emoji drawn with NotoColorEmoji at its 109 px strike (Pillow, raqm layout, embedded colour)
    on a 136 x 136 canvas (the 136 x 128 glyph centred vertically; alpha composited over white), then resized to
    size x size with Lanczos filtering. Returns (images, drawn): images (n_drawn, C, size, size)
    float32 in [0, 1] (C = 1 for grey (ITU-R 601 luma), else 3 RGB), and the indices of the emoji the
    font drew as ONE glyph (an emoji the font lacks draws nothing or several glyphs side by side)."""
    image_mod, font_mod = require("PIL.Image", "data", "emoji images"), require("PIL.ImageFont", "data", "emoji images")
    draw_mod = require("PIL.ImageDraw", "data", "emoji images")
    size = V.as_int(size, "size", 4, GLYPH_BOX[0])
    font = font_mod.truetype(str(font_path), GLYPH_STRIKE, layout_engine=font_mod.Layout.RAQM)
    images, drawn = [], []
    for i, emoji in enumerate(emojis):
        if font.getlength(emoji) > GLYPH_BOX[0]:
            continue
        canvas = image_mod.new("RGBA", (GLYPH_BOX[0], GLYPH_BOX[0]), (0, 0, 0, 0))
        draw_mod.Draw(canvas).text((0, (GLYPH_BOX[0] - GLYPH_BOX[1]) // 2), emoji, font=font, embedded_color=True)
        if canvas.getchannel("A").getbbox() is None:
            continue
        white = image_mod.new("RGBA", canvas.size, (255, 255, 255, 255))
        flat = image_mod.alpha_composite(white, canvas).convert("L" if grey else "RGB")
        small = np.asarray(flat.resize((size, size), image_mod.Resampling.LANCZOS), dtype=np.float32) / 255.0
        images.append(small[None] if grey else small.transpose(2, 0, 1))
        drawn.append(i)
    shape = (0, 1 if grey else 3, size, size)
    return (np.stack(images) if images else np.zeros(shape, np.float32)), np.asarray(drawn, dtype=np.int64)


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = FRAME, rate: int = SAMPLE_RATE,
                   fmax: float = MEL_FMAX) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters with peaks 1, equally spaced on the HTK mel scale
    m = 2595 log10(1 + f / 700) from 0 Hz to fmax (each triangle spans its two neighbours' centres)."""
    mel = np.linspace(0.0, 2595.0 * np.log10(1.0 + fmax / 700.0), n_mels + 2)
    hz = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    freqs = np.arange(n_fft // 2 + 1) * rate / n_fft
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)


def log_mel_summary(wave: np.ndarray, rate: int = SAMPLE_RATE, n_mels: int = N_MELS) -> np.ndarray:
    """A fixed-length vector of a waveform (float, [-1, 1]): the samples from the first to the last
    one above 1% of the peak amplitude (leading and trailing silence cut), Hann frames of 512 samples
    every 220 (23.2 ms / 10 ms at 22 050 Hz; a clip shorter than a frame is zero-padded to one), power
    spectra through :func:`mel_filterbank` (0-8 kHz), log(energy + 1e-10); then the mean and the s.d.
    over frames of each band: (2 * n_mels,) float32, means first."""
    wave = np.asarray(wave, dtype=np.float64)
    loud = np.flatnonzero(np.abs(wave) > 0.01 * np.abs(wave).max()) if wave.size else np.empty(0, np.int64)
    wave = wave[loud[0]:loud[-1] + 1] if loud.size else np.zeros(FRAME)
    if wave.size < FRAME:
        wave = np.pad(wave, (0, FRAME - wave.size))
    starts = np.arange(0, wave.size - FRAME + 1, HOP)
    frames = wave[starts[:, None] + np.arange(FRAME)[None]] * np.hanning(FRAME)[None]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    logmel = np.log(power @ mel_filterbank(n_mels, FRAME, rate).T + 1e-10)
    return np.concatenate([logmel.mean(axis=0), logmel.std(axis=0)]).astype(np.float32)


def _wav_samples(raw: bytes) -> tuple[np.ndarray, int]:
    """The 16-bit mono samples (scaled to [-1, 1]) and rate of a RIFF WAV stream as espeak-ng writes it
    to stdout (whose chunk sizes are placeholders: the data chunk runs to the end of the stream)."""
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("espeak-ng did not write a RIFF/WAVE stream")
    pos, rate = 12, None
    while pos + 8 <= len(raw):
        tag, length = raw[pos:pos + 4], int.from_bytes(raw[pos + 4:pos + 8], "little")
        if tag == b"fmt ":
            channels, rate, bits = (int.from_bytes(raw[pos + 10:pos + 12], "little"),
                                    int.from_bytes(raw[pos + 12:pos + 16], "little"),
                                    int.from_bytes(raw[pos + 22:pos + 24], "little"))
            if channels != 1 or bits != 16:
                raise ValueError(f"espeak-ng wrote {channels} channel(s) of {bits} bits; expected mono 16-bit")
        elif tag == b"data":
            if rate is None:
                raise ValueError("espeak-ng's WAV stream has its data before its format chunk")
            body = raw[pos + 8:]
            return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float64) / 32768.0, rate
        pos += 8 + length
    raise ValueError("espeak-ng's WAV stream has no data chunk")


def speak(text: str, voice: str, rate: int, pitch: int, timeout: float = 20.0) -> tuple[np.ndarray, int]:
    """`text` spoken by espeak-ng (``espeak-ng -v voice -s rate -p pitch --stdout``; a subprocess per
    call with a timeout): (samples in [-1, 1], sample rate). FileNotFoundError naming the Debian
    package when espeak-ng is not on PATH."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng not found on PATH: install it with 'sudo apt-get install espeak-ng' "
                                "(Debian/Ubuntu), or load emoji with speech=False")
    done = subprocess.run([exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text],
                          capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"espeak-ng -v {voice} failed on {text!r} (exit {done.returncode}): "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return _wav_samples(done.stdout)


def load_emoji(root=None, *, languages=EMOJI_LANGUAGES, image_size: int = 32, grey: bool = False,
               label: str = "group", text_dim: int = 512, speech: bool = False, voices=EMOJI_VOICES,
               max_items: int | None = None, random_state=0) -> MultiView:
    """Emoji as co-observed views (about 1,850 emoji: the fully-qualified ones of Unicode 15.0 without
    skin-tone variants that the font draws as one glyph and CLDR 41 names in every chosen language).

    Views:
    * "image": the Noto Color Emoji glyph (:func:`render_glyphs`), image_size x image_size, RGB
      (3 * image_size^2 values) or grey (image_size^2), in [0, 1], flattened channel-first
      (``image_shapes["image"]`` is (C, H, W));
    * "text_<lang>" for each of `languages` (CLDR annotation files, e.g. en, de, fr, es, ja, zh): the
      name and keywords ("name | keyword | ..."), encoded by :func:`hash_text_features` (text_dim);
    * "speech" (speech=True): the English name (emoji-test.txt) spoken by espeak-ng with a voice from
      `voices` and a rate (140-200 wpm) and pitch (30-70) drawn uniformly per item from random_state,
      as :func:`log_mel_summary` (80 values). Synthetic speech, slow: one subprocess per item (30 ms of
      espeak-ng alone on an idle core, 64 ms per item measured on a loaded 2-core machine: about two
      minutes for all items); without it, all items load in about 6 s (rendering is 1-2 ms a glyph).

    label : "group" (the 9 Unicode emoji groups) or "subgroup" (about 100). Labels are 0..C-1 in the
    order the classes first appear in emoji-test.txt; ``extra["classes"]`` names them.
    max_items : keep a uniformly random subset of that many emoji (seeded by random_state; the speech
    jitter is drawn after it; fewer if the font cannot draw some of them); None keeps all.
    root : a folder laid out as /usr (share/fonts/..., share/unicode/...); None: $CCHMI_EMOJI_ROOT,
    else /usr. FileNotFoundError naming the Debian packages to install when files are missing.

    ``extra`` holds the emoji strings, their English names, group and subgroup names, the items left
    out and why, and (speech) each item's voice, rate and pitch.
    """
    V.choice(label, "label", EMOJI_LABELS)
    if isinstance(languages, str) or not languages or len(set(languages)) != len(languages):
        raise ValueError(f"languages must be a non-empty list of distinct CLDR locale names, got {languages!r}")
    if not all(isinstance(lang, str) and re.fullmatch(r"[a-z]{2,3}(_[A-Za-z0-9]+)*", lang) for lang in languages):
        raise ValueError(f"languages must be CLDR locale names such as 'en', 'de', 'zh_Hant', got {languages!r}")
    image_size = V.as_int(image_size, "image_size", 4, GLYPH_BOX[0])
    text_dim = V.as_int(text_dim, "text_dim", 16, 1 << 20)
    if speech and (isinstance(voices, str) or not voices):
        raise ValueError(f"voices must be a non-empty list of espeak-ng voice names, got {voices!r}")
    rng = V.as_rng(random_state)
    paths = emoji_files(root)
    items = read_emoji_test(paths["emoji_test"])
    left_out = {}
    texts = {}
    for lang in languages:
        files = [paths[kind] / f"{lang}.xml" for kind in ("annotations", "derived")]
        if not files[0].is_file():
            known = sorted(p.stem for p in paths["annotations"].glob("*.xml"))
            raise ValueError(f"languages: no CLDR annotations for {lang!r} in {paths['annotations']}; "
                             f"there are {len(known)}: {', '.join(known[:40])}...")
        texts[lang] = read_annotations([f for f in files if f.is_file()])
    named = []
    for i, (emoji, _, _, _) in enumerate(items):
        absent = [lang for lang in languages if _key(emoji) not in texts[lang]]
        if absent:
            left_out[emoji] = f"no CLDR name in {', '.join(absent)}"
        else:
            named.append(i)
    if max_items is not None:
        max_items = V.as_int(max_items, "max_items", 1, len(named))
        named = sorted(rng.permutation(named)[:max_items].tolist())
    images, drawn = render_glyphs([items[i][0] for i in named], paths["font"], image_size, grey)
    for j in sorted(set(range(len(named))) - set(drawn.tolist())):
        left_out[items[named[j]][0]] = "not one glyph in the font"
    keep = [items[named[j]] for j in drawn]
    if len(keep) < 2:
        raise ValueError(f"only {len(keep)} emoji left (max_items={max_items!r}); need at least 2")
    field_index = 2 if label == "group" else 3
    classes = list(dict.fromkeys(item[field_index] for item in keep))
    labels = np.asarray([classes.index(item[field_index]) for item in keep], dtype=np.int64)
    views = {"image": images.reshape(len(keep), -1)}
    for lang in languages:
        views[f"text_{lang}"] = hash_text_features(
            [" | ".join([texts[lang][_key(e)][0], *texts[lang][_key(e)][1]]) for e, _, _, _ in keep], text_dim)
    extra = {"emoji": [item[0] for item in keep], "names": [item[1] for item in keep],
             "groups": [item[2] for item in keep], "subgroups": [item[3] for item in keep],
             "classes": classes, "label": label, "languages": list(languages), "left_out": left_out}
    if speech:
        picks = {"voice": [str(v) for v in rng.choice(list(voices), size=len(keep))],
                 "rate": rng.integers(EMOJI_RATE[0], EMOJI_RATE[1] + 1, size=len(keep)).tolist(),
                 "pitch": rng.integers(EMOJI_PITCH[0], EMOJI_PITCH[1] + 1, size=len(keep)).tolist()}
        feats = []
        for item, voice, rate, pitch in zip(keep, picks["voice"], picks["rate"], picks["pitch"]):
            wave, sample_rate = speak(item[1], voice, rate, pitch)
            feats.append(log_mel_summary(wave, sample_rate))
        views["speech"] = np.stack(feats)
        extra["speech"] = picks
    channels = 1 if grey else 3
    return MultiView(
        name="emoji",
        views=views,
        labels=labels,
        description=(f"Emoji (n={len(keep)}, {len(classes)} {label}s): glyph {image_size}x{image_size} "
                     f"{'grey' if grey else 'RGB'}, CLDR name+keywords in {', '.join(languages)} (hashed character "
                     f"1-3-grams, {text_dim} dims)" + ("; English names as SYNTHETIC speech (espeak-ng, "
                                                        "log-mel mean/s.d., 80 dims)" if speech else "")),
        citation=EMOJI_CITATION,
        licence=EMOJI_LICENCE,
        image_shapes={"image": (channels, image_size, image_size)},
        extra=extra,
    )
