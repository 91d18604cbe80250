"""The frame cache: round trip, corrupt videos, interruption, resume, and `archlab data prepare`."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import archlab.data.prepare as cache_mod
from archlab.cli import main
from archlab.data.cache import load_frames, open_cache
from archlab.data.folder import VideoFolder
from archlab.data.prepare import prepare_folder, prepare_ucf101
from archlab.data.ucf101 import UCF101
from archlab.data.video import read_video, write_video
from archlab.testing.ucf101 import write_tiny_ucf101
from archlab.util.errors import UserError

CLASSES = ["ApplyEyeMakeup", "Archery", "Basketball"]
CORRUPT = "Archery/v_Archery_g02_c02.avi"  # random bytes: trainlist01, trainlist03, testlist02
TRUNCATED = "Basketball/v_Basketball_g01_c01.avi"  # 60% of the file: testlist01, trainlist02/03
SIZE = (60, 80)


@pytest.fixture(scope="session")
def ucf(tmp_path_factory) -> Path:
    root = write_tiny_ucf101(tmp_path_factory.mktemp("ucf"), CLASSES, groups=3, clips=2, frames=16, size=(60, 80))
    (root / "UCF-101" / CORRUPT).write_bytes(np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes())
    data = (root / "UCF-101" / TRUNCATED).read_bytes()
    (root / "UCF-101" / TRUNCATED).write_bytes(data[: int(len(data) * 0.6)])
    return root


@pytest.fixture(scope="session")
def prepared(ucf, tmp_path_factory):
    """(cache folder, summary of the run that wrote it)."""
    cache = tmp_path_factory.mktemp("cache") / "ucf101"
    return cache, prepare_ucf101(ucf, cache, size=SIZE, workers=1, progress=False)


def test_prepare_summary_counts_done_and_corrupt(prepared):
    cache, s = prepared
    assert (s.total, s.decoded, s.already_done) == (18, 16, 0)
    assert set(s.corrupt) == {CORRUPT, TRUNCATED}
    assert "not a readable video" in s.corrupt[CORRUPT] and "truncated" in s.corrupt[TRUNCATED]
    assert s.frames == 16 * 16 and s.bytes_written > 16 * 16 * 60 * 80 * 3
    manifest = open_cache(cache, "ucf101")
    assert manifest["size"] == "60x80" and len(manifest["videos"]) == 16
    assert manifest["videos"]["Archery/v_Archery_g01_c01.avi"] == {
        "frames": 16,
        "height": 60,
        "width": 80,
        "fps": 25.0,
        "src_height": 60,
        "src_width": 80,
    }
    assert set(manifest["corrupt"]) == {CORRUPT, TRUNCATED}
    assert str(cache.parent) not in (cache / "manifest.json").read_text()  # relative keys only
    assert sorted(p.name for p in (cache / "ucfTrainTestlist").iterdir())[0] == "classInd.txt"


def test_cached_frames_equal_decoded_frames(ucf, prepared):
    cache, _ = prepared
    for key in ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "Basketball/v_Basketball_g03_c02.avi"]:
        frames = load_frames(cache, key)
        assert isinstance(frames, np.memmap) and frames.dtype == np.uint8 and frames.shape == (16, 60, 80, 3)
        assert np.array_equal(frames, read_video(ucf / "UCF-101" / key, SIZE)[0])


@pytest.mark.parametrize("split", ["train", "val"])
def test_clips_from_cache_equal_clips_decoded(ucf, prepared, split):
    cache, _ = prepared
    opts = dict(
        fold=1, classes=["ApplyEyeMakeup", "Archery"], frames=6, stride=2, clips_per_video=2, size=(48, 64), seed=3
    )
    decoded = UCF101(ucf, split, resize=SIZE, **opts)
    cached = UCF101(None, split, cache=cache, **opts)
    # the corrupt video is known up front from the cache, met while loading when decoding
    keys = [v.key for v in decoded.videos if v.key != CORRUPT]
    assert [v.key for v in cached.videos] == keys
    for epoch in (0, 1):
        decoded.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i, key in enumerate(keys):
            j = next(j for j, v in enumerate(decoded.videos) if v.key == key)
            for clip in range(2):
                a, la = cached[i * 2 + clip]
                b, lb = (
                    decoded._sample(read_video(decoded.videos[j].path, SIZE)[0], i * 2 + clip, clip),
                    decoded.videos[j].label,
                )
                assert la == lb and a.dtype == torch.uint8 and a.shape == (3, 6, 48, 64)
                assert torch.equal(a, b), (split, epoch, key, clip)


def test_same_items_with_or_without_cache_when_nothing_is_corrupt(ucf, prepared):
    cache, _ = prepared
    opts = dict(fold=3, frames=8, size=40, clips_per_video=3)  # testlist03 has no damaged file
    decoded, cached = UCF101(ucf, "val", resize=SIZE, **opts), UCF101(ucf, "val", cache=cache, **opts)
    assert len(decoded) == len(cached) == 18
    assert all(torch.equal(decoded[i][0], cached[i][0]) and decoded[i][1] == cached[i][1] for i in range(18))


def test_cached_dataset_warns_once_about_corrupt_videos(prepared, caplog):
    cache, _ = prepared
    with caplog.at_level(logging.WARNING, logger="archlab.data"):
        ds = UCF101(None, "train", fold=3, frames=4, size=32, cache=cache)  # trainlist03 holds both
    assert [r.getMessage() for r in caplog.records] == [
        f"ucf101 train (split 3): skipping 2 of 12 videos that cannot be read (corrupt, truncated, empty or "
        f"missing): {CORRUPT}, {TRUNCATED}"
    ]
    assert set(ds.skipped) == {CORRUPT, TRUNCATED} and len(ds) == 10
    batches = list(DataLoader(ds, batch_size=5, num_workers=2))
    assert [tuple(x.shape) for x, _ in batches] == [(5, 3, 4, 32, 32)] * 2


def test_rerun_skips_done_videos(ucf, prepared):
    cache, _ = prepared
    npy = cache / "videos" / "Archery" / "v_Archery_g01_c01.avi.npy"
    before = npy.stat().st_mtime_ns
    s = prepare_ucf101(ucf, cache, size=SIZE, progress=False)
    assert (s.decoded, s.already_done, set(s.corrupt)) == (0, 16, {CORRUPT, TRUNCATED})
    assert npy.stat().st_mtime_ns == before
    assert len(open_cache(cache, "ucf101")["videos"]) == 16


def test_interrupted_prepare_is_not_read_as_complete_and_resumes(ucf, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    real = cache_mod._decode_job
    calls = []

    def interrupt_after_three(job):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(job[0])
        return real(job)

    monkeypatch.setattr(cache_mod, "_decode_job", interrupt_after_three)
    with pytest.raises(KeyboardInterrupt):
        prepare_ucf101(ucf, cache, size=SIZE, progress=False)
    assert not (cache / "manifest.json").exists()
    assert len(list((cache / "videos").rglob("*.npy"))) == 3
    with pytest.raises(UserError, match=r"cache .* is incomplete .*re-run `archlab data prepare ucf101"):
        UCF101(ucf, "train", cache=cache)
    monkeypatch.setattr(cache_mod, "_decode_job", real)
    s = prepare_ucf101(ucf, cache, size=SIZE, progress=False)
    assert (s.already_done, s.decoded, len(s.corrupt)) == (3, 13, 2)
    assert len(UCF101(ucf, "train", cache=cache, frames=4, size=32)) == 11


def test_a_write_cut_short_leaves_no_file_under_the_final_name(ucf, tmp_path, monkeypatch):
    cache = tmp_path / "c"

    def save_half_then_die(f, arr, allow_pickle=False):
        f.write(b"\x93NUMPY" + b"\0" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod.np, "save", save_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        prepare_ucf101(ucf, cache, size=SIZE, progress=False, classes=1)
    assert [p for p in (cache / "videos").rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    # a temporary file left by a killed run is removed, never taken for a video
    stale = cache / "videos" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi.npy.partial-999"
    stale.write_bytes(b"junk")
    s = prepare_ucf101(ucf, cache, size=SIZE, progress=False, classes=1)
    assert (s.decoded, s.already_done) == (6, 0) and not stale.exists()


def test_cache_user_errors(ucf, prepared, tmp_path):
    cache, _ = prepared
    with pytest.raises(UserError, match=r"cache .*nowhere not found: create it with `archlab data prepare"):
        UCF101(None, "train", cache=tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"holds frames resized to 60x80, not 128x171: prepare another cache"):
        UCF101(None, "train", cache=cache, resize=(128, 171))
    with pytest.raises(UserError, match="crop 64x64 does not fit in cache"):
        UCF101(None, "train", cache=cache, size=64)
    with pytest.raises(UserError, match="holds 'ucf101' videos, not 'folder'"):
        VideoFolder(None, cache=cache)
    with pytest.raises(UserError, match="was started as ucf101 at 60x80 .*use another --cache"):
        prepare_ucf101(ucf, cache, size=(128, 171), progress=False)
    small = tmp_path / "small"
    prepare_ucf101(ucf, small, size=SIZE, split=1, classes=2, progress=False)
    with pytest.raises(UserError, match=r"lacks 4 videos of trainlist01\.txt .*re-run"):
        UCF101(None, "train", cache=small, size=32)


def test_damaged_cache_file_is_skipped_with_a_warning_and_redone_by_prepare(ucf, prepared, tmp_path, caplog):
    cache, _ = prepared
    copy = shutil.copytree(cache, tmp_path / "copy")
    victim = copy / "videos" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g03_c01.avi.npy"
    victim.write_bytes(victim.read_bytes()[:500])
    ds = UCF101(None, "val", fold=3, frames=4, size=32, cache=copy)  # testlist03: nothing known corrupt
    with caplog.at_level(logging.WARNING, logger="archlab.data"):
        clip, label = ds[0]
    assert clip.shape == (3, 4, 32, 32) and label == 0
    assert len(caplog.records) == 1 and "re-run `archlab data prepare`" in caplog.records[0].getMessage()
    assert list(ds.skipped) == ["ApplyEyeMakeup/v_ApplyEyeMakeup_g03_c01.avi"]
    s = prepare_ucf101(ucf, copy, size=SIZE, progress=False)
    assert (s.decoded, s.already_done) == (1, 15)
    assert torch.equal(
        UCF101(None, "val", fold=3, frames=4, size=32, cache=copy)[0][0],
        UCF101(None, "val", fold=3, frames=4, size=32, cache=cache)[0][0],
    )


def test_folder_cache_round_trip(tmp_path):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            frames = np.random.default_rng(i).integers(0, 255, (12, 48, 64, 3), np.uint8)
            write_video(root / c / f"{c}{i}.mp4", frames, codec_tag=None)
    (root / "b" / "broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 64)
    s = prepare_folder(root, tmp_path / "cache", size=48, progress=False)
    assert (s.decoded, list(s.corrupt)) == (6, ["b/broken.mkv"])
    for split in ("train", "val"):
        decoded = VideoFolder(root, split, frames=4, size=40, resize=48)
        cached = VideoFolder(None, split, frames=4, size=40, cache=tmp_path / "cache")
        keys = [v.key for v in decoded.videos if v.key != "b/broken.mkv"]
        assert [v.key for v in cached.videos] == keys and cached.classes == ["a", "b"]
        if "b/broken.mkv" not in {v.key for v in decoded.videos}:
            assert all(torch.equal(decoded[i][0], cached[i][0]) for i in range(len(cached)))


# ---- CLI ---------------------------------------------------------------------------------


def test_cli_prepare_then_rerun(ucf, tmp_path, capsys):
    cache = tmp_path / "cli"
    argv = ["data", "prepare", "ucf101", "--root", str(ucf), "--cache", str(cache), "--size", "60x80", "--workers", "2"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "18 videos; 16 decoded now (256 frames" in out.out and "0 already cached, 2 skipped" in out.out
    assert f"skipped {CORRUPT}: not a readable video" in out.out
    assert f"skipped {TRUNCATED}: truncated" in out.out
    assert "18 videos to decode, 0 already in the cache" in out.err
    assert main(argv[:-2] + ["--workers", "1"]) == 0
    out = capsys.readouterr()
    assert "0 decoded now" in out.out and "16 already cached" in out.out
    assert len(UCF101(None, "val", frames=4, size=32, cache=cache)) == 5


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--root", "{tmp}/missing", "--cache", "{tmp}/c"], "archlab data: error: UCF101 root {tmp}/missing not found"),
        (["--root", "{ucf}", "--cache", "{tmp}/c", "--size", "big"], "archlab data: error: size 'big' must be"),
    ],
)
def test_cli_prepare_user_errors_are_one_line(ucf, tmp_path, capsys, argv, needle):
    argv = [a.format(tmp=tmp_path, ucf=ucf) for a in argv]
    assert main(["data", "prepare", "ucf101", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(needle.format(tmp=tmp_path))
