"""Trial workers a killed search left running.

Ray starts each trial worker in its own process group, so killing a search driver's process
group (or the driver alone) leaves workers that go on training: a resumed search then trains
beside them, on the same cores and into the same trial directory. Each worker therefore leaves
a note in its trial directory (``worker.pid``: pid, the process's start time and the boot id,
so a reused pid or another machine's note is never mistaken for it) and removes it when the
trial ends. A search that holds the study's lock knows no other search of this study is alive,
so any worker still running from a note is an orphan: it is killed before anything trains.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

NOTE = "worker.pid"
TRIAL_DIRS = ("trials", "baselines", "confirm")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), or
    None when it is gone (or this is not Linux)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def remember(work: Path) -> None:
    """Called by the worker when its trial starts."""
    work.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    (work / NOTE).write_text(f"{pid} {_start_time(pid) or '?'} {_boot_id()}\n")


def forget(work: Path) -> None:
    """Called by the worker when its trial ends, whatever the outcome."""
    try:
        (work / NOTE).unlink()
    except OSError:
        pass


def end_orphans(study_dir: Path) -> list[tuple[int, str]]:
    """Kill every worker a note in ``study_dir`` names that is still the same process; remove
    the notes. Returns (pid, trial directory) of the killed ones. Call with the study lock held."""
    killed = []
    boot = _boot_id()
    for sub in TRIAL_DIRS:
        for note in sorted((study_dir / sub).glob(f"*/{NOTE}")):
            try:
                pid_s, start, note_boot = (note.read_text().split() + ["", "", ""])[:3]
                pid = int(pid_s)
            except (OSError, ValueError):
                pid = 0
            if pid > 0 and pid != os.getpid() and note_boot == boot and start != "?" and _start_time(pid) == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, f"{sub}/{note.parent.name}"))
                except OSError:
                    pass
            try:
                note.unlink()
            except OSError:
                pass
    return killed
