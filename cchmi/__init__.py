"""cchmi: fast mutual-information estimators, and the Cross-modal Complementarity Hypothesis.

Estimators (functions return an :class:`MIResult`; classes are scikit-learn shaped):

* :func:`ksg_mi` / :class:`KSG`: I(X; Y), Kraskov-Stoegbauer-Grassberger 1 and 2, exact-ties option;
* :func:`mixed_mi` / :class:`MixedMI`: I(X; labels), Ross (2014);
* :func:`entropy` / :class:`KLEntropy`: differential entropy, Kozachenko-Leonenko;
* :func:`cmi` / :class:`CMI`: I(X; Y | Z), Frenzel-Pompe;
* :func:`permutation_test`: the null of independence;
* :func:`ksg_mi_batch`: many KSG problems of one size at once (batched launches on a GPU);
* :func:`mi`: I(X; Y) or I(X; labels) by the estimator that suits n and the dimensions (kNN,
  kNN extrapolated to n -> inf, compress-then-kNN, or neural), the choice, its reason and the
  self-consistency checks recorded (:class:`AutoMIResult`, ``reliability``);
* :func:`compressed_mi`: compress-then-kNN for wide samples of low intrinsic dimension, gated by
  :func:`intrinsic_dimension` (TwoNN).

The CCH: :func:`cch` (I(T; S) - I(S; Y) with an interval and a verdict), :func:`rank_teachers`,
:func:`plot_cch` (matplotlib) to draw their results;
the joint Gaussian theory in :mod:`cchmi.theory`; the KD trainer in :mod:`cchmi.distill` (torch).

Neural estimators (torch, imported on first use): :func:`neural_mi` / :class:`NeuralMI` (InfoNCE,
NWJ, MINE, SMILE, JS with learned critics), :func:`latent_mi` and :func:`diffusion_mi`
(experimental), from :mod:`cchmi.neural`.

Conventions (max-norm, ties, units, standardisation, intervals) are in ``help(cchmi.estimators)``;
the layers (estimators -> ops -> backends -> kernels) in docs/ARCHITECTURE.md.
Every result saves to JSON (``result.save(path)``, ``result.to_json()``) and comes back with
:func:`load_result`.
Importing cchmi touches no GPU and imports neither torch, triton nor faiss.
"""

from cchmi._validate import InputWarning
from cchmi._version import __version__
from cchmi.cch import CCHResult, TeacherRanking, cch, rank_teachers
from cchmi.estimators import (
    CMI,
    KSG,
    KLEntropy,
    MixedMI,
    cmi,
    entropy,
    ksg_mi,
    ksg_mi_batch,
    mixed_mi,
    permutation_test,
)
from cchmi.estimators.compress import compressed_mi
from cchmi.estimators.intrinsic import intrinsic_dimension
from cchmi.estimators.select import AutoMIResult, mi
from cchmi.info import info
from cchmi.ops import KNOWN_BACKENDS, available_backends, get_num_threads, set_num_threads
from cchmi.plot import plot_cch
from cchmi.results import MIResult, PermutationResult, load_result

_LAZY = {"neural_mi", "NeuralMI", "latent_mi", "diffusion_mi"}


def __getattr__(name: str):
    """The neural estimators need torch: imported when first asked for, not with cchmi."""
    if name in _LAZY:
        from cchmi._extras import require

        require("torch", "torch", f"cchmi.{name}")
        import cchmi.neural

        return getattr(cchmi.neural, name)
    raise AttributeError(f"module 'cchmi' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and the lazy ones (which __getattr__ imports on first use)."""
    return sorted(set(globals()) | _LAZY)


__all__ = [
    "__version__",
    "mi",
    "AutoMIResult",
    "compressed_mi",
    "intrinsic_dimension",
    "ksg_mi",
    "ksg_mi_batch",
    "mixed_mi",
    "entropy",
    "cmi",
    "permutation_test",
    "cch",
    "rank_teachers",
    "CCHResult",
    "TeacherRanking",
    "neural_mi",
    "NeuralMI",
    "latent_mi",
    "diffusion_mi",
    "KSG",
    "MixedMI",
    "KLEntropy",
    "CMI",
    "MIResult",
    "PermutationResult",
    "load_result",
    "InputWarning",
    "plot_cch",
    "info",
    "available_backends",
    "KNOWN_BACKENDS",
    "set_num_threads",
    "get_num_threads",
]
