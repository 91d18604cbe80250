"""Checking an output folder BEFORE any work: ``--out`` of train, search, export and experiment run.

Why a check of its own: a wrong ``--out`` (a file, a read-only place) used to surface as a
long traceback after seconds of building a dataset or minutes of training.
``writable_folder`` answers, without creating anything, whether ``path`` is a folder
this process can write, or can be created as one (its nearest existing parent is a writable
folder). Only the standard library.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError, shorten


def writable_folder(option: str, path: str | Path) -> Path:
    """``path`` as a Path if it is (or can become) a writable folder; else one UserError
    naming ``option``. Creates nothing."""
    p = Path(path)
    shown = shorten(str(p), plain=True)
    if p.exists() and not p.is_dir():
        raise UserError(f"{option} {shown}: exists and is not a folder")
    probe = p.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{option} {shown}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{option} {shown}: {probe} is not writable")
    return p
