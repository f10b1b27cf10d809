"""The methods the benchmarks race, in one place: cchmi's estimators and the adapters of the peers.

A method is a tuple (name, module that must be importable, fn, supports): ``fn(x, y, labels,
device)`` returns an estimate in nats (``labels``: y is a 1-D array of class labels), and
``supports(task)`` says whether it takes a task of :mod:`cchmi.data.tasks`. Peers (each optional;
"not installed" is recorded, a crash or a timeout too, never dropped) are called with their
documented defaults, which already use k=3, plus the settings that matter for the comparison:
natural log units (NPEET's default is bits: base=e is passed) and the same sample:

* scikit-learn ``mutual_info_regression(x, y, n_neighbors=3)`` (1+1 tasks) and
  ``mutual_info_classif(x, labels, n_neighbors=3)`` (1-dim labels tasks): it scores one feature at
  a time, so multivariate tasks are "unsupported"; it scales each column and adds 1e-10 noise;
* NPEET (``npeet_plus.mi(x, y, k=3, base=e)``; ``micd`` for labels): adds 1e-10 noise, no scaling;
* ennemi ``estimate_mi(y, x, k=3)`` (1+1; ``discrete_y=True`` for labels): its public API pairs one
  x column with a 1-D y;
* infomeasure ``mutual_information(x, y, approach="ksg", k=3, base="e")``;
* benchmark-mi ``KSGEnsembleFirstEstimator(neighborhoods=(3,)).estimate(x, y)`` (its default
  neighbourhoods are (5, 10); it pins NumPy < 2, so it cannot share an environment with NumPy 2);
* latentmi ``lmi.estimate(x, y)`` (continuous; slow, accuracy only; latentmi 0.1.3 refers to
  ``np.NaN``, gone in NumPy 2, so ``np.NaN = np.nan`` is set in its process first);
* torch-mist ``estimate_mi((x, y), estimator="smile", test_data=...)`` (continuous): its default
  estimator (SMILE, tau 5, joint critic with one hidden layer of 128), its defaults for the rest (batch
  128, up to 5,000 iterations, Adam, early stopping on the 10% of the training rows it holds out); the
  last fifth of the rows is the test set it reports on (without one it estimates on its training rows);
* diffusion-mi (``dmi.estimators``; continuous; slow, accuracy only) ``MINDEEstimator`` and ``MMGEstimator``
  with their defaults (MINDE: conditional form, batch 64, learning rate 5e-5, EMA 0.999, its own column
  scaling of each set; MMG: batch 512, learning rate 1e-4, EMA 0.999), trained on the first four fifths
  of the rows and asked ``estimate`` on the last fifth (MMG's ``fit`` takes that fifth as its validation
  set, whose result steers nothing). Neither has a default training length (and MINDE's ``fit`` ignores
  ``max_n_steps``): MINDE_EPOCHS = 80 and MMG_EPOCHS = 150 epochs, about 5,000 and 1,200 steps, each
  about two minutes on one thread for 64+64 dimensions at n = 5000 (MINDE 109 s, MMG 150 s); MMG does not
  rescale, so its columns are standardised with the training rows' statistics as its own demo does;
  MMG's ``estimate`` is its primary form, the difference of two Monte-Carlo NLL averages drawn
  independently (the orthogonal form it also computes is discarded);
* SciPy (speed only): KSG-1 written by hand with ``cKDTree(p=inf)`` and ``workers=-1``, the fastest
  thing a user can write with SciPy's compiled tree, using every core like cchmi.

cchmi's own methods include :func:`cchmi.mi` with each of its estimators (``MI_METHODS``), called
with ``confidence=0.95`` and its default ``random_state``: they return a dict (estimate, interval,
its level, the estimator that ran, the bias correction, :data:`cchmi.estimators.extrapolate.MODEL_SPREAD`
and the unreliability flag with its reasons) instead of a number, which :func:`call_details` passes
back from the forked process. ``HD_METHODS``, for the high-dimensional suite, ask for 90% intervals
(the issue's coverage goal is stated for them) and add compressed_mi (a refusal above its intrinsic
dimension threshold is the status "refused", with the reason as the note) and diffusion_mi; each row
records the version of the package that ran (:func:`version_of`).

Every call runs in its own forked process (:func:`call`), killed after ``timeout`` seconds; the
peers' modules are imported before (:func:`preload`), so no time includes an import.
"""

