"""``archlab calibrate`` and the form options of ``archlab train`` / ``archlab profile``.

A module of its own so the command's parser and printing live beside each other; cli.py
only registers it (``add_parser``) and calls the small helpers for train and profile.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import UserError


def _threads(text: str) -> tuple[int, ...]:
    try:
        ts = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        ts = ()
    if not ts or any(t < 1 for t in ts):
        raise UserError(f"threads {text!r} must be comma-separated positive integers, e.g. 1,2")
    return ts


def cmd_calibrate(args: argparse.Namespace) -> int:
    from . import calibrate
    from .profile import parse_clip

    if args.device != "cpu":
        raise UserError(f"--device {args.device}: calibration runs on cpu only for now (not measured on a GPU; "
                        "CUDA keeps bf16 autocast + channels_last_3d)")
    train_threads, infer_threads = _threads(args.train_threads), _threads(args.infer_threads)
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
        train_threads=train_threads, infer_threads=infer_threads,
        infer_genome=args.infer_genome,
        infer_clip=parse_clip(args.infer_input) if args.infer_input else ((8, 64, 64) if quick else calibrate.INFER_CLIP),
        train_runs=args.runs or (5 if quick else 15), infer_runs=args.runs or (3 if quick else 8),
        numerics_steps=args.numerics_steps or (8 if quick else calibrate.NUMERICS_STEPS),
        log=lambda m: print(m, file=sys.stderr, flush=True))
    cal = calibrate.run(args.device, **kw)
    print(calibrate.table(cal))
    print(_choice_line(cal))
    noise = cal.settings.get("fp32_seed_noise_nats")
    if noise is not None:
        print(f"fp32 seed-to-seed loss difference on the numerics check: {noise:.3f} nats "
              f"(training tolerance {calibrate.TRAIN_LOSS_TOL} nats)")
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
    from . import calibrate

    p = sub.add_parser("calibrate", help="time and check the training/inference forms (fp32/bf16 x layout) "
                       "on this machine and cache the fastest safe one")
    p.add_argument("--device", default="cpu", help="cpu (default; CUDA calibration is not implemented yet)")
    p.add_argument("--refresh", action="store_true", help="measure again even if this machine is cached")
    p.add_argument("--show", action="store_true", help="print the cached calibration only")
    p.add_argument("--no-cache", action="store_true", help="measure and print, do not write the cache")
    p.add_argument("--quick", action="store_true", help="fewer runs and steps, a small inference input (~1 min)")
    p.add_argument("--train-threads", default="1", help="thread counts to time training at (default 1: "
                   "how search trials run)")
    p.add_argument("--infer-threads", default="1", help="thread counts to time inference at (default 1)")
    p.add_argument("--infer-genome", default=calibrate.INFER_GENOME, help="preset or genome timed for "
                   f"inference (default {calibrate.INFER_GENOME})")
    p.add_argument("--infer-input", help="inference clip FRAMESxHEIGHTxWIDTH (default 16x160x160)")
    p.add_argument("--runs", type=int, help="timed round-robin runs (default 15 training, 8 inference)")
    p.add_argument("--numerics-steps", type=int, help=f"training steps of the numerics check "
                   f"(default {calibrate.NUMERICS_STEPS})")
    p.set_defaults(func=cmd_calibrate)


# ---- the form options of other commands -------------------------------------------------------------

def add_train_form_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--form", default="auto", help="precision/layout to train in, e.g. fp32/ncdhw, "
                   "bf16-autocast/cl3d, bf16/cl3d (default auto: this machine's calibrated choice on CPU, "
                   "bf16-autocast/cl3d on CUDA; --channels-last on/off means fp32 with that layout)")


def train_form(args: argparse.Namespace) -> Any:
    """The Form for ``archlab train`` (None: the trainer's own default, when --channels-last
    was given explicitly)."""
    from .forms import Form
    from .train import resolve_device

    if args.form != "auto":
        if args.channels_last != "auto":
            raise UserError("--form and --channels-last both set the layout: give one")
        return Form.parse(args.form)
    if args.channels_last != "auto":
        return None
    from .calibrate import training_form

    return training_form(resolve_device(args.device)).with_threads(None)


def add_latency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--form", default="auto", help="precision/layout latency is measured in, e.g. fp32/ncdhw, "
                   "bf16/cl3d (default auto: this machine's calibrated inference form)")
    p.add_argument("--latency-runtime", choices=["torch", "onnxruntime", "openvino"], default="torch",
                   help="torch (eager, default), or the exported ONNX graph in onnxruntime / openvino")


def latency_form(args: argparse.Namespace) -> Any:
    from .forms import FP32, Form

    if args.form != "auto":
        if args.latency_runtime != "torch":
            raise UserError("--form applies to --latency-runtime torch; other runtimes run the fp32 ONNX graph")
        return Form.parse(args.form)
    if args.latency_runtime != "torch" or args.device != "cpu":
        return FP32
    from .calibrate import inference_form

    return inference_form(args.device).with_threads(None)


def add_export_form_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--form", default="fp32/ncdhw", help="precision/layout model.pt2 runs in: fp32/ncdhw "
                   "(default, runs well anywhere), e.g. bf16/cl3d, or 'calibrated': this machine's "
                   "measured fastest safe inference form (archlab calibrate); model.onnx stays fp32")


def export_form(args: argparse.Namespace) -> Any:
    from .forms import Form

    if args.form == "calibrated":
        from .calibrate import inference_form

        return inference_form("cpu").with_threads(None)
    return Form.parse(args.form)
