"""Latency of an exported model: model.pt2 (torch.export) and model.onnx (onnxruntime CPU)
against eager PyTorch, and the shipped .pt2 (BatchNorm folded into the convs) against the
same export without folding, measured side by side in one run.

Why one run, round-robin: CPU clocks and background load drift over minutes, so timings from
separate runs do not compare; here every timed round runs the three engines back to back on
the same input with the same thread count, and the medians and their ratios come from the
same minutes. The export itself goes through ``archlab.export`` (verification included), so
the files measured are the files users get.

    .venv/bin/python bench/export_latency.py                      # r2plus1d_18, 8x112x112, batch 1
    .venv/bin/python bench/export_latency.py --preset p3d63 --runs 20 --json out.json

Prints a table and writes JSON (default bench/results/export_latency.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
import torch

from archlab.export import FILE_NAMES, INPUT_NAME, OUTPUT_NAME, build_model, export, resolve_source
from archlab.measure.profile import parse_clip
from archlab.util.versions import cpu_name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="r2plus1d_18", help="preset or genome string (default r2plus1d_18)")
    ap.add_argument("--input", default="8x112x112", help="clip FRAMESxHEIGHTxWIDTH (default 8x112x112)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--runs", type=int, default=10, help="timed rounds (each runs every engine)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads for all engines")
    ap.add_argument("--json", default="bench/results/export_latency.json", help="where to write the JSON")
    args = ap.parse_args(argv)
    clip = parse_clip(args.input)
    torch.set_num_threads(args.threads)

    src = resolve_source(genome=args.preset, weights="none")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = export(src, Path(tmp) / "e", clip=clip, progress=lambda m: print(m, file=sys.stderr, flush=True))
        export_s = time.perf_counter() - t0

        eager = build_model(src)
        pt2 = torch.export.load(str(res.out_dir / FILE_NAMES["pt2"])).module()  # BN folded, as shipped
        # the same export without folding BN (what archlab shipped before), to show what folding buys
        example = torch.randn(2, 3, *clip)
        unfolded = torch.export.export(
            eager, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},)
        ).module()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(res.out_dir / FILE_NAMES["onnx"]), opts, providers=["CPUExecutionProvider"])

        x = torch.randn(args.batch, 3, *clip, generator=torch.Generator().manual_seed(0))
        x_np = x.numpy()

        def run_torch(m: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], np.ndarray]:
            def f() -> np.ndarray:
                with torch.inference_mode():
                    return m(x).numpy()

            return f

        engines: dict[str, Callable[[], np.ndarray]] = {
            "eager torch": run_torch(eager),
            "torch.export .pt2": run_torch(pt2),
            ".pt2 without BN folding": run_torch(unfolded),
            "onnxruntime CPU": lambda: session.run([OUTPUT_NAME], {INPUT_NAME: x_np})[0],
        }
        outputs = {name: f() for name, f in engines.items()}
        for _ in range(args.warmup):
            for f in engines.values():
                f()
        times: dict[str, list[float]] = {name: [] for name in engines}
        names = list(engines)
        for r in range(args.runs):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first each round
                t = time.perf_counter()
                engines[name]()
                times[name].append((time.perf_counter() - t) * 1000)

    ref = outputs["eager torch"]
    eager_ms = statistics.median(times["eager torch"])
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append(
            {
                "engine": name,
                "median_ms": round(med, 2),
                "min_ms": round(min(times[name]), 2),
                "speedup_vs_eager": round(eager_ms / med, 3),
                "max_abs_diff_vs_eager": float(np.abs(outputs[name] - ref).max()),
            }
        )
    report = {
        "preset": args.preset,
        "genome": str(src.genome),
        "input": args.input,
        "batch": args.batch,
        "params": res.card["params"],
        "gmacs": round(res.card["gmacs"], 3),
        "runs": args.runs,
        "warmup": args.warmup,
        "threads": args.threads,
        "export_and_verify_s": round(export_s, 1),
        "machine": {
            "cpu": cpu_name(),
            "logical_cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
        },
        "results": rows,
    }
    print(
        f"{args.preset} ({report['params']:,} params, {report['gmacs']} GMACs) at batch {args.batch}x3x{args.input}, "
        f"{args.threads} threads, median of {args.runs} round-robin runs  ·  {report['machine']['cpu']}"
    )
    print(f"{'engine':<20} {'median ms':>10} {'min ms':>9} {'vs eager':>9} {'max |diff|':>11}")
    for r in rows:
        print(
            f"{r['engine']:<20} {r['median_ms']:>10.1f} {r['min_ms']:>9.1f} {r['speedup_vs_eager']:>8.2f}x "
            f"{r['max_abs_diff_vs_eager']:>11.1e}"
        )
    print(f"(export + verification took {report['export_and_verify_s']} s)")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