from __future__ import annotations

import importlib
import importlib.util
import math

import numpy as np

from ._harness import run_with_timeout

K = 3


# -- cchmi ----------------------------------------------------------------------------------------

def cchmi_ksg(variant: int):
    def run(x, y, labels=False, device=None):
        import cchmi

        if labels:
            return cchmi.mixed_mi(x, y, k=K).estimate
        return cchmi.ksg_mi(x, y, k=K, variant=variant).estimate
    return run


def cchmi_neural(x, y, labels=False, device=None):
    import cchmi

    if labels:
        return cchmi.latent_mi(x, y, labels=True, device=device).estimate
    return cchmi.neural_mi(x, y, device=device).estimate


INTERVAL_LEVEL = 0.95
"""Level of the intervals asked of the methods that report one (cchmi.mi)."""

HD_LEVEL = 0.90
"""Level of the intervals of ``HD_METHODS`` (the issue's coverage goal: 90% intervals)."""


def _interval(r) -> dict:
    """The interval entries of a result dict from an MIResult `r`: ci_low, ci_high (NaN without one),
    confidence (NaN without one)."""
    none = r.ci_low is None or r.ci_high is None
    return {"ci_low": math.nan if none else r.ci_low, "ci_high": math.nan if none else r.ci_high,
            "confidence": math.nan if none else r.confidence}


def cchmi_mi(estimator: str, confidence: float = INTERVAL_LEVEL):
    """cchmi.mi(x, y, labels=..., estimator=estimator, confidence=confidence) as a dict: estimate,
    ci_low, ci_high (NaN without an interval), confidence, the estimator that ran, the bias correction
    (NaN for estimators without one), the MODEL_SPREAD its interval used (NaN unless extrapolated),
    and the unreliability flag: "unreliable" or "reliable" with the reasons joined by "; "."""
    def run(x, y, labels=False, device=None):
        import cchmi
        from cchmi.estimators import extrapolate

        r = cchmi.mi(x, y, labels=labels, estimator=estimator, confidence=confidence, device=device)
        extrapolated = r.estimator.endswith("-extrapolated")
        flag = {} if r.reliability is None else {
            "flag": "reliable" if r.reliability.reliable else "unreliable", "reasons": "; ".join(r.reliability.reasons)}
        return {"estimate": r.estimate, **_interval(r), "estimator": r.estimator,
                "bias": math.nan if r.bias is None else r.bias,
                "model_spread": extrapolate.MODEL_SPREAD if extrapolated else math.nan, **flag}
    return run


def cchmi_compressed(x, y, labels=False, device=None):
    """cchmi.estimators.compress.compressed_mi with a HD_LEVEL interval, as a dict; its refusal (a
    side's intrinsic dimension above MAX_INTRINSIC) is status "refused" with the reason as the note."""
    from cchmi.estimators.compress import compressed_mi

    try:
        r = compressed_mi(x, y, confidence=HD_LEVEL)
    except ValueError as exc:
        if "compressed_mi refuses" not in str(exc):
            raise
        return {"estimate": math.nan, "status": "refused", "note": str(exc)}
    return {"estimate": r.estimate, **_interval(r), "estimator": r.estimator, "bias": r.bias,
            "note": f"intrinsic {r.intrinsic_x.value:.3g}+{r.intrinsic_y.value:.3g}, {r.dims_x}+{r.dims_y} components"}


