"""scikit-learn-shaped classes around the estimator functions.

``__init__`` stores the parameters, ``fit`` returns self and puts the results in trailing-underscore
attributes (``result_``, an :class:`~cchmi.results.MIResult`, and ``mi_`` or ``entropy_``).
"""

from __future__ import annotations

import inspect
import math

from cchmi import ksg as _ksg


class _Estimator:
    """Stores the parameters shared by every kNN estimator; see :func:`cchmi.ksg_mi` for their meaning."""

    _function = None

    def __init__(self, k=3, *, ties="jitter", noise=None, standardize=True, base=math.e, dtype=None,
                 random_state=0, backend="auto", confidence=None, n_subsamples=20):
        self.k, self.ties, self.noise = k, ties, noise
        self.standardize, self.base, self.dtype, self.random_state = standardize, base, dtype, random_state
        self.backend, self.confidence, self.n_subsamples = backend, confidence, n_subsamples

    def get_params(self, deep: bool = True) -> dict:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params):
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _estimate(self, *arrays):
        self.result_ = type(self)._function(*arrays, **self.get_params())
        return self.result_.estimate


class KSG(_Estimator):
    """I(X; Y) by KSG-1/KSG-2; see :func:`cchmi.ksg_mi`. After ``fit(x, y)``: ``mi_``, ``result_``."""

    _function = staticmethod(_ksg.ksg_mi)

    def __init__(self, k=3, *, variant=1, ties="jitter", noise=None, standardize=True, base=math.e, dtype=None,
                 random_state=0, backend="auto", confidence=None, n_subsamples=20):
        super().__init__(k, ties=ties, noise=noise, standardize=standardize, base=base, dtype=dtype,
                         random_state=random_state, backend=backend, confidence=confidence,
                         n_subsamples=n_subsamples)
        self.variant = variant

    def fit(self, x, y):
        self.mi_ = self._estimate(x, y)
        return self


class MixedMI(_Estimator):
    """I(X; labels) by Ross (2014); see :func:`cchmi.mixed_mi`. After ``fit(x, labels)``: ``mi_``, ``result_``."""

    _function = staticmethod(_ksg.mixed_mi)

    def fit(self, x, labels):
        self.mi_ = self._estimate(x, labels)
        return self


class KLEntropy(_Estimator):
    """H(X) by Kozachenko-Leonenko; see :func:`cchmi.entropy`. After ``fit(x)``: ``entropy_``, ``result_``."""

    _function = staticmethod(_ksg.entropy)

    def fit(self, x):
        self.entropy_ = self._estimate(x)
        return self


class CMI(_Estimator):
    """I(X; Y | Z) by Frenzel-Pompe; see :func:`cchmi.cmi`. After ``fit(x, y, z)``: ``mi_``, ``result_``."""

    _function = staticmethod(_ksg.cmi)

    def fit(self, x, y, z):
        self.mi_ = self._estimate(x, y, z)
        return self
