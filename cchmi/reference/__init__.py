"""Slow, readable NumPy oracles: every backend and every estimator is tested against these.

The neighbour searches (:func:`knn`, :func:`count_within`) compute distances in the input's own
floating type exactly as the compiled kernels do (one rounding per coordinate difference, then
exact abs and max), so their results must agree with every backend bit for bit. The estimators
(:func:`ksg_mi`, :func:`mixed_mi`, :func:`entropy`, :func:`cmi`) follow the papers' formulas
point by point, in float64, on already prepared (standardised, jittered) arrays.
"""

from cchmi.reference.knn import count_within, knn
from cchmi.reference.ksg import cmi, entropy, gao_mi, ksg_mi, mixed_mi

__all__ = ["knn", "count_within", "ksg_mi", "gao_mi", "mixed_mi", "entropy", "cmi"]
