"""A user's own videos, one folder per class:

    ROOT/<class>/<video>.{avi,mp4,mkv,mov,webm}

Classes are the folder names, sorted (label = position). Hidden entries are ignored; a class
folder without videos is an error (it would silently shrink the classifier's head).

Train/val split: per class, deterministic and stable. Each video is ranked by a hash of
(split_seed, its path inside ROOT) and the first round(n * val_fraction) go to val (at least
one video each side when a class has two or more). A hash rank, not a shuffle, so adding
videos later moves few existing ones across the split, and no file order or machine changes
it. ``split_seed`` is separate from ``seed`` (augmentation) so runs with different seeds
are scored on the same validation videos.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

from ..util.errors import UserError, shorten
from .cache import check_resize, open_cache
from .clips import Video, VideoClipDataset
from .video import VIDEO_EXTENSIONS, Resize

SPLITS = ("train", "val", "test", "all")


def scan_folder(root: str | os.PathLike[str]) -> tuple[list[str], dict[str, Path]]:
    """(sorted class names, {key 'class/file': path}) of a class-per-folder tree."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"video folder {root} not found")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise UserError(f"video folder {root} has no class folders (expected {root}/<class>/<video>.mp4)")
    found: dict[str, Path] = {}
    for d in class_dirs:
        videos = sorted(
            p
            for p in d.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_EXTENSIONS
        )
        if not videos:
            raise UserError(f"class folder {d} has no videos ({', '.join(VIDEO_EXTENSIONS)})")
        found.update((f"{d.name}/{v.name}", v) for v in videos)
    return [d.name for d in class_dirs], found


def val_keys(keys: Sequence[str], val_fraction: float, split_seed: int = 0) -> set[str]:
    """The keys ('class/file') of the validation side, chosen per class by hash rank."""
    if not 0 <= val_fraction < 1:
        raise UserError(f"val_fraction {val_fraction} must be in [0, 1)")
    by_class: dict[str, list[str]] = {}
    for k in keys:
        by_class.setdefault(k.split("/")[0], []).append(k)
    out: set[str] = set()
    for members in by_class.values():
        n = len(members)
        n_val = round(n * val_fraction)
        if val_fraction > 0 and n >= 2:
            n_val = min(max(n_val, 1), n - 1)
        ranked = sorted(members, key=lambda k: hashlib.sha1(f"{split_seed}/{k}".encode()).hexdigest())
        out.update(ranked[:n_val])
    return out


class VideoFolder(VideoClipDataset):
    """Clips ``(uint8 [3, frames, H, W], label)`` of a class-per-folder tree.

    split: 'train', 'val' ('test' is the same), or 'all'. Sampling options as ``UCF101``
    (frames, size, stride, clips_per_video, resize, seed, flip); resize defaults to short
    side 128. cache: a folder written by ``archlab data prepare folder`` (root is then not
    read); the split is the same with or without it.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        frames: int = 16,
        size: int | Sequence[int] = 112,
        val_fraction: float = 0.2,
        seed: int = 0,
        split_seed: int = 0,
        stride: int = 1,
        clips_per_video: int = 1,
        resize: Resize | None = None,
        cache: str | os.PathLike[str] | None = None,
        flip: bool | None = None,
    ):
        if split not in SPLITS:
            raise UserError(f"video folder split {shorten(split)} must be one of {', '.join(SPLITS)}")
        cache_dir = Path(cache) if cache is not None else None
        skipped: dict[str, str] = {}
        if cache_dir is not None:
            manifest = open_cache(cache_dir, "folder")
            resize = check_resize(cache_dir, manifest, resize, size)
            classes: list[str] = manifest["classes"]
            keys = sorted([*manifest["videos"], *manifest["corrupt"]])
            paths = {k: "" for k in manifest["videos"]}
            skipped = dict(manifest["corrupt"])
        else:
            if root is None:
                raise UserError("a video folder dataset needs root= (ROOT/<class>/<video>) or cache=")
            classes, found = scan_folder(root)
            keys = list(found)
            paths = {k: str(p) for k, p in found.items()}
        val = val_keys(keys, val_fraction, split_seed)
        wanted = [k for k in keys if split == "all" or (k in val) == (split != "train")]
        label = {c: i for i, c in enumerate(classes)}
        videos = [Video(k, paths[k], label[k.split("/")[0]]) for k in wanted if k in paths]
        wanted_set = set(wanted)
        skipped = {k: r for k, r in skipped.items() if k in wanted_set}
        self._setup(
            videos=videos,
            classes=classes,
            train=split == "train",
            frames=frames,
            size=size,
            stride=stride,
            clips_per_video=clips_per_video,
            resize=resize,
            cache_dir=cache_dir,
            seed=seed,
            flip=flip,
            name=f"video folder {split}",
            skipped=skipped,
        )
