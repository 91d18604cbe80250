"""Datasets of ``(uint8 clip [3, T, H, W], label)`` with ``.classes``, by name.

Every dataset follows one interface so the trainer, the search and the CLI never care which
one they read: a ``torch.utils.data.Dataset`` yielding ``(clip, label)``, ``clip`` a
``torch.uint8`` tensor ``[3, T, H, W]`` and ``label`` an int, and a ``classes`` list of
names. Normalisation happens on the device (``loader.to_input``).

Imports run one way: ``video`` (decode) -> ``cache`` (read a prepared cache) -> ``clips``
(sampling) -> ``ucf101`` / ``folder`` (the video lists) -> ``prepare`` (write a cache). PyAV is
imported only when a video is decoded or written, so the synthetic proxy (the default of
every search) never loads it.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from ..util.errors import UserError, shorten
from .folder import VideoFolder
from .synthetic import SyntheticMotion
from .ucf101 import UCF101

DATASETS: dict[str, str] = {
    "synthetic": "procedural moving shapes; the 6 classes differ only in the order of the frames (built in)",
    "ucf101": "UCF101 (13,320 videos, 101 actions) from its official .avi layout and split lists",
    "folder": "your own videos laid out as ROOT/<class>/<video> (a stable per-class train/val split)",
}


def get_dataset(
    name: str, split: str = "train", *, root: str | None = None, frames: int = 8, size: int = 64, **opts: Any
) -> Dataset:
    """The dataset ``name`` ("synthetic", "ucf101" or "folder") for ``split``.

    ``opts`` go to the dataset's constructor (e.g. ``n_clips``/``num_classes``/``seed`` for
    synthetic, ``fold``/``cache`` for ucf101). File-backed datasets need ``root`` or, once
    decoded by ``archlab data prepare``, ``cache=``.
    """
    if name == "synthetic":
        if root is not None:
            raise UserError("the synthetic dataset is generated in memory: it takes no data root")
        return SyntheticMotion(split, frames=frames, size=size, **opts)
    if name in ("ucf101", "folder"):
        if not root and opts.get("cache") is None:
            raise UserError(f"the {name} dataset needs a data root (--data-root PATH)")
        if name == "ucf101":
            return UCF101(root, split=split, frames=frames, size=size, **opts)
        return VideoFolder(root, split=split, frames=frames, size=size, **opts)
    raise UserError(f"unknown dataset {shorten(name)}: datasets are {', '.join(DATASETS)}")
