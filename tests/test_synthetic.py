"""SyntheticMotion: deterministic, balanced, uint8 clips whose classes share their frames.

The time-reversal property is checked exactly: for the same content, every class shows the
same multiset of frames, and a forward clip is its backward twin reversed in time. That is
what makes a network without temporal modelling unable to beat chance (see
test_temporal_sanity.py for the trained networks)."""

from collections import Counter

import pytest
import torch

from archlab.data import DATASETS, get_dataset
from archlab.data.synthetic import FAINT_CONTRAST, SyntheticMotion, _orders
from archlab.util.errors import UserError


@pytest.fixture(scope="module")
def ds():
    return SyntheticMotion("train", n_clips=24, size=32)


def frame_multiset(clip: torch.Tensor) -> list[bytes]:
    return sorted(clip[:, t].numpy().tobytes() for t in range(clip.shape[1]))


def test_shapes_dtypes_and_classes(ds):
    clip, label = ds[5]
    assert clip.dtype == torch.uint8 and clip.shape == (3, 8, 32, 32)
    assert isinstance(label, int) and label == 5 % 6
    assert ds.classes == [
        "forward",
        "backward",
        "forward_restart",
        "backward_restart",
        "forward_hiccup",
        "backward_hiccup",
    ]
    big = SyntheticMotion("val", n_clips=2, frames=16, size=48, num_classes=8)
    assert big[1][0].shape == (3, 16, 48, 48) and len(big.classes) == 8
    assert int(clip.min()) < 60 and int(clip.max()) > 195  # real contrast, not a flat frame


def test_deterministic_per_seed_split_and_index(ds):
    again = SyntheticMotion("train", n_clips=24, size=32)
    assert all(torch.equal(ds[i][0], again[i][0]) for i in range(len(ds)))
    # a clip depends on (seed, split, index) only, not on how many clips the split has
    fewer = SyntheticMotion("train", n_clips=7, size=32)
    assert torch.equal(fewer[6][0], ds[6][0])
    val = SyntheticMotion("val", n_clips=24, size=32)
    other_seed = SyntheticMotion("train", n_clips=24, size=32, seed=1)
    for other in (val, other_seed):
        diffs = [(ds[i][0].float() - other[i][0].float()).abs().mean().item() for i in range(len(ds))]
        assert min(diffs) > 5.0  # every clip differs, by a lot (uint8 units)


def test_class_balance():
    labels = SyntheticMotion("train", n_clips=60, size=16, num_classes=6).labels
    assert Counter(labels) == {c: 10 for c in range(6)}
    counts = Counter(SyntheticMotion("val", n_clips=20, size=16, num_classes=6).labels).values()
    assert max(counts) - min(counts) <= 1


def test_every_class_shows_the_same_frames(ds):
    """For the same content, the multiset of frames is identical for every class: the label
    only orders them."""
    for i in range(0, len(ds), 3):
        sets = [frame_multiset(ds.clip(i, c)) for c in range(len(ds.classes))]
        assert all(s == sets[0] for s in sets)
        # and the frames are not all alike (the object really moves)
        assert len(set(sets[0])) == ds.frames


def test_time_reversed_twins_share_frames_exactly(ds):
    c = {name: k for k, name in enumerate(ds.classes)}
    for i in range(len(ds)):
        assert torch.equal(ds.clip(i, c["forward"]).flip(1), ds.clip(i, c["backward"]))
        assert torch.equal(ds.clip(i, c["forward_restart"]).flip(1), ds.clip(i, c["backward_restart"]))
        assert torch.equal(ds.clip(i, c["forward_hiccup"]).flip(1), ds.clip(i, c["backward_hiccup"]))
    clip, label = ds[1]
    assert ds.classes[label] == "backward" and torch.equal(clip, ds.clip(1, c["forward"]).flip(1))


