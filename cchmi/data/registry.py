"""The datasets a KD sweep can name in its ``[data]`` table, one entry each: its loader, the options
it takes (name -> default) and their checks (run on the config alone, before any job, without
loading data), its view names (what ``pairs = "all"`` pairs), which views are images, and whether it
is drawn with the run's seed. Every dataset also takes the shared nuisance options ``nuisance``
(strength, default 0.0: the data untouched) and ``nuisance_dims`` (default 8), applied by
:func:`load_data` with :func:`cchmi.data.views.add_nuisance` to every view that is not an image.

* "mfeat": :func:`cchmi.data.multiview.load_mfeat` (bundled; option views).
* "mfh": :func:`cchmi.data.synthetic.mfh_classification` (synthetic; drawn with the run's seed; n rows).
* "fashion_mnist": :func:`cchmi.data.multiview.load_fashion_mnist` (``dataset-fashion-mnist``; its
  degraded_sigma / degraded_noise set the blur and noise of the "degraded" view: the teacher
  blur/noise knob when that view is the teacher).
* "emoji": :func:`cchmi.data.emoji.load_emoji` (``fonts-noto-color-emoji``, ``unicode-data``,
  ``unicode-cldr-core``; ``espeak-ng`` with speech = true).
* "miniacc": :func:`cchmi.data.omics.load_miniacc` (``r-bioc-multiassayexperiment``).

The loads of emoji and Fashion-MNIST (seconds to minutes: emoji's speech runs espeak-ng once per
item) are kept per process (the two most recent option sets); each call gets its own copy of the arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from cchmi import _validate as V
from cchmi.data.emoji import EMOJI_LABELS, EMOJI_LANGUAGES, GLYPH_BOX, load_emoji
from cchmi.data.multiview import (
    FASHION_ALL_VIEWS,
    FASHION_VIEWS,
    MFEAT_VIEWS,
    MultiView,
    fashion_options,
    load_fashion_mnist,
    load_mfeat,
)
from cchmi.data.omics import MINIACC_ASSAYS, MINIACC_LABELS, load_miniacc
from cchmi.data.synthetic import mfh_classification
from cchmi.data.views import NUISANCE_DIMS, add_nuisance

# The options every dataset takes (name -> default): the shared label-irrelevant nuisance.
NUISANCE_OPTIONS = {"nuisance": 0.0, "nuisance_dims": NUISANCE_DIMS}
# The views load_fashion_mnist records as images (image_shapes): all but "fourier".
FASHION_IMAGE_VIEWS = tuple(v for v in FASHION_ALL_VIEWS if v != "fourier")
_LOCALE = re.compile(r"[a-z]{2,3}(_[A-Za-z0-9]+)*")


@dataclass(frozen=True)
class Dataset:
    """One dataset of the registry. `load(options, seed)` makes it (options: the [data] table without
    name and the nuisance options); `options` its own options (name -> default); `check(options)`
    checks them (ValueError/TypeError naming ``data.<option>``); `views(options)` its view names in
    order; `image_views(options)` those that are images; `seeded`: drawn with the run's seed (else
    the same data for every seed); `cached`: a load is kept per process."""

    name: str
    load: Callable
    options: dict
    check: Callable
    views: Callable
    image_views: Callable
    seeded: bool = False
    cached: bool = False


def _signature_options(loader, fixed=()) -> dict:
    """A loader's keyword options and their defaults, from its signature."""
    return {k: p.default for k, p in inspect.signature(loader).parameters.items() if k not in fixed}


def _root(options: dict) -> None:
    if not isinstance(options.get("root", ""), str):
        raise ValueError(f"data.root must be a folder name, got {options['root']!r}")


def _names(options: dict, key: str, known, what: str) -> None:
    """options[key], when given, as a non-empty list of distinct names from `known`."""
    if key in options:
        value = options[key]
        if not (isinstance(value, list) and value and all(v in known for v in value) and len(set(value)) == len(value)):
            raise ValueError(f"data.{key} must be a non-empty list of distinct {what} from {', '.join(known)}; "
                             f"got {value!r}")


