"""`archlab build`, `profile`, `presets`, `blocks`: a network's shapes, costs and speed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..util.errors import UserError
from .common import DEVICES, add_genome_args, at_least, clip_arg, cost_table, fmt_int, genome_arg, table
from .forms import add_latency_args, checked_latency_form, resolve_latency_form


def cmd_build(args: argparse.Namespace) -> int:
    g = genome_arg(args.genome, args.classes)
    clip = clip_arg(args, args.genome)
    print(f"genome  {g}\nid      {g.id}\ninput   3x{'x'.join(map(str, clip))}")
    print(cost_table(g, clip, args.counter))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from ..measure.profile import latency, resolve_device

    # every option first (the device, the form with the runtime, the genome, the clip): a
    # mistake is one line before the table is printed or anything is measured
    device = resolve_device(args.device)
    form = checked_latency_form(args, device)
    g = genome_arg(args.genome, args.classes)
    clip = clip_arg(args, args.genome)
    if args.latency == "predicted" and args.batch != 1:
        raise UserError("--latency predicted is for batch 1 (the latency table's parts are timed at batch 1)")
    form = resolve_latency_form(form, device)  # calibrated: may measure this machine first (~3 min)
    print(f"genome  {g}\nid      {g.id}\ninput   {args.batch}x3x{'x'.join(map(str, clip))}")
    print(cost_table(g, clip, args.counter))
    if args.latency == "predicted":
        return _print_predicted(g, clip, str(device), form, args.latency_runtime)
    print(f"measuring latency on {device} ({args.runs} runs after warm-up)...", file=sys.stderr)
    lat = latency(
        g, clip, device=str(device), batch=args.batch, runs=args.runs, form=form, runtime=args.latency_runtime
    )
    print(
        f"latency {lat.median_ms:.1f} ms (median of {lat.runs})  ·  {lat.clips_per_s:.2f} clips/s  ·  "
        f"peak memory {lat.peak_mem_mb:.0f} MiB  ·  {lat.device}  ·  {lat.runtime} {lat.form}"
    )
    return 0


def _print_predicted(g: Any, clip: tuple[int, int, int], device: str, form: Any, runtime: str) -> int:
    """The latency table's prediction (``archlab latency-table``), measuring missing parts."""
    from ..measure.latency_table import LatencyTable

    tab = LatencyTable.load(device=device, runtime=runtime, form=form)
    missing = tab.missing([g], clip)
    if missing:
        print(f"measuring {len(missing)} part(s) the latency table lacks...", file=sys.stderr)
    p = tab.predict(g, clip)
    overhead = f" + {p.overhead_ms:.1f} ms overhead" if p.overhead_ms else ""
    print(
        f"latency {p.total_ms:.1f} ms predicted (sum of {len(p.parts)} parts{overhead}; {len(missing)} measured now)"
        f"  ·  {tab.identity['device_name']}, {tab.threads} thread(s)  ·  {runtime} {tab.form.name}"
    )
    print(f"latency table: {tab.path}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from ..measure.profile import cost
    from ..model.presets import DEFAULT_INPUT, DESCRIPTIONS, PRESETS, get

    rows = []
    for name in PRESETS:
        g = get(name, args.classes)
        clip = DEFAULT_INPUT[name]
        c = cost(g, clip)
        rows.append([name, fmt_int(c.params), f"{c.gmacs:.2f}", "x".join(map(str, clip)), str(g), DESCRIPTIONS[name]])
    print(table(rows, ["preset", "params", "GMACs", "input", "genome", "what"], right={1, 2}))
    return 0


def cmd_blocks(args: argparse.Namespace) -> int:
    from ..bench import block_costs, blocks_table
    from ..measure.profile import device_label, parse_clip, resolve_device

    dev = resolve_device(args.device)
    clip = parse_clip(args.input)
    if args.width <= 0 or args.runs < 1:
        raise UserError("--width must be positive and --runs at least 1")
    print(
        f"one bottleneck block per letter at each P3D-63 stage's shape, input 1x3x{args.input}, "
        f"width x{args.width:g}, {device_label(dev)}; median of {args.runs} round-robin runs",
        file=sys.stderr,
    )
    body, header = blocks_table(block_costs(clip, args.width, args.device, args.runs))
    print(table([[str(c) for c in r] for r in body], header, right=set(range(2, len(header)))))
    print("MACs = multiply-adds of conv layers; ms/GMAC vs 2D > 1: slower per multiply-add than the 2D block.")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="show a network's per-stage shapes, params and GMACs")
    add_genome_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("profile", help="build + measured (or predicted) latency, clips/s and memory")
    add_genome_args(p)
    p.add_argument("--device", default="cpu", help=f"{DEVICES} (default cpu)")
    p.add_argument("--batch", type=at_least(1), default=1, help="clips per forward (default 1)")
    p.add_argument("--runs", type=at_least(1), default=10, help="timed runs after warm-up (default 10)")
    add_latency_args(p)
    p.add_argument(
        "--latency",
        choices=["measured", "predicted"],
        default="measured",
        help="measured (end to end, default) or predicted: the sum of the latency table's parts "
        "(archlab latency-table; batch 1; parts it lacks are measured first)",
    )
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("presets", help="list the named models with params and GMACs")
    p.add_argument("--classes", type=int, help="number of output classes (default 400)")
    p.set_defaults(func=cmd_presets)
    p = sub.add_parser("blocks", help="per-letter block cost: latency, MACs, params, ms/GMAC vs the 2D block")
    p.add_argument("--device", default="cpu", help=f"{DEVICES} (default cpu)")
    p.add_argument("--input", default="8x112x112", help="clip FRAMESxHEIGHTxWIDTH (default 8x112x112)")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of P3D-63 (default 1.0)")
    p.add_argument("--runs", type=at_least(1), default=20, help="timed round-robin runs after warm-up (default 20)")
    p.set_defaults(func=cmd_blocks)
