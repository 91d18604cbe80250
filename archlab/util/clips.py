"""A clip's shape as people write it and as the code holds it: ``16x112x112`` <->
(frames, height, width). Torch-free, so settings and readers parse clips without the model."""

from __future__ import annotations

from .errors import UserError, shorten

Clip = tuple[int, int, int]


def parse_clip(text: str) -> Clip:
    """'16x160x160' -> (16, 160, 160), with a one-line error for anything else."""
    parts = str(text).lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"input {shorten(text)} must be FRAMESxHEIGHTxWIDTH, e.g. 16x160x160")
    t, h, w = (int(p) for p in parts)
    if h < 16 or w < 16:
        raise UserError(f"input {shorten(text)}: height and width must be at least 16 pixels")
    return t, h, w


def clip_text(clip: Clip) -> str:
    """(16, 112, 112) -> '16x112x112'."""
    return "x".join(map(str, clip))
