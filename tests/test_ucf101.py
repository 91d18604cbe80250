"""UCF101 from its official layout (real XVID AVIs written by PyAV), clip sampling, corrupt
files, user errors; and VideoFolder (a user's class-per-folder videos)."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from archlab.data.clips import clip_starts, frame_indices
from archlab.data.folder import VideoFolder, scan_folder, val_keys
from archlab.data.ucf101 import UCF101, read_class_index, read_split
from archlab.data.video import CorruptVideo, read_video, target_size, write_video
from archlab.testing.ucf101 import write_tiny_ucf101
from archlab.util.errors import UserError

CLASSES = ["ApplyEyeMakeup", "Archery", "Basketball"]
CORRUPT = "Archery/v_Archery_g02_c02.avi"  # random bytes; in trainlist01
TRUNCATED = "Basketball/v_Basketball_g01_c01.avi"  # first 60% of a real AVI; in testlist01


@pytest.fixture(scope="session")
def ucf(tmp_path_factory) -> Path:
    """3 classes x 3 groups x 2 clips of 16 frames at 80x60 (XVID in AVI, like UCF101.rar),
    with one file of random bytes and one truncated file."""
    root = write_tiny_ucf101(tmp_path_factory.mktemp("ucf"), CLASSES, groups=3, clips=2, frames=16, size=(60, 80))
    (root / "UCF-101" / CORRUPT).write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    data = (root / "UCF-101" / TRUNCATED).read_bytes()
    (root / "UCF-101" / TRUNCATED).write_bytes(data[: int(len(data) * 0.6)])
    return root


def partial_copy(ucf: Path, dst: Path, drop_list: str | None = None, drop_class: str | None = None) -> Path:
    """A root with copied split lists and links to the class folders, minus one of either."""
    shutil.copytree(ucf / "ucfTrainTestlist", dst / "ucfTrainTestlist")
    (dst / "UCF-101").mkdir()
    for c in CLASSES:
        if c != drop_class:
            (dst / "UCF-101" / c).symlink_to(ucf / "UCF-101" / c)
    if drop_list:
        (dst / "ucfTrainTestlist" / drop_list).unlink()
    return dst


# ---- the official lists ------------------------------------------------------------------


def test_test_videos_decode_as_xvid_avi(ucf):
    import av

    with av.open(str(ucf / "UCF-101" / "Archery" / "v_Archery_g01_c01.avi")) as c:
        s = c.streams.video[0]
        assert (c.format.name, s.codec_context.name, s.codec_context.codec_tag) == ("avi", "mpeg4", "XVID")
    frames, info = read_video(ucf / "UCF-101" / "Archery" / "v_Archery_g01_c01.avi", (60, 80))
    assert frames.shape == (16, 60, 80, 3) and frames.dtype == np.uint8
    assert (info.frames, info.fps, info.src_height, info.src_width) == (16, 25.0, 60, 80)


def test_split_lists_parse(ucf):
    lists = ucf / "ucfTrainTestlist"
    assert read_class_index(lists) == CLASSES
    train = read_split(lists, "train", 1, CLASSES)
    test = read_split(lists, "test", 1, CLASSES)
    assert len(train) == 12 and len(test) == 6  # groups 2-3 train, group 1 test
    assert all("_g01_" not in k for k, _ in train) and all("_g01_" in k for k, _ in test)
    assert all("\r" not in k for k, _ in train + test)  # the lists end lines in CRLF
    assert ("Archery/v_Archery_g02_c01.avi", 1) in train
    # test lists have no label column: it comes from the class folder
    assert ("Basketball/v_Basketball_g01_c02.avi", 2) in test
    assert read_split(lists, "val", 2, CLASSES) == read_split(lists, "test", 2, CLASSES)
    assert {k for k, _ in read_split(lists, "test", 2, CLASSES)} == {
        f"{c}/v_{c}_g02_c0{k}.avi" for c in CLASSES for k in (1, 2)
    }


@pytest.mark.parametrize("split, fold", [("train", 1), ("val", 1), ("test", 3)])
def test_labels_come_from_class_folders(ucf, split, fold):
    ds = UCF101(ucf, split, fold=fold, frames=4, size=32)
    assert ds.classes == CLASSES
    assert ds.labels == [CLASSES.index(v.key.split("/")[0]) for v in ds.videos]
    assert len(ds) == (12 if split == "train" else 6)


def test_class_subset_first_k_and_by_name(ucf):
    ds = UCF101(ucf, "train", classes=2, frames=4, size=32)
    assert ds.classes == CLASSES[:2] and sorted(set(ds.labels)) == [0, 1] and len(ds) == 8
    ds = UCF101(ucf, "val", classes=["Basketball", "ApplyEyeMakeup"], frames=4, size=32)
    assert ds.classes == ["Basketball", "ApplyEyeMakeup"]
    assert {v.key.split("/")[0]: v.label for v in ds.videos} == {"Basketball": 0, "ApplyEyeMakeup": 1}
    with pytest.raises(UserError, match="unknown UCF101 class"):
        UCF101(ucf, "train", classes=["Archery", "Juggling"])


# ---- clips -------------------------------------------------------------------------------


def test_clip_shape_dtype_and_label(ucf):
    ds = UCF101(ucf, "val", frames=8, size=(40, 56), resize=(60, 80))
    clip, label = ds[0]
    assert clip.shape == (3, 8, 40, 56) and clip.dtype == torch.uint8 and isinstance(label, int)
    assert torch.equal(ds[0][0], clip)  # evaluation crops are deterministic


def test_val_clip_is_the_centre_crop_of_uniformly_spaced_frames(ucf):
    ds = UCF101(ucf, "val", frames=4, stride=2, clips_per_video=3, size=32, resize=(60, 80))
    assert len(ds) == 18
    video = ds.videos[1]
    frames, _ = read_video(video.path, (60, 80))
    span = 7  # (4 - 1) * 2 + 1
    for k, start in enumerate([0, 4, 9]):  # 0 .. 16 - 7, uniformly spaced
        want = frames[start : start + span : 2, 14:46, 24:56].transpose(3, 0, 1, 2)
        assert torch.equal(ds[3 + k][0], torch.from_numpy(np.ascontiguousarray(want)))


def test_temporal_sampling_numbers():
    assert clip_starts(16, 8, 1, None) == [4]
    assert clip_starts(16, 8, 3, None) == [0, 4, 8]
    assert clip_starts(5, 8, 2, None) == [0, 0]  # shorter than the clip: start 0 ...
    assert frame_indices(5, 0, 4, 2).tolist() == [0, 2, 4, 1]  # ... and loop
    rng = np.random.default_rng(0)
    for _ in range(50):  # training: one random start per equal segment of starts 0..8
        a, b, c = clip_starts(16, 8, 3, rng)
        assert 0 <= a <= 2 and 3 <= b <= 5 and 6 <= c <= 8
    assert target_size((240, 320), 128) == (128, 171)  # UCF101 -> C3D's 128x171
    assert target_size((240, 320), (112, 112)) == (112, 112)


def test_train_crops_are_seeded_by_seed_epoch_and_index(ucf):
    a = UCF101(ucf, "train", classes=1, frames=8, size=32, seed=1)
    b = UCF101(ucf, "train", classes=1, frames=8, size=32, seed=1)
    assert all(torch.equal(a[i][0], b[i][0]) for i in range(len(a)))
    b.set_epoch(1)
    assert not all(torch.equal(a[i][0], b[i][0]) for i in range(len(a)))
    flips = UCF101(ucf, "train", classes=1, frames=8, size=(60, 80), resize=(60, 80))  # crop = frame
    frames, _ = read_video(flips.videos[0].path, (60, 80))
    seen = set()
    for epoch in range(8):
        flips.set_epoch(epoch)
        clip = flips[0][0].permute(1, 2, 3, 0).numpy()
        start = next(
            s for s in range(9) if np.array_equal(clip[0], frames[s]) or np.array_equal(clip[0], frames[s, :, ::-1])
        )
        seen.add(bool(np.array_equal(clip[0], frames[start, :, ::-1])))
    assert seen == {True, False}  # horizontal flips happen, and not always


def test_loader_with_workers_batches_clips(ucf):
    ds = UCF101(ucf, "val", fold=3, frames=8, size=48)  # testlist03: no damaged file
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3, 8, 48, 48), (2, 3, 8, 48, 48)]
    assert all(x.dtype == torch.uint8 for x, _ in batches)
    assert torch.cat([y for _, y in batches]).tolist() == ds.labels == [0, 0, 1, 1, 2, 2]


# ---- corrupt files -----------------------------------------------------------------------


def test_corrupt_and_truncated_files_raise_corrupt_video(ucf):
    with pytest.raises(CorruptVideo, match="not a readable video"):
        read_video(ucf / "UCF-101" / CORRUPT)
    with pytest.raises(CorruptVideo, match="truncated|decode error"):
        read_video(ucf / "UCF-101" / TRUNCATED)


def test_an_empty_video_file_is_skipped_up_front_with_one_warning(ucf, tmp_path, caplog):
    """A 0-byte file in a split list: read_video says "empty file"; the dataset drops it when it
    is built (one warning naming it, recorded in ``skipped``), so no item ever tries it."""
    root = partial_copy(ucf, tmp_path, drop_class="Archery")
    shutil.copytree(ucf / "UCF-101" / "Archery", root / "UCF-101" / "Archery")
    key = "Archery/v_Archery_g01_c01.avi"  # in testlist01
    (root / "UCF-101" / key).write_bytes(b"")
    with pytest.raises(CorruptVideo, match="empty file"):
        read_video(root / "UCF-101" / key)
    with caplog.at_level(logging.WARNING, logger="archlab.data"):
        ds = UCF101(root, "test", frames=4, size=32)
    assert ds.skipped == {key: "empty file"}
    assert key not in {v.key for v in ds.videos} and len(ds.videos) == 5  # 6 in testlist01, one empty
    assert len(caplog.records) == 1 and "skipping 1 of 6 videos" in caplog.records[0].getMessage()
    assert "v_Archery_g01_c01.avi" in caplog.records[0].getMessage()
    assert [v.key for v in ds.videos if v.key.startswith("Archery/")] == ["Archery/v_Archery_g01_c02.avi"]


def test_corrupt_video_is_skipped_with_one_warning_and_counted(ucf, caplog):
    ds = UCF101(ucf, "train", frames=4, size=32)  # trainlist01 holds CORRUPT
    with caplog.at_level(logging.WARNING, logger="archlab.data"):
        items = [ds[i] for i in range(len(ds))]
    assert all(x.shape == (3, 4, 32, 32) for x, _ in items)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and CORRUPT.split("/")[1] in warnings[0]
    assert list(ds.skipped) == [CORRUPT]
    i = next(i for i, v in enumerate(ds.videos) if v.key == CORRUPT)
    assert items[i][1] == ds.videos[i + 1].label  # the next video is served in its place


def test_missing_video_file_is_skipped_with_a_warning(ucf, tmp_path, caplog):
    root = partial_copy(ucf, tmp_path)
    lines = (root / "ucfTrainTestlist" / "testlist01.txt").read_text()
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text(lines + "Archery/v_Archery_g01_c07.avi\n")
    with caplog.at_level(logging.WARNING, logger="archlab.data"):
        ds = UCF101(root, "test", frames=4, size=32)
    assert len(ds.videos) == 6 and list(ds.skipped) == ["Archery/v_Archery_g01_c07.avi"]
    assert len(caplog.records) == 1 and "v_Archery_g01_c07.avi" in caplog.records[0].getMessage()


# ---- user errors -------------------------------------------------------------------------


def test_missing_split_file_names_it(ucf, tmp_path):
    root = partial_copy(ucf, tmp_path, drop_list="testlist03.txt")
    with pytest.raises(UserError, match=r"split file .*testlist03\.txt not found"):
        UCF101(root, "val", fold=3)
    UCF101(root, "train", fold=3, frames=4, size=32)  # the others still load


def test_missing_class_folder_names_it(ucf, tmp_path):
    root = partial_copy(ucf, tmp_path, drop_class="Basketball")
    with pytest.raises(UserError, match=r"class folder .*UCF-101/Basketball not found"):
        UCF101(root, "train")
    assert len(UCF101(root, "train", classes=2, frames=4, size=32)) == 8


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(split="dev"), "split 'dev' must be one of"),
        (dict(fold=4), "split number 4"),
        (dict(size=200), "crop 200x200 does not fit"),
        (dict(classes=7), "UCF101 has 3 classes"),
    ],
)
def test_bad_options_are_user_errors(ucf, kwargs, needle):
    with pytest.raises(UserError, match=needle):
        UCF101(ucf, **{"split": "train", **kwargs})


def test_missing_root_and_label_disagreement(ucf, tmp_path):
    with pytest.raises(UserError, match="UCF101 root .*nowhere not found"):
        UCF101(tmp_path / "nowhere")
    root = partial_copy(ucf, tmp_path / "r")
    path = root / "ucfTrainTestlist" / "trainlist01.txt"
    path.write_text(path.read_text().replace("Archery/v_Archery_g02_c01.avi 2", "Archery/v_Archery_g02_c01.avi 3"))
    with pytest.raises(UserError, match=r"trainlist01\.txt:\d+: label 3 disagrees with folder 'Archery'"):
        UCF101(root, "train")
    (root / "UCF-101").rename(root / "elsewhere")
    with pytest.raises(UserError, match=r"video folder .*UCF-101 not found"):
        UCF101(root, "val")


# ---- VideoFolder -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def folder(tmp_path_factory) -> Path:
    """cats/ 5 videos (.avi and .mp4), dogs/ 3 videos; frames of one flat colour per video."""
    root = tmp_path_factory.mktemp("folder")
    for c, n in (("cats", 5), ("dogs", 3)):
        (root / c).mkdir()
        for i in range(n):
            ext = ".mp4" if i % 2 else ".avi"
            write_video(
                root / c / f"clip{i}{ext}",
                np.full((10, 48, 64, 3), 40 * i, np.uint8),
                codec="mpeg4",
                codec_tag="XVID" if ext == ".avi" else None,
            )
    (root / "cats" / "notes.txt").write_text("not a video")
    (root / ".hidden").mkdir()
    return root


def test_folder_classes_and_deterministic_split(folder):
    classes, found = scan_folder(folder)
    assert classes == ["cats", "dogs"] and len(found) == 8  # .txt and hidden folders ignored
    train = VideoFolder(folder, "train", frames=4, size=32)
    val = VideoFolder(folder, "val", frames=4, size=32)
    tk, vk = {v.key for v in train.videos}, {v.key for v in val.videos}
    assert not tk & vk and tk | vk == set(found)
    assert sum(k.startswith("cats/") for k in vk) == 1 and sum(k.startswith("dogs/") for k in vk) == 1
    assert vk == {
        v.key for v in VideoFolder(folder, "val", frames=4, size=32, seed=5).videos
    }  # seed: augmentation only
    assert val_keys(list(found), 0.2, split_seed=0) == vk
    assert len(VideoFolder(folder, "all", frames=4, size=32)) == 8
    clip, label = val[0]
    assert (
        clip.shape == (3, 4, 32, 32)
        and clip.dtype == torch.uint8
        and val.classes[label] == val.videos[0].key.split("/")[0]
    )
    assert train.resize == 128 and read_video(found["cats/clip1.mp4"], 128)[0].shape == (10, 128, 171, 3)


def test_folder_user_errors(folder, tmp_path):
    with pytest.raises(UserError, match="video folder .*missing not found"):
        VideoFolder(tmp_path / "missing")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(UserError, match="class folder .*empty_class has no videos"):
        VideoFolder(tmp_path)
    with pytest.raises(UserError, match="val_fraction"):
        VideoFolder(folder, val_fraction=1.5)
