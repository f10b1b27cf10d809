"""The one validation path: every public entry point checks its inputs here.

Errors name the argument, what was expected and what was given. Kernels assume validated input.
Inputs that run but look like a mistake (transposed, or labels given as real-valued samples) warn
with :class:`InputWarning`, once per public call (:func:`warn_about_samples`).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import operator
import sys
import warnings

import numpy as np

_FLOAT_TYPES = {"float32": np.float32, "float64": np.float64}


class InputWarning(UserWarning):
    """Inputs that run but look like a mistake: a sample that looks transposed, or one column of
    a few integer values (labels) given where real-valued samples are expected."""


TRANSPOSED_MAX_ROWS = 100
"""A sample of at most this many rows and at least twice as many columns as rows warns (it looks
transposed). Bounded so that a legitimate wide representation of a modest sample set (1,000 rows of
4,096-d features, reduced with ``pca``) does not warn; at 100 rows or fewer with twice as many
columns as rows a kNN estimate says little even when the orientation is right, so a warning there
costs little where it is wrong."""

LABEL_LIKE_MAX_VALUES = 20
"""A single column of at most this many distinct integer values, each seen 5 times on average,
warns where real-valued samples are expected (it looks like labels)."""

_CHECKED = contextvars.ContextVar("cchmi_inputs_checked", default=False)


def _is_tensor(a) -> bool:
    return hasattr(a, "detach") and hasattr(a, "cpu") and hasattr(a, "is_meta")  # torch, without importing it


def plain_tensor(t, name: str):
    """A detached, dense, strided torch tensor with its values materialised (negative and conjugate
    bits resolved), or a clear error: sparse and meta tensors have no plain values to estimate on."""
    t = t.detach()
    if str(t.layout) != "torch.strided":
        raise TypeError(f"{name} is a {str(t.layout).removeprefix('torch.')} tensor: pass a dense one "
                        f"({name}.to_dense())")
    if t.is_meta:
        raise ValueError(f"{name} is on the meta device: it has a shape but no values")
    return t.resolve_neg().resolve_conj()


def _to_numpy(a, name: str) -> np.ndarray:
    if _is_tensor(a):
        t = plain_tensor(a, name).cpu()
        if str(t.dtype) == "torch.bfloat16":  # NumPy has no bfloat16: widen exactly
            t = t.float()
        a = t.numpy()
    try:
        return np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None


def as_samples(a, name: str) -> np.ndarray:
    """A finite real (n, d) sample array: 1-D input becomes one column. Keeps float32/float64,
    turns integers and booleans into float64. Non-contiguous and Fortran-ordered input is accepted."""
    arr = _to_numpy(a, name)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real-valued, got complex dtype {arr.dtype}")
    if kind not in "biuf":
        raise TypeError(f"{name} must have a numeric dtype, got {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be 1-D (n,) or 2-D (n, d), got a 0-d array (a scalar)")
    if arr.ndim > 2:
        raise ValueError(f"{name} must be 1-D (n,) or 2-D (n, d), got {arr.ndim}-D with shape {arr.shape}")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32 if arr.dtype == np.float16 else np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise ValueError(f"{name} contains NaN or infinite values (first at row {row}, column {col})")
    return arr


def _shape_text(a) -> str:
    return f"{a.shape[0]} rows and {a.shape[1]} columns"


def looks_transposed(a) -> bool:
    """At most TRANSPOSED_MAX_ROWS rows and at least twice as many columns as rows."""
    n, d = a.shape
    return n <= TRANSPOSED_MAX_ROWS and d >= 2 * n


def transposed_hint(samples: dict) -> str:
    """The hint for an error that follows from too few rows ("" when no sample has fewer rows than
    columns): rows are samples, pass the transpose if the columns are."""
    wide = [name for name, a in samples.items() if a.shape[0] < a.shape[1]]
    if not wide:
        return ""
    name = wide[0]
    return (f"; {name} has {_shape_text(samples[name])}: rows are samples and columns are dimensions, "
            f"so pass {name}.T if each column is a sample")


def looks_like_labels(a) -> bool:
    """One column of 2 to LABEL_LIKE_MAX_VALUES distinct integer values, each seen 5 times on average."""
    if a.shape[1] != 1:
        return False
    column = to_host(a)[:, 0]
    values = np.unique(column)
    return 2 <= values.size <= LABEL_LIKE_MAX_VALUES and column.size >= 5 * values.size and \
        bool(np.all(values == np.round(values)))


def _outside_stacklevel() -> int:
    """The warnings stacklevel of the first caller outside the cchmi package (from the caller of
    the function that calls this), so that a warning points at the user's line."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "cchmi":
        frame, level = frame.f_back, level + 1
    return level


