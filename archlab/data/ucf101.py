"""UCF101, read in the layout it is distributed in (UCF101.rar + the recognition splits zip):

    ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi          13,320 XVID AVIs, 320x240, 25 fps
    ROOT/ucfTrainTestlist/classInd.txt                   "1 ApplyEyeMakeup" (1-based)
    ROOT/ucfTrainTestlist/trainlist0{1,2,3}.txt          "ApplyEyeMakeup/v_..._g08_c01.avi 1"
    ROOT/ucfTrainTestlist/testlist0{1,2,3}.txt           "ApplyEyeMakeup/v_..._g01_c01.avi"

No renaming, no frame extraction, no list conversion: point ``root`` at the unpacked
folders. Test lists carry no label; it comes from the class folder (and a train-list label
that disagrees with its folder is an error, not a guess). The three official splits hold
out different groups (g01-07, g08-14, g15-21), so clips of one actor never straddle
train and test. ``split='val'`` means the official test list: UCF101 has no separate
validation set and every paper reports on the test list.

Training reads ``cache=`` (see ``cache.py``: decode once with ``archlab data prepare``);
without it every item decodes its whole video, fine for a look, far too slow for epochs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..util.errors import UserError, shorten
from .cache import check_resize, open_cache
from .clips import Video, VideoClipDataset
from .video import Resize

VIDEO_DIR = "UCF-101"
LISTS_DIR = "ucfTrainTestlist"
FOLDS = (1, 2, 3)
SPLITS = {"train": "train", "val": "test", "test": "test"}


def list_kind(split: str) -> str:
    """'train' -> 'train'; 'val' and 'test' -> 'test' (the official test list)."""
    if split not in SPLITS:
        raise UserError(f"ucf101 split {shorten(split)} must be one of {', '.join(SPLITS)}")
    return SPLITS[split]


def split_path(lists_dir: Path, split: str, fold: int) -> Path:
    if fold not in FOLDS:
        raise UserError(f"ucf101 split number {shorten(fold)} must be 1, 2 or 3")
    return lists_dir / f"{list_kind(split)}list{fold:02d}.txt"


def _lines(path: Path, what: str) -> list[tuple[int, str]]:
    if not path.is_file():
        raise UserError(f"UCF101 {what} {path} not found (it ships in UCF101TrainTestSplits-RecognitionTask.zip)")
    text = path.read_text(encoding="utf-8", errors="replace")  # the official files end lines in CRLF
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_class_index(lists_dir: Path) -> list[str]:
    """Class names in classInd.txt order (label i is line 'i+1 Name')."""
    path = lists_dir / "classInd.txt"
    names: dict[int, str] = {}
    for lineno, line in _lines(path, "class index"):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UserError(f"{path}:{lineno}: expected 'INDEX ClassName', got {shorten(line)}")
        names[int(parts[0])] = parts[1]
    if not names or sorted(names) != list(range(1, len(names) + 1)):
        raise UserError(f"{path}: class indices must run 1..N without gaps")
    return [names[i] for i in range(1, len(names) + 1)]


def read_split(lists_dir: Path, split: str, fold: int, all_classes: list[str]) -> list[tuple[str, int]]:
    """(key 'Class/v_Class_gXX_cYY.avi', 0-based classInd label) for each line of a split list.
    The label is the class folder's; a train-list label must agree with it."""
    path = split_path(lists_dir, split, fold)
    by_name = {c.lower(): i for i, c in enumerate(all_classes)}
    out = []
    for lineno, line in _lines(path, "split file"):
        parts = line.split()
        key = parts[0].replace("\\", "/")
        if len(parts) > 2 or key.count("/") != 1:
            raise UserError(f"{path}:{lineno}: expected 'Class/v_Class_gXX_cYY.avi [label]', got {shorten(line)}")
        folder = key.split("/")[0]
        label = by_name.get(folder.lower())
        if label is None:
            raise UserError(f"{path}:{lineno}: class {shorten(folder)} is not in classInd.txt")
        if len(parts) == 2 and (not parts[1].isdigit() or int(parts[1]) != label + 1):
            raise UserError(
                f"{path}:{lineno}: label {parts[1]} disagrees with folder {shorten(folder)}, "
                f"class {label + 1} in classInd.txt"
            )
        out.append((key, label))
    return out


def select_classes(all_classes: list[str], classes: int | str | Sequence[str] | None) -> list[str]:
    """The classes to keep, in label order: all; the first K of classInd.txt; or the names given
    (a list, or one comma-separated string), in the order given."""
    if classes is None:
        return list(all_classes)
    if isinstance(classes, int):
        if not 1 <= classes <= len(all_classes):
            raise UserError(f"classes={classes}: UCF101 has {len(all_classes)} classes")
        return all_classes[:classes]
    names = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else list(classes)
    by_name = {c.lower(): c for c in all_classes}
    unknown = [n for n in names if n.lower() not in by_name]
    if unknown:
        raise UserError(
            f"unknown UCF101 class(es) {', '.join(map(repr, unknown))} "
            f"(classInd.txt has e.g. {', '.join(all_classes[:3])})"
        )
    chosen = [by_name[n.lower()] for n in names]
    if len(set(chosen)) != len(chosen):
        raise UserError(f"classes {names} names a class twice")
    return chosen


