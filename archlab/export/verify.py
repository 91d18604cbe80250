"""Nothing ships unless it reproduces the eager model.

Every requested format is loaded back from disk and run on fresh random clips at batch sizes
other than the example batch it was traced with (which proves the batch dimension is
dynamic). A check passes when the maximum absolute difference is within ``REL_TOL`` (1e-4) of
the output scale (the largest absolute eager logit); float32 reordering noise is ~1e-6 of
it, a wrong layer is orders of magnitude more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..measure.graph_files import Clip, Runner, random_clips
from ..util.errors import UserError

EXAMPLE_BATCH = 2  # traced example (embedded in model.pt2); batch 1 would be specialised
VERIFY_BATCHES = (2, 3, 1)  # fresh clips; 3 and 1 differ from the example batch
REL_TOL = 1e-4  # max |exported - eager| <= REL_TOL * max |eager|
# A .pt2 in a bf16 form (``--form``) against fp32 eager: bf16 keeps 8 significant bits
# (4e-3 per rounding); 60 layers accumulate ~1e-2 of the output scale (measured 1.5e-3 on
# p3d63 weights at init), a wrong layer gives O(1). The same bound calibration uses.
BF16_REL_TOL = 2e-2
ABS_FLOOR = 1e-6  # ... or this, for a model whose logits are all ~0


@dataclass
class Check:
    """One verification: an exported format against eager torch on one batch of fresh clips."""

    format: str
    batch: int
    max_abs_err: float
    max_rel_err: float  # max_abs_err / scale
    scale: float  # max |eager logit|
    tol: float  # allowed max_abs_err
    ok: bool

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.format} batch {self.batch}: max abs err {self.max_abs_err:.2e} "
            f"(rel {self.max_rel_err:.2e} of output scale {self.scale:.3g}), "
            f"tolerance {self.tol:.2e}: {verdict}"
        )


class VerificationError(Exception):
    """An exported file does not reproduce the eager model (an exporter problem, not the
    user's): carries the numbers; nothing was written."""

    def __init__(self, checks: list["Check"]):
        self.checks = checks
        bad = [c for c in checks if not c.ok]
        super().__init__("; ".join(c.describe() for c in bad))


def compare(fmt: str, batch: int, got: torch.Tensor, want: torch.Tensor, rel_tol: float = REL_TOL) -> Check:
    """One check: max abs error against ``rel_tol`` x the output scale (max |eager|)."""
    if tuple(got.shape) != tuple(want.shape):
        return Check(fmt, batch, math.inf, math.inf, 0.0, 0.0, False)
    got, want = got.detach().float(), want.detach().float()
    scale = float(want.abs().max())
    err = float((got - want).abs().max())
    if not math.isfinite(err):
        err = math.inf
    tol = max(rel_tol * scale, ABS_FLOOR)
    return Check(fmt, batch, err, err / scale if scale > 0 else math.inf if err > 0 else 0.0, scale, tol, err <= tol)


def verify(
    model: nn.Module,
    runners: dict[str, Runner],
    clip: Clip,
    batches: Sequence[int] = VERIFY_BATCHES,
    seed: int = 1234,
    rel_tols: dict[str, float] | None = None,
) -> list[Check]:
    """Every runner against eager ``model`` on fresh random clips of each batch size
    (``rel_tols``: per format, default ``REL_TOL``)."""
    rel_tols = rel_tols or {}
    checks = []
    for i, b in enumerate(batches):
        x = random_clips(clip, b, seed + i)
        with torch.no_grad():
            want = model(x)
        if not torch.isfinite(want).all():
            raise UserError("the model's outputs are not finite (NaN/inf): the weights are broken")
        for fmt, run in runners.items():
            checks.append(compare(fmt, b, run(x.clone()), want, rel_tols.get(fmt, REL_TOL)))
    return sorted(checks, key=lambda c: list(runners).index(c.format))  # grouped by format
