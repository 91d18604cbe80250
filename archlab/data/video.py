"""Video decoding (PyAV) and the clip sampling every file-backed dataset shares.

One function, ``read_video``, turns a file into uint8 RGB frames ``[T, H, W, 3]`` at a
fixed size. The cache (``cache.py``) stores exactly what it returns and the no-cache path
calls it on every item, so a clip read from the cache is bit-identical to a clip decoded on
the fly with the same sampling (a test checks this).

``VideoClipDataset`` holds a list of videos and does the sampling: which frames (temporal
crops, uniformly spaced, ``clips_per_video`` per video), which pixels (center crop for
evaluation; random crop + horizontal flip for training, seeded per (seed, epoch, item) so
results do not depend on the number of loader workers), and what happens when a video
cannot be read (one warning line naming it, counted in ``skipped``, the next video served
instead; never a crash, never a silent drop). UCF101 and VideoFolder only build the list.

Real UCF101 files are XVID (MPEG-4 Part 2) in AVI, 320x240 at 25 fps; PyAV's bundled
FFmpeg decodes them with its ``mpeg4`` decoder.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserError

log = logging.getLogger("archlab.data")

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm")

# Resize target: an int is the short side (aspect kept), a pair is the exact (height, width).
Resize = int | tuple[int, int]


class CorruptVideo(UserError):
    """A video that cannot be decoded (unreadable, truncated, empty). Datasets and the cache
    catch it and skip the video with a warning; it is a UserError so that, should it ever
    escape, the CLI prints it as one line. ``reason`` is the message without the path (the
    cache manifest stores it next to the video's relative key)."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


# ---- sizes -------------------------------------------------------------------------------

def parse_size(text: str) -> Resize:
    """'128x171' -> (128, 171) exact height x width; '128' -> 128, the short side."""
    parts = text.lower().strip().split("x")
    if not all(p.isdigit() and int(p) > 0 for p in parts) or len(parts) not in (1, 2):
        raise UserError(f"size {text!r} must be HEIGHTxWIDTH (e.g. 128x171) or a short side (e.g. 128)")
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))


def format_size(size: Resize) -> str:
    return str(size) if isinstance(size, int) else f"{size[0]}x{size[1]}"


def target_size(src_hw: tuple[int, int], size: Resize) -> tuple[int, int]:
    """Output (height, width) for a source of ``src_hw``: exact, or short side ``size`` with the
    aspect kept (240x320 at 128 -> 128x171, C3D's UCF101 size)."""
    if not isinstance(size, int):
        return size
    h, w = src_hw
    if h <= w:
        return size, max(1, round(w * size / h))
    return max(1, round(h * size / w)), size


def crop_pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


# ---- decoding ----------------------------------------------------------------------------

# Frame-count headers of healthy files agree with what decodes to within a frame or two
# (XVID "packed B-frames" AVIs carry one placeholder frame); a file cut short loses a large
# part. Fewer frames than header - tolerance is reported as truncated.
def _truncation_tolerance(header_frames: int) -> int:
    return max(2, math.ceil(0.02 * header_frames))


@dataclass(frozen=True)
class VideoInfo:
    """What decoding learnt about a file besides its frames (kept in the cache manifest)."""

    frames: int
    fps: float
    src_height: int
    src_width: int


