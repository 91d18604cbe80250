"""The form options of `archlab train`, `profile` and `export` (precision x memory format,
``archlab.measure.forms``): parsing only.

Why no calibrated default here: a first use of this machine's calibration measures it, ~3
minutes, and nothing a user did not ask for may cost that. So train and profile run fp32
(the trainer's per-device default) unless ``--form auto`` (this machine's calibrated choice,
``archlab calibrate``) or a form name is given; export writes fp32 unless ``--form
calibrated`` or a name.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..util.errors import UserError

AUTO = "auto"  # train/profile: this machine's calibrated form (may calibrate first, ~3 min)
RUNTIMES = ("torch", "onnxruntime", "openvino")  # archlab.measure.runtimes.RUNTIMES (checked by a test); no torch here


def add_train_form_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--form", help="precision/layout to train in, e.g. fp32/ncdhw, bf16-autocast/cl3d, bf16/cl3d, "
                   "or auto: this machine's calibrated choice (archlab calibrate; measures it first if needed, "
                   "~3 min). Default: fp32 on CPU, bf16-autocast/cl3d on CUDA (with --channels-last)")


def train_form(args: argparse.Namespace) -> Any:
    """The form for ``archlab train``: None (the trainer's per-device default), a name, or
    the calibrated one for ``--form auto``."""
    if args.form is None:
        return None
    if args.channels_last != "auto":
        raise UserError("--form and --channels-last both set the layout: give one")
    from ..training.calibrate import training_form, warn_if_failed
    from ..util.device import resolve_device
    from ..measure.forms import Form

    if args.form == AUTO:
        return training_form(resolve_device(args.device)).with_threads(None)
    form = Form.parse(args.form)  # a bad name fails before the device is looked at, as before
    if resolve_device(args.device).type == "cpu":
        warn_if_failed(form, "training")
    return form


def add_latency_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--form", help="precision/layout latency is measured in (default fp32/ncdhw), e.g. bf16/cl3d, "
                   "or auto: this machine's calibrated inference form (archlab calibrate; measures it first "
                   "if needed, ~3 min)")
    p.add_argument("--latency-runtime", choices=RUNTIMES, default="torch",
                   help="torch (eager, default), or the exported ONNX graph in onnxruntime / openvino")


def latency_form(args: argparse.Namespace) -> Any:
    """The form for ``archlab profile``: fp32 NCDHW unless asked."""
    from ..measure.forms import FP32, Form

    if args.form is None:
        return FP32
    if args.latency_runtime != "torch":
        raise UserError("--form applies to --latency-runtime torch; other runtimes run the fp32 ONNX graph")
    if args.form != AUTO:
        return Form.parse(args.form)
    from ..training.calibrate import inference_form

    return inference_form(args.device).with_threads(None)


def add_export_form_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--form", default="fp32/ncdhw", help="precision/layout model.pt2 runs in: fp32/ncdhw "
                   "(default, runs well anywhere), e.g. bf16/cl3d, or 'calibrated': this machine's "
                   "measured fastest safe inference form (archlab calibrate); model.onnx stays fp32")


def export_form(args: argparse.Namespace) -> Any:
    from ..measure.forms import CALIBRATED, Form

    if args.form == CALIBRATED:
        from ..training.calibrate import inference_form

        return inference_form("cpu").with_threads(None)
    return Form.parse(args.form)