def warn_about_samples(samples: dict, labels_hint: dict | None = None) -> None:
    """Warn (:class:`InputWarning`) about each validated (n, d) sample of `samples` (name -> array)
    that looks transposed (:func:`looks_transposed`) and, for the names in `labels_hint` (name ->
    what to do instead), each that looks like labels (:func:`looks_like_labels`). Silent inside
    :func:`inputs_checked`, where the public entry point has already warned about the user's arrays."""
    if _CHECKED.get():
        return
    for name, a in samples.items():
        if looks_transposed(a):
            warnings.warn(f"{name} has {_shape_text(a)}: rows are samples and columns are dimensions, so this "
                          f"estimates from n={a.shape[0]} samples; pass {name}.T if each column is a sample",
                          InputWarning, stacklevel=_outside_stacklevel())
        if labels_hint and name in labels_hint and looks_like_labels(a):
            count = np.unique(to_host(a)).size
            warnings.warn(f"{name} is one column of {count} distinct integer values over n={a.shape[0]} rows: it "
                          f"looks like discrete labels, which an estimator for real-valued samples treats as "
                          f"jittered reals (the estimate is not the MI with a discrete variable); {labels_hint[name]}",
                          InputWarning, stacklevel=_outside_stacklevel())


@contextlib.contextmanager
def inputs_checked():
    """Within: :func:`warn_about_samples` is silent (an entry point that warned about the user's
    arrays calls others that would warn again about the same arrays)."""
    token = _CHECKED.set(True)
    try:
        yield
    finally:
        _CHECKED.reset(token)


def _is_cuda_tensor(a) -> bool:
    dev = getattr(a, "device", None)
    return hasattr(a, "detach") and getattr(dev, "type", None) == "cuda"


def as_kernel_samples(a, name: str):
    """as_samples for the kNN estimators, except that a torch CUDA tensor stays where it is (validated
    on its device; float32/float64 kept, other real dtypes cast): the GPU backends use it in place."""
    if not _is_cuda_tensor(a):
        return as_samples(a, name)
    import torch

    t = plain_tensor(a, name)
    if t.is_complex():
        raise TypeError(f"{name} must be real-valued, got complex dtype {t.dtype}")
    if t.dim() not in (1, 2):
        raise ValueError(f"{name} must be 1-D (n,) or 2-D (n, d), got shape {tuple(t.shape)}")
    if t.dim() == 1:
        t = t.reshape(-1, 1)
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else torch.float64)
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ValueError(f"{name} contains NaN or infinite values (first at row {row}, column {col})")
    return t


def to_host(a) -> np.ndarray:
    """A NumPy array of `a` (a torch tensor on any device is copied to the host)."""
    return a if isinstance(a, np.ndarray) else _to_numpy(a, "array")


def is_float32(a) -> bool:
    return a.dtype == np.float32 if isinstance(a, np.ndarray) else str(a.dtype) == "torch.float32"


def as_labels(labels, name: str, n: int, continuous_hint: str | None = None) -> tuple[np.ndarray, int]:
    """Discrete labels of any hashable values -> (codes 0..C-1 as int64, C). Needs C >= 2.

    continuous_hint: what the caller offers for a real-valued target; given, labels of non-integer
    floats with more than n / 2 distinct values (no class could repeat enough to estimate with) are
    refused with it.
    """
    arr = _to_numpy(labels, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n,), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but the samples have n={n} rows")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if arr.dtype.kind == "O":
        missing = [i for i, v in enumerate(arr) if _is_missing(v)]
        if missing:
            raise ValueError(f"{name} has {len(missing)} missing labels (None or NaN; first at row {missing[0]}): "
                             "drop those rows or give them a class of their own")
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must hold hashable, comparable label values, got complex dtype {arr.dtype}")
    try:
        uniques, codes = np.unique(arr, return_inverse=True)
        n_classes = uniques.size
    except TypeError:  # object array of mutually incomparable values: map by hash
        mapping: dict = {}
        try:
            codes = np.array([mapping.setdefault(v, len(mapping)) for v in arr], dtype=np.int64)
        except TypeError as exc:
            raise TypeError(f"{name} must hold hashable label values: {exc}") from None
        n_classes = len(mapping)
    if n_classes < 2:
        raise ValueError(f"{name} has a single class: mutual information with a constant label is 0 by definition")
    if continuous_hint is not None and arr.dtype.kind == "f" and 2 * n_classes > n and \
            not np.all(arr == np.round(arr)):
        raise ValueError(f"{name} holds {n_classes} distinct non-integer values in {n} rows: a real-valued target, "
                         f"not classes; {continuous_hint}")
    return codes.reshape(-1).astype(np.int64), int(n_classes)


