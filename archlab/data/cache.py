"""Decode once: a cache of resized uint8 frames that training epochs memory-map. This module
READS a cache (datasets import it); ``prepare.py`` writes one (it imports the datasets' list
readers), so imports run one way: video -> cache -> clips -> ucf101/folder -> prepare.

Decoding a UCF101 video costs ~1 ms a frame on one core; a training epoch wants thousands
of clips a second. ``archlab data prepare`` decodes every video once, resizes it (default
128x171, C3D's size) and stores the frames; datasets given ``cache=`` then slice clips out
of memory maps and never decode again.

Layout (no absolute paths inside: the folder can be moved or copied to a faster disk):

    CACHE/cache.json            {"format", "kind", "size"}: written first, checked on resume
    CACHE/videos/<key>.npy      uint8 [T, H, W, 3], one per video; key = path under the videos'
                                root ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi")
    CACHE/ucfTrainTestlist/     a copy of UCF101's split lists: the raw videos are not needed
    CACHE/manifest.json         written LAST: frames/fps/source size per video and the videos
                                that could not be decoded, with the reason

One .npy per video keeps writing resumable and atomic: each is written under a temporary
name and renamed, so a file with the final name is complete and a re-run skips it. The
manifest is deleted when a run starts and written (fsynced, renamed) when it ends: a cache
without one came from an interrupted run, and reading it is a UserError that says to re-run
prepare, never a silent partial dataset.

Size: raw frames are not small. UCF101 (~2.5 M frames) takes ~160 GB at 128x171 and
~40 GB at 64x85; ``prepare`` estimates the total from container headers and refuses to
start when the disk cannot hold it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..util.errors import UserError, shorten
from .video import CorruptVideo, Resize, crop_pair, format_size, parse_size

FORMAT = 1
CONFIG = "cache.json"
MANIFEST = "manifest.json"
VIDEOS = "videos"


def frames_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / VIDEOS / (key + ".npy")


def open_cache(cache_dir: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    """The manifest of a complete cache of ``kind``; a UserError naming the folder otherwise."""
    cache_dir = Path(cache_dir)
    hint = f"`archlab data prepare {kind} --root ROOT --cache {cache_dir}`"
    if not cache_dir.is_dir():
        raise UserError(f"cache {cache_dir} not found: create it with {hint}")
    path = cache_dir / MANIFEST
    if not path.is_file():
        raise UserError(
            f"cache {cache_dir} is incomplete (no {MANIFEST}: its prepare was interrupted or "
            f"is still running): re-run {hint} to finish it"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cache manifest {path} is unreadable ({e}): re-run {hint}") from None
    if manifest.get("format") != FORMAT:
        raise UserError(
            f"cache {cache_dir} has format {shorten(manifest.get('format'))}, this archlab reads "
            f"{FORMAT}: re-create it with {hint}"
        )
    if manifest.get("kind") != kind:
        raise UserError(f"cache {cache_dir} holds {shorten(manifest.get('kind'))} videos, not {shorten(kind)}")
    return manifest


def cache_size(manifest: dict[str, Any]) -> Resize:
    return parse_size(manifest["size"])


def check_resize(cache_dir: Path, manifest: dict[str, Any], resize: Resize | None, crop: int | Sequence[int]) -> Resize:
    """The cache's frame size, after checking that an explicit ``resize`` agrees with it and
    that the crop fits (a cache cannot be re-sized on the fly)."""
    size = cache_size(manifest)
    if resize is not None:
        same = resize == size or (isinstance(resize, int) and not isinstance(size, int) and min(size) == resize)
        if not same:
            raise UserError(
                f"cache {cache_dir} holds frames resized to {format_size(size)}, not "
                f"{format_size(resize)}: prepare another cache with --size {format_size(resize)}"
            )
    ch, cw = crop_pair(crop)
    small = max(ch, cw) > size if isinstance(size, int) else (ch > size[0] or cw > size[1])
    if small:
        raise UserError(f"crop {ch}x{cw} does not fit in cache {cache_dir} frames ({format_size(size)})")
    return size


def load_frames(cache_dir: Path, key: str) -> np.ndarray:
    """A read-only memory map of one video's frames [T, H, W, 3]: slicing reads only the
    pages a clip touches."""
    path = frames_path(cache_dir, key)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CorruptVideo(path, f"cache file missing or damaged ({e}); re-run `archlab data prepare`") from None
