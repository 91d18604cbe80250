"""The trainer's resume checkpoint (``checkpoint.pt``), read safely: a file cut short by a
kill, overwritten, or not archlab's is one ``CorruptCheckpoint``, never a traceback from
torch.load. Its own module because the trainer, a search trial's seeds and its scores all read
it (``train``, ``search.seeds``, ``search.trial``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