def list_videos(
    root: str | os.PathLike[str], split: str, fold: int, classes: int | str | Sequence[str] | None = None
) -> tuple[list[str], list[tuple[str, int]]]:
    """(kept class names, [(key, label among the kept classes)]) from ROOT/ucfTrainTestlist."""
    lists_dir = Path(root) / LISTS_DIR
    all_classes = read_class_index(lists_dir)
    chosen = select_classes(all_classes, classes)
    relabel = {all_classes.index(c): j for j, c in enumerate(chosen)}
    entries = [
        (key, relabel[label]) for key, label in read_split(lists_dir, split, fold, all_classes) if label in relabel
    ]
    return chosen, entries


def locate_videos(
    root: str | os.PathLike[str], classes: list[str], keys: list[str]
) -> tuple[dict[str, Path], dict[str, str]]:
    """Map list keys to files under ROOT/UCF-101 ({key: path}, {missing or empty key: reason}).

    A missing UCF-101/ or class folder is a UserError naming it (wrong root, partial unpack).
    Names match case-insensitively: the lists and the files of UCF101 disagree in case for
    some classes (HandstandPushups/v_HandStandPushups_...), and case-sensitive file systems
    would otherwise lose them.
    """
    root = Path(root)
    video_root = root / VIDEO_DIR
    if not video_root.is_dir():
        raise UserError(f"UCF101 video folder {video_root} not found (unpack UCF101.rar into {root})")
    folders = {p.name.lower(): p for p in video_root.iterdir() if p.is_dir()}
    files: dict[str, dict[str, Path]] = {}
    for c in classes:
        folder = folders.get(c.lower())
        if folder is None:
            raise UserError(f"UCF101 class folder {video_root / c} not found")
        files[c.lower()] = {p.name.lower(): p for p in folder.iterdir()}
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for key in keys:
        folder, name = key.split("/")
        path = files.get(folder.lower(), {}).get(name.lower())
        if path is None:
            missing[key] = "file not found"
        elif path.stat().st_size == 0:  # known unreadable without opening it: dropped up front
            missing[key] = "empty file"
        else:
            found[key] = path
    return found, missing


class UCF101(VideoClipDataset):
    """UCF101 clips ``(uint8 [3, frames, H, W], label)``; ``.classes`` in label order.

    split: 'train', or 'val'/'test' (the official test list) of official split ``fold``
    (1-3). classes: all 101, the first K, or a list of names (labels follow that order).
    frames / stride: frames per clip and the step between them (a video shorter than the
    clip loops). clips_per_video: temporal crops per video, uniformly spaced (evaluation)
    or one random start per equal segment (training). size: crop (int or (h, w)): center for
    evaluation, random + horizontal flip for training (seeded by seed, epoch and item).
    resize: frame size before cropping when decoding (default short side 128, 128x171 for
    UCF101's 320x240); a cache keeps the size it was prepared at. cache: a folder written by
    ``archlab data prepare ucf101`` (then ``root`` is not read at all).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        fold: int = 1,
        frames: int = 16,
        size: int | Sequence[int] = 112,
        stride: int = 1,
        clips_per_video: int = 1,
        resize: Resize | None = None,
        classes: int | str | Sequence[str] | None = None,
        cache: str | os.PathLike[str] | None = None,
        seed: int = 0,
        flip: bool | None = None,
    ):
        kind = list_kind(split)
        if fold not in FOLDS:
            raise UserError(f"ucf101 split number {shorten(fold)} must be 1, 2 or 3")
        name = f"ucf101 {split} (split {fold})"
        cache_dir = Path(cache) if cache is not None else None
        if cache_dir is not None:
            manifest = open_cache(cache_dir, "ucf101")
            resize = check_resize(cache_dir, manifest, resize, size)
            chosen, entries = list_videos(cache_dir, split, fold, classes)
            done, corrupt = manifest["videos"], manifest["corrupt"]
            absent = [k for k, _ in entries if k not in done and k not in corrupt]
            if absent:
                raise UserError(
                    f"cache {cache_dir} lacks {len(absent)} videos of {kind}list{fold:02d}.txt "
                    f"(e.g. {absent[0]}): re-run `archlab data prepare ucf101 --cache {cache_dir} "
                    f"--root ROOT` without --split/--classes"
                )
            videos = [Video(k, "", label) for k, label in entries if k in done]
            skipped = {k: corrupt[k] for k, _ in entries if k in corrupt}
        else:
            if root is None:
                raise UserError("ucf101 needs root= (the folder holding UCF-101/ and ucfTrainTestlist/) or cache=")
            if not Path(root).is_dir():
                raise UserError(f"UCF101 root {root} not found")
            chosen, entries = list_videos(root, split, fold, classes)
            found, skipped = locate_videos(root, chosen, [k for k, _ in entries])
            videos = [Video(k, str(found[k]), label) for k, label in entries if k in found]
        self.fold = fold
        self._setup(
            videos=videos,
            classes=chosen,
            train=kind == "train",
            frames=frames,
            size=size,
            stride=stride,
            clips_per_video=clips_per_video,
            resize=resize,
            cache_dir=cache_dir,
            seed=seed,
            flip=flip,
            name=name,
            skipped=skipped,
        )


__all__ = ["UCF101", "list_videos", "locate_videos", "read_class_index", "read_split", "select_classes"]