def cchmi_diffusion(x, y, labels=False, device=None):
    """cchmi.neural.diffusion.diffusion_mi (its defaults: the permuted-Y control included) with a
    HD_LEVEL interval, as a dict: the flag from the control, its floor as the note."""
    from cchmi.neural.diffusion import diffusion_mi

    r = diffusion_mi(x, y, confidence=HD_LEVEL, device=device)
    return {"estimate": r.estimate, **_interval(r), "estimator": r.estimator,
            "flag": "reliable" if r.reliability.reliable else "unreliable", "reasons": "; ".join(r.reliability.reasons),
            "note": f"permuted-Y control {r.floor:.4g} nats"}


# -- peers ----------------------------------------------------------------------------------------

def sklearn(x, y, labels=False, device=None):
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    if labels:
        return float(mutual_info_classif(x, y, n_neighbors=K, random_state=0)[0])
    return float(mutual_info_regression(x, y[:, 0], n_neighbors=K, random_state=0)[0])


def npeet(x, y, labels=False, device=None):
    import npeet_plus

    if labels:
        return float(npeet_plus.micd(x, y.reshape(-1, 1), k=K, base=math.e))
    return float(npeet_plus.mi(x, y, k=K, base=math.e))


def ennemi(x, y, labels=False, device=None):
    import ennemi

    if labels:
        return float(np.asarray(ennemi.estimate_mi(y, x[:, 0], k=K, discrete_y=True)).ravel()[0])
    return float(np.asarray(ennemi.estimate_mi(y[:, 0], x[:, 0], k=K)).ravel()[0])


def infomeasure(x, y, labels=False, device=None):
    import infomeasure

    return float(infomeasure.mutual_information(x, y, approach="ksg", k=K, base="e"))


def bmi(x, y, labels=False, device=None):
    from bmi.estimators import KSGEnsembleFirstEstimator

    return float(KSGEnsembleFirstEstimator(neighborhoods=(K,)).estimate(x, y))


def latentmi(x, y, labels=False, device=None):
    from latentmi import lmi

    if not hasattr(np, "NaN"):
        np.NaN = np.nan
    pmi, _, _ = lmi.estimate(x, y, quiet=True, device=device)
    return float(np.nanmean(pmi))


TEST_SHARE = 0.2
"""Share of the rows (the last ones) that torch-mist reports its estimate on."""


def _split(x, y):
    """(x_train, y_train, x_test, y_test) as float32 arrays: the last TEST_SHARE of the rows are the test set."""
    n_test = max(1, int(round(TEST_SHARE * len(x))))
    xs, ys = (np.ascontiguousarray(a, dtype=np.float32) for a in (x, y))
    return xs[:-n_test], ys[:-n_test], xs[-n_test:], ys[-n_test:]


def torch_mist(x, y, labels=False, device=None):
    from torch_mist import estimate_mi

    x_train, y_train, x_test, y_test = _split(x, y)
    value = estimate_mi(data=(x_train, y_train), test_data=(x_test, y_test), estimator="smile",
                        device=device or "cpu", verbose=False, logger=False)
    return float(value)


MINDE_EPOCHS = 80
"""Epochs diffusion-mi's MINDE trains for (it has no default length; see :func:`diffusion_mi_minde`)."""

MMG_EPOCHS = 150
"""Epochs diffusion-mi's MMG trains for (it has no default length; see :func:`diffusion_mi_mmg`)."""


def _lightning_fit(model, *data):
    """``model.fit(*data)`` of a diffusion-mi estimator after ``seed_everything(0)``, with PyTorch Lightning's
    notes (logged) and progress bars and the package's prints (stdout, stderr) silenced; returns `model`."""
    import contextlib
    import logging
    import os

    from pytorch_lightning import seed_everything

    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):  # each at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    seed_everything(0, verbose=False)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        model.fit(*data)
    return model


