"""What software and machine produced a result: one collector for study.yaml, model cards and
benchmark files.

Why from package metadata and not ``module.__version__``: reading a version must not import
the package (``import ray`` starts threads, ``import torch`` takes a second, and a report
should not need either installed). ``importlib.metadata`` reads the installed distribution's
record instead; a distribution that is not installed is ``None``, so a card or a study can
say "onnx: not installed" instead of failing. archlab itself is taken from
``archlab.__version__`` (a source checkout on PYTHONPATH has no metadata of its own).
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

__version__ = "0.1.0"  # the package version (pyproject.toml reads it from here)


CORE = ("torch", "numpy")
SEARCH = ("torch", "ray", "optuna")
EXPORT = ("torch", "onnx", "onnxruntime", "onnxscript")


def versions(distributions: Sequence[str] = CORE) -> dict[str, str | None]:
    """{"archlab": ..., "python": ..., <distribution>: version or None} for each distribution."""
    out: dict[str, str | None] = {"archlab": __version__, "python": platform.python_version()}
    for dist in distributions:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def cpu_name() -> str:
    """The CPU model ("AMD EPYC 7B13"): timings and float paths differ between CPUs."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """The machine a measurement ran on: CPU model, logical CPUs, and, if torch is already
    imported by the caller (a benchmark), its thread count and GPU (never imports torch)."""
    out: dict[str, Any] = {"cpu": cpu_name(), "logical_cpus": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_threads"] = torch.get_num_threads()
        out["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return out


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count): what
    "one run per core" means for `archlab fidelity` and experiments."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(threads: int) -> int:
    """Runs to train at once when nobody said: one per usable core at ``threads`` each."""
    return max(1, usable_cores() // max(1, threads))
