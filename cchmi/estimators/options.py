"""The options every kNN estimator shares, validated in one place, and the one signature they make.

:class:`KnnOptions` holds them (frozen); :meth:`KnnOptions.validated` checks every value and names
the argument in its errors. :func:`knn_api` turns an estimator's body ``body(*data, opts, **extra)``
into the public function with explicit keywords: its signature (shown by ``help`` and
``inspect.signature``, enforced on every call) is built from the fields the estimator takes, so a
new option is one field here, its check in ``validated``, and its name in the estimators that use
it. The scikit-learn-shaped classes (:mod:`cchmi.estimators.base`) take their ``__init__`` from
the same fields.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
from dataclasses import dataclass

import numpy as np

from cchmi import _validate as V

TIES = ("jitter", "exact", "none")
DEFAULT_NOISE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


@dataclass(frozen=True)
class KnnOptions:
    """See :func:`cchmi.ksg_mi` for the meaning of each option."""

    k: int = 3
    variant: int = 1
    ties: str = "jitter"
    noise: float | None = None
    standardize: bool = True
    base: float = math.e
    dtype: object = None
    random_state: object = 0
    backend: str = "auto"
    confidence: float | None = None
    n_subsamples: int = 20
    devices: object = None

    def validated(self, ties_allowed: tuple[str, ...] = TIES) -> KnnOptions:
        """The same options with every value checked (k only for its type: its range needs n)."""
        if isinstance(self.k, (bool, np.bool_)) or not isinstance(self.k, numbers.Integral):
            raise TypeError(f"k must be an integer, got {self.k!r} ({type(self.k).__name__})")
        if isinstance(self.variant, (bool, np.bool_)):
            raise TypeError(f"variant must be 1 or 2, got {self.variant!r}")
        variant = V.choice(self.variant, "variant", (1, 2))
        ties = V.choice(self.ties, "ties", ties_allowed)
        if ties == "exact" and variant == 2:
            raise ValueError("ties='exact' (Gao et al. 2017) is defined for variant=1 only")
        if self.noise is not None:
            check_noise(self.noise)
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize must be True or False, got {self.standardize!r}")
        V.working_dtype(self.dtype)  # the name is checked here; the dtype itself needs the inputs
        V.check_random_state(self.random_state)
        if not isinstance(self.backend, str):
            raise TypeError(f"backend must be a string such as 'auto' or 'cpu', got {self.backend!r}")
        devices = check_devices(self.devices)
        if devices is not None and self.backend != "auto":
            raise ValueError(f"devices= runs the sharded kNN and counting ops of cchmi.distributed, not a backend: "
                             f"leave backend='auto' (got backend={self.backend!r})")
        return dataclasses.replace(
            self,
            k=int(self.k),
            variant=int(variant),
            ties=ties,
            standardize=bool(self.standardize),
            base=V.check_base(self.base),
            confidence=V.check_confidence(self.confidence),
            n_subsamples=V.as_int(self.n_subsamples, "n_subsamples", 2),
            devices=devices,
        )

    def noise_for(self, dtype: np.dtype) -> float:
        """The jitter amplitude in the working dtype (None: its default)."""
        return DEFAULT_NOISE[dtype] if self.noise is None else float(self.noise)


def check_noise(noise) -> float:
    if isinstance(noise, (bool, np.bool_)) or not isinstance(noise, numbers.Real):
        raise TypeError(f"noise must be a non-negative float or None, got {noise!r}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite float >= 0, got {noise!r}")
    return float(noise)


def check_devices(devices) -> tuple | None:
    """None, or a non-empty list or tuple of devices as torch names them: CUDA ordinals (int >= 0),
    strings ("cuda:1", "cpu") or torch.device objects; returned as a tuple. A device may repeat
    (virtual shards on one device). Whether they exist is checked where torch is imported."""
    if devices is None:
        return None
    if not isinstance(devices, (list, tuple)) or not devices:
        raise TypeError(f"devices must be None or a non-empty list of devices (e.g. [0, 1] or ['cuda:0', 'cpu']), "
                        f"got {devices!r}")
    for i, device in enumerate(devices):
        if isinstance(device, (bool, np.bool_)) or not (isinstance(device, (numbers.Integral, str))
                                                         or hasattr(device, "type")):
            raise TypeError(f"devices[{i}] must be a CUDA ordinal, a device name or a torch.device, got {device!r}")
        if isinstance(device, numbers.Integral) and device < 0:
            raise ValueError(f"devices[{i}] must be a CUDA ordinal >= 0, got {device!r}")
    return tuple(devices)


# The option sets of the estimators.
INTERVAL = ("confidence", "n_subsamples")
SHARDED = ("devices",)
COMMON = ("ties", "noise", "standardize", "base", "dtype", "random_state", "backend")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(KnnOptions)}


def option_parameters(fields: tuple[str, ...], *, k_positional: bool = True) -> list[inspect.Parameter]:
    """inspect.Parameters of the options `fields` (k first, positional-or-keyword unless told)."""
    params = []
    for name in fields:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if name == "k" and k_positional else inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(name, kind, default=_DEFAULTS[name]))
    return params


def knn_api(*data: str, fields: tuple[str, ...], extra: tuple[inspect.Parameter, ...] = (),
            k_positional: bool = True):
    """Decorator: body(*data arrays, opts: KnnOptions, **extra) -> the public function
    f(*data, k=3, *, <fields>, <extra>) with that explicit signature."""

    def wrap(body):
        params = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in data]
        options = option_parameters(fields, k_positional=k_positional)
        positional = [p for p in options if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD]
        keyword = [p for p in options if p.kind == inspect.Parameter.KEYWORD_ONLY]
        signature = inspect.Signature(params + positional + list(extra) + keyword,
                                      return_annotation=inspect.signature(body).return_annotation)

        @functools.wraps(body)
        def api(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)  # TypeError for unknown or missing arguments
            bound.apply_defaults()
            values = bound.arguments
            opts = KnnOptions(**{name: values[name] for name in fields})
            return body(*(values[name] for name in data), opts, **{p.name: values[p.name] for p in extra})

        api.__signature__ = signature  # what help() and inspect show, rather than the body's
        return api

    return wrap