def test_single_frame_statistics_do_not_depend_on_the_class():
    """Per-class mean of each frame position: temporal statistics differ between classes (the
    first frame of 'forward' is not the first of 'backward'), order-free ones do not."""
    ds = SyntheticMotion("train", n_clips=240, size=16, num_classes=2, paths=("translate",), distractors=False)
    clips = torch.stack([ds[i][0] for i in range(len(ds))]).float()  # N, 3, T, H, W
    labels = torch.tensor(ds.labels)
    # horizontal centre of mass of the object (darker or brighter than the mean) per frame
    x = torch.linspace(-1, 1, 16)
    dev = (clips - clips.mean(dim=(2, 3, 4), keepdim=True)).abs().mean(1)  # N, T, H, W
    com = (dev.sum(2) * x).sum(-1) / dev.sum((2, 3))  # N, T
    fwd, bwd = com[labels == 0], com[labels == 1]
    slope = lambda c: (c[:, -1] - c[:, 0]).mean().item()  # noqa: E731
    assert slope(fwd) > 0.1 and slope(bwd) < -0.1  # the order differs...
    assert abs(fwd.mean().item() - bwd.mean().item()) < 0.05  # ...the frames, pooled over time, do not


def test_content_does_not_depend_on_the_number_of_classes():
    six = SyntheticMotion("train", n_clips=3, size=16, num_classes=6)
    eight = SyntheticMotion("train", n_clips=3, size=16, num_classes=8)
    assert torch.equal(six.clip(2, 4), eight.clip(2, 4))


def test_orders_are_permutations_with_twins():
    for t in (4, 5, 8, 16):
        orders = _orders(t)
        assert len(orders) == 8 and len({tuple(o) for o in orders.values()}) == 8, t  # all different
        for name, order in orders.items():
            assert sorted(order) == list(range(t)), (t, name)
            if name.startswith("forward"):
                assert orders[name.replace("forward", "backward")] == order[::-1]
    assert _orders(8)["forward_restart"] == [4, 5, 6, 7, 0, 1, 2, 3]
    assert _orders(8)["forward_hiccup"] == [2, 3, 0, 1, 4, 5, 6, 7]


