"""Benchmark 3: achieved GMAC/s of a proxy training step (forward+backward ~ 3x forward
MACs) against this machine's fp32 matmul ceiling measured in the same run."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..measure.forms import Form
from ..measure.profile import Clip, count_fast
from ..model.builder import build
from ..model.genome import scale_widths
from ..model.presets import get as get_preset
from .common import interleaved, median, publish


def matmul_gflops(n: int = 2048) -> Callable[[], Any]:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(1))
    b = torch.randn(n, n, generator=torch.Generator().manual_seed(2))
    return lambda: torch.mm(a, b)


def run_train(
    quick: bool = False,
    out_dir: str | Path | None = None,
    width: float = 0.25,
    clip: Clip | None = None,
    batch: int | None = None,
    runs: int | None = None,
    compile: bool | None = None,
    matmul_n: int | None = None,
) -> dict[str, Any]:
    """GMAC/s of a p3d63-shaped proxy training step (SGD, cross-entropy; MACs = 3 x forward)
    vs the fp32 matmul ceiling, interleaved: eager, channels_last_3d, bf16 autocast and bf16
    weights in channels_last_3d (``forms``), torch.compile; a bf16 matmul row shows the bf16
    ceiling of the same machine."""
    clip = clip or (8, 64, 64)
    batch = batch or (8 if not quick else 4)
    runs = runs or (10 if not quick else 4)
    n = matmul_n or (2048 if not quick else 1024)
    compile = (not quick) if compile is None else compile
    g = scale_widths(get_preset("p3d63", 10), width)
    fwd_macs = count_fast(g, clip).macs * batch
    step_macs = 3 * fwd_macs
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, *clip, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)

    def stepper(form: Form, do_compile: bool) -> tuple[Callable[[], Any], float]:
        torch.manual_seed(0)
        m = form.apply_model(build(g).train())
        xi = form.apply_input(x)
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        fwd = torch.compile(m) if do_compile else m

        def step() -> Any:
            opt.zero_grad(set_to_none=True)
            with form.autocast("cpu"):
                out = fwd(xi)
            loss = F.cross_entropy(out.float(), y)
            loss.backward()
            opt.step()
            return loss

        t0 = time.perf_counter()
        step()
        return step, time.perf_counter() - t0

    cands: dict[str, Callable[[], Any]] = {}
    first: dict[str, float] = {}
    for name, form, comp in [
        ("eager", Form("fp32", "ncdhw"), False),
        ("channels_last_3d", Form("fp32", "cl3d"), False),
        ("bf16 autocast + channels_last_3d", Form("bf16-autocast", "cl3d"), False),
        ("bf16 weights + channels_last_3d", Form("bf16", "cl3d"), False),
        ("torch.compile", Form("fp32", "ncdhw"), True),
    ]:
        if comp and not compile:
            continue
        cands[name], first[name] = stepper(form, comp)
    cands[f"matmul {n}x{n} fp32"] = matmul_gflops(n)
    a16, b16 = (t.to(torch.bfloat16) for t in (torch.randn(n, n), torch.randn(n, n)))
    cands[f"matmul {n}x{n} bf16"] = lambda: torch.mm(a16, b16)
    print(f"timing train steps: {len(cands)} candidates x {runs} round-robin runs ...", file=sys.stderr, flush=True)
    times = interleaved(cands, runs, warmup=2)
    mm_ms = median(times[f"matmul {n}x{n} fp32"])
    ceiling_gmacs = (n**3) / (mm_ms / 1000) / 1e9  # n^3 MACs = 2 n^3 FLOPs
    rows = [
        {
            "candidate": f"matmul {n}x{n} fp32 (ceiling)",
            "median_ms": mm_ms,
            "gmacs_per_s": ceiling_gmacs,
            "fraction_of_ceiling": 1.0,
        }
    ]
    bf_ms = median(times[f"matmul {n}x{n} bf16"])
    rows.append(
        {
            "candidate": f"matmul {n}x{n} bf16",
            "median_ms": bf_ms,
            "gmacs_per_s": n**3 / (bf_ms / 1000) / 1e9,
            "fraction_of_ceiling": mm_ms / bf_ms,
        }
    )
    for name in [k for k in cands if not k.startswith("matmul")]:
        ms = median(times[name])
        gm = step_macs / (ms / 1000) / 1e9
        rows.append(
            {
                "candidate": f"train step, {name}",
                "median_ms": ms,
                "gmacs_per_s": gm,
                "fraction_of_ceiling": gm / ceiling_gmacs,
                "first_step_s": first[name],
            }
        )
    header = ["candidate", "median ms", "GMAC/s", "of ceiling", "first call s"]
    body = [
        [
            r["candidate"],
            f"{r['median_ms']:.1f}",
            f"{r['gmacs_per_s']:.2f}",
            f"{r['fraction_of_ceiling']:.1%}",
            f"{r['first_step_s']:.1f}" if "first_step_s" in r else "-",
        ]
        for r in rows
    ]
    note = (
        f"Proxy: p3d63 at width x{width} ({g}), batch {batch}x3x{'x'.join(map(str, clip))}, SGD step, "
        f"forward {fwd_macs / 1e9:.3f} GMACs, step counted as 3x forward = {step_macs / 1e9:.3f} GMACs. "
        f"Ceiling: fp32 {n}x{n} matmul ({ceiling_gmacs * 2:.1f} GFLOP/s = {ceiling_gmacs:.1f} GMAC/s). "
        f"Median of {runs} round-robin runs, {torch.get_num_threads()} threads."
    )
    payload = {
        "genome": str(g),
        "width": width,
        "input": "x".join(map(str, clip)),
        "batch": batch,
        "runs": runs,
        "forward_macs": fwd_macs,
        "step_macs": step_macs,
        "ceiling_gmacs_per_s": ceiling_gmacs,
        "rows": rows,
    }
    publish("train", payload, header, body, note, out_dir, right=range(1, len(header)))
    return payload
