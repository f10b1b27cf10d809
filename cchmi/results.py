"""Result dataclasses: one shape whatever the flags."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ESTIMATOR_NAMES = {
    "ksg1": "KSG-1",
    "ksg2": "KSG-2",
    "gao": "Gao et al. mixture KSG",
    "ross": "Ross mixed",
    "ross-gao": "Ross mixed, exact ties",
    "kl": "Kozachenko-Leonenko",
    "fp": "Frenzel-Pompe",
    "latent-ksg1": "latent MI, KSG-1",
    "latent-ross": "latent MI, Ross mixed",
    "ksg1-extrapolated": "KSG-1 extrapolated to n -> inf",
    "ross-extrapolated": "Ross mixed extrapolated to n -> inf",
    "probe-linear": "probe bound, softmax regression",
    "probe-mlp": "probe bound, MLP",
}


@dataclass(frozen=True)
class MIResult:
    """An estimate (mutual information, conditional MI or entropy) with how it was obtained.

    estimate: the value in `unit` (nats unless `base` was given), never clipped at 0.
    stderr, ci_low, ci_high, confidence, n_subsamples: set when an interval was asked for
    (``confidence=0.95``); see :func:`cchmi.ksg_mi` for how they are computed.
    seconds: wall time of the whole call, interval included.
    """

    estimate: float
    n: int
    k: int
    estimator: str
    backend: str
    seconds: float
    unit: str = "nats"
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    n_subsamples: int | None = None

    def __float__(self) -> float:
        return float(self.estimate)

    def __str__(self) -> str:
        name = ESTIMATOR_NAMES.get(self.estimator, self.estimator)
        k = f"k={self.k}, " if self.k else ""  # k = 0: not a kNN estimate
        text = f"{self.estimate:.4f} {self.unit} ({name}, {k}n={self.n}, {self.backend}, {self.seconds:.3g} s)"
        if self.stderr is not None:
            text += f" +/- {self.stderr:.4f} se, {100 * self.confidence:g}% CI [{self.ci_low:.4f}, {self.ci_high:.4f}]"
        return text


@dataclass(frozen=True)
class PermutationResult:
    """A permutation test of independence: the observed estimate, its null distribution (the
    estimates after shuffling one variable's rows) and the p-value (1 + #{null >= observed}) /
    (1 + n_permutations), which is never 0."""

    estimate: float
    p_value: float
    null: np.ndarray = field(repr=False)
    n_permutations: int
    n: int
    k: int
    estimator: str
    backend: str
    seconds: float
    unit: str = "nats"

    def __float__(self) -> float:
        return float(self.estimate)

    def __str__(self) -> str:
        name = ESTIMATOR_NAMES.get(self.estimator, self.estimator)
        return (
            f"{self.estimate:.4f} {self.unit} ({name}, k={self.k}, n={self.n}), p = {self.p_value:.4g} "
            f"over {self.n_permutations} permutations (null mean {np.mean(self.null):.4f}, {self.backend})"
        )
