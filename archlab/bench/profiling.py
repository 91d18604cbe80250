"""Benchmark 4: genomes/s of ``profile.count_fast`` vs ``profile.count_fvcore`` on random
genomes of a space, and whether they agree exactly on every one."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from ..measure.profile import count_fast, count_fvcore
from ..model.genome import Genome
from ..spaces import load_space
from .common import publish


def run_profiling(
    quick: bool = False, out_dir: str | Path | None = None, n: int | None = None, space: str = "interleave"
) -> dict[str, Any]:
    """count_fast vs count_fvcore on ``n`` random genomes of a space (seeds 0..n-1), each genome
    counted by both back to back (alternating which goes first); they must agree exactly."""
    n = n or (50 if not quick else 10)
    sp = load_space(space)
    clip = sp.clip
    genomes: list[Genome] = [sp.sample(random.Random(i)) for i in range(n)]
    t = {"fast": 0.0, "fvcore": 0.0}
    mismatches: list[dict[str, Any]] = []
    count_fast(genomes[0], clip), count_fvcore(genomes[0], clip)  # warm-up: imports, first trace
    for i, g in enumerate(genomes):
        res = {}
        for name in ("fast", "fvcore") if i % 2 == 0 else ("fvcore", "fast"):
            fn = count_fast if name == "fast" else count_fvcore
            t0 = time.perf_counter()
            res[name] = fn(g, clip)
            t[name] += time.perf_counter() - t0
        a, b = res["fast"], res["fvcore"]
        sa = [(s.name, s.params, s.macs) for s in a.stages]
        sb = [(s.name, s.params, s.macs) for s in b.stages]
        if (a.params, a.macs, sa) != (b.params, b.macs, sb):
            mismatches.append({"genome": str(g), "fast": [a.params, a.macs], "fvcore": [b.params, b.macs]})
    rows = [{"counter": k, "total_s": v, "genomes_per_s": n / v} for k, v in t.items()]
    speedup = t["fvcore"] / t["fast"]
    header = ["counter", "genomes", "total s", "genomes/s"]
    body = [[r["counter"], n, f"{r['total_s']:.2f}", f"{r['genomes_per_s']:.1f}"] for r in rows]
    note = (
        f"{n} random genomes of space {space!r} (random.Random(i), i < {n}) at {'x'.join(map(str, clip))}, "
        f"params + MACs (total and per stage). count_fast is {speedup:.1f}x faster; agreement: "
        f"{n - len(mismatches)}/{n} exact."
    )
    payload = {
        "space": space,
        "input": "x".join(map(str, clip)),
        "genomes": n,
        "rows": rows,
        "fast_vs_fvcore_speedup": speedup,
        "agree": n - len(mismatches),
        "mismatches": mismatches,
    }
    publish("profiling", payload, header, body, note, out_dir, right=range(1, len(header)))
    return payload
