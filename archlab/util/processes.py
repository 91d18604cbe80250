"""Independent training runs, several at once: one process per run, so that each run keeps its
own core and its own float order (a run at 1 thread gives the same numbers in any process).
Used by ``archlab fidelity`` and experiments' train sections."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterable, Sequence

PARENT_POLL_S = 1.0


def _die_with_parent(parent: int) -> None:
    """A worker's initializer: end this worker once its parent is gone. A parent killed with
    SIGTERM or SIGKILL (not Ctrl-C, which reaches the whole process group) used to leave its
    workers training their current run for minutes: an `archlab fidelity` restarted on the
    same --out then had two processes writing the same runs."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    *,
    workers: int,
    on_result: Callable[[int, Any], None],
    order: Iterable[int] | None = None,
) -> None:
    """``fn(*jobs[i])`` for every job; ``on_result(i, result)`` as each one ends (in the caller's
    process, so it may log and record). ``workers == 1``: in this process, in job order.
    Otherwise in ``workers`` spawned processes, submitted in ``order`` (default: job order); an
    error or an interrupt cancels what has not started and is raised here. ``fn`` and the jobs
    must pickle."""
    if workers == 1:
        for i, job in enumerate(jobs):
            on_result(i, fn(*job))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: a forked torch with threads started can deadlock
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        futures = {pool.submit(fn, *jobs[i]): i for i in (range(len(jobs)) if order is None else order)}
        try:
            for f in as_completed(futures):
                on_result(futures[f], f.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise
