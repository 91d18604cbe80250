"""Benchmarks: what our blocks and networks cost, measured side by side in ONE run.

    python -m archlab.bench [all|blocks|reference|train|profiling|search|forms|runtimes] [--quick] [--out DIR]

Every ratio printed here comes from timings taken round-robin in the same process, minutes
and thread count (CPU clocks and background load drift; numbers from separate runs do not
compare). Each benchmark prints a table and writes ``<name>.json`` and ``<name>.md`` into
``bench/results/`` (gitignored). ``--quick`` shrinks everything to about a minute in all.

* ``blocks``    – one bottleneck ResBlock per letter (every bottleneck letter) at each P3D-63 stage's
  shape: median ms, MACs, params, and ms per GMAC relative to the 2D block (why MACs alone do
  not predict speed). Also ``archlab blocks``.
* ``reference`` – archlab's built P3D-63 (and r2plus1d_18) against a plain hand-written eager
  implementation of the same network carrying the SAME weights (outputs checked equal), then
  eager / BN fused into convs / channels_last_3d / torch.compile, interleaved.
* ``train``     – achieved GMAC/s of a proxy training step (forward+backward ~ 3x forward
  MACs) against this machine's fp32 matmul ceiling measured in the same run.
* ``profiling`` – genomes/s of ``profile.count_fast`` vs ``profile.count_fvcore`` on random
  genomes of the interleave space, and whether they agree exactly on every one.
* ``forms``     – the numeric forms' table: proxy / p3d63 x0.25 train steps and p3d63 inference in
  fp32, channels_last_3d, bf16 autocast and bf16 weights (``archlab.measure.forms``), interleaved.
* ``runtimes``  – Kendall tau between eager fp32, bf16 forms, onnxruntime and OpenVINO
  latencies over a space's sample (``archlab.measure.runtimes``).
* ``search``    – the default ``archlab search --space interleave`` (``--quick``: 4 tiny
  trials) in a temporary study: wall time, Ray start-up, and the overhead fraction, the share
  of the trial slots' time (concurrency x wall) not spent training a proxy.

MACs are multiply-adds of conv and linear layers (fvcore's "flop"), as everywhere in archlab.

Modules: ``common`` (timing, MAC hooks, result files), ``blocks``, ``reference``, ``train``,
``profiling``, ``searching``, ``forms``, ``main`` (the entry point). The reference networks the
``reference`` benchmark compares against are a test oracle and live in
``archlab.testing.reference``; ``archlab blocks`` imports ``archlab.bench.blocks`` only.
Names of the heavier modules are re-exported lazily (on first use), so importing this
package for ``archlab blocks`` loads neither the oracle nor the search.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..model.builder import fuse_bn
from .blocks import block_costs, block_macs_analytic, blocks_table, bottleneck_letters, run_blocks, stage_shapes
from .common import RESULTS_DIR, conv_macs, interleaved, machine_info, median, write_results

# name -> module that defines it, imported when the name is first used (PEP 562)
_LAZY = {
    **{
        n: "archlab.testing.reference"
        for n in (
            "REFERENCES",
            "RefBasic3D",
            "RefBottleneck",
            "RefP3D",
            "RefR21Basic",
            "RefR2Plus1D18",
            "RefR3D18",
            "RefVideoResNet18",
            "archlab_and_reference",
            "load_reference_weights",
            "max_rel_diff",
            "randomize_bn",
        )
    },
    **{n: "archlab.testing.reference_pv" for n in ("PV_MODELS", "RefPVBottleneck", "RefPVNet")},
    "run_reference": "archlab.bench.reference",
    "run_train": "archlab.bench.train",
    "matmul_gflops": "archlab.bench.train",
    "run_profiling": "archlab.bench.profiling",
    "run_search": "archlab.bench.searching",
    "search_overhead": "archlab.bench.searching",
    "QUICK_SPACE": "archlab.bench.searching",
    "run_forms": "archlab.bench.forms",
    "run_runtimes": "archlab.bench.forms",
    "kendall_tau": "archlab.bench.forms",
    "main": "archlab.bench.main",
    "BENCHMARKS": "archlab.bench.main",
}

__all__ = [
    "RESULTS_DIR",
    "block_costs",
    "block_macs_analytic",
    "blocks_table",
    "bottleneck_letters",
    "conv_macs",
    "fuse_bn",
    "interleaved",
    "machine_info",
    "median",
    "run_blocks",
    "stage_shapes",
    "write_results",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archlab.bench' has no attribute {name!r}")
