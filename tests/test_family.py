"""The rest of the factorised-3D-ResNet family: exact presets, counters, shapes, the letters' rules."""

import pytest
import torch
from torch import nn

from archlab.measure import profile
from archlab.model import blocks
from archlab.model.builder import VideoNet, build, count_params
from archlab.model.genome import parse, scale_widths
from archlab.model.presets import DEFAULT_INPUT, get

# docs/anchors.md: pytorchvideo 0.1.5 random-init models, learnable parameters at 400 classes.
ANCHORS = {
    "x3d_s": 3_794_274,
    "x3d_m": 3_794_274,
    "x3d_l": 6_153_384,
    "csn_r101": 22_213_776,
    "slow_r50": 32_454_096,
    "r2plus1d_r50": 28_107_600,
    "tsm_r50": 24_327_632,
}
# Output of the last stage (C, T, H, W) at each preset's clip.
LAST_STAGE = {
    "x3d_s": (192, 13, 5, 5),
    "x3d_m": (192, 16, 7, 7),
    "x3d_l": (192, 16, 10, 10),
    "csn_r101": (2048, 4, 7, 7),
    "slow_r50": (2048, 8, 7, 7),
    "r2plus1d_r50": (2048, 4, 7, 7),
    "tsm_r50": (2048, 8, 7, 7),
}
# PySlowFast MODEL_ZOO (docs/anchors.md): X3D-S/M/L GMACs at 13x160, 16x224, 16x312 (one view).
X3D_GMACS = {"x3d_s": 1.96, "x3d_m": 4.73, "x3d_l": 18.37}
# pytorchvideo 0.1.5's hub.csn_r101 (create_csn: stage_temporal_stride=(1, 2, 2, 2),
# head_pool_kernel_size=(4, 7, 7)): torch's FlopCounterMode / 2 on the real model at 32x224x224.
CSN_R101_GMACS = 56.468


@pytest.mark.parametrize("name", list(ANCHORS))
def test_parameter_counts_are_exact(name):
    with torch.device("meta"):
        assert count_params(VideoNet(get(name))) == ANCHORS[name]


@pytest.mark.parametrize("name", list(X3D_GMACS))
def test_x3d_macs_match_the_published_figures(name):
    assert profile.count_fast(get(name), DEFAULT_INPUT[name]).gmacs == pytest.approx(X3D_GMACS[name], abs=0.005)


def test_csn_r101_strides_time_in_its_last_stage():
    """ir-CSN-101 halves time in res3, res4 and res5 (32 -> 4 frames), as pytorchvideo's."""
    c = profile.count_fast(get("csn_r101"), DEFAULT_INPUT["csn_r101"])
    assert [s.out_shape[1] for s in c.stages[1:5]] == [32, 16, 8, 4]
    assert c.gmacs == pytest.approx(CSN_R101_GMACS, abs=0.0005)


@pytest.mark.parametrize("name", list(ANCHORS))
def test_shapes_at_the_presets_clip(name):
    c = profile.count_fast(get(name), DEFAULT_INPUT[name])  # meta device: full width, no arithmetic
    assert c.stages[-2].out_shape == LAST_STAGE[name]


@pytest.mark.parametrize("name", list(ANCHORS))
def test_fvcore_and_the_fast_counter_agree(name):
    """Full width at the preset's clip where fvcore's traced forward is cheap (X3D-S/M), width
    1/4 at the preset's clip otherwise (the same layer kinds: depthwise, SE, shift, head)."""
    g, clip = get(name), DEFAULT_INPUT[name]
    if name not in ("x3d_s", "x3d_m"):
        g = scale_widths(g, 0.25)
    fast, ref = profile.count_fast(g, clip), profile.count_fvcore(g, clip)
    assert (fast.params, fast.macs) == (ref.params, ref.macs)
    assert [(s.name, s.macs, s.params, s.out_shape) for s in fast.stages] == [
        (s.name, s.macs, s.params, s.out_shape) for s in ref.stages
    ]
    assert sum(s.macs for s in ref.stages) == ref.macs and sum(s.params for s in ref.stages) == ref.params


@pytest.mark.parametrize("name", list(ANCHORS))
@pytest.mark.parametrize("clip", ["preset", (8, 112, 112)])
def test_forward_at_reduced_width(name, clip):
    clip = DEFAULT_INPUT[name] if clip == "preset" else clip
    m = build(scale_widths(get(name, classes=5), 1 / 8)).eval()
    with torch.no_grad():
        y = m(torch.randn(1, 3, *clip))
    assert y.shape == (1, 5) and torch.isfinite(y).all()


