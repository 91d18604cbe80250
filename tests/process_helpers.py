"""Jobs for tests of archlab.util.processes: importable by name in a spawned worker."""

import os
import time
from pathlib import Path


def sleeper(folder: str, seconds: float) -> int:
    """Note this worker's pid, then sleep: a job that outlives a killed parent."""
    (Path(folder) / f"{os.getpid()}.pid").write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()
