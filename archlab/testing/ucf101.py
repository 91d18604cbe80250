"""A tiny UCF101-shaped tree of real XVID AVIs plus the official split-list format: the
fixture of the UCF101, cache and loading tests and benchmarks (no download)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.ucf101 import FOLDS, LISTS_DIR, VIDEO_DIR
from ..data.video import write_video


def write_tiny_ucf101(
    root: str | os.PathLike[str],
    classes: Sequence[str] = ("ApplyEyeMakeup", "Archery", "Basketball"),
    groups: int = 3,
    clips: int = 2,
    frames: int = 16,
    size: tuple[int, int] = (60, 80),
    seed: int = 0,
) -> Path:
    """Write a UCF101-shaped tree of real XVID AVIs (as in UCF101.rar) plus the split lists.

    Group g is the test group of split g (mod 3), as the official splits hold out groups.
    Each class is a bright square moving in its own direction and colour over a noisy
    background, so a network can learn it. Takes about a second at the default size.
    """
    root = Path(root)
    lists = root / LISTS_DIR
    lists.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    keys: list[tuple[int, int, str]] = []  # (class 1-based, group, key)
    for ci, c in enumerate(classes):
        (root / VIDEO_DIR / c).mkdir(parents=True, exist_ok=True)
        angle = 2 * np.pi * ci / max(len(classes), 1)
        colour = np.array([255 * (ci % 3 == k) for k in range(3)], dtype=np.uint8) | 64
        for g in range(1, groups + 1):
            for k in range(1, clips + 1):
                video = rng.integers(0, 48, (frames, h, w, 3), dtype=np.uint8) + 16 * g
                y0, x0 = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4)
                for t in range(frames):
                    y = int(y0 + 2 * t * np.sin(angle)) % (h - 8)
                    x = int(x0 + 2 * t * np.cos(angle)) % (w - 8)
                    video[t, y : y + 8, x : x + 8] = colour
                key = f"{c}/v_{c}_g{g:02d}_c{k:02d}.avi"
                write_video(root / VIDEO_DIR / key, video)
                keys.append((ci + 1, g, key))
    crlf = "\r\n"
    (lists / "classInd.txt").write_bytes(crlf.join(f"{i} {c}" for i, c in enumerate(classes, 1)).encode() + b"\r\n")
    for fold in FOLDS:
        test_group = (fold - 1) % groups + 1
        train = [f"{key} {ci}" for ci, g, key in keys if g != test_group]
        test = [key for _ci, g, key in keys if g == test_group]
        (lists / f"trainlist{fold:02d}.txt").write_bytes((crlf.join(train) + crlf).encode())
        (lists / f"testlist{fold:02d}.txt").write_bytes((crlf.join(test) + crlf).encode())
    return root