def diffusion_mi_minde(x, y, labels=False, device=None):
    """diffusion-mi's MINDE (``MINDEEstimator(max_epochs=MINDE_EPOCHS).fit(x_train, y_train)``, then
    ``.estimate(x_test, y_test)``) in nats, seeded with ``seed_everything(0)``; it picks CUDA itself
    when one is visible, so `device` is not passed."""
    import contextlib
    import os

    from dmi.estimators import MINDEEstimator

    x_train, y_train, x_test, y_test = _split(x, y)
    model = _lightning_fit(MINDEEstimator(max_epochs=MINDE_EPOCHS), x_train, y_train)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # it prints its estimate
        return float(model.estimate(x_test, y_test))


def diffusion_mi_mmg(x, y, labels=False, device=None):
    """diffusion-mi's MMG (``MMGEstimator(max_epochs=MMG_EPOCHS).fit(x_train, y_train, x_test, y_test)``,
    then ``.estimate(x_test, y_test)``) in nats, on columns standardised with the training rows'
    means and deviations (as its own demo does: it does not rescale), seeded with ``seed_everything(0)``;
    it picks CUDA itself when one is visible, so `device` is not passed."""
    from dmi.estimators import MMGEstimator

    x_train, y_train, x_test, y_test = _split(x, y)
    (mx, sx), (my, sy) = ((a.mean(0), a.std(0)) for a in (x_train, y_train))
    x_train, x_test = (x_train - mx) / sx, (x_test - mx) / sx
    y_train, y_test = (y_train - my) / sy, (y_test - my) / sy
    model = _lightning_fit(MMGEstimator(max_epochs=MMG_EPOCHS), x_train, y_train, x_test, y_test)
    return float(model.estimate(x_test, y_test))


def scipy_ksg(x, y, labels=False, device=None):
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    xy = np.hstack([x, y])
    eps = cKDTree(xy).query(xy, k=K + 1, p=np.inf, workers=-1)[0][:, K]
    r = np.nextafter(eps, 0)  # strict inequality: points at exactly eps are not counted
    nx = cKDTree(x).query_ball_point(x, r, p=np.inf, return_length=True, workers=-1)  # includes self
    ny = cKDTree(y).query_ball_point(y, r, p=np.inf, return_length=True, workers=-1)
    return float(digamma(K) + digamma(len(x)) - np.mean(digamma(nx) + digamma(ny)))


def _one_column(t) -> bool:
    return t.dim_x == 1 and (t.kind == "labels" or t.dim_y == 1)


def _continuous(t) -> bool:
    return t.kind == "continuous"


CCHMI_METHODS = [
    ("cchmi KSG-1 / Ross", "cchmi", cchmi_ksg(1), lambda t: True),
    ("cchmi KSG-2", "cchmi", cchmi_ksg(2), _continuous),
]
NEURAL_METHODS = [("cchmi neural (SMILE / latent for labels)", "torch", cchmi_neural, lambda t: True)]
MI_METHODS = [
    ("cchmi.mi auto", "cchmi", cchmi_mi("auto"), lambda t: True),
    ("cchmi.mi ksg-extrapolated", "cchmi", cchmi_mi("ksg-extrapolated"), lambda t: True),
    ("cchmi.mi neural", "torch", cchmi_mi("neural"), lambda t: True),
]
PEERS = [
    ("scikit-learn", "sklearn", sklearn, _one_column),
    ("NPEET", "npeet_plus", npeet, lambda t: True),
    ("ennemi", "ennemi", ennemi, _one_column),
    ("infomeasure", "infomeasure", infomeasure, _continuous),
    ("benchmark-mi (bmi)", "bmi", bmi, _continuous),
]
SLOW_PEERS = [("latentmi", "latentmi", latentmi, _continuous),
              ("torch-mist SMILE", "torch_mist", torch_mist, _continuous),
              ("diffusion-mi MINDE", "dmi", diffusion_mi_minde, _continuous),
              ("diffusion-mi MMG", "dmi", diffusion_mi_mmg, _continuous)]
