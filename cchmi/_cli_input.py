"""What the command line reads: arrays from files (sizes checked before anything is allocated) and
the values of its options (argparse types that refuse bad values with a one-line message)."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np

from cchmi._extras import require


def load_array(path: str) -> np.ndarray:
    """An array from a file; sizes (from .npy headers, else the file's or the unpacked size) are
    checked against $CCHMI_MAX_ARRAY_BYTES (default 8 GiB) before anything is allocated."""
    import zipfile

    from cchmi import _io

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{path}: is a directory, not a file")
    if not p.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return _io.load_npy(p)
        if suffix == ".npz":
            with zipfile.ZipFile(p) as z:
                names = [n for n in z.namelist() if n.endswith(".npy")]
            if len(names) != 1:
                raise ValueError(f"{path}: expected one array in the .npz, found {len(names)}: {', '.join(names)}")
            return next(iter(_io.load_npz(p).values()))
        if suffix in (".csv", ".txt"):  # a number takes at least 2 bytes of text and 8 in memory
            _io.check_size(path, 4 * p.stat().st_size, "the text read as float64")
            return np.loadtxt(p, delimiter="," if suffix == ".csv" else None, ndmin=2)
        if suffix == ".pt":
            if zipfile.is_zipfile(p):
                with zipfile.ZipFile(p) as z:
                    _io.check_size(path, sum(i.file_size for i in z.infolist()), "the unpacked file")
            else:
                _io.check_size(path, p.stat().st_size, "the file")
            return _load_torch(p)
    except (OSError, ValueError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        text = str(exc)
        raise ValueError(text if text.startswith(str(path)) else f"{path}: could not read it: {text}") from None
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use .npy, .npz, .csv, .txt or .pt)")


def _load_torch(p: Path) -> np.ndarray:
    """A tensor saved with torch.save, alone or as the only tensor of a dict (weights_only: no code runs)."""
    torch = require("torch", "torch", f"{p}: reading a .pt file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, runtime and zip errors with long multi-line texts
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"not a file torch.load reads safely (weights_only): {type(exc).__name__}: {first}") from None
    if isinstance(obj, dict):
        tensors = [v for v in obj.values() if isinstance(v, torch.Tensor)]
        if len(tensors) != 1:
            raise ValueError(f"expected one tensor in the saved dict, found {len(tensors)}")
        obj = tensors[0]
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"expected a tensor, found {type(obj).__name__}")
    obj = obj.detach()
    if obj.dtype in (torch.float16, torch.bfloat16):  # NumPy has no bfloat16: both widen to float32
        obj = obj.float()
    return obj.numpy()


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _float(text: str, expected: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def open_unit(text: str) -> float:
    """A level such as --confidence: a number strictly between 0 and 1."""
    value = _float(text, "a number in (0, 1), e.g. 0.95")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), e.g. 0.95, got {text}")
    return value


def log_base(text: str) -> float:
    """--base: a finite number > 0 other than 1 (e for nats, 2 for bits)."""
    value = _float(text, "a number > 0 other than 1")
    if not (0 < value < float("inf") and value != 1):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 other than 1 (e: nats, 2: bits), got {text}")
    return value


def executor_option(text: str) -> tuple[str, object]:
    """--executor-option KEY=VALUE: VALUE read as JSON (4, 2.5, true, null, "x") when it parses,
    else kept as text (tcp://host:8786, gpu)."""
    import json
    import re

    key, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _integers(text: str, what: str, low: int) -> list[int]:
    """Comma-separated integers, each >= `low` (an argparse type error naming `what` otherwise)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if min(values) < low:
        raise argparse.ArgumentTypeError(f"{what} must be >= {low}, got {text}")
    return values


def sizes(text: str) -> list[int]:
    """--n: comma-separated sample sizes, each >= 2."""
    return _integers(text, "sizes", 2)


def dims(text: str) -> list[int]:
    """--dims of `cchmi bench cch`: comma-separated columns per side, each >= 1."""
    return _integers(text, "dims", 1)


def positive_seconds(text: str) -> float:
    value = _float(text, "a number of seconds")
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return value


def devices(text: str) -> list[str]:
    """--devices: comma-separated torch devices (cpu, cuda, cuda:N, mps, xpu, xpu:N)."""
    import re

    devices = text.split(",")
    bad = [d for d in devices if not re.fullmatch(r"cpu|mps|(cuda|xpu)(:\d+)?", d.strip())]
    if bad:
        raise argparse.ArgumentTypeError(f"not a device: {', '.join(map(repr, bad))} (e.g. cpu, cuda:0,cuda:1)")
    return [d.strip() for d in devices]


def output_folder(out: Path) -> Path:
    """--out: created if missing; refused (ValueError) when it is a file, lies under a file or is not writable."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except FileExistsError:
        raise ValueError(f"--out {out}: is a file, not a folder") from None
    except NotADirectoryError:
        raise ValueError(f"--out {out}: lies under a file, not a folder") from None
    except OSError as exc:
        raise ValueError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    return out


def bundled_configs() -> dict:
    """The configs bundled in cchmi/distill/configs, by name: "<name>" for its files, "gpu/<name>" for
    those of its gpu folder (sized for a GPU). Read without importing cchmi.distill, which needs torch."""
    folder = resources.files("cchmi").joinpath("distill", "configs")
    found = {}
    for prefix, where in (("", folder), ("gpu/", folder.joinpath("gpu"))):
        if where.is_dir():
            found.update({prefix + f.name[:-5]: f for f in sorted(where.iterdir(), key=lambda f: f.name)
                          if f.name.endswith(".toml")})
    return found