def _check_mfeat(options: dict) -> None:
    _names(options, "views", MFEAT_VIEWS, "views")


def _check_mfh(options: dict) -> None:
    V.as_int(options.get("n", 2000), "data.n", 2)
    rest = {k: v for k, v in options.items() if k != "n"}
    try:  # the generator's own checks, on two rows
        mfh_classification(2, random_state=0, **rest)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"data: {exc}") from None


def _check_fashion(options: dict) -> None:
    if "split" in options:
        V.choice(options["split"], "data.split", ("train", "test", "all"))
    if "n" in options:
        V.as_int(options["n"], "data.n", 1)
    if "random_state" in options:
        V.as_int(options["random_state"], "data.random_state", 0)
    _root(options)
    views = {k: options[k] for k in _signature_options(fashion_options) if k in options}
    try:  # the view options (degraded_sigma / degraded_noise included), by the loader's own function
        fashion_options(**views)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"data: {exc}") from None


def _check_emoji(options: dict) -> None:
    """load_emoji's option checks, on the options alone (no files read)."""
    _root(options)
    if "languages" in options:
        langs = options["languages"]
        if not (isinstance(langs, list) and langs and len(set(langs)) == len(langs)
                and all(isinstance(lang, str) and _LOCALE.fullmatch(lang) for lang in langs)):
            raise ValueError(f"data.languages must be a non-empty list of distinct CLDR locale names such as 'en', "
                             f"'de', 'zh_Hant'; got {langs!r}")
    V.as_int(options.get("image_size", 32), "data.image_size", 4, GLYPH_BOX[0])
    V.as_int(options.get("text_dim", 512), "data.text_dim", 16, 1 << 20)
    V.choice(options.get("label", "group"), "data.label", EMOJI_LABELS)
    if "voices" in options:
        voices = options["voices"]
        if not (isinstance(voices, list) and voices and all(isinstance(v, str) and v for v in voices)):
            raise ValueError(f"data.voices must be a non-empty list of espeak-ng voice names, got {voices!r}")
        if not options.get("speech", False):
            raise ValueError("data.voices are the voices of the speech view: set data.speech = true, or drop voices")
    if "max_items" in options:
        V.as_int(options["max_items"], "data.max_items", 2)
    V.as_int(options.get("random_state", 0), "data.random_state", 0)


def _emoji_views(options: dict) -> list:
    langs = options.get("languages", list(EMOJI_LANGUAGES))
    return ["image", *(f"text_{lang}" for lang in langs), *(["speech"] if options.get("speech") else [])]


def _check_miniacc(options: dict) -> None:
    _root(options)
    _names(options, "assays", MINIACC_ASSAYS, "assays")
    V.choice(options.get("label", "vital_status"), "data.label", MINIACC_LABELS)


def _load_mfh(options: dict, seed: int) -> MultiView:
    options = dict(options)
    n = options.pop("n", 2000)
    options.setdefault("task_seed", 0)
    return mfh_classification(n, random_state=seed, **options)


def _no_images(options: dict) -> list:
    return []


_MFH_OPTIONS = {"n": 2000, **_signature_options(mfh_classification, {"n", "random_state"})}
_ENTRIES = (
    Dataset("mfeat", lambda options, seed: load_mfeat(**options), {"views": None}, _check_mfeat,
            lambda options: list(options.get("views") or MFEAT_VIEWS), _no_images),
    Dataset("mfh", _load_mfh, _MFH_OPTIONS, _check_mfh, lambda options: ["teacher", "student"], _no_images,
            seeded=True),
    Dataset("fashion_mnist", lambda options, seed: load_fashion_mnist(**options),
            _signature_options(load_fashion_mnist), _check_fashion,
            lambda options: list(options.get("views") or FASHION_VIEWS),
            lambda options: [v for v in options.get("views") or FASHION_VIEWS if v in FASHION_IMAGE_VIEWS],
            cached=True),
    Dataset("emoji", lambda options, seed: load_emoji(**options), _signature_options(load_emoji), _check_emoji,
            _emoji_views, lambda options: ["image"], cached=True),
    Dataset("miniacc", lambda options, seed: load_miniacc(**options), _signature_options(load_miniacc),
            _check_miniacc, lambda options: list(options.get("assays") or MINIACC_ASSAYS), _no_images),
)
DATASETS_BY_NAME = {entry.name: entry for entry in _ENTRIES}
DATASETS = tuple(DATASETS_BY_NAME)