def _is_missing(v) -> bool:
    """None, a float NaN, or a value that is not equal to itself (pandas.NA, NaT-like values)."""
    if v is None:
        return True
    if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral):
        return math.isnan(v)
    try:
        return bool(v != v)
    except (TypeError, ValueError):  # pandas.NA: its comparisons are NA, whose truth is undefined
        return True


def same_length(**arrays: np.ndarray) -> int:
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        listed = ", ".join(f"{name} has {m}" for name, m in lengths.items())
        raise ValueError(f"all inputs need the same number of samples (rows): {listed}")
    n = next(iter(lengths.values()))
    if n < 2:
        raise ValueError(f"need at least 2 samples, got n={n}")
    return n


def as_int(value, name: str, low: int, high: int | None = None, high_reason: str = "") -> int:
    """An integer in [low, high] (bools refused), or a ValueError/TypeError naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = operator.index(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bound}{high_reason}, got {value}")
    return value


def as_real(value, name: str, low: float | None = None, high: float | None = None, *, low_open: bool = False,
            high_open: bool = False, reason: str = "") -> float:
    """A finite real number (bools refused) in the interval from `low` to `high` (open ends where
    told), or a TypeError/ValueError naming `name`: the one float check."""
    if low is not None and high is not None:
        bound = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        bound = f" {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        bound = f" {'<' if high_open else '<='} {high:g}"
    else:
        bound = ""
    message = f"{name} must be a finite number{bound}{reason}, got {value!r}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(message)
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or below or above:
        raise ValueError(message)
    return value


def check_k(k, n: int, what: str = "the number of samples") -> int:
    return as_int(k, "k", 1, n - 1, f" (k < n, where n={n} is {what})")


def choice(value, name: str, allowed) -> object:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def working_dtype(dtype, *arrays: np.ndarray) -> np.dtype:
    """float32 when every input is float32, else float64; `dtype` ('float32'/'float64') overrides."""
    if dtype is None:
        return np.dtype(np.float32) if all(is_float32(a) for a in arrays) else np.dtype(np.float64)
    try:
        key = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    except TypeError:
        key = None
    if key not in _FLOAT_TYPES:
        raise ValueError(f"dtype must be 'float32', 'float64' or None (follow the input), got {dtype!r}")
    return np.dtype(_FLOAT_TYPES[key])


def check_random_state(random_state, name: str = "random_state"):
    """A seed (int >= 0), None (fresh entropy), a numpy Generator, BitGenerator or SeedSequence."""
    if random_state is None or isinstance(random_state, (np.random.Generator, np.random.BitGenerator,
                                                         np.random.SeedSequence)):
        return random_state
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, numbers.Integral):
        raise TypeError(f"{name} must be an integer seed >= 0, None or a numpy Generator, got {random_state!r}")
    if random_state < 0:
        raise ValueError(f"{name} must be an integer seed >= 0, None or a numpy Generator, got {random_state}")
    return int(random_state)


def as_rng(random_state, name: str = "random_state") -> np.random.Generator:
    """A NumPy Generator from what check_random_state accepts (a Generator is used as it is)."""
    return np.random.default_rng(check_random_state(random_state, name))


def check_base(base) -> float:
    if isinstance(base, (bool, np.bool_)) or not isinstance(base, numbers.Real):
        raise TypeError(f"base must be a real number > 0 and != 1 (e for nats, 2 for bits), got {base!r}")
    base = float(base)
    if not (np.isfinite(base) and base > 0 and base != 1):
        raise ValueError(f"base must be a real number > 0 and != 1 (e for nats, 2 for bits), got {base!r}")
    return base


def check_confidence(confidence) -> float | None:
    if confidence is None:
        return None
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(confidence, numbers.Real):
        raise TypeError(f"confidence must be a float in (0, 1) or None, got {confidence!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    return float(confidence)
