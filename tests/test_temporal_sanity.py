"""The synthetic proxy rewards temporal modelling, and only temporal modelling.

A network of 2D blocks with no temporal pooling (stem pool none, t=-) ends in
AdaptiveAvgPool3d: it is exactly per-frame features + temporal average pooling, so it cannot
see the order of frames, which is all that separates the classes. A P3D network can. With
8 frames even the official P3D skeleton's temporal max pools (stem 2x3x3, t=p) see nothing:
every class shows the same aligned frame pairs and quads.

Measured on this machine kind (2 CPU cores, torch 2.13 CPU; the default 6 classes, 1920
training clips at 8x32x32, 5 epochs of SGD at batch 8, lr 0.025, no zero-init): P3D 'A|B|C'
0.833 / 0.654 / 0.596 val top-1 with seeds 0 / 1 / 2, 2D '2|2|2' 0.150 / 0.179 / 0.204
(chance 0.167); about 37 s of training each when the cores are free. Thresholds, with room
for other machines' numerics: P3D >= chance + 0.35, 2D <= chance + 0.12 (val has 240
clips: one standard error of a chance-level accuracy is 0.024). Notes from calibrating:
unique clips matter more than epochs (480 clips for 12 epochs stayed at chance); batch 16 at
the same lr took off later and less reliably; zero-initialised residual branches (the
trainer's default, which deeper proxies need) keep these 3-block nets at chance for 5 epochs.
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


@pytest.mark.parametrize("flat, p3d, size", [
    (FLAT, P3D, 32),  # temporal average pooling only
    (parse("22|22|22|22 sw=8 w=8,16,32,64 cls=6"), parse("AB|CA|BC|22 sw=8 w=8,16,32,64 cls=6"), 64),  # official pools
])
def test_a_2d_network_cannot_see_the_order_of_frames(flat, p3d, size):
    """Exactly: a 2D network's logits are the same for every class's ordering of a clip's
    frames; a P3D network's are not (untrained networks, eval mode)."""
    ds = SyntheticMotion("val", n_clips=3, size=size)
    torch.manual_seed(0)
    flat, p3d = build(flat).eval(), build(p3d).eval()
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
    tr = SyntheticMotion("train", n_clips=1920, **kw)
    va = SyntheticMotion("val", n_clips=240, **kw)
    cfg = TrainConfig(epochs=5, batch_size=8, lr=0.025, seed=0, device="cpu", zero_init_last_bn=False)
    chance = 1 / len(tr.classes)
    p3d = train(P3D, tr, va, cfg)
    flat = train(FLAT, tr, va, cfg)
    assert p3d.status == flat.status == "ok"
    p3d_acc, flat_acc = p3d.history[-1].val_top1, flat.history[-1].val_top1
    report = f"P3D {[m.val_top1 for m in p3d.history]}  2D {[m.val_top1 for m in flat.history]}"
    assert p3d_acc >= chance + 0.45, report
    assert flat_acc <= chance + 0.12, report
    assert p3d_acc - flat_acc >= 0.4, report