@pytest.mark.parametrize("t", [8, 16])
def test_orders_keep_aligned_pairs_and_quads(t):
    """Every order of t = 8k frames shows the same aligned pairs, quads, ... as forward, so
    temporal max pools over aligned pairs cannot tell the classes apart either."""
    for order in _orders(t).values():
        size = 2
        while size < t:
            groups = sorted(tuple(sorted(order[i : i + size])) for i in range(0, t, size))
            assert groups == [tuple(range(i, i + size)) for i in range(0, t, size)]
            size *= 2


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(split="dev"), "split 'dev'"),
        (dict(num_classes=1), "num_classes=1"),
        (dict(num_classes=9), "num_classes=9"),
        (dict(frames=3), "frames=3"),
        (dict(size=8), "size=8"),
        (dict(n_clips=0), "n_clips=0"),
        (dict(paths=("spin",)), "paths"),
        (dict(object_scale=1.6), "object_scale=1.6 must be in 0.5..1.5"),
        (dict(object_scale=True), "object_scale=True"),
        (dict(faint=-0.1), "faint=-0.1 must be in 0..1"),
        (dict(faint=1.5), "faint=1.5 must be in 0..1"),
    ],
)
def test_bad_arguments_are_user_errors(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        SyntheticMotion(**kwargs)


def test_get_dataset():
    assert set(DATASETS) == {"synthetic", "ucf101", "folder"}
    ds = get_dataset("synthetic", "val", frames=6, size=24, n_clips=5, num_classes=4)
    assert isinstance(ds, SyntheticMotion) and ds.split == "val" and ds[0][0].shape == (3, 6, 24, 24)
    assert len(ds.classes) == 4
    with pytest.raises(UserError, match="needs a data root"):
        get_dataset("ucf101", "train")
    with pytest.raises(UserError, match="needs a data root"):
        get_dataset("folder", "train")
    with pytest.raises(UserError, match="unknown dataset 'kinetics'"):
        get_dataset("kinetics")
    with pytest.raises(UserError, match="takes no data root"):
        get_dataset("synthetic", root="/data")


def test_fresh_per_epoch_renders_the_splits_next_clips():
    """Epoch e of a fresh set shows clips e*n .. e*n+n-1 of the split (deterministic, so a
    resumed run sees what an uninterrupted one does); without the option set_epoch is a no-op."""
    n = 4
    fresh = SyntheticMotion("train", n_clips=n, size=16, fresh_per_epoch=True)
    plain = SyntheticMotion("train", n_clips=n, size=16)
    big = SyntheticMotion("train", n_clips=2 * n, size=16)
    assert torch.equal(fresh[1][0], plain[1][0])
    fresh.set_epoch(1)
    plain.set_epoch(1)
    assert torch.equal(plain[1][0], big[1][0])  # unchanged
    for i in range(n):
        clip, label = fresh[i]
        assert label == plain[i][1]
        assert torch.equal(fresh._states[i], big._states[n + i])
    fresh.set_epoch(0)
    assert torch.equal(fresh[2][0], plain[2][0])


def test_object_scale_grows_the_moving_objects_and_keeps_the_classes_blind_to_2d():
    """object_scale (the proxy recipe uses 1.4) multiplies the objects' size: the pixels the
    objects cross grow (measured 1.43x on these 24 clips: the area grows 1.96x, the swept path
    by the width only); the background is the same clips', and every class still shows the
    same frames."""
    kw = dict(n_clips=24, size=32, distractors=False)
    small, large = SyntheticMotion("train", **kw), SyntheticMotion("train", **kw, object_scale=1.4)
    assert torch.equal(SyntheticMotion("train", **kw, object_scale=1.0)[3][0], small[3][0])

    def moving(clip):  # pixels whose value changes over the clip by more than the noise
        return int(((clip.float().amax(1) - clip.float().amin(1)).amax(0) > 60).sum())

    ratio = sum(moving(large[i][0]) for i in range(24)) / sum(moving(small[i][0]) for i in range(24))
    assert 1.3 < ratio < 1.6
    # the same background colour (the first draw of each clip): only the objects changed

    def corner(clip):
        return clip[:, :, :2, :2].float().mean().item()

    assert abs(corner(large[0][0]) - corner(small[0][0])) < 15
    big = SyntheticMotion("val", n_clips=6, size=32, object_scale=1.5)
    for i in range(len(big)):
        first = frame_multiset(big.clip(i, 0))
        assert all(frame_multiset(big.clip(i, c)) == first for c in range(len(big.classes)))


def test_faint_clips_fade_their_objects_and_keep_everything_else():
    """faint > 0 blends a share of the clips' objects into what lies under them at a contrast
    from [0, FAINT_CONTRAST] (a clip's own draw, so the rest of the clip is the opaque task's):
    the pixels no object crosses are the same, a faint clip's objects barely move the pixels
    they cross (their swing over time is under half the opaque clip's: the noise's, mostly),
    an opaque clip is unchanged, and every class still shows the same frames."""
    kw = dict(n_clips=40, size=32, object_scale=1.4)
    opaque = SyntheticMotion("val", **kw)
    assert torch.equal(SyntheticMotion("val", **kw, faint=0.0)._states, opaque._states)
    assert {opaque.contrast(i) for i in range(40)} == {1.0}
    half = SyntheticMotion("val", **kw, faint=0.5)
    cs = [half.contrast(i) for i in range(40)]
    faint = [c for c in cs if c < 1]
    assert 12 <= len(faint) <= 28  # about half (binomial 40 x 0.5: 20 +- 3)
    assert all(0.0 <= c <= FAINT_CONTRAST for c in faint) and max(faint) - min(faint) > 0.15
    assert cs == [SyntheticMotion("val", **kw, faint=0.5).contrast(i) for i in range(40)]
    assert all(c < 1 for c in (SyntheticMotion("val", **kw, faint=1.0).contrast(i) for i in range(40)))
    plain = SyntheticMotion("val", **kw, distractors=False)  # no blob: only the objects move
    flat = SyntheticMotion("val", **kw, distractors=False, faint=0.5)
    for i in range(40):
        a, b = plain._states[i].float(), flat._states[i].float()
        change = (a.amax(1) - a.amin(1)).amax(0)
        assert torch.equal(a[:, :, change < 30], b[:, :, change < 30])  # pixels no object crosses
        moving = change > 60
        swing = ((b.amax(1) - b.amin(1))[:, moving].mean() / (a.amax(1) - a.amin(1))[:, moving].mean()).item()
        if cs[i] == 1.0:
            assert torch.equal(a, b)  # an opaque clip is the faint=0 clip
        else:  # measured 0.26-0.44 on these 21 faint clips: mostly the pixel noise's swing
            assert swing < 0.5, (cs[i], swing)
    for i in range(len(half)):
        first = frame_multiset(half.clip(i, 0))
        assert all(frame_multiset(half.clip(i, c)) == first for c in range(len(half.classes)))