def dataset(data: dict) -> Dataset:
    """The registry entry of a [data] table's name (ValueError naming data.name)."""
    name = data.get("name")
    if name not in DATASETS_BY_NAME:
        raise ValueError(f"data.name must be one of {', '.join(DATASETS)}; got {name!r}")
    return DATASETS_BY_NAME[name]


def dataset_options(name: str) -> dict:
    """The options dataset `name` takes in [data] (name -> default), the nuisance options included."""
    return {**DATASETS_BY_NAME[name].options, **NUISANCE_OPTIONS}


def _own(data: dict) -> dict:
    """A [data] table without its name and the nuisance options: the loader's options."""
    return {k: v for k, v in data.items() if k != "name" and k not in NUISANCE_OPTIONS}


def check_data(data: dict) -> None:
    """Every option of a [data] table, without loading or drawing the dataset: the name, unknown
    options (named, with the known ones), true/false options, the dataset's own checks and the
    nuisance options."""
    entry = dataset(data)
    known = dataset_options(entry.name)
    unknown = sorted(set(data) - set(known) - {"name"})
    if unknown:
        raise ValueError(f"unknown data option(s) {', '.join(unknown)} for {entry.name}; "
                         f"known: {', '.join(sorted(known))}")
    for key, default in known.items():
        if isinstance(default, bool) and key in data and not isinstance(data[key], bool):
            raise ValueError(f"data.{key} must be true or false, got {data[key]!r}")
    entry.check(_own(data))
    V.as_real(data.get("nuisance", 0.0), "data.nuisance", 0, reason=" (the nuisance's strength)")
    V.as_int(data.get("nuisance_dims", NUISANCE_DIMS), "data.nuisance_dims", 1)


def view_names(data: dict) -> list:
    """The views of a (checked) [data] table's dataset, in order."""
    return list(dataset(data).views(_own(data)))


def check_nuisance_views(data: dict, views) -> None:
    """With data.nuisance > 0, none of `views` (the views a sweep pairs) may be an image: the
    nuisance is appended to non-image views only (ValueError naming the view)."""
    if data.get("nuisance", 0.0) > 0:
        images = dataset(data).image_views(_own(data))
        named = [v for v in views if v in images]
        if named:
            raise ValueError(f"data.nuisance applies to views that are not images; {', '.join(map(repr, named))} of "
                             f"{data['name']} is an image: pair other views, or set data.nuisance = 0")


@functools.lru_cache(maxsize=2)
def _load_cached(name: str, options_json: str) -> MultiView:
    return DATASETS_BY_NAME[name].load(json.loads(options_json), 0)


def load_data(data: dict, seed: int) -> MultiView:
    """The MultiView of a (checked) [data] table: its dataset loaded (a seeded one drawn with `seed`,
    the run's seed), then :func:`~cchmi.data.views.add_nuisance` with data.nuisance and
    data.nuisance_dims on every view that is not an image (nothing when nuisance is 0)."""
    entry, options = dataset(data), _own(data)
    if entry.cached:
        cached = _load_cached(entry.name, json.dumps(options, sort_keys=True))
        out = dataclasses.replace(cached, views={k: v.copy() for k, v in cached.views.items()},
                                  labels=cached.labels.copy(), extra=dict(cached.extra))
    else:
        out = entry.load(options, seed)
    strength = data.get("nuisance", 0.0)
    if strength == 0:
        return out
    return add_nuisance(out, strength, data.get("nuisance_dims", NUISANCE_DIMS))
