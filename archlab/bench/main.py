"""``python -m archlab.bench [all|blocks|reference|train|profiling|search|forms|runtimes|reliability]``: the entry point."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Sequence

import torch

from ..testing.reference import REFERENCES
from .blocks import run_blocks
from .common import RESULTS_DIR
from .forms import run_forms, run_runtimes
from .profiling import run_profiling
from .reference import run_reference
from .reliability import run_reliability
from .searching import run_search
from .train import run_train

USAGE = "Benchmarks: what archlab's blocks and networks cost, measured side by side in ONE run."

BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "blocks": run_blocks,
    "reference": run_reference,
    "train": run_train,
    "profiling": run_profiling,
    "search": run_search,
    "forms": run_forms,
    "runtimes": run_runtimes,
    "reliability": run_reliability,
}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m archlab.bench", description=USAGE)
    ap.add_argument("which", nargs="?", default="all", choices=["all", *BENCHMARKS])
    ap.add_argument("--quick", action="store_true", help="small sizes: about a minute for all")
    ap.add_argument("--out", default=str(RESULTS_DIR), help=f"results folder (default {RESULTS_DIR})")
    ap.add_argument(
        "--compile",
        choices=["auto", "on", "off"],
        default="auto",
        help="torch.compile variants (auto: on unless --quick)",
    )
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    ap.add_argument(
        "--models", help="reference: comma-separated presets or 'all' (default p3d63,r2plus1d_18; --quick: p3d63)"
    )
    ap.add_argument("--runs", type=int, help="timed round-robin runs (default: per benchmark)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    comp = None if args.compile == "auto" else args.compile == "on"
    names = list(BENCHMARKS) if args.which == "all" else [args.which]
    for name in names:
        print(f"== {name} ==", flush=True)
        kw: dict[str, Any] = {"quick": args.quick, "out_dir": args.out}
        if name in ("reference", "train"):
            kw["compile"] = comp
        if name == "reference" and args.models:
            kw["presets"] = (
                list(REFERENCES) if args.models == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
            )
            unknown = [m for m in kw["presets"] if m not in REFERENCES]
            if unknown:
                ap.error(f"--models: no reference for {', '.join(unknown)} (have: {', '.join(REFERENCES)}, all)")
        if args.runs and name not in ("profiling", "search"):
            kw["runs"] = args.runs
        BENCHMARKS[name](**kw)
    return 0
