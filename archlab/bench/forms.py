"""Benchmarks of the numeric forms (``forms``) and the deployment runtimes
(``runtimes``).

* ``run_forms``    – the proxy / p3d63 x0.25 train steps and p3d63 inference in fp32,
  channels_last_3d, bf16 autocast and bf16 weights, each workload's forms interleaved.
* ``run_runtimes`` – does a front measured in eager fp32 rank genomes like the runtime a user
  deploys with? Kendall tau between runtimes' latencies over a space's sample.
"""

from __future__ import annotations

import copy
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..measure.forms import Form
from ..measure.profile import Clip
from ..model.builder import build, fuse_bn
from ..model.genome import scale_widths
from ..model.presets import get as get_preset
from .common import interleaved, median, publish


def run_forms(quick: bool = False, out_dir: str | Path | None = None, runs: int | None = None) -> dict[str, Any]:
    """The numeric forms' table: the proxy train step, a p3d63 x0.25 train step and p3d63 inference
    in fp32 NCDHW / fp32 channels_last_3d / bf16 autocast + CL3d / bf16 weights + CL3d,
    each workload's forms interleaved in one run (``calibrate.training_steppers``: AdamW as
    the search trains; inference BN folded as latency is measured)."""
    from ..model.presets import resolve
    from ..training.calibrate import PROXY_GENOME, inference_runners, time_forms, training_steppers

    kinds = (("fp32", "ncdhw"), ("fp32", "cl3d"), ("bf16-autocast", "cl3d"), ("bf16", "cl3d"))
    p3d = scale_widths(get_preset("p3d63", 10), 0.25)
    work = [
        (
            "proxy train step `" + PROXY_GENOME + "`, batch 8x8x32x32, 1 thread",
            "train",
            resolve(PROXY_GENOME),
            (8, 32, 32),
            8,
            1,
            runs or (5 if quick else 15),
        ),
        (
            "p3d63 x0.25 train step, batch 8x8x64x64, 1 thread",
            "train",
            p3d,
            (8, 32, 32) if quick else (8, 64, 64),
            4 if quick else 8,
            1,
            runs or (3 if quick else 10),
        ),
        (
            "p3d63 inference 1x16x160x160, 2 threads",
            "infer",
            get_preset("p3d63"),
            (8, 64, 64) if quick else (16, 160, 160),
            1,
            2,
            runs or (3 if quick else 8),
        ),
    ]
    rows, body = [], []
    for label, kind, g, clip, batch, threads, n in work:
        forms = [Form(p, m, threads) for p, m in kinds]
        print(f"timing {label}: {len(forms)} forms x {n} round-robin runs ...", file=sys.stderr, flush=True)
        fns = training_steppers(g, forms, batch, clip) if kind == "train" else inference_runners(g, forms, clip)[0]
        ms = time_forms(fns, n, warmup=2 if kind == "train" else 1)
        ref = ms[forms[0].name]
        rows.append({"what": label, "runs": n, **{f.name: ms[f.name] for f in forms}})
        body.append(
            [label] + [f"{ms[f.name]:.1f} ms" + ("" if f == forms[0] else f" ({ref / ms[f.name]:.2f}x)") for f in forms]
        )
    header = ["what", "fp32 NCDHW", "fp32 channels_last_3d", "bf16 autocast + CL3d", "bf16 weights + CL3d"]
    note = f"Medians of round-robin runs per workload, torch {torch.__version__}; ratios vs fp32 NCDHW."
    publish("forms", {"rows": rows, "quick": quick}, header, body, note, out_dir)
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


def run_runtimes(
    quick: bool = False,
    out_dir: str | Path | None = None,
    n: int | None = None,
    space: str = "interleave",
    clip: Clip | None = None,
    runs: int | None = None,
    forms: Sequence[str] = ("bf16-autocast/cl3d", "bf16/cl3d"),
) -> dict[str, Any]:
    """Does a front measured in eager fp32 rank genomes like the runtime a user deploys
    with? ``n`` genomes of a space (seeds 0..), latency in torch fp32 eager (twice: the tau
    between the two is the noise floor), torch in other forms, onnxruntime and (if
    installed) OpenVINO, all BN-folded, each genome's runtimes round-robin; Kendall tau
    between every pair of runtimes' latencies."""
    from ..measure import runtimes
    from ..spaces import load_space

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
    taus = {f"{a} vs {b}": kendall_tau(lat[a], lat[b]) for i, a in enumerate(names) for b in names[i + 1 :]}
    header = ["runtime", "form", "median of genomes ms", "vs torch fp32", "tau vs torch fp32"]
    ref = lat[names[0]]
    body = [
        [
            k,
            labels[k],
            f"{statistics.median(lat[k]):.2f}",
            f"{statistics.median([r / v for r, v in zip(ref, lat[k])]):.2f}x",
            "-" if k == names[0] else f"{taus[f'{names[0]} vs {k}']:.2f}",
        ]
        for k in names
    ]
    note = (
        f"{n} genomes of space {space} (random.Random(0)), input 1x3x{'x'.join(map(str, clip))}, BN folded, "
        f"{torch.get_num_threads()} thread(s), median of {runs} round-robin runs per genome; 'vs torch fp32' is "
        f"the median per-genome speed-up. Kendall tau of every pair: "
        + "; ".join(f"{k} {v:.2f}" for k, v in taus.items())
    )
    payload = {
        "space": space,
        "input": "x".join(map(str, clip)),
        "genomes": [str(g) for g in genomes],
        "latency_ms": lat,
        "forms": labels,
        "kendall_tau": taus,
        "runs": runs,
        "quick": quick,
    }
    publish("runtimes", payload, header, body, note, out_dir)
    return payload
