"""Benchmarks: what our blocks and networks cost, measured side by side in ONE run.

    python -m archlab.bench [all|blocks|reference|train|profiling|search|forms] [--quick] [--out DIR]

Every ratio printed here comes from timings taken round-robin in the same process, minutes
and thread count (CPU clocks and background load drift; numbers from separate runs do not
compare). Each benchmark prints a table and writes ``<name>.json`` and ``<name>.md`` into
``bench/results/`` (gitignored). ``--quick`` shrinks everything to about a minute in all.

* ``blocks``    – one bottleneck ResBlock per letter (A B C 2 3 R) at each P3D-63 stage's
  shape: median ms, MACs, params, and ms per GMAC relative to the 2D block (why MACs alone do
  not predict speed). Also ``archlab blocks``.
* ``reference`` – archlab's built P3D-63 (and r2plus1d_18) against a plain hand-written eager
  implementation of the same network carrying the SAME weights (outputs checked equal), then
  eager / BN fused into convs / channels_last_3d / torch.compile, interleaved.
* ``train``     – achieved GMAC/s of a proxy training step (forward+backward ~ 3x forward
  MACs) against this machine's fp32 matmul ceiling measured in the same run.
* ``profiling`` – genomes/s of ``profile.count_fast`` vs ``profile.count_fvcore`` on random
  genomes of the interleave space, and whether they agree exactly on every one.
* ``forms``     – issue 17's table: proxy / p3d63 x0.25 train steps and p3d63 inference in
  fp32, channels_last_3d, bf16 autocast and bf16 weights (``archlab.forms``), interleaved.
* ``search``    – the default ``archlab search --space interleave`` (``--quick``: 4 tiny
  trials) in a temporary study: wall time, Ray start-up, and the overhead fraction, the share
  of the trial slots' time (concurrency x wall) not spent training a proxy.

MACs are multiply-adds of conv and linear layers (fvcore's "flop"), as everywhere in archlab.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ResBlock, r21_midplanes
from .builder import build, count_params, fuse_bn, init_weights
from .genome import EXPANSION, Genome, scale_widths
from .presets import get as get_preset
from .profile import Clip, count_fast, count_fvcore, parse_clip, resolve_device

LETTERS = ("A", "B", "C", "2", "3", "R")
RESULTS_DIR = Path("bench") / "results"


# ---- shared helpers ----------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 2,
                device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Time each callable ``runs`` times, round-robin (the first one rotates every round), so
    every candidate sees the same minutes of machine load. Returns milliseconds per call."""
    device = torch.device(device)
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    _sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(runs):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter()
            fns[n]()
            _sync(device)
            times[n].append((time.perf_counter() - t0) * 1000)
    return times


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def md_table(rows: list[list[Any]], header: list[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def text_table(rows: list[list[Any]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def write_results(name: str, payload: dict[str, Any], markdown: str, out_dir: str | Path | None = None) -> Path:
    """``<out_dir>/<name>.json`` (payload + machine) and ``<name>.md``; returns the JSON path."""
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine_info(), **payload}
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    m = payload["machine"]
    (out / f"{name}.md").write_text(
        f"# {name}\n\n{markdown}\n\nMachine: {m['cpu']} ({m['logical_cpus']} logical CPUs, "
        f"{m['torch_threads']} torch threads), torch {m['torch']}. Ratios come from one run, "
        f"timed round-robin.\n")
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


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so a wrong weight mapping or a wrong
    fusion cannot hide behind BN's identity initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


# ---- 1. per-letter block costs -------------------------------------------------------------

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
    middle = {"2": thw * p * p * 9, "A": thw * p * p * 12, "B": thw * p * p * 12, "C": thw * p * p * 12,
              "3": thw * p * p * 27}
    if letter == "R":
        mid = r21_midplanes(p, p)
        return outer + thw * mid * p * 9 + thw * p * mid * 3
    return outer + middle[letter]


def block_costs(clip: Clip = (8, 112, 112), width: float = 1.0, device: str = "cpu", runs: int = 20,
                warmup: int = 3, letters: Sequence[str] = LETTERS, seed: int = 0) -> list[dict[str, Any]]:
    """One bottleneck ResBlock per letter at each P3D-63 stage's shape (a repeated block of the
    stage: cin = 4*planes, stride 1, the stage's output T x H x W), timed round-robin within a
    stage (inference mode, batch 1). Rows: stage, letter, shape, params, macs, median_ms,
    ms_per_gmac and ms_per_gmac_vs_2d (1.0 = as efficient per MAC as the 2D block)."""
    dev = resolve_device(device)
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
        macs = {l: conv_macs(b, x) for l, b in blocks.items()}

        def call(b: nn.Module) -> Callable[[], Any]:
            def f() -> Any:
                with torch.inference_mode():
                    return b(x)
            return f

        times = interleaved({l: call(b) for l, b in blocks.items()}, runs, warmup, dev)
        for l in letters:
            ms = median(times[l])
            rows.append({"stage": s["stage"], "letter": l, "planes": p, "channels": c,
                         "shape": f"{c}x{s['T']}x{s['H']}x{s['W']}", "params": count_params(blocks[l]),
                         "macs": macs[l], "median_ms": ms, "min_ms": min(times[l]),
                         "ms_per_gmac": ms / (macs[l] / 1e9)})
        ref = next((r for r in rows if r["stage"] == s["stage"] and r["letter"] == "2"), None)
        for r in rows:
            if r["stage"] == s["stage"]:
                r["ms_per_gmac_vs_2d"] = r["ms_per_gmac"] / ref["ms_per_gmac"] if ref else None
    return rows


def blocks_table(rows: list[dict[str, Any]]) -> tuple[list[list[Any]], list[str]]:
    header = ["stage", "block", "in CxTxHxW", "params", "MMACs", "median ms", "min ms", "ms/GMAC", "ms/GMAC vs 2D"]
    body = [[r["stage"], r["letter"], r["shape"], f"{r['params']:,}", f"{r['macs'] / 1e6:.1f}" if r["macs"] >= 1e7 else f"{r['macs'] / 1e6:.3f}",
             f"{r['median_ms']:.3f}", f"{r['min_ms']:.3f}", f"{r['ms_per_gmac']:.1f}",
             "-" if r["ms_per_gmac_vs_2d"] is None else f"{r['ms_per_gmac_vs_2d']:.2f}x"] for r in rows]
    return body, header


def run_blocks(quick: bool = False, out_dir: str | Path | None = None, clip: Clip | None = None,
               width: float = 1.0, runs: int | None = None, device: str = "cpu") -> dict[str, Any]:
    clip = clip or ((8, 112, 112) if not quick else (4, 64, 64))
    runs = runs or (20 if not quick else 7)
    rows = block_costs(clip, width, device, runs)
    body, header = blocks_table(rows)
    note = ("One bottleneck block (4p -> p -> middle -> 4p, identity shortcut) per letter at each P3D-63 "
            f"stage's shape for a {'x'.join(map(str, clip))} clip, width x{width}, batch 1, {device}, "
            f"inference mode; median of {runs} round-robin runs. ms/GMAC vs 2D > 1 means the block "
            "is slower per multiply-add than the 2D block.")
    print(text_table(body, header))
    print(note)
    payload = {"input": "x".join(map(str, clip)), "width": width, "device": device, "runs": runs, "rows": rows}
    path = write_results("blocks", payload, md_table(body, header) + "\n\n" + note, out_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return payload


# ---- 2. a plain reference implementation ---------------------------------------------------
#
# Written the way one writes a network from the paper: explicit Conv3d/BatchNorm3d/ReLU in
# nn.Sequential, one Bottleneck class with an if per letter, no registry. Parameters are
# registered in the same order as archlab's, so state dicts map position by position
# (load_reference_weights checks every shape; tests check the outputs).

def _conv_bn(cin: int, cout: int, k: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1),
             relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv3d(cin, cout, k, stride, tuple(i // 2 for i in k), bias=False),
                               nn.BatchNorm3d(cout)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


def _tpool(x: torch.Tensor, k: tuple[int, int, int], s: tuple[int, int, int],
           pad: tuple[int, int, int] = (0, 0, 0)) -> torch.Tensor:
    """max_pool3d whose temporal kernel is clamped to the clip length (so 8-frame clips pass)."""
    t = x.shape[2]
    kt, st = min(k[0], t), (s[0] if t > 1 else 1)
    if (kt, k[1], k[2]) == (1, 1, 1):
        return x
    return F.max_pool3d(x, (kt, k[1], k[2]), (st, s[1], s[2]), pad)


class RefBottleneck(nn.Module):
    def __init__(self, kind: str, cin: int, planes: int, stride: int):
        super().__init__()
        self.kind = kind
        p = planes
        self.conv1 = nn.Sequential(*_conv_bn(cin, p, (1, 1, 1), (1, stride, stride)))
        if kind == "2":
            self.conv2 = nn.Sequential(*_conv_bn(p, p, (1, 3, 3)))
        else:
            self.conv2_s = nn.Sequential(*_conv_bn(p, p, (1, 3, 3)))
            self.conv2_t = nn.Sequential(*_conv_bn(p, p, (3, 1, 1), relu=(kind == "A")))
        self.conv3 = nn.Sequential(*_conv_bn(p, 4 * p, (1, 1, 1), relu=False))
        self.downsample = None
        if cin != 4 * p or stride != 1:
            self.downsample = nn.Sequential(*_conv_bn(cin, 4 * p, (1, 1, 1), (1, stride, stride), relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.kind == "2":
            out = self.conv2(out)
        elif self.kind == "A":
            out = self.conv2_t(self.conv2_s(out))
        elif self.kind == "B":
            out = F.relu(self.conv2_s(out) + self.conv2_t(out))
        else:  # C
            s = self.conv2_s(out)
            out = F.relu(s + self.conv2_t(s))
        out = self.conv3(out)
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(out + res)


class RefP3D(nn.Module):
    """The official P3D ResNet layout (bottleneck blocks of the given kinds per res stage, 2D
    res5 in the presets, temporal max pools before res3-res5), written out plainly: P3D-63 is
    ``layers=("ABC", "ABCA", "BCABCA", "222")``; P3D-131/199, the pure P3D-A/B/C-50 and C2D-50
    differ only in ``layers``. ``width`` scales every width (rounded)."""

    def __init__(self, layers: Sequence[str] = ("ABC", "ABCA", "BCABCA", "222"), num_classes: int = 400,
                 width: float = 1.0, dropout: float = 0.5):
        super().__init__()
        self.LAYERS = tuple(layers)
        w = lambda c: max(1, int(round(c * width)))  # noqa: E731
        self.stem = nn.Sequential(*_conv_bn(3, w(64), (1, 7, 7), (1, 2, 2)))
        self.stem[0].padding = (0, 3, 3)
        cin, layers = w(64), []
        for i, (kinds, planes) in enumerate(zip(self.LAYERS, (64, 128, 256, 512))):
            blocks = []
            for j, kind in enumerate(kinds):
                blocks.append(RefBottleneck(kind, cin, w(planes), 2 if (j == 0 and i > 0) else 1))
                cin = 4 * w(planes)
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _tpool(self.stem(x), (2, 3, 3), (2, 2, 2), (0, 1, 1))
        x = self.layer1(x)
        x = self.layer2(_tpool(x, (2, 1, 1), (2, 1, 1)))
        x = self.layer3(_tpool(x, (2, 1, 1), (2, 1, 1)))
        x = self.layer4(_tpool(x, (2, 1, 1), (2, 1, 1)))
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))


class RefR21Basic(nn.Module):
    """torchvision's BasicBlock with Conv2Plus1D convs."""

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        mid = (cin * planes * 27) // (cin * 9 + 3 * planes)
        self.conv1 = nn.Sequential(*_conv_bn(cin, mid, (1, 3, 3), (1, stride, stride)),
                                   *_conv_bn(mid, planes, (3, 1, 1), (stride, 1, 1)))
        self.conv2 = nn.Sequential(*_conv_bn(planes, mid, (1, 3, 3)),
                                   *_conv_bn(mid, planes, (3, 1, 1), relu=False))
        self.downsample = None
        if cin != planes or stride != 1:
            self.downsample = nn.Sequential(*_conv_bn(cin, planes, (1, 1, 1), (stride,) * 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + res)


class RefVideoResNet18(nn.Module):
    """torchvision's VideoResNet-18 layout: a stem, four layers of two basic blocks (widths
    64-512, spatial stride 2 from layer 2), global average pool, fc. ``block(cin, planes,
    stride, layer)`` builds one block, ``stem(sw)`` the stem; the subclasses below pick them."""

    def __init__(self, stem: Callable[[int], nn.Module], block: Callable[[int, int, int, int], nn.Module],
                 num_classes: int = 400, width: float = 1.0):
        super().__init__()
        w = lambda c: max(1, int(round(c * width)))  # noqa: E731
        self.stem = stem(w(64))
        cin, layers = w(64), []
        for i, planes in enumerate((64, 128, 256, 512)):
            s = 1 if i == 0 else 2
            layers.append(nn.Sequential(block(cin, w(planes), s, i), block(w(planes), w(planes), 1, i)))
            cin = w(planes)
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(x.mean(dim=(2, 3, 4)))


def _stem(*convs: tuple[int, int, tuple[int, int, int], tuple[int, int, int]]) -> nn.Sequential:
    """conv-BN-ReLU layers (cin, cout, kernel, stride), each padded by kernel // 2."""
    return nn.Sequential(*[m for cin, cout, k, stride in convs for m in _conv_bn(cin, cout, k, stride)])


class RefR2Plus1D18(RefVideoResNet18):
    """torchvision's r2plus1d_18: R(2+1)D stem 3->45->64, (2+1)D basic blocks, temporal stride
    2 in layers 2-4, no dropout (archlab's preset has 0.0)."""

    def __init__(self, num_classes: int = 400, width: float = 1.0):
        super().__init__(lambda sw: _stem((3, sw * 45 // 64, (1, 7, 7), (1, 2, 2)), (sw * 45 // 64, sw, (3, 1, 1), (1, 1, 1))),
                         lambda cin, planes, s, _i: RefR21Basic(cin, planes, s), num_classes, width)


class RefBasic3D(nn.Module):
    """torchvision's BasicBlock with Conv3DSimple (3x3x3) or Conv3DNoTemporal (1x3x3) convs."""

    def __init__(self, cin: int, planes: int, stride: int, temporal: bool):
        super().__init__()
        k = (3, 3, 3) if temporal else (1, 3, 3)
        st = (stride, stride, stride) if temporal else (1, stride, stride)
        self.conv1 = nn.Sequential(*_conv_bn(cin, planes, k, st))
        self.conv2 = nn.Sequential(*_conv_bn(planes, planes, k, relu=False))
        self.downsample = None
        if cin != planes or stride != 1:
            self.downsample = nn.Sequential(*_conv_bn(cin, planes, (1, 1, 1), st, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + res)


class RefR3D18(RefVideoResNet18):
    """torchvision's r3d_18 (``temporal=(True,)*4``) and mc3_18 (3D in layer1 only, then 2D
    convs with spatial-only strides): stem 3x7x7 stride (1,2,2), no pooling."""

    def __init__(self, num_classes: int = 400, width: float = 1.0,
                 temporal: Sequence[bool] = (True, True, True, True)):
        super().__init__(lambda sw: _stem((3, sw, (3, 7, 7), (1, 2, 2))),
                         lambda cin, planes, s, i: RefBasic3D(cin, planes, s, temporal[i]), num_classes, width)


def _ref_p3d(preset: str) -> Callable[..., nn.Module]:
    layers = tuple(get_preset(preset).letters.split("|"))
    return lambda num_classes=400, width=1.0: RefP3D(layers, num_classes, width)


# One plain reference per preset: every preset has one, so "at least as fast as a
# straightforward implementation" is checked for all of them (python -m archlab.bench reference
# --models all).
REFERENCES: dict[str, Callable[..., nn.Module]] = {
    **{p: _ref_p3d(p) for p in ("p3d63", "p3d131", "p3d199", "p3d_a50", "p3d_b50", "p3d_c50", "c2d50")},
    "r3d_18": RefR3D18,
    "mc3_18": lambda num_classes=400, width=1.0: RefR3D18(num_classes, width, (True, False, False, False)),
    "r2plus1d_18": RefR2Plus1D18,
}


def load_reference_weights(ref: nn.Module, model: nn.Module) -> nn.Module:
    """Copy ``model``'s state dict (archlab) into ``ref`` position by position; every entry's
    shape must match (both define their layers in the same order)."""
    src, dst = model.state_dict(), ref.state_dict()
    if len(src) != len(dst):
        raise ValueError(f"state dicts differ in length: archlab {len(src)}, reference {len(dst)}")
    mapped = {}
    for (dk, dv), (sk, sv) in zip(dst.items(), src.items()):
        if dv.shape != sv.shape:
            raise ValueError(f"reference {dk} {tuple(dv.shape)} != archlab {sk} {tuple(sv.shape)}")
        mapped[dk] = sv
    ref.load_state_dict(mapped)
    return ref


def archlab_and_reference(preset: str = "p3d63", width: float = 1.0, classes: int = 400,
                          seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """archlab's built ``preset`` (width-scaled) and the plain reference, with the same weights
    (BN statistics randomised so the comparison is not trivial), both in eval mode."""
    g = get_preset(preset, classes)
    if width != 1.0:
        g = scale_widths(g, width)
    torch.manual_seed(seed)
    model = randomize_bn(build(g), seed).eval()
    ref = REFERENCES[preset](num_classes=classes, width=width).eval()
    return model, load_reference_weights(ref, model)


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def run_reference(quick: bool = False, out_dir: str | Path | None = None, presets: Sequence[str] | None = None,
                  clip: Clip | None = None, runs: int | None = None, compile: bool | None = None,
                  compile_budget_s: float = 60.0) -> dict[str, Any]:
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
            k: fuse_bn(m).to(memory_format=torch.channels_last_3d) for k, m in variants["eager"].items()}
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
            rows.append({"preset": preset, "variant": vname, "archlab_ms": a, "reference_ms": r,
                         "archlab_vs_reference": r / a, "archlab_vs_eager_reference": base / a,
                         "max_rel_diff_archlab": check[f"archlab {vname}"],
                         "max_rel_diff_reference": check[f"reference {vname}"]})
        rows[-len(variants)]["max_rel_diff_archlab_eager_vs_reference"] = check["archlab"]
    header = ["model", "variant", "archlab ms", "reference ms", "archlab speed vs reference (same variant)",
              "archlab speed vs eager reference", "max rel diff vs eager reference"]
    body = [[r["preset"], r["variant"], f"{r['archlab_ms']:.1f}", f"{r['reference_ms']:.1f}",
             f"{r['archlab_vs_reference']:.3f}x", f"{r['archlab_vs_eager_reference']:.2f}x",
             f"{max(r['max_rel_diff_archlab'], r['max_rel_diff_reference']):.1e}"] for r in rows]
    note = (f"Batch 1x3x{'x'.join(map(str, clip))}, CPU, inference mode, median of {runs} round-robin runs "
            "(every model x variant in the same rounds). Same weights in both (BN statistics randomised); "
            "speed ratio > 1 means archlab is faster.")
    print(text_table(body, header))
    print(note)
    for n in notes:
        print(n)
    payload = {"input": "x".join(map(str, clip)), "batch": 1, "runs": runs, "rows": rows, "notes": notes}
    path = write_results("reference", payload, md_table(body, header) + "\n\n" + note + "\n\n" +
                         "\n".join(f"- {n}" for n in notes), out_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return payload


# ---- 3. training-step efficiency -------------------------------------------------------------

def matmul_gflops(n: int = 2048) -> Callable[[], Any]:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(1))
    b = torch.randn(n, n, generator=torch.Generator().manual_seed(2))
    return lambda: torch.mm(a, b)


def run_train(quick: bool = False, out_dir: str | Path | None = None, width: float = 0.25,
              clip: Clip | None = None, batch: int | None = None, runs: int | None = None,
              compile: bool | None = None, matmul_n: int | None = None) -> dict[str, Any]:
    """GMAC/s of a p3d63-shaped proxy training step (SGD, cross-entropy; MACs = 3 x forward)
    vs the fp32 matmul ceiling, interleaved: eager, channels_last_3d, bf16 autocast and bf16
    weights in channels_last_3d (``forms``), torch.compile; a bf16 matmul row shows the bf16
    ceiling of the same machine."""
    from .forms import Form

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
    for name, form, comp in [("eager", Form("fp32", "ncdhw"), False), ("channels_last_3d", Form("fp32", "cl3d"), False),
                             ("bf16 autocast + channels_last_3d", Form("bf16-autocast", "cl3d"), False),
                             ("bf16 weights + channels_last_3d", Form("bf16", "cl3d"), False),
                             ("torch.compile", Form("fp32", "ncdhw"), True)]:
        if comp and not compile:
            continue
        cands[name], first[name] = stepper(form, comp)
    cands[f"matmul {n}x{n} fp32"] = matmul_gflops(n)
    a16, b16 = (t.to(torch.bfloat16) for t in (torch.randn(n, n), torch.randn(n, n)))
    cands[f"matmul {n}x{n} bf16"] = lambda: torch.mm(a16, b16)
    print(f"timing train steps: {len(cands)} candidates x {runs} round-robin runs ...", file=sys.stderr, flush=True)
    times = interleaved(cands, runs, warmup=2)
    mm_ms = median(times[f"matmul {n}x{n} fp32"])
    ceiling_gmacs = (n ** 3) / (mm_ms / 1000) / 1e9  # n^3 MACs = 2 n^3 FLOPs
    rows = [{"candidate": f"matmul {n}x{n} fp32 (ceiling)", "median_ms": mm_ms, "gmacs_per_s": ceiling_gmacs,
             "fraction_of_ceiling": 1.0}]
    bf_ms = median(times[f"matmul {n}x{n} bf16"])
    rows.append({"candidate": f"matmul {n}x{n} bf16", "median_ms": bf_ms, "gmacs_per_s": n ** 3 / (bf_ms / 1000) / 1e9,
                 "fraction_of_ceiling": mm_ms / bf_ms})
    for name in [k for k in cands if not k.startswith("matmul")]:
        ms = median(times[name])
        gm = step_macs / (ms / 1000) / 1e9
        rows.append({"candidate": f"train step, {name}", "median_ms": ms, "gmacs_per_s": gm,
                     "fraction_of_ceiling": gm / ceiling_gmacs, "first_step_s": first[name]})
    header = ["candidate", "median ms", "GMAC/s", "of ceiling", "first call s"]
    body = [[r["candidate"], f"{r['median_ms']:.1f}", f"{r['gmacs_per_s']:.2f}", f"{r['fraction_of_ceiling']:.1%}",
             f"{r['first_step_s']:.1f}" if "first_step_s" in r else "-"] for r in rows]
    note = (f"Proxy: p3d63 at width x{width} ({g}), batch {batch}x3x{'x'.join(map(str, clip))}, SGD step, "
            f"forward {fwd_macs / 1e9:.3f} GMACs, step counted as 3x forward = {step_macs / 1e9:.3f} GMACs. "
            f"Ceiling: fp32 {n}x{n} matmul ({ceiling_gmacs * 2:.1f} GFLOP/s = {ceiling_gmacs:.1f} GMAC/s). "
            f"Median of {runs} round-robin runs, {torch.get_num_threads()} threads.")
    print(text_table(body, header))
    print(note)
    payload = {"genome": str(g), "width": width, "input": "x".join(map(str, clip)), "batch": batch, "runs": runs,
               "forward_macs": fwd_macs, "step_macs": step_macs, "ceiling_gmacs_per_s": ceiling_gmacs, "rows": rows}
    path = write_results("train", payload, md_table(body, header) + "\n\n" + note, out_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return payload


# ---- 4. profiling speed ---------------------------------------------------------------------

def run_profiling(quick: bool = False, out_dir: str | Path | None = None, n: int | None = None,
                  space: str = "interleave") -> dict[str, Any]:
    """count_fast vs count_fvcore on ``n`` random genomes of a space (seeds 0..n-1), each genome
    counted by both back to back (alternating which goes first); they must agree exactly."""
    from .spaces import load_space

    n = n or (50 if not quick else 10)
    sp = load_space(space)
    clip = sp.clip
    genomes: list[Genome] = [sp.sample(random.Random(i)) for i in range(n)]
    t = {"fast": 0.0, "fvcore": 0.0}
    mismatches: list[dict[str, Any]] = []
    count_fast(genomes[0], clip), count_fvcore(genomes[0], clip)  # warm-up: imports, first trace
    for i, g in enumerate(genomes):
        res = {}
        for name in (("fast", "fvcore") if i % 2 == 0 else ("fvcore", "fast")):
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
    note = (f"{n} random genomes of space {space!r} (random.Random(i), i < {n}) at {'x'.join(map(str, clip))}, "
            f"params + MACs (total and per stage). count_fast is {speedup:.1f}x faster; agreement: "
            f"{n - len(mismatches)}/{n} exact.")
    print(text_table(body, header))
    print(note)
    payload = {"space": space, "input": "x".join(map(str, clip)), "genomes": n, "rows": rows,
               "fast_vs_fvcore_speedup": speedup, "agree": n - len(mismatches), "mismatches": mismatches}
    path = write_results("profiling", payload, md_table(body, header) + "\n\n" + note, out_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return payload


# ---- 5. search overhead ------------------------------------------------------------------------

QUICK_SPACE = """description: two one-block stages (the search benchmark's --quick space)
kind: free
depths: [[1], [1]]
widths: [0.0625]
letters: [A, B, C, "2"]
fields: "stem=2d/s"
"""


def search_overhead(df: Any, wall_s: float, slots: int) -> dict[str, float]:
    """Where a search's time went, from its results table. ``slots`` trials run at once, so
    the search had ``slots * wall_s`` slot-seconds; what no trial trained in is overhead
    (Ray and driver start-up, trial start-up, data generation, latency measurement, slots
    idle while the last trials finish, writing tables)."""
    train_s = float(df["train_time_s"].fillna(0).sum())
    trial_s = float(df["trial_time_s"].fillna(0).sum())
    capacity = slots * wall_s
    return {"wall_s": wall_s, "slots": slots, "train_s": train_s, "trial_s": trial_s,
            "overhead": 1 - train_s / capacity, "overhead_outside_trials": 1 - trial_s / capacity}


def run_search(quick: bool = False, out_dir: str | Path | None = None) -> dict[str, Any]:
    """The default search (or 4 tiny trials) in a temporary directory, timed end to end."""
    import tempfile

    from .results import load_results
    from .search import SearchConfig, search, shutdown

    with tempfile.TemporaryDirectory(prefix="archlab-bench-search-") as tmp:
        cfg = SearchConfig(out=tmp, name="bench", wandb="off")
        if quick:
            space = Path(tmp) / "quick.yaml"
            space.write_text(QUICK_SPACE)
            cfg = SearchConfig(space=str(space), out=tmp, name="bench", wandb="off", frames=4, trials=4, epochs=2,
                               grace_epochs=1, data_opts={"n_clips": 64}, latency_runs=2)
        print(f"searching {cfg.space} ({cfg.trials} trials of {cfg.epochs} epochs, "
              f"{cfg.frames}x{cfg.size}x{cfg.size}) in {tmp} ...", flush=True)
        try:
            out = search(cfg, echo=lambda line: print("  " + line, flush=True))
        finally:
            shutdown()
        df, _ = load_results(out.study_dir)
    slots = out.concurrency
    o = search_overhead(df, out.wall_s, slots)
    o.update(ray_start_s=out.ray_start_s, trials=cfg.trials, finished=out.finished, rejected=out.rejected,
             repeated=out.repeated)
    header = ["wall s", "Ray start s", "slots", "trial s", "training s", "overhead", "outside trials"]
    body = [[f"{o['wall_s']:.0f}", f"{o['ray_start_s']:.1f}", slots, f"{o['trial_s']:.0f}", f"{o['train_s']:.0f}",
             f"{o['overhead']:.1%}", f"{o['overhead_outside_trials']:.1%}"]]
    note = (f"{'quick: 4 tiny trials' if quick else 'the default run: archlab search --space interleave'}; "
            f"{out.finished} finished, {out.rejected} rejected, {out.repeated} repeats reused. overhead = 1 - (sum of training time) / "
            f"(slots x wall); 'outside trials' counts a trial's data generation and latency measurement as "
            f"trial time.")
    print(text_table(body, header))
    print(note)
    path = write_results("search", {**o, "quick": quick}, md_table(body, header) + "\n\n" + note, out_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return o


# ---- entry point -----------------------------------------------------------------------------

def run_forms(quick: bool = False, out_dir: str | Path | None = None, runs: int | None = None) -> dict[str, Any]:
    """Issue 17's table: the proxy train step, a p3d63 x0.25 train step and p3d63 inference
    in fp32 NCDHW / fp32 channels_last_3d / bf16 autocast + CL3d / bf16 weights + CL3d,
    each workload's forms interleaved in one run (``calibrate.training_steppers``: AdamW as
    the search trains; inference BN folded as latency is measured)."""
    from .calibrate import PROXY_GENOME, inference_runners, time_forms, training_steppers
    from .forms import Form
    from .presets import resolve

    kinds = (("fp32", "ncdhw"), ("fp32", "cl3d"), ("bf16-autocast", "cl3d"), ("bf16", "cl3d"))
    p3d = scale_widths(get_preset("p3d63", 10), 0.25)
    work = [("proxy train step `" + PROXY_GENOME + "`, batch 8x8x32x32, 1 thread", "train", resolve(PROXY_GENOME),
             (8, 32, 32), 8, 1, runs or (5 if quick else 15)),
            ("p3d63 x0.25 train step, batch 8x8x64x64, 1 thread", "train", p3d, (8, 32, 32) if quick else (8, 64, 64),
             4 if quick else 8, 1, runs or (3 if quick else 10)),
            ("p3d63 inference 1x16x160x160, 2 threads", "infer", get_preset("p3d63"),
             (8, 64, 64) if quick else (16, 160, 160), 1, 2, runs or (3 if quick else 8))]
    rows, body = [], []
    for label, kind, g, clip, batch, threads, n in work:
        forms = [Form(p, m, threads) for p, m in kinds]
        print(f"timing {label}: {len(forms)} forms x {n} round-robin runs ...", file=sys.stderr, flush=True)
        fns = training_steppers(g, forms, batch, clip) if kind == "train" else inference_runners(g, forms, clip)[0]
        ms = time_forms(fns, n, warmup=2 if kind == "train" else 1)
        ref = ms[forms[0].name]
        rows.append({"what": label, "runs": n, **{f.name: ms[f.name] for f in forms}})
        body.append([label] + [f"{ms[f.name]:.1f} ms" + ("" if f == forms[0] else f" ({ref / ms[f.name]:.2f}x)")
                               for f in forms])
    header = ["what", "fp32 NCDHW", "fp32 channels_last_3d", "bf16 autocast + CL3d", "bf16 weights + CL3d"]
    note = f"Medians of round-robin runs per workload, torch {torch.__version__}; ratios vs fp32 NCDHW."
    print(text_table(body, header))
    print(note)
    md_body = [[str(c).replace("|", "\\|") for c in r] for r in body]  # genome strings contain '|'
    path = write_results("forms", {"rows": rows, "quick": quick}, md_table(md_body, header) + "\n\n" + note, out_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return {"rows": rows}


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two equally long sequences (ties counted as neither)."""
    n = len(a)
    if n != len(b) or n < 2:
        raise ValueError("kendall_tau needs two sequences of the same length >= 2")
    conc = disc = ties_a = ties_b = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                conc += 1
            else:
                disc += 1
    denom = ((conc + disc + ties_a) * (conc + disc + ties_b)) ** 0.5
    return (conc - disc) / denom if denom else 0.0


def run_runtimes(quick: bool = False, out_dir: str | Path | None = None, n: int | None = None,
                 space: str = "interleave", clip: Clip | None = None, runs: int | None = None,
                 forms: Sequence[str] = ("bf16-autocast/cl3d", "bf16/cl3d")) -> dict[str, Any]:
    """Does a front measured in eager fp32 rank genomes like the runtime a user deploys
    with? ``n`` genomes of a space (seeds 0..), latency in torch fp32 eager (twice: the tau
    between the two is the noise floor), torch in other forms, onnxruntime and (if
    installed) OpenVINO, all BN-folded, each genome's runtimes round-robin; Kendall tau
    between every pair of runtimes' latencies."""
    import tempfile

    from . import runtimes
    from .forms import Form
    from .spaces import load_space

    n = n or (4 if quick else 16)
    runs = runs or (3 if quick else 7)
    sp = load_space(space)
    clip = clip or (8, 32, 32)  # the search's proxy input, where its latency objective is measured
    rng = random.Random(0)
    genomes = [sp.sample(rng) for _ in range(n)]
    # the same runtime twice: the tau between them is the noise floor of this measurement
    names = ["torch fp32/ncdhw", "torch fp32/ncdhw (repeat)"] + [f"torch {f}" for f in forms] + ["onnxruntime"]
    if runtimes.openvino_available():
        names.append("openvino")
    lat: dict[str, list[float]] = {k: [] for k in names}
    labels: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="archlab-runtimes-") as d:
        for i, g in enumerate(genomes):
            print(f"genome {i + 1}/{n}: {g}", file=sys.stderr, flush=True)
            torch.manual_seed(0)
            net = fuse_bn(build(g).eval())
            x = torch.randn(1, 3, *clip, generator=torch.Generator().manual_seed(1))
            fns: dict[str, Callable[[], Any]] = {}
            for name in names:
                if name.startswith("torch"):
                    f = Form.parse(name.split(" ")[1])
                    import copy

                    m, xi = f.apply_model(copy.deepcopy(net)), f.apply_input(x)

                    def fwd(m: nn.Module = m, xi: torch.Tensor = xi, f: Form = f) -> Any:
                        with torch.inference_mode(), f.autocast("cpu"):
                            return m(xi)

                    fns[name] = fwd
                    labels[name] = f.name
                else:
                    onnx = Path(d) / f"g{i}" / "model.onnx"
                    if not onnx.exists():
                        onnx.parent.mkdir()
                        runtimes.export_onnx_tmp(net, clip, onnx.parent)
                    run, labels[name] = runtimes.runner(onnx, name, torch.get_num_threads())
                    xn = x.numpy()
                    fns[name] = lambda run=run, xn=xn: run(xn)
            times = interleaved(fns, runs, warmup=2)
            for name in names:
                lat[name].append(median(times[name]))
    taus = {f"{a} vs {b}": kendall_tau(lat[a], lat[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    header = ["runtime", "form", "median of genomes ms", "vs torch fp32", "tau vs torch fp32"]
    ref = lat[names[0]]
    body = [[k, labels[k], f"{statistics.median(lat[k]):.2f}",
             f"{statistics.median([r / v for r, v in zip(ref, lat[k])]):.2f}x",
             "-" if k == names[0] else f"{taus[f'{names[0]} vs {k}']:.2f}"] for k in names]
    note = (f"{n} genomes of space {space} (random.Random(0)), input 1x3x{'x'.join(map(str, clip))}, BN folded, "
            f"{torch.get_num_threads()} thread(s), median of {runs} round-robin runs per genome; 'vs torch fp32' is "
            f"the median per-genome speed-up. Kendall tau of every pair: "
            + "; ".join(f"{k} {v:.2f}" for k, v in taus.items()))
    print(text_table(body, header))
    print(note)
    payload = {"space": space, "input": "x".join(map(str, clip)), "genomes": [str(g) for g in genomes],
               "latency_ms": lat, "forms": labels, "kendall_tau": taus, "runs": runs, "quick": quick}
    path = write_results("runtimes", payload, md_table(body, header) + "\n\n" + note, out_dir)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return payload


BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "blocks": run_blocks, "reference": run_reference, "train": run_train, "profiling": run_profiling,
    "search": run_search, "forms": run_forms, "runtimes": run_runtimes,
}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m archlab.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("which", nargs="?", default="all", choices=["all", *BENCHMARKS])
    ap.add_argument("--quick", action="store_true", help="small sizes: about a minute for all")
    ap.add_argument("--out", default=str(RESULTS_DIR), help=f"results folder (default {RESULTS_DIR})")
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                    help="torch.compile variants (auto: on unless --quick)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--models", help="reference: comma-separated presets or 'all' (default p3d63,r2plus1d_18; "
                    "--quick: p3d63)")
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
            kw["presets"] = list(REFERENCES) if args.models == "all" else \
                [m.strip() for m in args.models.split(",") if m.strip()]
            unknown = [m for m in kw["presets"] if m not in REFERENCES]
            if unknown:
                ap.error(f"--models: no reference for {', '.join(unknown)} (have: {', '.join(REFERENCES)}, all)")
        if args.runs and name not in ("profiling", "search"):
            kw["runs"] = args.runs
        BENCHMARKS[name](**kw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
