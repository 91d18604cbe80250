"""Benchmark 1: one bottleneck ResBlock per letter (every bottleneck letter) at each P3D-63
stage's shape (also ``archlab blocks``): median ms, MACs, params, MACs per ms, and ms per GMAC
relative to the 2D block (why MACs alone do not predict speed: the depthwise letters). Imports nothing of the reference networks: ``archlab
blocks`` is product code."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..measure.profile import Clip, count_fast
from ..model.blocks import ResBlock, r21_midplanes, se_width
from ..model.builder import count_params, init_weights
from ..model.genome import EXPANSION, LETTERS, scale_widths
from ..model.presets import get as get_preset
from ..util.device import resolve_device
from .common import conv_macs, interleaved, median, publish


def stage_shapes(clip: Clip = (8, 112, 112), width: float = 1.0) -> list[dict[str, Any]]:
    """P3D-63's four stages at ``clip`` and width multiplier: bottleneck planes and the output
    size C x T x H x W of each stage (from profile.count_fast's stage out_shapes)."""
    g = get_preset("p3d63")
    if width != 1.0:
        g = scale_widths(g, width)
    cost = count_fast(g, clip)
    by_name = {s.name: s for s in cost.stages}
    out = []
    for i, st in enumerate(g.stages):
        c, t, h, w = by_name[f"stages.{i}"].out_shape
        out.append({"stage": i + 1, "planes": st.width, "channels": c, "T": t, "H": h, "W": w})
    return out


def block_macs_analytic(letter: str, planes: int, thw: int) -> int:
    """MACs of a stride-1 bottleneck block (4p -> p -> p -> 4p, identity shortcut) on T*H*W = thw."""
    p, cin = planes, planes * EXPANSION["bottleneck"]
    outer = thw * p * cin * 2  # 1x1x1 reduce + 1x1x1 expand
    middle = {
        "2": thw * p * p * 9,
        "A": thw * p * p * 12,
        "B": thw * p * p * 12,
        "C": thw * p * p * 12,
        "3": thw * p * p * 27,
        "F": thw * p * p * 12,
        "T": thw * p * p * 9,
        "D": thw * p * 27,
        "Y": thw * p * 27,  # depthwise: 27 MACs per output element
        "X": thw * p * 27 + 2 * p * se_width(p),  # + squeeze-excitation on the pooled 1x1x1
        "I": thw * p * p * 9 + thw * p * cin * 2,
    }  # first conv 3x1x1: 2 more taps of cin -> p
    if letter == "R":
        mid = r21_midplanes(p, p)
        return outer + thw * mid * p * 9 + thw * p * mid * 3
    return outer + middle[letter]


def bottleneck_letters() -> list[str]:
    """The block letters of the bottleneck family, in genome.LETTERS order (A B C 2 3 R F D I X Y T)."""
    return [letter for letter, info in LETTERS.items() if "bottleneck" in info.families]


def block_costs(
    clip: Clip = (8, 112, 112),
    width: float = 1.0,
    device: str = "cpu",
    runs: int = 20,
    warmup: int = 3,
    letters: Sequence[str] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One bottleneck ResBlock per letter at each P3D-63 stage's shape (a repeated block of the
    stage: cin = 4*planes, stride 1, the stage's output T x H x W), timed round-robin within a
    stage (inference mode, batch 1). Rows: stage, letter, shape, params, macs, median_ms,
    ms_per_gmac and ms_per_gmac_vs_2d (1.0 = as efficient per MAC as the 2D block)."""
    dev = resolve_device(device)
    letters = bottleneck_letters() if letters is None else list(letters)
    gen = torch.Generator().manual_seed(seed)
    rows: list[dict[str, Any]] = []
    for s in stage_shapes(clip, width):
        p, c = s["planes"], s["channels"]
        x = torch.randn(1, c, s["T"], s["H"], s["W"], generator=gen).to(dev)
        blocks = {}
        for letter in letters:
            b = ResBlock(letter, "bottleneck", c, p, (1, 1, 1))
            init_weights(b)
            blocks[letter] = b.to(dev).eval()
        macs = {letter: conv_macs(b, x) for letter, b in blocks.items()}

        def call(b: nn.Module) -> Callable[[], Any]:
            def f() -> Any:
                with torch.inference_mode():
                    return b(x)

            return f

        times = interleaved({letter: call(b) for letter, b in blocks.items()}, runs, warmup, dev)
        for letter in letters:
            ms = median(times[letter])
            rows.append(
                {
                    "stage": s["stage"],
                    "letter": letter,
                    "planes": p,
                    "channels": c,
                    "shape": f"{c}x{s['T']}x{s['H']}x{s['W']}",
                    "params": count_params(blocks[letter]),
                    "macs": macs[letter],
                    "median_ms": ms,
                    "min_ms": min(times[letter]),
                    "ms_per_gmac": ms / (macs[letter] / 1e9),
                }
            )
        ref = next((r for r in rows if r["stage"] == s["stage"] and r["letter"] == "2"), None)
        for r in rows:
            if r["stage"] == s["stage"]:
                r["ms_per_gmac_vs_2d"] = r["ms_per_gmac"] / ref["ms_per_gmac"] if ref else None
    return rows


def blocks_table(rows: list[dict[str, Any]]) -> tuple[list[list[Any]], list[str]]:
    header = [
        "stage",
        "block",
        "in CxTxHxW",
        "params",
        "MMACs",
        "median ms",
        "min ms",
        "MMACs/ms",
        "ms/GMAC",
        "ms/GMAC vs 2D",
    ]
    body = [
        [
            r["stage"],
            r["letter"],
            r["shape"],
            f"{r['params']:,}",
            f"{r['macs'] / 1e6:.1f}" if r["macs"] >= 1e7 else f"{r['macs'] / 1e6:.3f}",
            f"{r['median_ms']:.3f}",
            f"{r['min_ms']:.3f}",
            f"{r['macs'] / 1e6 / r['median_ms']:.1f}",
            f"{r['ms_per_gmac']:.1f}",
            "-" if r["ms_per_gmac_vs_2d"] is None else f"{r['ms_per_gmac_vs_2d']:.2f}x",
        ]
        for r in rows
    ]
    return body, header


def run_blocks(
    quick: bool = False,
    out_dir: str | Path | None = None,
    clip: Clip | None = None,
    width: float = 1.0,
    runs: int | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    clip = clip or ((8, 112, 112) if not quick else (4, 64, 64))
    runs = runs or (20 if not quick else 7)
    rows = block_costs(clip, width, device, runs)
    body, header = blocks_table(rows)
    note = (
        "One bottleneck block (4p -> p -> middle -> 4p, identity shortcut) per letter at each P3D-63 "
        f"stage's shape for a {'x'.join(map(str, clip))} clip, width x{width}, batch 1, {device}, "
        f"inference mode; median of {runs} round-robin runs. ms/GMAC vs 2D > 1 means the block "
        "is slower per multiply-add than the 2D block."
    )
    payload = {"input": "x".join(map(str, clip)), "width": width, "device": device, "runs": runs, "rows": rows}
    publish("blocks", payload, header, body, note, out_dir, right=range(1, len(header)))
    return payload
