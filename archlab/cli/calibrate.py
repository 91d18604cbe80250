"""`archlab calibrate`: time and check the training/inference forms on this machine, print
the side-by-side table and its choice, cache it (``archlab.training.calibrate``). The form options of
other commands are in ``cli.forms``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..util.errors import UserError, shorten
from .common import at_least


def _threads(text: str, option: str) -> tuple[int, ...]:
    try:
        ts = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        ts = ()
    if not ts or any(t < 1 for t in ts):
        raise UserError(f"{option} {shorten(text)} must be comma-separated positive integers, e.g. 1,2")
    return ts


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..measure.profile import parse_clip
    from ..training import calibrate

    if args.device != "cpu":
        raise UserError(
            f"--device {args.device}: calibration runs on cpu only for now (not measured on a GPU; "
            "CUDA keeps bf16 autocast + channels_last_3d)"
        )
    train_threads = _threads(args.train_threads, "--train-threads")
    infer_threads = _threads(args.infer_threads, "--infer-threads")
    infer_clip = parse_clip(args.infer_input) if args.infer_input else None
    path = calibrate.cache_dir() / calibrate.CACHE_FILE
    if args.show or not args.refresh:
        cached = calibrate.load(args.device)
        if cached is not None and not args.refresh:
            print(calibrate.table(cached))
            print(_choice_line(cached))
            print(f"cached {cached.created} in {path} (--refresh to measure again)")
            return 0
        if args.show:
            raise UserError(f"no calibration of this machine in {path}: run archlab calibrate")
    quick = args.quick
    kw: dict[str, Any] = dict(
        train_threads=train_threads,
        infer_threads=infer_threads,
        infer_genome=args.infer_genome or calibrate.INFER_GENOME,
        infer_clip=infer_clip or ((8, 64, 64) if quick else calibrate.INFER_CLIP),
        train_runs=args.runs or (5 if quick else 15),
        infer_runs=args.runs or (3 if quick else 8),
        numerics_steps=args.numerics_steps or (8 if quick else calibrate.NUMERICS_STEPS),
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    cal = calibrate.run(args.device, **kw)
    print(calibrate.table(cal))
    print(_choice_line(cal))
    noise = cal.settings.get("fp32_seed_noise_nats")
    if noise is not None:
        print(
            f"fp32 seed-to-seed loss difference on the numerics check: {noise:.3f} nats "
            f"(training tolerance {calibrate.TRAIN_LOSS_TOL} nats)"
        )
    if args.no_cache:
        print("not cached (--no-cache)")
    else:
        print(f"cached in {calibrate.save(cal)}")
    return 0


def _choice_line(cal: Any) -> str:
    tr = ", ".join(f"{t} thread(s): {f}" for t, f in cal.training.items())
    inf = ", ".join(f"{t} thread(s): {f}" for t, f in cal.inference.items())
    return f"chosen: training {tr}; inference {inf} ({cal.machine.get('cpu')}, torch {cal.machine.get('torch')})"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="time and check the training/inference forms (fp32/bf16 x layout) "
        "on this machine and cache the fastest safe one",
    )
    p.add_argument("--device", default="cpu", help="cpu (default; CUDA calibration is not implemented yet)")
    p.add_argument("--refresh", action="store_true", help="measure again even if this machine is cached")
    p.add_argument("--show", action="store_true", help="print the cached calibration only")
    p.add_argument("--no-cache", action="store_true", help="measure and print, do not write the cache")
    p.add_argument("--quick", action="store_true", help="fewer runs and steps, a small inference input (~1 min)")
    p.add_argument(
        "--train-threads", default="1", help="thread counts to time training at (default 1: how search trials run)"
    )
    p.add_argument("--infer-threads", default="1", help="thread counts to time inference at (default 1)")
    p.add_argument("--infer-genome", help="preset or genome timed for inference (default p3d63)")
    p.add_argument("--infer-input", help="inference clip FRAMESxHEIGHTxWIDTH (default 16x160x160)")
    p.add_argument("--runs", type=at_least(1), help="timed round-robin runs (default 15 training, 8 inference)")
    p.add_argument("--numerics-steps", type=at_least(4), help="training steps of the numerics check (default 32)")
    p.set_defaults(func=cmd_calibrate)
