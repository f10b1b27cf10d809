"""Result dataclasses: one shape whatever the flags, saved and loaded back as JSON.

Every result type derives from :class:`ResultIO`: ``as_dict()`` gives plain JSON values (tuples and
arrays as lists), ``to_json()`` adds the type's name, :func:`load_result` reads it back into the
same type (``save(path)`` writes it atomically). Non-finite floats are written as null (strict JSON).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cchmi import _io

RESULT_TYPES: dict[str, type] = {}
"""Result types by name: what :func:`load_result` can rebuild (each :class:`ResultIO` subclass)."""


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.as_dict() if isinstance(value, ResultIO) else _plain(dataclasses.asdict(value))
    return value


def _rebuild(value, hint):
    """`value` (from JSON) as the field type `hint` wants: tuples, arrays, nested results, None."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _rebuild(value, options[0]) if len(options) == 1 else value
    if hint is np.ndarray:
        return np.asarray(value)
    if origin is tuple:
        return tuple(value)
    if isinstance(hint, type) and issubclass(hint, ResultIO) and isinstance(value, dict):
        return hint.from_dict(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        hints = typing.get_type_hints(hint)
        return hint(**{k: _rebuild(v, hints[k]) for k, v in value.items()})
    return value


class ResultIO:
    """JSON round trip for the frozen result dataclasses (mixed into each of them)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        RESULT_TYPES[cls.__name__] = cls

    def as_dict(self) -> dict:
        """The fields as plain JSON-serialisable values (tuples and arrays as lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict):
        """The result whose :meth:`as_dict` is `values` (unknown keys are a ValueError)."""
        if not isinstance(values, dict):
            raise TypeError(f"{cls.__name__}.from_dict needs a dict, got {type(values).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names - {"result_type"})
        if unknown:
            raise ValueError(f"{cls.__name__} has no fields {unknown}")
        return cls(**{k: _rebuild(v, hints[k]) for k, v in values.items() if k in names})

    def to_json(self) -> str:
        """Strict JSON text of :meth:`as_dict`, with ``"result_type"`` naming the class."""
        return _io.dumps_json({"result_type": type(self).__name__, **self.as_dict()})

    def save(self, path) -> None:
        """Write :meth:`to_json` to `path` atomically (see :func:`load_result`)."""
        _io.write_atomic(path, self.to_json())


def load_result(source):
    """A result saved by ``save`` (a path) or produced by ``to_json`` (the text, or its parsed dict),
    rebuilt as its own type (:data:`RESULT_TYPES`)."""
    if isinstance(source, dict):
        values = source
    else:
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        values = json.loads(text)
    if not isinstance(values, dict) or "result_type" not in values:
        raise ValueError("not a saved cchmi result: the JSON object has no \"result_type\"")
    name = values["result_type"]
    if name not in RESULT_TYPES:
        raise ValueError(f"unknown result_type {name!r}; known: {sorted(RESULT_TYPES)}")
    return RESULT_TYPES[name].from_dict(values)

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
class MIResult(ResultIO):
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
class PermutationResult(ResultIO):
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
