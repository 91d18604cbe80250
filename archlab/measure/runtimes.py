"""Running an exported network in the runtime a user deploys with: onnxruntime or OpenVINO.

Why: a front measured in eager PyTorch fp32 ranks genomes by what eager PyTorch is good at;
a user who ships the ONNX graph to onnxruntime or OpenVINO runs other kernels (OpenVINO
picks bf16 by itself on a CPU with AMX) and may see another order. ``--latency-runtime``
measures the latency objective where the model will run. Both runtimes get the same graph
``archlab export`` writes (BN folded, dynamic batch), with as many threads as torch uses.

``openvino`` is an optional extra (``pip install 'archlab[openvino]'``, ~180 MB); asking
for it without it installed is one line of error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..util.errors import UserError

RUNTIMES = ("torch", "onnxruntime", "openvino")
Runner = Callable[[np.ndarray], np.ndarray]


def onnxruntime_runner(onnx_path: str | Path, threads: int | None = None) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name
    return lambda x: session.run([name_out], {name_in: x})[0]


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_runner(onnx_path: str | Path, threads: int | None = None) -> tuple[Runner, str]:
    """A compiled OpenVINO CPU model and the inference precision OpenVINO chose (its
    default: bf16 where the CPU has AMX, f32 otherwise)."""
    try:
        import openvino as ov
    except ImportError:
        raise UserError(
            "--latency-runtime openvino needs the openvino package: pip install 'archlab[openvino]'"
        ) from None
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(onnx_path)), "CPU", {"INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())}
    )
    try:
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
    except Exception:  # noqa: BLE001 - a property older versions lack is only a label
        precision = "unknown"
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(request.infer({0: x})[0])

    return run, precision


def runner(onnx_path: str | Path, runtime: str, threads: int | None = None) -> tuple[Runner, str]:
    """(run, form label) for an ONNX file in ``runtime``."""
    if runtime == "onnxruntime":
        return onnxruntime_runner(onnx_path, threads), "onnx/fp32"
    if runtime == "openvino":
        run, precision = openvino_runner(onnx_path, threads)
        return run, f"openvino/{precision.lower()}"
    raise UserError(f"runtime {runtime!r} must be onnxruntime or openvino (torch runs eager)")


def export_onnx_tmp(model: nn.Module, clip: tuple[int, int, int], folder: Path) -> Path:
    from .graph_files import export_onnx, random_clips

    path = folder / "model.onnx"
    export_onnx(model.eval(), random_clips(clip, 2, seed=0), path)
    return path


def module_runner(module: nn.Module, example: torch.Tensor, runtime: str, threads: int | None = None) -> Runner:
    """``module`` exported to ONNX (as ``archlab export`` writes it, batch dynamic) on
    ``example`` and loaded in ``runtime``: a function of a numpy array, built before any
    timing (the file is gone once the runtime has loaded it)."""
    import tempfile

    from .graph_files import export_onnx

    with tempfile.TemporaryDirectory(prefix="archlab-part-") as d:
        path = Path(d) / "part.onnx"
        export_onnx(module.eval(), example, path)
        run, _ = runner(path, runtime, threads)
    return run
