"""The one progress bar (stderr): redrawn in place on a terminal, a line per 10% otherwise; off
unless enabled (the library prints nothing by default; the CLI turns it on).

Entry points whose work takes seconds (``cchmi.mi``, ``cch``, ``rank_teachers``) take
``progress=False``; with ``progress=True`` they run inside :func:`reporting`, and the loops below
them report as :func:`stages` ("extrapolation level 2/4", "half-sample 7/20", "teacher 2/5"), without
the keyword passed down: the outermost loop draws the bar and the loops nested in it stay silent
(the kNN passes are compiled calls, so progress is per stage, not per row). A :class:`Progress`
made without ``enabled`` (e.g. neural_mi's epochs) draws too when it is the outermost work.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import sys
import time
from dataclasses import dataclass


@dataclass
class _Scope:
    label: str  # the entry point, shown before each bar
    depth: int = 0  # open stages: only the outermost draws


_SCOPE = contextvars.ContextVar("cchmi_progress", default=None)


@contextlib.contextmanager
def reporting(enabled, label: str):
    """Within: :func:`stages` and the outermost :class:`Progress` draw their bars, labelled
    "`label`: ...", when `enabled` (True or False, the entry point's ``progress``); inside an outer
    :func:`reporting` (rank_teachers calling cch) the outer one goes on as it is."""
    if not isinstance(enabled, bool):
        raise TypeError(f"progress must be True or False, got {enabled!r}")
    if _SCOPE.get() is not None or not enabled:
        yield
        return
    token = _SCOPE.set(_Scope(label))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def reports(label: str):
    """Decorator: the function's keyword ``progress`` (its default when not given) runs the call
    within :func:`reporting` under `label` (the function itself need not pass it on)."""

    def wrap(function):
        default = inspect.signature(function).parameters["progress"].default

        @functools.wraps(function)
        def call(*args, **kwargs):
            with reporting(kwargs.get("progress", default), label):
                return function(*args, **kwargs)

        return call

    return wrap


class _Stages:
    """The steps of one loop: :meth:`done` after each (it returns its argument, for comprehensions)."""

    def __init__(self, total: int, what: str, bar: Progress | None):
        self.total, self.what, self.bar, self.count = total, what, bar, 0

    def done(self, value=None):
        self.count += 1
        if self.bar is not None:
            self.bar.step()
        return value


@contextlib.contextmanager
def stages(total: int, what: str):
    """A loop of `total` steps, each a `what` ("half-sample"): a bar within :func:`reporting` when
    no other stage is open, silent otherwise (and always silent outside :func:`reporting`)."""
    scope = _SCOPE.get()
    if scope is None:
        yield _Stages(total, what, None)
        return
    bar = Progress(total, f"{scope.label}: {what}s", enabled=True) if scope.depth == 0 else None
    scope.depth += 1
    try:
        yield _Stages(total, what, bar)
    finally:
        scope.depth -= 1
        if bar is not None:
            bar.close()


class Progress:
    """A bar of `total` steps labelled `label`; drawn when `enabled`, or when it is the outermost
    work within :func:`reporting` (then labelled "<entry point>: `label`")."""

    def __init__(self, total: int, label: str, enabled: bool = True):
        scope = _SCOPE.get()
        if not enabled and scope is not None and scope.depth == 0:
            enabled, label = True, f"{scope.label}: {label}"
        self.total, self.label, self.enabled = total, label, enabled and total > 0
        self.done, self.start, self.last_decile, self.open = 0, time.perf_counter(), -1, False
        self.tty = sys.stderr.isatty()

    def step(self, what: str = "", count: int = 1):
        """`count` units done (one by default); `what` says what they were (shown after the counts)."""
        self.done += count
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        bar = "#" * int(30 * min(self.done, self.total) / self.total)
        what = f" {what}" if what else ""
        text = f"{self.label} [{bar:<30}] {self.done}/{self.total}{what} {elapsed:.0f}s elapsed, ~{eta:.0f}s left"
        if self.tty:
            print("\r" + text, end="", file=sys.stderr, flush=True)
            self.open = True
            if self.done >= self.total:
                self.close()
        elif self.done * 10 // self.total != self.last_decile:
            self.last_decile = self.done * 10 // self.total
            print(text, file=sys.stderr, flush=True)

    def close(self):
        """End the line (for work that stops before `total`, e.g. early stopping)."""
        if self.open:
            print(file=sys.stderr, flush=True)
            self.open = False