BY_HAND = [("SciPy cKDTree", "scipy", scipy_ksg, _continuous)]
HD_METHODS = [
    ("cchmi.mi auto 90%", "cchmi", cchmi_mi("auto", HD_LEVEL), lambda t: True),
    ("cchmi.mi ksg-extrapolated 90%", "cchmi", cchmi_mi("ksg-extrapolated", HD_LEVEL), lambda t: True),
    ("cchmi compressed_mi 90%", "cchmi", cchmi_compressed, _continuous),
    ("cchmi.mi neural 90%", "torch", cchmi_mi("neural", HD_LEVEL), lambda t: True),
    ("cchmi diffusion_mi 90%", "torch", cchmi_diffusion, _continuous),
]
"""cchmi's estimators for the high-dimensional suite, with HD_LEVEL intervals."""
ALL_METHODS = CCHMI_METHODS + NEURAL_METHODS + MI_METHODS + HD_METHODS + PEERS + SLOW_PEERS + BY_HAND

_DISTRIBUTION = {"sklearn": "scikit-learn", "npeet_plus": "npeet-plus", "bmi": "benchmark-mi",
                 "torch_mist": "torch-mist", "dmi": "diffusion-mi", "torch": "cchmi", "numpy": "numpy"}
"""The distribution behind a method's module, where its name differs from the module's."""


def version_of(method) -> str:
    """The installed version of the package a method runs (cchmi's for cchmi's methods), "" if none."""
    from importlib import metadata

    try:
        return metadata.version(_DISTRIBUTION.get(method[1], method[1]))
    except metadata.PackageNotFoundError:
        return ""


def is_peer(name: str) -> bool:
    """Whether the method named `name` is a peer's (not one of cchmi's own)."""
    return not name.startswith("cchmi")


def by_name(names: list[str]) -> list:
    """The methods of ALL_METHODS with these names, in the order given (ValueError naming an unknown one)."""
    known = {m[0]: m for m in ALL_METHODS}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(f"methods: unknown method(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"methods: {', '.join(map(repr, known))}")
    return [known[name] for name in names]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# Imported in the parent before any forked call, so that no timing includes an import.
_PRELOAD = {"sklearn": "sklearn.feature_selection", "npeet_plus": "npeet_plus", "ennemi": "ennemi", "bmi": "bmi",
            "infomeasure": "infomeasure", "latentmi": "latentmi.lmi", "torch": "cchmi.neural",
            "torch_mist": "torch_mist", "dmi": "dmi.estimators", "scipy": "scipy.spatial"}


def preload(method_list: list) -> None:
    for _, module, _, _ in method_list:
        if module in _PRELOAD and installed(module):
            importlib.import_module(_PRELOAD[module])


def call(method, task, s, device, timeout: float, warmup: bool) -> tuple[float, float, str]:
    """(estimate, seconds, status) of one method on the sample `s` of `task`, in a forked process
    killed after `timeout` seconds; warmup: time the second of two calls in that process."""
    value, seconds, status, _ = call_details(method, task, s, device, timeout, warmup)
    return value, seconds, status


def call_details(method, task, s, device, timeout: float, warmup: bool) -> tuple[float, float, str, dict]:
    """:func:`call` and, for a method that returns a dict (cchmi.mi's), that dict from the timed
    call (empty for the others and for calls that did not return); a dict's "status" (e.g. "refused")
    replaces "ok"."""
    _, module, fn, supports = method
    if not installed(module):
        return math.nan, math.nan, "not installed", {}
    if not supports(task):
        return math.nan, math.nan, "unsupported", {}
    labels = task.kind == "labels"
    t = run_with_timeout(lambda: fn(s.x, s.y, labels, device), timeout, warmup=warmup)
    details = t.value if isinstance(t.value, dict) else {}
    value = details.get("estimate", t.value)
    return (math.nan if value is None else value), t.median, details.get("status", t.status), details
