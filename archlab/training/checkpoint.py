"""The trainer's resume checkpoint (``checkpoint.pt``): the RNG states that make a resumed run
repeat the uninterrupted one (``rng_state``, ``set_rng_state``), and the file read safely: a
file cut short by a kill, overwritten, or not archlab's is one ``CorruptCheckpoint``, never a
traceback from torch.load. Its own module because the trainer, a search trial's seeds and its
scores all read it (``train``, ``search.seeds``, ``search.trial``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..util.errors import UserError


class CorruptCheckpoint(UserError):
    """A ``checkpoint.pt`` that cannot be resumed from: truncated by a kill, overwritten, or not
    archlab's. ``archlab train`` reports it as one line; a search trial sets ``path`` aside and
    starts again from scratch."""

    def __init__(self, message: str, *, path: Path):
        super().__init__(message)
        self.path = Path(path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The resume checkpoint, read with ``weights_only=True`` (no code runs)."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, foreign pickle, refused global: one kind of error
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CorruptCheckpoint(
            f"{path} cannot be read as a checkpoint ({type(e).__name__}: {why}): delete it to start over", path=path
        ) from None
    missing = [
        k
        for k in ("genome", "model", "optimizer", "scheduler", "history", "epoch", "rng")
        if not isinstance(ck, dict) or k not in ck
    ]
    if missing:
        raise CorruptCheckpoint(
            f"{path} is not an archlab training checkpoint (no {', '.join(missing)}): delete it to start over",
            path=path,
        )
    return ck


def rng_state() -> dict[str, Any]:
    """RNG states as tensors and plain python values (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
