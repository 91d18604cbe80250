"""The file formats an export writes, and how each is read back to run.

``model.pt2`` (``torch.export``) runs with ``torch.export.load(p).module()`` in a process that
has no archlab and no model class; ``model.onnx`` runs in onnxruntime without torch at all.
Both have a dynamic batch dimension; frames, height and width are fixed at export time
(``ClampedMaxPool`` branches on the clip length, so the frame count must be static).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

Clip = tuple[int, int, int]  # frames, height, width
Runner = Callable[[torch.Tensor], torch.Tensor]

FORMATS = ("pt2", "onnx")
FILE_NAMES = {"pt2": "model.pt2", "onnx": "model.onnx"}
INPUT_NAME, OUTPUT_NAME = "clip", "logits"
ONNX_MAX_EMBEDDED_BYTES = 1_800_000_000  # protobuf's 2 GiB limit, with headroom


def _batch_dim() -> dict[int, Any]:
    return {0: torch.export.Dim("batch", min=1)}


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporters' chatter (torchvision-op notices, deprecation warnings) is not for users."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_pt2(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with _quiet():
        program = torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(),))
        torch.export.save(program, str(path))


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    big = sum(p.numel() * p.element_size() for p in model.state_dict().values()) > ONNX_MAX_EMBEDDED_BYTES
    with _quiet():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            dynamic_shapes=(_batch_dim(),),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            external_data=big,
            verbose=False,
        )
    import onnx  # only when ONNX is asked for: a .pt2 export needs no onnx installed

    onnx.checker.check_model(str(path))


def load_pt2(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


def load_onnx(path: Path) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])

    return run


def random_clips(clip: Clip, batch: int, seed: int) -> torch.Tensor:
    """``batch`` random clips of shape ``clip`` (T, H, W), the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *clip, generator=g)


def clip_str(clip: Clip) -> str:
    return "x".join(map(str, clip))
