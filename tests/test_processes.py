"""archlab.util.processes.run_jobs: the workers end with their parent."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PARENT = """
import sys
sys.path.insert(0, {tests!r})
from archlab.util.processes import run_jobs
from process_helpers import sleeper
run_jobs(sleeper, [({folder!r}, 120.0), ({folder!r}, 120.0)], workers=2, on_result=lambda i, r: None)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_when_their_parent_is_killed(tmp_path):
    """SIGKILL the parent mid-job (what `kill -9` or an OOM kill does; Ctrl-C reaches the whole
    group anyway): both workers, each 120 s from the end of its job, are gone within seconds
    (they poll their parent every second), instead of training on for a dead parent."""
    code = PARENT.format(tests=str(Path(__file__).parent), folder=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("*.pid"))) < 2:  # both workers started their job
            assert parent.poll() is None and time.monotonic() < deadline, "the workers never started"
            time.sleep(0.2)
        workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
        assert all(_alive(w) for w in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "a worker outlived its parent by 30 s"
    finally:
        for w in [int(p.stem) for p in tmp_path.glob("*.pid")]:
            try:
                os.kill(w, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if parent.poll() is None:
            parent.kill()
