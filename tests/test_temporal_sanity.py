"""The synthetic proxy rewards temporal modelling, and only temporal modelling.

A network of 2D blocks with no temporal pooling (stem pool none, t=-) ends in
AdaptiveAvgPool3d: it is exactly per-frame features + temporal average pooling, so it cannot
see the order of frames, which is all that separates the classes. A P3D network can.

Measured on this machine kind (2 CPU cores, torch 2.13 CPU; the default 6 classes, 1440
training clips at 8x32x32, 5 epochs of SGD at batch 8, lr 0.025): P3D 'A|B|C' 0.946 / 0.938
/ 0.958 val top-1 with seeds 0 / 1 / 2, 2D '2|2|2' 0.171 / 0.221 / 0.171 (chance 0.167);
about 23 s of training each when the cores are free. (At batch 16, lr 0.025 the P3D net
took off later and less reliably: 0.74 / 0.27 / 0.80.) Thresholds, with room for other
machines' numerics: P3D >= chance + 0.45, 2D <= chance + 0.12 (val has 240 clips: one
standard error of a chance-level accuracy is 0.024).
"""

import pytest
import torch

from archlab.builder import build
from archlab.data.loader import to_input
from archlab.data.synthetic import SyntheticMotion
from archlab.genome import parse
from archlab.train import TrainConfig, train

FIELDS = "w=8,16,32 sw=16 stem=2d/none t=-,-,- drop=0.0 cls=6"
P3D = parse(f"A|B|C {FIELDS}")
FLAT = parse(f"2|2|2 {FIELDS}")


def test_a_2d_network_cannot_see_the_order_of_frames():
    """Exactly: the 2D network's logits are the same for every class's ordering of a clip's
    frames; the P3D network's are not (untrained networks, eval mode)."""
    ds = SyntheticMotion("val", n_clips=4, size=32)
    torch.manual_seed(0)
    flat, p3d = build(FLAT).eval(), build(P3D).eval()
    with torch.no_grad():
        for i in range(len(ds)):
            clips = torch.stack([ds.clip(i, c) for c in range(len(ds.classes))])
            x = to_input(clips, "cpu")
            a, b = flat(x), p3d(x)
            assert torch.allclose(a, a[:1].expand_as(a), atol=1e-5)
            assert (b - b[:1]).abs().amax() > 1e-3


@pytest.mark.slow
def test_p3d_learns_the_order_a_2d_network_stays_at_chance():
    kw = dict(frames=8, size=32)  # everything else at the dataset's defaults
    tr = SyntheticMotion("train", n_clips=1440, **kw)
    va = SyntheticMotion("val", n_clips=240, **kw)
    cfg = TrainConfig(epochs=5, batch_size=8, lr=0.025, seed=0, device="cpu")
    chance = 1 / len(tr.classes)
    p3d = train(P3D, tr, va, cfg)
    flat = train(FLAT, tr, va, cfg)
    assert p3d.status == flat.status == "ok"
    p3d_acc, flat_acc = p3d.history[-1].val_top1, flat.history[-1].val_top1
    report = f"P3D {[m.val_top1 for m in p3d.history]}  2D {[m.val_top1 for m in flat.history]}"
    assert p3d_acc >= chance + 0.45, report
    assert flat_acc <= chance + 0.12, report
    assert p3d_acc - flat_acc >= 0.4, report