def read_video(path: str | os.PathLike[str], size: Resize = 128) -> tuple[np.ndarray, VideoInfo]:
    """Decode every frame of ``path`` to RGB at ``size``: uint8 array [T, H, W, 3].

    Raises ``CorruptVideo`` (one line, naming the file) for an empty, unreadable or
    truncated file. Frames are resized by FFmpeg's swscale (bilinear) during colour
    conversion: no extra pass, deterministic, and the same in the cache and on the fly.
    """
    import av  # imported here: the rest of archlab never needs PyAV

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise CorruptVideo(path, "empty file")
    except FileNotFoundError:
        raise CorruptVideo(path, "file not found") from None
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise CorruptVideo(path, f"not a readable video ({_reason(e)})") from None
    frames: list[np.ndarray] = []
    error = ""
    try:
        if not container.streams.video:
            raise CorruptVideo(path, "no video stream")
        stream = container.streams.video[0]
        header = int(stream.frames or 0)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        src_hw = (stream.codec_context.height, stream.codec_context.width)
        if src_hw[0] <= 0 or src_hw[1] <= 0:
            raise CorruptVideo(path, "video stream has no frame size")
        height, width = target_size(src_hw, size)
        try:
            for frame in container.decode(stream):
                frames.append(frame.reformat(width=width, height=height, format="rgb24",
                                             interpolation="BILINEAR").to_ndarray())
        except (av.FFmpegError, OSError, ValueError) as e:
            error = _reason(e)
    finally:
        container.close()
    if header and len(frames) < header - _truncation_tolerance(header):
        what = f"decode error after {len(frames)} of {header} frames ({error})" if error \
            else f"truncated: {len(frames)} of {header} frames decode"
        raise CorruptVideo(path, what)
    if error and not header:
        raise CorruptVideo(path, f"decode error after {len(frames)} frames ({error})")
    if not frames:
        raise CorruptVideo(path, "no frames decode" + (f" ({error})" if error else ""))
    return np.stack(frames), VideoInfo(len(frames), fps, src_hw[0], src_hw[1])


def probe_video(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """(header frame count, height, width) from the container header without decoding, or
    None when the header says nothing useful (used to estimate a cache's size)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return int(stream.frames or 0), stream.codec_context.height, stream.codec_context.width
    except (av.FFmpegError, OSError, IndexError):
        return None


def _reason(e: BaseException) -> str:
    """FFmpeg's message without the errno and the repeated file name."""
    text = getattr(e, "strerror", None) or str(e)
    return str(text).splitlines()[0] if text else type(e).__name__


def write_video(path: str | os.PathLike[str], frames: np.ndarray, fps: int = 25,
                codec: str = "mpeg4", codec_tag: str | None = "XVID", bit_rate: int = 400_000) -> None:
    """Encode uint8 RGB frames [T, H, W, 3] (even H and W). The defaults write what UCF101
    ships: MPEG-4 Part 2 tagged XVID; with a .avi name, the same container. Used to build
    test and benchmark datasets without downloading anything."""
    import av

    t, h, w, c = frames.shape
    if c != 3 or h % 2 or w % 2:
        raise ValueError(f"frames must be [T, H, W, 3] with even H and W, got {frames.shape}")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = bit_rate
        if codec_tag:
            stream.codec_context.codec_tag = codec_tag
        for a in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ---- clip sampling -----------------------------------------------------------------------

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

    def _setup(self, *, videos: list[Video], classes: list[str], train: bool, frames: int,
               size: int | Sequence[int], stride: int, clips_per_video: int, resize: Resize | None,
               cache_dir: Path | None, seed: int, flip: bool | None, name: str,
               skipped: dict[str, str] | None = None) -> None:
        if frames < 1 or stride < 1 or clips_per_video < 1:
            raise UserError(f"frames ({frames}), stride ({stride}) and clips_per_video ({clips_per_video}) "
                            "must be positive")
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
            raise UserError(f"crop {ch}x{cw} does not fit in frames resized to {format_size(resize)}: "
                            "use a smaller size or a larger resize")

    def _warn_skipped(self, skipped: dict[str, str], total: int) -> None:
        names = sorted(skipped)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        log.warning("%s: skipping %d of %d videos that cannot be read (corrupt, truncated, empty or "
                    "missing): %s", self.name, len(names), total, shown)

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
                log.warning("%s: skipping unreadable video (%d skipped so far): %s",
                            self.name, len(self.skipped), e)
                continue
            return self._sample(frames, index, clip), video.label
        raise UserError(f"{self.name}: none of its {len(self.videos)} videos can be read")

    def _frames(self, video: Video) -> np.ndarray:
        """All frames of a video, [T, H, W, 3] uint8: a memory map of the cache, or decoded."""
        if self.cache_dir is None:
            return read_video(video.path, self.resize)[0]
        from .cache import load_frames

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
        out = frames[idx, y:y + ch, x:x + cw]  # copies just these pixels out of the memmap
        if flip:
            out = out[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(out.transpose(3, 0, 1, 2)))
