"""A progress line for long counted work (measuring parts, timing networks): at most one line
every ``every`` seconds, and one at the end, so a long run shows it is alive without flooding
the console."""

from __future__ import annotations

import time
from typing import Callable


class CountProgress:
    """``progress(done, total, what)`` callback printing ``  LABEL done/total (pct), M.m min``
    through ``echo``."""

    def __init__(self, *, label: str, echo: Callable[[str], None], every: float = 10.0):
        if every < 0:
            raise ValueError(f"every must be >= 0 seconds, not {every!r}")
        self.label, self.echo, self.every = label, echo, every
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int, _what: str = "") -> None:
        now = time.monotonic()
        if done == total or now - self.last >= self.every:
            self.last = now
            self.echo(f"  {self.label} {done}/{total} ({done / max(total, 1):.0%}), {(now - self.start) / 60:.1f} min")
