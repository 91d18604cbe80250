"""Timing callables side by side: round-robin passes, so that every candidate sees the same
minutes of machine load (CPU clocks and background load drift; a ratio measured in one run
survives that, two separate runs do not)."""

from __future__ import annotations

import time
from typing import Any, Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 2, device: torch.device | str = "cpu"
) -> dict[str, list[float]]:
    """Time each callable ``runs`` times, round-robin (the first one rotates every round), so
    every candidate sees the same minutes of machine load. Returns milliseconds per call."""
    device = torch.device(device)
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    _sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(runs):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter()
            fns[n]()
            _sync(device)
            times[n].append((time.perf_counter() - t0) * 1000)
    return times
