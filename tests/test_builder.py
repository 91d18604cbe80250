"""Builder and presets: exact parameter parity with the published models, shapes, structure."""

import pytest
import torch
from torch import nn

from archlab.model import blocks, stems
from archlab.model.builder import VideoNet, build, count_params
from archlab.model.genome import LETTERS, parse, scale_widths
from archlab.model.presets import PRESETS, get

# docs/anchors.md
ANCHORS = {
    ("p3d63", 400): 25_745_232,
    ("p3d63", 101): 25_132_581,
    ("p3d63", 487): 25_923_495,
    ("p3d131", 400): 48_088_400,
    ("p3d131", 101): 47_475_749,
    ("p3d131", 487): 48_266_663,
    ("p3d199", 400): 66_492_240,
    ("p3d199", 101): 65_879_589,
    ("p3d199", 487): 66_670_503,
    ("c2d50", 400): 24_327_632,
    ("r3d_18", 400): 33_371_472,
    ("mc3_18", 400): 11_695_440,
    ("r2plus1d_18", 400): 31_505_325,
}


def meta_params(name: str, classes: int) -> int:
    with torch.device("meta"):
        return count_params(VideoNet(get(name, classes)))


@pytest.mark.parametrize("name, classes", list(ANCHORS))
def test_parameter_parity(name, classes):
    assert meta_params(name, classes) == ANCHORS[(name, classes)]


def test_p3d_minus_2d_is_the_temporal_convs():
    assert meta_params("p3d63", 400) - meta_params("c2d50", 400) == 1_417_600
    for pure in ("p3d_a50", "p3d_b50", "p3d_c50"):
        assert meta_params(pure, 400) == ANCHORS[("p3d63", 400)]


def test_p3d199_letters_follow_the_global_cycle():
    stages = get("p3d199").letters.split("|")
    assert stages[0] == "ABC" and stages[1] == "ABCABCAB"
    assert stages[2].startswith("CABC") and stages[2].endswith("AB") and len(stages[2]) == 36
    assert stages[3] == "222"


def test_registry_matches_alphabet():
    assert set(blocks.TRANSFORMS) == {letter for letter, v in LETTERS.items() if "bottleneck" in v.families}


def test_official_stride_placement_and_pooling():
    m = build("p3d63")
    first = m.stages[1][1]  # stage 2: [temporal pool, first block, ...]
    assert isinstance(m.stages[1][0], stems.ClampedMaxPool)
    assert first.transform.a[0].stride == (1, 2, 2)  # stride on the FIRST 1x1x1 conv
    assert first.transform.b.s[0].stride == (1, 1, 1)
    assert first.shortcut[0].stride == (1, 2, 2)
    res2 = m.stages[0][0]
    assert res2.shortcut[0].stride == (1, 1, 1) and res2.shortcut[0].out_channels == 256
    assert all(c.bias is None for c in m.modules() if isinstance(c, nn.Conv3d))


def test_temporal_shape_follows_official_model():
    m = build("p3d63").eval()
    shapes = []
    x = torch.zeros(1, 3, 16, 64, 64)
    with torch.no_grad():
        x = m.stem(x)
        shapes.append(x.shape[2])
        for s in m.stages:
            x = s(x)
            shapes.append(x.shape[2])
    assert shapes == [8, 8, 4, 2, 1]


def _reference_p3d_middle(letter, mod, x):
    """The official ReLU placement, written out with the block's own weights."""
    relu = torch.relu

    def S(v):
        return mod.s[1](mod.s[0](v))

    def T(v):
        return mod.t[1](mod.t[0](v))

    if letter == "A":
        return relu(T(relu(S(x))))
    if letter == "B":
        return relu(relu(S(x)) + T(x))
    return relu(relu(S(x)) + T(relu(S(x))))


@pytest.mark.parametrize("letter", "ABC")
def test_p3d_middles_follow_official_relu_placement(letter):
    torch.manual_seed(0)
    mod = blocks.TRANSFORMS[letter](6).eval()
    for m in mod.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    x = torch.randn(2, 6, 4, 5, 5)
    with torch.no_grad():
        assert torch.allclose(mod(x), _reference_p3d_middle(letter, mod, x), atol=1e-6)
    if letter != "A":  # B and C differ from A: make sure the test can tell them apart
        with torch.no_grad():
            assert not torch.allclose(mod(x), _reference_p3d_middle("A", mod, x), atol=1e-3)


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("clip", [(8, 112, 112), (16, 112, 112), (16, 160, 160), (32, 224, 224)])
def test_forward_shapes_at_reduced_width(name, clip):
    g = scale_widths(get(name, classes=7), 1 / 16)
    m = build(g).eval()
    with torch.no_grad():
        y = m(torch.randn(2, 3, *clip))
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()


def test_zero_init_last_bn_makes_blocks_identity_like():
    m = build(parse("AB|C2 w=4,8 sw=8 cls=3"), zero_init_last_bn=True)
    lasts = [
        [x for x in b.transform.modules() if isinstance(x, nn.BatchNorm3d)][-1]
        for s in m.stages
        for b in s
        if hasattr(b, "transform")
    ]
    assert lasts and all(float(bn.weight.abs().sum()) == 0 for bn in lasts)
