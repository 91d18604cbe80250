"""The form options of `archlab train`, `profile`, `export`, `fidelity` and `search`
(precision x memory format, ``archlab.measure.forms``): parsing, checking, and resolving
the one word for "this machine's measured fastest safe form".

The word is ``calibrated`` (``forms.CALIBRATED``) in every command: the search and study
files already store it (``--train-form calibrated``, a study's ``latency_form: calibrated``),
and ``auto`` means "decide without measuring" in every other option (``--device auto``,
``--channels-last auto``, ``--wandb auto``). ``auto``, the old spelling of train and profile,
is still read as ``calibrated`` for one release, with a one-line note on stderr.

Checking and resolving are two steps: ``checked_form`` reads a name (a bad one fails before
anything is built or measured, with one line naming the option) and returns ``CALIBRATED``
or a Form; ``resolve_*`` looks the calibrated choice up, which measures this machine first
if it has no entry yet (~3 min), so a command calls it only after every option is checked.

Why no calibrated default: nothing a user did not ask for may cost those 3 minutes. So
train and profile run fp32 (the trainer's per-device default), export writes fp32, the
search and fidelity train fp32, unless ``calibrated`` or a form name is given.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..util.errors import UserError, shorten
from .common import deprecated

CALIBRATED = "calibrated"  # = archlab.measure.forms.CALIBRATED (checked by a test; no torch here)
DEPRECATED_CALIBRATED = "auto"  # the old word of train/profile: accepted for one release, with a note
RUNTIMES = ("torch", "onnxruntime", "openvino")  # archlab.measure.runtimes.RUNTIMES (checked by a test); no torch here
CALIBRATED_HELP = (
    f"or {CALIBRATED}: this machine's measured fastest safe form (archlab calibrate; measured first "
    "if this machine has no entry yet, ~3 min)"
)


class FormOption(argparse.Action):
    """A form option's value as given, but the deprecated ``auto`` becomes ``calibrated``
    (a note for ``main`` to print: what to write instead)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if isinstance(values, str) and values.strip() == DEPRECATED_CALIBRATED:
            deprecated(namespace, f"{option_string} {DEPRECATED_CALIBRATED}", f"{option_string} {CALIBRATED}")
            values = CALIBRATED
        setattr(namespace, self.dest, values)


def add_form_option(p: argparse.ArgumentParser, flag: str, help: str, **kw: Any) -> None:
    p.add_argument(flag, action=FormOption, metavar=kw.pop("metavar", "FORM"), help=help, **kw)


def checked_form(text: str | None, option: str = "--form") -> Any:
    """None (not given), ``CALIBRATED``, or the Form ``text`` names. Reads, never measures."""
    if text is None:
        return None
    if text == CALIBRATED:
        return CALIBRATED
    from ..measure.forms import Form

    try:
        return Form.parse(text)
    except UserError as e:
        raise UserError(f"{option} {shorten(text)}: {e} (or {CALIBRATED})") from None


# ---- train ------------------------------------------------------------------------------------------


def add_train_form_arg(p: argparse.ArgumentParser) -> None:
    add_form_option(
        p,
        "--form",
        help="precision/layout to train in, e.g. fp32/ncdhw, bf16-autocast/cl3d, "
        f"bf16/cl3d, {CALIBRATED_HELP}. Default: fp32 on CPU, bf16-autocast/cl3d on CUDA "
        "(with --channels-last)",
    )


def checked_train_form(args: argparse.Namespace) -> Any:
    """``archlab train``'s --form, checked: None, CALIBRATED or a Form."""
    form = checked_form(args.form)
    if form is not None and args.channels_last != "auto":
        raise UserError("--form and --channels-last both set the layout: give one")
    return form


def resolve_train_form(form: Any, device: Any) -> Any:
    """The Form to train in (None: the trainer's per-device default); ``device`` resolved."""
    if form is None:
        return None
    from ..training.calibrate import training_form, warn_if_failed

    if form == CALIBRATED:
        return training_form(device).with_threads(None)
    if device.type == "cpu":
        warn_if_failed(form, "training")
    return form


# ---- profile ----------------------------------------------------------------------------------------


def add_latency_args(p: argparse.ArgumentParser) -> None:
    add_form_option(
        p,
        "--form",
        help="precision/layout latency is measured in (default fp32/ncdhw), e.g. "
        f"bf16/cl3d, {CALIBRATED_HELP}, for inference",
    )
    p.add_argument(
        "--latency-runtime",
        choices=RUNTIMES,
        default="torch",
        help="torch (eager, default), or the exported ONNX graph in onnxruntime / openvino (CPU only)",
    )


def checked_latency_form(args: argparse.Namespace, device: Any) -> Any:
    """``archlab profile``'s --form and --latency-runtime, checked together: None, CALIBRATED
    or a Form (``device`` resolved)."""
    form = checked_form(args.form)
    runtime = args.latency_runtime
    if runtime != "torch":
        if form is not None:
            raise UserError("--form applies to --latency-runtime torch; other runtimes run the fp32 ONNX graph")
        if device.type != "cpu":
            raise UserError(f"--latency-runtime {runtime} measures on CPU only (--device cpu)")
        if runtime == "openvino":
            from ..measure.runtimes import openvino_available

            if not openvino_available():
                raise UserError(
                    "--latency-runtime openvino needs the openvino package: pip install 'archlab[openvino]'"
                )
    return form


def resolve_latency_form(form: Any, device: Any) -> Any:
    """The Form latency is measured in: fp32 NCDHW unless asked."""
    from ..measure.forms import FP32

    if form is None:
        return FP32
    if form != CALIBRATED:
        return form
    from ..training.calibrate import inference_form

    return inference_form(device).with_threads(None)


# ---- export -----------------------------------------------------------------------------------------


def add_export_form_arg(p: argparse.ArgumentParser) -> None:
    add_form_option(
        p,
        "--form",
        default="fp32/ncdhw",
        help="precision/layout model.pt2 runs in: fp32/ncdhw "
        f"(default, runs well anywhere), e.g. bf16/cl3d, {CALIBRATED_HELP}, for inference; "
        "model.onnx stays fp32",
    )


def resolve_export_form(form: Any) -> Any:
    if form != CALIBRATED:
        return form
    from ..training.calibrate import inference_form

    return inference_form("cpu").with_threads(None)
