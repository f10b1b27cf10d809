"""kNN estimators of mutual information and entropy (the KSG family), on any backend.

Conventions, shared by every estimator and every backend:

* **Distances** are max-norm (Chebyshev): ``max_c |x_jc - x_ic|``, computed in the working dtype
  (float32 when every input is float32, else float64; ``dtype=`` overrides) with one rounding per
  coordinate difference, so all backends find the same neighbours and the same counts.
* **Neighbours** exclude the point itself. Among equal distances the smaller index is nearer, which
  fixes the k neighbours (KSG-2 uses their identity, not only the k-th distance).
* **Counts**: KSG-1, Frenzel-Pompe and Ross count points strictly inside the k-th neighbour
  distance (``<``); KSG-2 counts within the marginal extents of the k neighbours, boundary included
  (``<=``); the exact-ties (Gao et al.) estimators count with ``<=``.
* **Standardisation** (``standardize=True``, the default): each column is centred and divided by its
  standard deviation with ddof=0 (the population s.d., as scikit-learn's ``scale``); constant
  columns are only centred. MI is invariant to it; :func:`entropy` adds back ``sum(log s.d.)`` so
  that it estimates the entropy of the data as given.
* **Ties** (duplicated rows, discrete-valued columns): ``ties="jitter"`` (default) adds seeded
  Gaussian noise of standard deviation ``noise * max(1, mean|column|)`` to every column after
  standardisation, as scikit-learn does (``noise`` defaults to 1e-10 in float64 and 1e-5 in
  float32, whose resolution is coarser); a warning is raised when exact ties survive it.
  ``ties="exact"`` uses no noise and handles ties by Gao et al. (2017) (:func:`ksg_mi` variant 1
  and :func:`mixed_mi`); ``ties="none"`` uses no noise and applies the counting rules as they are.
* **Units**: nats; ``base=2`` gives bits. Estimates are never clipped: a negative value is the
  estimator's sampling error around a small MI, and is returned as is.
* **Uncertainty** (``confidence=0.95``): ``n_subsamples`` estimates on half-samples drawn without
  replacement (stratified by label for :func:`mixed_mi`). With m = n // 2, the standard error is
  ``sqrt(m / (n - m) * mean((theta_s - mean theta)^2))``, the delete-d jackknife of Shao & Wu (1989),
  and the interval is ``estimate +/- z * stderr``. It covers sampling variability, not the
  estimator's bias. A bootstrap with replacement is not offered: duplicated points break kNN
  estimators.

Layout (see docs/ARCHITECTURE.md): ``options`` (the shared options, validated once, and the
signature they make), ``problem`` (validate -> resolve the backend -> prepare, once), ``interval``
(half-sample jackknife, permutation null, result assembly), then one module per estimator holding
its formula (``*_nats`` on prepared arrays), its function and its class: ``ksg``, ``mixed``,
``entropy``, ``cmi``, and ``permutation``; ``extrapolate`` (the bias correction over subsample
sizes) and ``probe`` (the probe bound of I(X; labels), torch). Code outside this package (cch, the neural estimators)
uses those names, never a private one.
"""

from cchmi.estimators.cmi import CMI, cmi
from cchmi.estimators.entropy import KLEntropy, entropy
from cchmi.estimators.ksg import KSG, ksg_mi, ksg_mi_batch
from cchmi.estimators.mixed import MixedMI, mixed_mi
from cchmi.estimators.permutation import permutation_test
from cchmi.estimators.probe import probe_mi

__all__ = ["ksg_mi", "ksg_mi_batch", "mixed_mi", "entropy", "cmi", "permutation_test", "probe_mi", "KSG", "MixedMI",
           "KLEntropy", "CMI"]
