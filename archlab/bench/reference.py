"""Benchmark 2: archlab's built networks against the plain reference implementation
(``archlab.testing.reference``) carrying the SAME weights (outputs checked equal), then
eager / BN fused into convs / channels_last_3d / torch.compile, interleaved."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..measure.profile import Clip
from ..model.builder import fuse_bn
from ..testing.reference import archlab_and_reference, max_rel_diff
from ..util.tables import md_table, text_table
from .common import interleaved, median, write_results


def run_reference(
    quick: bool = False,
    out_dir: str | Path | None = None,
    presets: Sequence[str] | None = None,
    clip: Clip | None = None,
    runs: int | None = None,
    compile: bool | None = None,
    compile_budget_s: float = 60.0,
) -> dict[str, Any]:
    """archlab vs the plain reference (same weights), eager / fused BN / channels_last_3d /
    torch.compile, all variants of all models of one preset timed round-robin."""
    clip = clip or ((8, 112, 112) if not quick else (8, 64, 64))
    runs = runs or (10 if not quick else 8)
    presets = presets or (("p3d63", "r2plus1d_18") if not quick else ("p3d63",))
    compile = (not quick) if compile is None else compile
    x = torch.randn(1, 3, *clip, generator=torch.Generator().manual_seed(0))
    x_cl = x.contiguous(memory_format=torch.channels_last_3d)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for preset in presets:
        model, ref = archlab_and_reference(preset)
        with torch.inference_mode():
            y_ref = ref(x)
            check = {"archlab": max_rel_diff(model(x), y_ref)}
        variants: dict[str, dict[str, nn.Module]] = {"eager": {"archlab": model, "reference": ref}}
        variants["fused BN"] = {k: fuse_bn(m) for k, m in variants["eager"].items()}
        variants["fused BN + channels_last_3d"] = {
            k: fuse_bn(m).to(memory_format=torch.channels_last_3d) for k, m in variants["eager"].items()
        }
        inputs = {"eager": x, "fused BN": x, "fused BN + channels_last_3d": x_cl}
        if compile:
            compiled: dict[str, nn.Module] = {}
            for k, m in variants["fused BN"].items():
                t0 = time.perf_counter()
                cm = torch.compile(m)
                with torch.inference_mode():
                    cm(x)
                dt = time.perf_counter() - t0
                notes.append(f"{preset}: torch.compile of {k} (fused BN) took {dt:.0f} s")
                compiled[k] = cm
                if dt > compile_budget_s:
                    notes.append(f"{preset}: torch.compile over its {compile_budget_s:.0f} s budget: not timed")
                    compiled = {}
                    break
            if compiled:
                variants["fused BN + torch.compile"] = compiled
                inputs["fused BN + torch.compile"] = x
        with torch.inference_mode():
            for vname, ms in variants.items():
                for k, m in ms.items():
                    check[f"{k} {vname}"] = max_rel_diff(m(inputs[vname]), y_ref)
        fns = {}
        for vname, ms in variants.items():
            for k, m in ms.items():

                def f(m: nn.Module = m, xi: torch.Tensor = inputs[vname]) -> Any:
                    with torch.inference_mode():
                        return m(xi)

                fns[(vname, k)] = f
        print(f"timing {preset}: {len(fns)} candidates x {runs} round-robin runs ...", file=sys.stderr, flush=True)
        times = interleaved({f"{v}|{k}": f for (v, k), f in fns.items()}, runs, warmup=2)
        base = median(times["eager|reference"])
        for vname in variants:
            a, r = median(times[f"{vname}|archlab"]), median(times[f"{vname}|reference"])
            rows.append(
                {
                    "preset": preset,
                    "variant": vname,
                    "archlab_ms": a,
                    "reference_ms": r,
                    "archlab_vs_reference": r / a,
                    "archlab_vs_eager_reference": base / a,
                    "max_rel_diff_archlab": check[f"archlab {vname}"],
                    "max_rel_diff_reference": check[f"reference {vname}"],
                }
            )
        rows[-len(variants)]["max_rel_diff_archlab_eager_vs_reference"] = check["archlab"]
    header = [
        "model",
        "variant",
        "archlab ms",
        "reference ms",
        "archlab speed vs reference (same variant)",
        "archlab speed vs eager reference",
        "max rel diff vs eager reference",
    ]
    body = [
        [
            r["preset"],
            r["variant"],
            f"{r['archlab_ms']:.1f}",
            f"{r['reference_ms']:.1f}",
            f"{r['archlab_vs_reference']:.3f}x",
            f"{r['archlab_vs_eager_reference']:.2f}x",
            f"{max(r['max_rel_diff_archlab'], r['max_rel_diff_reference']):.1e}",
        ]
        for r in rows
    ]
    note = (
        f"Batch 1x3x{'x'.join(map(str, clip))}, CPU, inference mode, median of {runs} round-robin runs "
        "(every model x variant in the same rounds). Same weights in both (BN statistics randomised); "
        "speed ratio > 1 means archlab is faster."
    )
    print(text_table(header, body))
    print(note)
    for n in notes:
        print(n)
    payload = {"input": "x".join(map(str, clip)), "batch": 1, "runs": runs, "rows": rows, "notes": notes}
    path = write_results(
        "reference",
        payload,
        md_table(header, body, right=range(1, len(header)))
        + "\n\n"
        + note
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes),
        out_dir,
    )
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return payload
