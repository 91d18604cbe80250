"""The clip sampling every file-backed dataset shares: ``VideoClipDataset``.

It holds a list of videos and does the sampling: which frames (temporal crops, uniformly
spaced, ``clips_per_video`` per video), which pixels (center crop for evaluation; random crop
+ horizontal flip for training, seeded per (seed, epoch, item) so results do not depend on
the number of loader workers), and what happens when a video cannot be read (one warning line
naming it, counted in ``skipped``, the next video served instead; never a crash, never a
silent drop). Frames come decoded on the fly (``video.read_video``) or memory-mapped from a
cache (``cache.load_frames``); UCF101 and VideoFolder only build the list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..util.errors import UserError
from .cache import load_frames
from .video import CorruptVideo, Resize, crop_pair, format_size, read_video

log = logging.getLogger("archlab.data")


def clip_starts(n_frames: int, span: int, clips: int, rng: np.random.Generator | None) -> list[int]:
    """First frame of each of ``clips`` temporal crops of ``span`` frames in a video of
    ``n_frames``. Evaluation (rng None): uniformly spaced from the first to the last possible
    start (one clip: the centre one). Training: one random start inside each of ``clips``
    equal segments of the possible starts, so the clips still cover the whole video."""
    last = max(n_frames - span, 0)  # starts 0..last are all possible
    if rng is None:
        if clips == 1:
            return [last // 2]
        return [round(k * last / (clips - 1)) for k in range(clips)]
    starts = []
    for k in range(clips):
        lo = (k * (last + 1)) // clips
        hi = max(((k + 1) * (last + 1)) // clips - 1, lo)
        starts.append(int(rng.integers(lo, hi + 1)))
    return starts


def frame_indices(n_frames: int, start: int, frames: int, stride: int) -> np.ndarray:
    """``frames`` indices from ``start`` every ``stride``; a video shorter than the clip loops."""
    return (start + np.arange(frames) * stride) % n_frames


@dataclass(frozen=True)
class Video:
    """One video of a dataset: where it is, its label, and its key (path relative to the
    dataset's video root, '/'-separated) which also names it in the cache."""

    key: str
    path: str
    label: int


class VideoClipDataset(Dataset):
    """Clips ``(uint8 [3, T, H, W], label)`` from a list of videos, decoded or from a cache.

    Item ``i`` is clip ``i % clips_per_video`` of video ``i // clips_per_video``. Subclasses
    build ``videos`` and ``classes`` and call ``_setup``. ``set_epoch(e)`` changes the random
    crops of a training set between epochs (DataLoader workers that are not persistent get
    the new value, since they copy the dataset at the start of each epoch).
    """

    classes: list[str]
    videos: list[Video]

    def _setup(
        self,
        *,
        videos: list[Video],
        classes: list[str],
        train: bool,
        frames: int,
        size: int | Sequence[int],
        stride: int,
        clips_per_video: int,
        resize: Resize | None,
        cache_dir: Path | None,
        seed: int,
        flip: bool | None,
        name: str,
        skipped: dict[str, str] | None = None,
    ) -> None:
        if frames < 1 or stride < 1 or clips_per_video < 1:
            raise UserError(
                f"frames ({frames}), stride ({stride}) and clips_per_video ({clips_per_video}) must be positive"
            )
        self.name = name
        self.classes = list(classes)
        self.train = train
        self.frames = int(frames)
        self.stride = int(stride)
        self.clips_per_video = int(clips_per_video)
        self.crop = crop_pair(size)
        self.seed = int(seed)
        self.flip = train if flip is None else bool(flip)
        self.epoch = 0
        self.cache_dir = cache_dir
        # Decoding resizes to this; with a cache it is the size the cache was prepared at.
        self.resize: Resize = 128 if resize is None else resize
        self._check_crop_fits(self.resize)
        # Videos that cannot be read, key -> reason. Those known up front (missing, empty,
        # marked corrupt in the cache) are dropped from ``videos`` here with one warning;
        # the ones found while loading are added per process as they are met.
        self.skipped: dict[str, str] = dict(skipped or {})
        self.videos = videos
        if self.skipped:
            self._warn_skipped(self.skipped, len(videos) + len(self.skipped))
        if not self.videos:
            raise UserError(f"{name}: no readable videos")

    def _check_crop_fits(self, resize: Resize) -> None:
        ch, cw = self.crop
        if isinstance(resize, int):
            ok = max(ch, cw) <= resize
        else:
            ok = ch <= resize[0] and cw <= resize[1]
        if not ok:
            raise UserError(
                f"crop {ch}x{cw} does not fit in frames resized to {format_size(resize)}: "
                "use a smaller size or a larger resize"
            )

    def _warn_skipped(self, skipped: dict[str, str], total: int) -> None:
        names = sorted(skipped)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        log.warning(
            "%s: skipping %d of %d videos that cannot be read (corrupt, truncated, empty or missing): %s",
            self.name,
            len(names),
            total,
            shown,
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos) * self.clips_per_video

    @property
    def labels(self) -> list[int]:
        """Label of every item, in item order (class balance, samplers), without decoding."""
        return [v.label for v in self.videos for _ in range(self.clips_per_video)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        vi, clip = divmod(index, self.clips_per_video)
        # A video that turns out unreadable is skipped for the next one (with a warning).
        for step in range(len(self.videos)):
            video = self.videos[(vi + step) % len(self.videos)]
            if video.key in self.skipped:
                continue
            try:
                frames = self._frames(video)
            except CorruptVideo as e:
                self.skipped[video.key] = str(e)
                log.warning("%s: skipping unreadable video (%d skipped so far): %s", self.name, len(self.skipped), e)
                continue
            return self._sample(frames, index, clip), video.label
        raise UserError(f"{self.name}: none of its {len(self.videos)} videos can be read")

    def _frames(self, video: Video) -> np.ndarray:
        """All frames of a video, [T, H, W, 3] uint8: a memory map of the cache, or decoded."""
        if self.cache_dir is None:
            return read_video(video.path, self.resize)[0]
        return load_frames(self.cache_dir, video.key)

    def _sample(self, frames: np.ndarray, index: int, clip: int) -> torch.Tensor:
        """The clip's frames and pixels, as one gather from the (memory-mapped) array."""
        n, h, w, _ = frames.shape
        ch, cw = self.crop
        if ch > h or cw > w:
            raise UserError(f"{self.name}: crop {ch}x{cw} is larger than its frames ({h}x{w})")
        span = (self.frames - 1) * self.stride + 1
        rng = np.random.default_rng((self.seed, self.epoch, index)) if self.train else None
        start = clip_starts(n, span, self.clips_per_video, rng)[clip]
        idx = frame_indices(n, start, self.frames, self.stride)
        if rng is None:
            y, x, flip = (h - ch) // 2, (w - cw) // 2, False
        else:
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            flip = self.flip and bool(rng.integers(0, 2))
        out = frames[idx, y : y + ch, x : x + cw]  # copies just these pixels out of the memmap
        if flip:
            out = out[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(out.transpose(3, 0, 1, 2)))
