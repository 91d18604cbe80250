"""Video decoding (PyAV): a file -> uint8 RGB frames, and the sizes they are decoded at.

One function, ``read_video``, turns a file into uint8 RGB frames ``[T, H, W, 3]`` at a
fixed size. The cache (``cache.py``) stores exactly what it returns and the no-cache path
calls it on every item, so a clip read from the cache is bit-identical to a clip decoded on
the fly with the same sampling (a test checks this).

The sampling of clips out of those frames lives in ``clips.py`` (``VideoClipDataset``).

Real UCF101 files are XVID (MPEG-4 Part 2) in AVI, 320x240 at 25 fps; PyAV's bundled
FFmpeg decodes them with its ``mpeg4`` decoder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..util.errors import UserError, shorten

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


def parse_size(text: str) -> Resize:
    """'128x171' -> (128, 171) exact height x width; '128' -> 128, the short side."""
    parts = text.lower().strip().split("x")
    if not all(p.isdigit() and int(p) > 0 for p in parts) or len(parts) not in (1, 2):
        raise UserError(f"size {shorten(text)} must be HEIGHTxWIDTH (e.g. 128x171) or a short side (e.g. 128)")
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
                frames.append(
                    frame.reformat(width=width, height=height, format="rgb24", interpolation="BILINEAR").to_ndarray()
                )
        except (av.FFmpegError, OSError, ValueError) as e:
            error = _reason(e)
    finally:
        container.close()
    if header and len(frames) < header - _truncation_tolerance(header):
        what = (
            f"decode error after {len(frames)} of {header} frames ({error})"
            if error
            else f"truncated: {len(frames)} of {header} frames decode"
        )
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


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: int = 25,
    codec: str = "mpeg4",
    codec_tag: str | None = "XVID",
    bit_rate: int = 400_000,
) -> None:
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
