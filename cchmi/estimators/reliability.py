"""Whether an estimate can be trusted, and the checks behind it.

:class:`Reliability` is the ``reliability`` field of :class:`~cchmi.cch.CCHResult` and
:class:`~cchmi.estimators.select.AutoMIResult`: reliable, or not with the reasons (None on a
result: not assessed). :func:`cchmi.cch` turns an unreliable term into the verdict "undecided".

The checks, each returning a reason (text) or None:

* :func:`label_ceiling_reason`: an estimate of I(X; labels) above the labels' entropy, which no
  MI can exceed (the digamma estimate psi(n) - mean psi(n_c), the largest value Ross's estimator
  can return and at least the plug-in entropy, plus 3 standard errors when there is an interval);
* :func:`tie_reason`: samples with repeated rows (integer-valued or duplicated data), where
  distances of 0 make the kNN bias no power law of n and the extrapolation amplifies the ties;
* :func:`informative_dims`: the non-constant columns of a sample, the D of the extrapolation's
  bias exponent (a constant column cannot move a max-norm neighbour search).

The self-consistency checks of high-dimensional estimates (data processing, additivity, subsample
stability) are in :mod:`cchmi.estimators.consistency`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cchmi._special import digamma
from cchmi.results import ResultIO

TIED_SHARE = 0.01
"""Share of a sample's rows that repeat another row from which :func:`tie_reason` reports ties
(continuous data repeats none; rounded or duplicated data repeats most)."""


@dataclass(frozen=True)
class Reliability(ResultIO):
    """Whether a result can be trusted: ``reliable`` False with the ``reasons`` (sentences) when
    a check failed; True with no reasons when every check passed. ``checks``: the numbers of the
    self-consistency checks (:func:`cchmi.estimators.consistency.run_checks`) by term ("I(X; Y)",
    "I(T; S)", "I(S; Y)"), None where none ran."""

    reliable: bool = True
    reasons: tuple[str, ...] = ()
    checks: dict | None = None

    @classmethod
    def of(cls, reasons, checks: dict | None = None) -> Reliability:
        """Reliable when `reasons` (an iterable of texts, None entries ignored) is empty; `checks`
        the numbers of the consistency checks that ran (None: none)."""
        found = tuple(r for r in reasons if r)
        return cls(reliable=not found, reasons=found, checks=checks or None)

    def __str__(self) -> str:
        return "reliable" if self.reliable else "unreliable: " + "; ".join(self.reasons)


def label_entropy_ceiling(codes: np.ndarray) -> float:
    """The largest I(X; labels) in nats for these label codes: psi(n) - mean_i psi(n_{c_i}), Ross's
    estimator's own maximum (every neighbour count at its class size) and at least the plug-in
    entropy of the labels."""
    codes = np.asarray(codes)
    sizes = np.bincount(codes)
    plug_in = float(-np.sum((sizes[sizes > 0] / codes.size) * np.log(sizes[sizes > 0] / codes.size)))
    digamma_form = float(digamma(np.array([codes.size], dtype=np.float64))[0]
                         - np.mean(digamma(sizes[codes].astype(np.float64))))
    return max(plug_in, digamma_form)


def label_ceiling_reason(value_nats: float, codes: np.ndarray, stderr_nats: float | None = None,
                         what: str = "I(X; labels)") -> str | None:
    """The reason `value_nats` (an estimate of `what`) is impossible, when it is above the labels'
    entropy (:func:`label_entropy_ceiling`) by more than 3 standard errors; None otherwise."""
    ceiling = label_entropy_ceiling(codes)
    slack = 0.0 if stderr_nats is None else 3.0 * float(stderr_nats)
    if value_nats <= ceiling + slack:
        return None
    return (f"{what} = {value_nats:.4g} nats is above the labels' entropy H(Y) = {ceiling:.4g} nats, which no "
            f"mutual information with the labels can exceed: the estimator failed on these data")


def as_host(a) -> np.ndarray:
    """A validated sample as a NumPy array (a torch tensor copied to the host)."""
    if isinstance(a, np.ndarray):
        return a
    return a.detach().cpu().numpy()


def informative_dims(a) -> int:
    """The number of non-constant columns of the (n, d) sample `a` (at least 1)."""
    a = as_host(a)
    return max(1, int(np.count_nonzero(np.ptp(a, axis=0) > 0))) if a.shape[0] else a.shape[1]


def repeated_share(a) -> float:
    """The share of the rows of the (n, d) sample `a` equal to another row."""
    a = np.ascontiguousarray(as_host(a))
    if a.shape[0] < 2:
        return 0.0
    rows = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    return float(np.count_nonzero(counts[inverse] > 1)) / a.shape[0]


def tie_reason(samples: dict) -> str | None:
    """Why the extrapolation cannot run on `samples` (name -> validated (n, d) sample): the first
    whose share of repeated rows (:func:`repeated_share`) is at least :data:`TIED_SHARE`; None
    when no sample has ties."""
    for name, a in samples.items():
        share = repeated_share(a)
        if share >= TIED_SHARE:
            return (f"{100 * share:.3g}% of the rows of {name} repeat another row (integer-valued or duplicated "
                    f"data): distances of 0 make the kNN bias no power law of n, and extrapolating it amplifies "
                    f"the ties")
    return None
