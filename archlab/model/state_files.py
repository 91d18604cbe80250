"""Weight files a user brings: read safely, and laid onto a built network.

Every import (``archlab import-weights``) and every ``--init`` reads its file here, with
``torch.load(weights_only=True)`` (no code in the file runs), so a wrong, truncated or foreign
file is one line naming the file, never a traceback. ``apply_init`` is the one place where an
archlab checkpoint's weights are copied into a network that may differ from it only in its
class count (a fine-tune on the data's classes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..util.errors import UserError

# Containers a released checkpoint wraps its state dict in (timm and training scripts).
_WRAPPERS = ("state_dict", "model_state", "model", "state_dict_ema")


def _first_line(e: BaseException) -> str:
    return ((str(e).strip().splitlines() or [type(e).__name__])[0])[:160]


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a state-dict file: a bare state dict, or one wrapped in a dict under
    ``state_dict``/``model``/..., with a ``module.`` or ``_orig_mod.`` prefix dropped. ``what``
    names the expected content in the error ("a 2D ResNet state dict")."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p} is not a file (expected {what})")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, foreign pickle, refused global: one user problem
        raise UserError(f"{p} cannot be read as {what} ({type(e).__name__}: {_first_line(e)})") from None
    for key in _WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{p} holds no state dict of tensors (expected {what})")
    sd: dict[str, torch.Tensor] = {str(k): v for k, v in obj.items()}
    for prefix in ("_orig_mod.", "module."):
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def read_archlab_checkpoint(path: str | Path) -> dict[str, Any]:
    """An archlab checkpoint ({"model": state_dict, "genome": str, ...}) as ``import-weights``
    and the trainer write it."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--init {p} is not a file (expected an archlab checkpoint from import-weights or train)")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"--init {p} cannot be read ({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(ck, dict) or not isinstance(ck.get("model"), dict) or not isinstance(ck.get("genome"), str):
        raise UserError(
            f"--init {p} is not an archlab checkpoint (no model and genome): make one with archlab import-weights"
        )
    return ck


def apply_init(net: nn.Module, state_dict: dict[str, torch.Tensor], where: str) -> list[str]:
    """Copy ``state_dict`` into ``net``. Every key and shape must match, except the classifier
    (``fc``), which keeps ``net``'s fresh initialisation when its class count differs. Returns
    the keys left fresh."""
    want = net.state_dict()
    fresh = [
        k for k in ("fc.weight", "fc.bias") if k in want and k in state_dict and state_dict[k].shape != want[k].shape
    ]
    missing = [k for k in want if k not in state_dict]
    unexpected = [k for k in state_dict if k not in want]
    shapes = [k for k in want if k in state_dict and k not in fresh and state_dict[k].shape != want[k].shape]
    if missing or unexpected or shapes:
        k = (missing or unexpected or shapes)[0]
        kind = "missing" if missing else "unexpected" if unexpected else "of another shape"
        raise UserError(f"the weights in {where} do not fit this network: {k} is {kind} (another genome?)")
    net.load_state_dict({k: (want[k] if k in fresh else v) for k, v in state_dict.items()})
    return fresh
