"""Timing callables side by side: round-robin passes, so that every candidate sees the same
minutes of machine load (CPU clocks and background load drift; a ratio measured in one run
survives that, two separate runs do not). Also what every timing here shares: the clocks, the
device sync, the deterministic input, torch's thread count held for a measurement."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

# How a call is timed: "wall" (perf_counter: the latency a user waits) or "cpu" (the calling
# thread's CPU time: at 1 thread on a CPU it is the wall time of a quiet machine, and time
# spent waiting for a core other processes hold does not count, so a table can be measured
# on a busy machine; a neighbour that slows the core's work, sharing caches or memory
# bandwidth, still shows).
CLOCKS = ("wall", "cpu")


def clock_fn(clock: str) -> Callable[[], float]:
    """Seconds on ``clock``: "wall" (``perf_counter``) or "cpu" (this thread's CPU time, which
    other processes' load does not inflate; it sees only this thread's work)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock {clock!r} is not one of {', '.join(CLOCKS)}")
    return time.thread_time if clock == "cpu" else time.perf_counter


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a CUDA kernel returns before it ran)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timing_input(shape: tuple[int, ...]) -> torch.Tensor:
    """The deterministic batch-1 input a part or a network is timed on."""
    return torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` while measuring, and given back after: a process
    that measures at 1 thread keeps its own setting."""
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def interleaved(
    fns: dict[str, Callable[[], Any]],
    runs: int,
    warmup: int = 2,
    device: torch.device | str = "cpu",
    clock: str = "wall",
) -> dict[str, list[float]]:
    """Time each callable ``runs`` times after ``warmup`` untimed rounds, round-robin (the
    first one rotates every round), so every candidate sees the same minutes of machine load.
    Returns milliseconds per call on ``clock``."""
    device = torch.device(device)
    now = clock_fn(clock)
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(runs):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t0 = now()
            fns[n]()
            sync(device)
            times[n].append((now() - t0) * 1000)
    return times
