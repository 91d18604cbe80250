"""The numeric "form" a network trains or runs in: precision x memory format x threads.

Why a separate concept: the same genome trains much faster in bf16 + channels_last_3d on a
CPU with bf16 instructions, and may be slower on one without (docs/notebook/calibration.md).
Which form is fastest is a property of
the machine, so it is measured (``archlab.training.calibrate``), and every figure archlab records
says which form it was taken in: a latency measured in bf16 and one measured in fp32 are
not points of one front.

Precisions:

* ``fp32``: everything float32 (the reference every other form is checked against);
* ``bf16-autocast``: float32 weights and optimizer state, convs and linears computed in
  bfloat16 under ``torch.autocast`` (mixed precision: updates never round away);
* ``bf16``: weights, activations and gradients stored in bfloat16 (``model.to(bf16)``).
  For inference this is the deployment form; for training the optimizer then updates bf16
  weights, and updates below 2^-8 of a weight are lost, which is why a training form must
  pass the numerics check of ``calibrate`` before it is chosen.

Memory formats: ``ncdhw`` (torch's default contiguous layout) and ``cl3d``
(``torch.channels_last_3d``, the layout oneDNN and cuDNN prefer for 3D convolutions).

``threads``: torch intra-op threads the form was measured with (None: leave torch's
setting alone). A search trial's thread count is set by its CPU share, so calibration picks
precision and layout per thread count rather than choosing threads.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any, ContextManager

import torch
from torch import nn

from ..util.errors import UserError

PRECISIONS = ("fp32", "bf16-autocast", "bf16")
MEMORY_FORMATS = ("ncdhw", "cl3d")


@dataclass(frozen=True)
class Form:
    """How a network is run: ``Form(precision="bf16", memory_format="cl3d", threads=1)``."""

    precision: str = "fp32"
    memory_format: str = "ncdhw"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"precision {self.precision!r} must be one of {', '.join(PRECISIONS)}")
        if self.memory_format not in MEMORY_FORMATS:
            raise UserError(f"memory format {self.memory_format!r} must be one of {', '.join(MEMORY_FORMATS)}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise UserError(f"threads {self.threads!r} must be a positive integer or None")

    # ---- names -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """'bf16/cl3d/t1' (threads omitted when None): what results.csv and cards record."""
        base = f"{self.precision}/{self.memory_format}"
        return base if self.threads is None else f"{base}/t{self.threads}"

    def __str__(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Form":
        return cls(
            precision=str(d["precision"]),
            memory_format=str(d["memory_format"]),
            threads=None if d.get("threads") is None else int(d["threads"]),
        )

    @classmethod
    def parse(cls, text: str) -> "Form":
        """'bf16/cl3d' or 'fp32/ncdhw/t2' -> Form (the inverse of ``name``)."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3):
            raise UserError(f"form {text!r} must be PRECISION/LAYOUT[/tTHREADS], e.g. bf16/cl3d/t1")
        threads = None
        if len(parts) == 3:
            t = parts[2]
            if not (t.startswith("t") and t[1:].isdigit()):
                raise UserError(f"form {text!r}: threads must be written tN, e.g. t1")
            threads = int(t[1:])
        return cls(precision=parts[0], memory_format=parts[1], threads=threads)

    def with_threads(self, threads: int | None) -> "Form":
        return Form(self.precision, self.memory_format, threads)

    # ---- applying it -------------------------------------------------------------------

    @property
    def channels_last(self) -> bool:
        return self.memory_format == "cl3d"

    @property
    def dtype(self) -> torch.dtype:
        """The dtype weights and inputs are stored in."""
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    def apply_threads(self) -> None:
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def apply_model(self, model: nn.Module) -> nn.Module:
        """The model in this form's dtype and layout (in place, as ``Module.to`` is)."""
        if self.precision == "bf16":
            model = model.to(dtype=torch.bfloat16)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        return model

    def apply_input(self, x: torch.Tensor) -> torch.Tensor:
        """A float32 NCDHW batch in this form's dtype and layout."""
        if self.precision == "bf16":
            x = x.to(torch.bfloat16)
        if self.channels_last and x.dim() == 5:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def autocast(self, device: torch.device | str) -> ContextManager[Any]:
        """The autocast context of a forward pass (a no-op unless ``bf16-autocast``)."""
        device_type = torch.device(device).type
        if self.precision == "bf16-autocast":
            return torch.autocast(device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


FP32 = Form("fp32", "ncdhw")
# The one word for "this machine's measured fastest safe form" (``archlab calibrate``) wherever
# a form is asked for: ``--form calibrated`` of train/profile/export/fidelity (resolved at
# once), the search's ``--train-form``/``--latency-form calibrated`` and a study file's
# ``train_form: calibrated`` (resolved when the study is created; study.yaml stores the form).
# The CLI still reads train/profile's old ``auto`` as this, with a deprecation note
# (``archlab.cli.forms``). Never the default: calibrating takes ~3 min.
CALIBRATED = "calibrated"


def default_training_form(device: torch.device | str) -> Form:
    """Today's defaults when nothing was calibrated: bf16 autocast + channels_last_3d on CUDA
    (the usual cuDNN recipe; not measured here), plain fp32 NCDHW on CPU (measured)."""
    return Form("bf16-autocast", "cl3d") if torch.device(device).type == "cuda" else FP32


def default_inference_form(device: torch.device | str) -> Form:
    """fp32 NCDHW on every device until calibrated: the form latencies were measured in."""
    return FP32


def candidates(
    precisions: tuple[str, ...] = PRECISIONS,
    memory_formats: tuple[str, ...] = MEMORY_FORMATS,
    threads: tuple[int | None, ...] = (None,),
) -> list[Form]:
    """Every combination, fp32/ncdhw first (the reference)."""
    forms = [Form(p, m, t) for t in threads for p in precisions for m in memory_formats]
    return sorted(forms, key=lambda f: (f.threads or 0, f != Form("fp32", "ncdhw", f.threads)))


class InForm(nn.Module):
    """``model`` run in ``form`` behind a float32 NCDHW interface: it takes and returns
    float32, converting the input to the form's dtype and layout inside. What a deployed
    file needs: its users feed float32 clips whatever the form (``archlab export --form``)."""

    def __init__(self, model: nn.Module, form: Form):
        super().__init__()
        self.form = form
        self.model = form.apply_model(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.form.apply_input(x)
        with self.form.autocast(x.device):
            y = self.model(x)
        return y.float()


def check_one_form(rows: Any, columns: tuple[str, ...] = ("latency_form", "latency_runtime")) -> None:
    """Raise UserError if ``rows`` (a DataFrame of trials) holds latencies taken in more than
    one form or runtime: such figures are not points of one front. Rows without the columns
    (studies from before forms were recorded) are fp32 eager torch."""
    for col in columns:
        if col not in getattr(rows, "columns", ()):
            continue
        seen = sorted({str(v) for v in rows[col].dropna() if str(v)})
        if len(seen) > 1:
            raise UserError(
                f"the trials' latencies were measured in different {col.replace('latency_', '')}s "
                f"({', '.join(seen)}): they are not points of one front; compare within one"
            )
