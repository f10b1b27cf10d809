"""The one progress bar (stderr): redrawn in place on a terminal, a line per 10% otherwise; off
unless enabled (the library prints nothing by default; the CLI turns it on)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True):
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
        text = f"{self.label} [{bar:<30}] {self.done}/{self.total} {what} {elapsed:.0f}s elapsed, ~{eta:.0f}s left"
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
