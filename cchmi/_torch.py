"""Small torch helpers shared by the KD trainer and the neural estimators (imported only by code
that needs torch)."""

from __future__ import annotations

import torch


def resolve_device(device) -> torch.device:
    """None or "auto": CUDA when torch sees a GPU, else the CPU; otherwise the device asked for,
    refused with a clear error when it is a CUDA device and none is visible."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', None, 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r} "
                         f"({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    return dev
