"""The former home of :func:`cchmi.mi`, kept importable for one release: the code is in
:mod:`cchmi.estimators.select`. Import from there (or use ``cchmi.mi``)."""

from cchmi.estimators.select import LARGE_N, MI_AUTO_RULES, MI_ESTIMATORS, AutoMIResult, mi, mi_auto_estimator

__all__ = ["LARGE_N", "MI_AUTO_RULES", "MI_ESTIMATORS", "AutoMIResult", "mi", "mi_auto_estimator"]