def test_stride_field_moves_the_stride_to_the_middle():
    first, mid = build("DD|DD w=4,8 sw=4 t=-,c"), build("DD|DD w=4,8 sw=4 t=-,c sp=mid")
    b0, b1 = first.stages[1][0], mid.stages[1][0]
    assert b0.transform.a[0].stride == (2, 2, 2) and b0.transform.b.c[0].stride == (1, 1, 1)
    assert b1.transform.a[0].stride == (1, 1, 1) and b1.transform.b.c[0].stride == (2, 2, 2)
    assert b0.shortcut[0].stride == b1.shortcut[0].stride == (2, 2, 2)
    assert count_params(first) == count_params(mid)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert first.eval()(x).shape == mid.eval()(x).shape


def test_letters_build_what_they_say():
    net = build("DIFXYT w=8 sw=8 sp=mid")
    d, i, f, x, y, t = (b.transform for b in net.stages[0])
    assert d.b.c[0].groups == 8 and d.b.c[0].kernel_size == (3, 3, 3)  # ir-CSN: depthwise 3x3x3
    assert i.a[0].kernel_size == (3, 1, 1) and i.a[0].padding == (1, 0, 0)  # Slow: 3x1x1 first conv
    assert i.b.s[0].kernel_size == (1, 3, 3)
    assert [f.b.t[0].kernel_size, f.b.s[0].kernel_size] == [(3, 1, 1), (1, 3, 3)]  # temporal first
    assert f.b.t[0].out_channels == 8  # (2+1)D bottleneck: no mid-planes formula
    assert any(isinstance(m, blocks.SqueezeExcite) for m in x.b.modules())
    assert not any(isinstance(m, blocks.SqueezeExcite) for m in y.b.modules())
    assert any(isinstance(m, nn.SiLU) for m in x.b.modules())
    assert isinstance(t.shift, blocks.TemporalShift)
    plain = build("DIFXY2 w=8 sw=8 sp=mid").stages[0][5].transform
    assert count_params(t) == count_params(plain)  # the shift has no parameters


def test_temporal_shift_moves_an_eighth_each_way_and_costs_nothing():
    x = torch.arange(16 * 4, dtype=torch.float32).reshape(1, 16, 4, 1, 1)
    y = blocks.TemporalShift()(x)
    assert torch.equal(y[:, :2, :3], x[:, :2, 1:]) and (y[:, :2, 3] == 0).all()  # channels 0-1: from t+1
    assert torch.equal(y[:, 2:4, 1:], x[:, 2:4, :3]) and (y[:, 2:4, 0] == 0).all()  # channels 2-3: from t-1
    assert torch.equal(y[:, 4:], x[:, 4:])
    shifted, plain = parse("TT|T w=8,16 sw=8"), parse("22|2 w=8,16 sw=8")
    assert profile.count_fast(shifted, (4, 32, 32)).macs == profile.count_fast(plain, (4, 32, 32)).macs
    assert profile.count_fvcore(shifted, (4, 32, 32)).macs == profile.count_fast(plain, (4, 32, 32)).macs


def test_x3d_rules_squeeze_width_and_shortcut_norm():
    assert [blocks.se_width(c) for c in (54, 108, 216, 432)] == [8, 8, 16, 32]  # pytorchvideo round_width
    net = build("x3d_s")
    s1 = net.stages[0][0]  # 24 -> 24 with stride 2: a bare conv (no BN), as pytorchvideo
    assert len(s1.shortcut) == 1 and isinstance(s1.shortcut[0], nn.Conv3d)
    assert isinstance(net.stages[1][0].shortcut[1], nn.BatchNorm3d)  # 24 -> 48: conv + BN
    assert [type(m) for m in net.stem] == [nn.Conv3d, nn.Conv3d, nn.BatchNorm3d, nn.ReLU]
    assert net.stem[1].groups == 24 and net.stem[1].kernel_size == (5, 1, 1)
    assert net.neck[0].out_channels == 432 and net.post[0].out_features == 2048 and net.fc.in_features == 2048


def test_expansion_field_sets_the_output_width():
    g = parse("XY|X w=54,108 sw=24 ex=2.25")
    net = build(g)
    assert net.stages[0][0].transform.c[0].out_channels == 24 and net.fc.in_features == 48
    assert str(g) == "XY|X sw=24 w=54,108 ex=2.25"
