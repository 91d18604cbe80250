"""Issue 15 item 2: a search that holds a study's lock ends the trial workers an earlier,
killed search of that study left running, and nothing else (a reused pid, another boot)."""

import os
import subprocess
import sys
import time
from pathlib import Path

from archlab.search import orphans


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)


def _note(work: Path, pid: int, start: str, boot: str) -> None:
    work.mkdir(parents=True)
    (work / orphans.NOTE).write_text(f"{pid} {start} {boot}\n")


def test_a_worker_left_by_a_killed_search_is_ended_and_only_it(tmp_path):
    left, reused, other_boot = _sleeper(), _sleeper(), _sleeper()
    try:
        boot = orphans._boot_id()
        assert boot and orphans._start_time(left.pid)
        _note(tmp_path / "trials" / "0003", left.pid, orphans._start_time(left.pid), boot)
        # the pid of a process that is not the one that wrote the note (its start time differs)
        _note(tmp_path / "trials" / "0004", reused.pid, str(int(orphans._start_time(reused.pid)) - 7), boot)
        _note(tmp_path / "baselines" / "0000", other_boot.pid, orphans._start_time(other_boot.pid), "another-boot")
        _note(tmp_path / "trials" / "0005", 999_999_999, "1", boot)  # long gone
        (tmp_path / "trials" / "0006").mkdir()
        (tmp_path / "trials" / "0006" / orphans.NOTE).write_text("garbage")
        killed = orphans.end_orphans(tmp_path)
        assert killed == [(left.pid, "trials/0003")]
        assert left.wait(timeout=10) == -9
        time.sleep(0.2)
        assert reused.poll() is None and other_boot.poll() is None
        assert not list(tmp_path.glob(f"*/*/{orphans.NOTE}"))  # every note read is removed
    finally:
        for p in (left, reused, other_boot):
            p.kill()
            p.wait()


def test_a_worker_notes_itself_and_forgets_when_done(tmp_path):
    work = tmp_path / "trials" / "0001"
    orphans.remember(work)
    pid, start, boot = (work / orphans.NOTE).read_text().split()
    assert int(pid) == os.getpid() and start == orphans._start_time(os.getpid()) and boot == orphans._boot_id()
    assert orphans.end_orphans(tmp_path) == []  # never itself
    orphans.remember(work)
    orphans.forget(work)
    orphans.forget(work)  # twice is fine
    assert not (work / orphans.NOTE).exists()
