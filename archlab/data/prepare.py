"""``archlab data prepare``: decode a dataset's videos once into a cache (see ``cache.py`` for
the layout and the guarantees: atomic per-video files, the manifest written last, one
prepare per cache at a time, resumable after any interruption).

The writer side of the cache: it lists videos with the datasets' own readers (``ucf101``,
``folder``) and decodes them with ``video.read_video``; nothing it imports imports it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..util.errors import UserError
from ..util.files import PARTIAL, FileLock, atomic_write
from .cache import CONFIG, FORMAT, MANIFEST, VIDEOS, frames_path, load_frames
from .folder import scan_folder
from .ucf101 import FOLDS, LISTS_DIR, list_videos, locate_videos
from .video import CorruptVideo, Resize, format_size, probe_video, read_video, target_size

DEFAULT_SIZE: dict[str, Resize] = {"ucf101": (128, 171), "folder": 128}


@dataclass
class PrepareSummary:
    """What one ``prepare`` run did (the CLI prints it)."""

    cache: Path
    total: int  # videos the cache is asked to hold
    decoded: int  # decoded and written by this run
    already_done: int  # found complete in the cache and skipped
    corrupt: dict[str, str] = field(default_factory=dict)  # key -> reason (not cached)
    frames: int = 0  # frames written by this run
    bytes_written: int = 0
    seconds: float = 0.0


def _save_frames(path: Path, frames: np.ndarray) -> int:
    """np.save under a temporary name, then rename: a .npy with its final name is whole."""
    atomic_write(path, lambda f: np.save(f, frames, allow_pickle=False))
    return path.stat().st_size


def _decode_job(job: tuple[str, str, str, Resize]) -> tuple[str, dict[str, Any] | None, str | None, int]:
    """Decode one video into the cache (runs in a worker process): (key, info, reason, bytes)."""
    key, src, cache_dir, size = job
    try:
        frames, info = read_video(src, size)
    except CorruptVideo as e:
        return key, None, e.reason, 0
    nbytes = _save_frames(frames_path(Path(cache_dir), key), frames)
    t, h, w, _ = frames.shape
    return (
        key,
        {
            "frames": t,
            "height": h,
            "width": w,
            "fps": round(info.fps, 3),
            "src_height": info.src_height,
            "src_width": info.src_width,
        },
        None,
        nbytes,
    )


def estimate_bytes(sources: Sequence[Path], size: Resize, sample: int = 24) -> int:
    """Bytes the frames of ``sources`` will take, from the headers of an evenly spread sample."""
    if not sources:
        return 0
    step = max(1, len(sources) // sample)
    per_video = []
    for src in list(sources)[::step][:sample]:
        probed = probe_video(src)
        if probed and probed[0] > 0:
            n, h, w = probed
            th, tw = target_size((h, w), size)
            per_video.append(n * th * tw * 3)
    return int(np.mean(per_video) * len(sources)) if per_video else 0


def _run_jobs(
    jobs: list[tuple[str, str, str, Resize]], workers: int
) -> Iterator[tuple[str, dict | None, str | None, int]]:
    if workers <= 1:
        for job in jobs:
            yield _decode_job(job)
        return
    # spawn, not fork: the parent may hold torch's thread pools, which do not survive fork.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        try:
            yield from pool.imap_unordered(_decode_job, jobs, chunksize=1)
        except BaseException:
            pool.terminate()
            raise


def prepare(
    sources: dict[str, Path],
    cache_dir: str | os.PathLike[str],
    kind: str,
    size: Resize,
    *,
    unreadable: dict[str, str] | None = None,
    copy: dict[str, Path] | None = None,
    extra: dict[str, Any] | None = None,
    workers: int = 1,
    progress: bool = True,
    on_start: Callable[[int, int, int, int], None] | None = None,
) -> PrepareSummary:
    """Decode ``sources`` ({key: video file}) into ``cache_dir``, skipping videos already there.

    unreadable: keys known to be missing up front, with the reason (recorded as corrupt).
    copy: {path inside the cache: file} copied in (split lists). extra: manifest fields.
    on_start(to_decode, already_done, estimated_bytes, free_bytes) is called before decoding.
    Safe to interrupt at any point and re-run.
    """
    from tqdm import tqdm

    cache_dir = Path(cache_dir)
    size_text = format_size(size)
    t0 = time.perf_counter()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create cache folder {cache_dir}: {e.strerror}") from None
    with FileLock(
        cache_dir / ".lock",
        busy=f"cache {cache_dir} is being written by another `archlab data prepare` (pid {{{{pid}}}})",
    ):
        config_path = cache_dir / CONFIG
        if config_path.is_file():
            config = _read_json(config_path) or {}
            if (config.get("format"), config.get("kind"), config.get("size")) != (FORMAT, kind, size_text):
                raise UserError(
                    f"cache {cache_dir} was started as {config.get('kind')} at {config.get('size')} "
                    f"(format {config.get('format')}): use another --cache for {kind} at {size_text}"
                )
        else:
            atomic_write(config_path, json.dumps({"format": FORMAT, "kind": kind, "size": size_text}))
        manifest_path = cache_dir / MANIFEST
        old: dict[str, Any] = _read_json(manifest_path) or {}  # the .npy files are the truth
        if manifest_path.is_file():
            manifest_path.unlink()  # from here until the end, the cache reads as incomplete
        for partial in (cache_dir / VIDEOS).rglob(f"*{PARTIAL}*"):
            partial.unlink()  # left by an interrupted run (the lock says none is running)
        for rel, src in (copy or {}).items():
            atomic_write(cache_dir / rel, Path(src).read_bytes())

        todo = [k for k in sources if not _is_whole(cache_dir, k)]
        todo_set = set(todo)
        already = [k for k in sources if k not in todo_set]
        need = estimate_bytes([sources[k] for k in todo], size)
        free = shutil.disk_usage(cache_dir).free
        if on_start:
            on_start(len(todo), len(already), need, free)
        if need > 0.95 * free:
            raise UserError(
                f"cache {cache_dir} needs about {need / 1e9:.1f} GB more and its disk has "
                f"{free / 1e9:.1f} GB free: choose a smaller --size or another --cache"
            )

        summary = PrepareSummary(
            cache=cache_dir,
            total=len(sources) + len(unreadable or {}),
            decoded=0,
            already_done=len(already),
            corrupt=dict(unreadable or {}),
        )
        videos: dict[str, Any] = {}
        jobs = [(k, str(sources[k]), str(cache_dir), size) for k in todo]
        bar = tqdm(
            total=len(jobs),
            desc=f"prepare {kind}",
            unit="video",
            file=sys.stderr,
            disable=None if progress else True,
            dynamic_ncols=True,
        )
        try:
            for key, info, reason, nbytes in _run_jobs(jobs, workers):
                if info is None:
                    summary.corrupt[key] = reason or "unreadable"
                    bar.set_postfix(corrupt=len(summary.corrupt) - len(unreadable or {}))
                else:
                    videos[key] = info
                    summary.decoded += 1
                    summary.frames += info["frames"]
                    summary.bytes_written += nbytes
                bar.update()
        finally:
            bar.close()

        # The manifest: this run's videos, the ones done before, and entries of earlier runs
        # for other videos (another split or class subset) whose files are still there.
        old_videos: dict[str, Any] = old.get("videos", {})
        for key in already:
            videos[key] = old_videos.get(key) or _info_from_file(cache_dir, key)
        for key, info in old_videos.items():
            if key not in videos and key not in summary.corrupt and frames_path(cache_dir, key).is_file():
                videos[key] = info
        corrupt = {k: r for k, r in old.get("corrupt", {}).items() if k not in sources and k not in videos}
        corrupt.update(summary.corrupt)
        manifest = {
            "format": FORMAT,
            "kind": kind,
            "size": size_text,
            **(extra or {}),
            "videos": dict(sorted(videos.items())),
            "corrupt": dict(sorted(corrupt.items())),
        }
        atomic_write(manifest_path, json.dumps(manifest, indent=1), fsync=True)
    summary.seconds = time.perf_counter() - t0
    return summary


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return {}


def _is_whole(cache_dir: Path, key: str) -> bool:
    """A video's .npy exists and is as long as its header says (a file damaged after it was
    written is decoded again; opening the header costs microseconds, not a decode)."""
    if not frames_path(cache_dir, key).is_file():
        return False
    try:
        load_frames(cache_dir, key)
        return True
    except CorruptVideo:
        return False


def _info_from_file(cache_dir: Path, key: str) -> dict[str, Any]:
    t, h, w, _ = load_frames(cache_dir, key).shape
    return {"frames": t, "height": h, "width": w}


def prepare_ucf101(
    root: str | os.PathLike[str],
    cache: str | os.PathLike[str],
    *,
    size: Resize | None = None,
    split: int | None = None,
    classes: int | str | Sequence[str] | None = None,
    workers: int = 1,
    progress: bool = True,
    on_start: Callable[[int, int, int, int], None] | None = None,
) -> PrepareSummary:
    """Cache UCF101's videos: those of official split ``split`` (train + test lists), or of
    all three (every video) by default; optionally only some classes."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"UCF101 root {root} not found")
    keys: dict[str, None] = {}
    chosen: list[str] = []
    for fold in (split,) if split is not None else FOLDS:
        for which in ("train", "test"):
            chosen, entries = list_videos(root, which, fold, classes)
            keys.update((k, None) for k, _ in entries)
    found, missing = locate_videos(root, chosen, list(keys))
    lists = root / LISTS_DIR
    copy = {f"{LISTS_DIR}/{p.name}": p for p in sorted(lists.glob("*.txt"))}
    return prepare(
        found,
        cache,
        "ucf101",
        size or DEFAULT_SIZE["ucf101"],
        unreadable=missing,
        copy=copy,
        workers=workers,
        progress=progress,
        on_start=on_start,
    )


def prepare_folder(
    root: str | os.PathLike[str],
    cache: str | os.PathLike[str],
    *,
    size: Resize | None = None,
    workers: int = 1,
    progress: bool = True,
    on_start: Callable[[int, int, int, int], None] | None = None,
) -> PrepareSummary:
    """Cache every video of a class-per-folder tree (both sides of any train/val split)."""
    classes, found = scan_folder(root)
    return prepare(
        found,
        cache,
        "folder",
        size or DEFAULT_SIZE["folder"],
        extra={"classes": classes},
        workers=workers,
        progress=progress,
        on_start=on_start,
    )


PREPARERS: dict[str, Callable[..., PrepareSummary]] = {"ucf101": prepare_ucf101, "folder": prepare_folder}
