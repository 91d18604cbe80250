"""What every benchmark shares: round-robin timing, MAC counting by hooks, result files.

Every ratio a benchmark prints comes from timings taken round-robin in the same process,
minutes and thread count (``interleaved``): CPU clocks and background load drift, and
numbers from separate runs do not compare.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..measure.timing import interleaved  # noqa: F401 - the benchmarks' timer
from ..util.files import atomic_write
from ..util.tables import md_table, text_table
from ..util.versions import machine, versions

RESULTS_DIR = Path("bench") / "results"


def machine_info() -> dict[str, Any]:
    return {**machine(), **versions(("torch",))}


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def publish(
    name: str,
    payload: dict[str, Any],
    header: Sequence[Any],
    body: Sequence[Sequence[Any]],
    note: str,
    out_dir: str | Path | None = None,
    *,
    right: Any = (),
) -> Path:
    """What every benchmark ends with: print its table and note, write them (``write_results``)
    with ``right`` the markdown columns aligned right, say where."""
    print(text_table(header, body))
    print(note)
    path = write_results(name, payload, md_table(header, body, right=right) + "\n\n" + note, out_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return path


def write_results(name: str, payload: dict[str, Any], markdown: str, out_dir: str | Path | None = None) -> Path:
    """``<out_dir>/<name>.json`` (payload + machine) and ``<name>.md``; returns the JSON path."""
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine_info(), **payload}
    path = atomic_write(out / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    m = payload["machine"]
    atomic_write(
        out / f"{name}.md",
        f"# {name}\n\n{markdown}\n\nMachine: {m['cpu']} ({m['logical_cpus']} logical CPUs, "
        f"{m['torch_threads']} torch threads), torch {m['torch']}. Ratios come from one run, "
        f"timed round-robin.\n",
    )
    return path


def conv_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of every Conv3d / Linear in one forward (forward hooks; same rule as
    profile.count_fast)."""
    total = [0]

    def hook(m: nn.Module, _i: Any, out: torch.Tensor) -> None:
        if isinstance(m, nn.Conv3d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.kernel_size[2]
            total[0] += out[0].numel() * (m.in_channels // m.groups) * k
        elif isinstance(m, nn.Linear):
            total[0] += out[0].numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hs:
            h.remove()
    return total[0]
