"""Plain reference implementations of every preset: the test oracle of archlab's builder.

Written the way one writes a network from the paper: explicit Conv3d/BatchNorm3d/ReLU in
nn.Sequential, one Bottleneck class with an if per letter, no registry. Parameters are
registered in the same order as archlab's, so state dicts map position by position
(``load_reference_weights`` checks every shape; tests check the outputs agree). The
pytorchvideo-style family (CSN, Slow, R(2+1)D-50, TSM, X3D) is in ``reference_pv.py``. The
benchmark ``python -m archlab.bench reference`` times archlab against them.

An oracle, not product code: nothing ``archlab`` runs imports it (tests/test_imports.py).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..model.builder import build
from ..model.genome import scale_widths
from ..model.presets import get as get_preset
from .reference_pv import PV_MODELS, RefPVNet


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so a wrong weight mapping or a wrong
    fusion cannot hide behind BN's identity initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def _conv_bn(
    cin: int, cout: int, k: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1), relu: bool = True
) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv3d(cin, cout, k, stride, tuple(i // 2 for i in k), bias=False),
        nn.BatchNorm3d(cout),
    ]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


def _tpool(
    x: torch.Tensor,
    k: tuple[int, int, int],
    s: tuple[int, int, int],
    pad: tuple[int, int, int] = (0, 0, 0),
    ceil: bool = False,
) -> torch.Tensor:
    """max_pool3d whose temporal kernel is clamped to the clip length (so 8-frame clips pass)."""
    t = x.shape[2]
    kt, st = min(k[0], t), (s[0] if t > 1 else 1)
    if (kt, k[1], k[2]) == (1, 1, 1):
        return x
    return F.max_pool3d(x, (kt, k[1], k[2]), (st, s[1], s[2]), pad, ceil_mode=ceil)


class RefBottleneck(nn.Module):
    def __init__(self, kind: str, cin: int, planes: int, stride: int, cw: float = 1.0):
        super().__init__()
        self.kind, self.cw = kind, cw
        p = planes
        self.conv1 = nn.Sequential(*_conv_bn(cin, p, (1, 1, 1), (1, stride, stride)))
        if kind == "2":
            self.conv2 = nn.Sequential(*_conv_bn(p, p, (1, 3, 3)))
        else:
            self.conv2_s = nn.Sequential(*_conv_bn(p, p, (1, 3, 3)))
            self.conv2_t = nn.Sequential(*_conv_bn(p, p, (3, 1, 1), relu=(kind == "A")))
        self.conv3 = nn.Sequential(*_conv_bn(p, 4 * p, (1, 1, 1), relu=False))
        self.downsample = None
        if cin != 4 * p or stride != 1:
            self.downsample = nn.Sequential(*_conv_bn(cin, 4 * p, (1, 1, 1), (1, stride, stride), relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.kind == "2":
            out = self.conv2(out)
        elif self.kind == "A":
            out = self.conv2_t(self.conv2_s(out))
        elif self.kind == "B":
            out = F.relu(self.conv2_s(out) + self.conv2_t(out))
        else:  # C (official Caffe: cw = 0.5, ReLU(0.5 s + 0.5 T(s)))
            s = self.conv2_s(out)
            out = F.relu(s + self.conv2_t(s)) if self.cw == 1.0 else F.relu(self.cw * s + self.cw * self.conv2_t(s))
        out = self.conv3(out)
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(out + res)


class RefP3D(nn.Module):
    """The official P3D ResNet layout (bottleneck blocks of the given kinds per res stage, 2D
    res5 in the presets, temporal max pools before res3-res5), written out plainly: P3D-63 is
    ``layers=("ABC", "ABCA", "BCABCA", "222")``; P3D-131/199, the pure P3D-A/B/C-50 and C2D-50
    differ only in ``layers``. ``width`` scales every width (rounded). ``caffe``: the official
    Caffe pooling (pad 0, ceil rounding); ``cw``: P3D-C's sum weights (0.5 officially)."""

    def __init__(
        self,
        layers: Sequence[str] = ("ABC", "ABCA", "BCABCA", "222"),
        num_classes: int = 400,
        width: float = 1.0,
        dropout: float = 0.5,
        caffe: bool = False,
        cw: float = 1.0,
    ):
        super().__init__()
        self.LAYERS, self.caffe = tuple(layers), caffe
        w = lambda c: max(1, int(round(c * width)))  # noqa: E731
        self.stem = nn.Sequential(*_conv_bn(3, w(64), (1, 7, 7), (1, 2, 2)))
        self.stem[0].padding = (0, 3, 3)
        cin, layers = w(64), []
        for i, (kinds, planes) in enumerate(zip(self.LAYERS, (64, 128, 256, 512))):
            blocks = []
            for j, kind in enumerate(kinds):
                blocks.append(RefBottleneck(kind, cin, w(planes), 2 if (j == 0 and i > 0) else 1, cw))
                cin = 4 * w(planes)
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.caffe
        x = _tpool(self.stem(x), (2, 3, 3), (2, 2, 2), (0, 0, 0) if c else (0, 1, 1), c)
        x = self.layer1(x)
        x = self.layer2(_tpool(x, (2, 1, 1), (2, 1, 1), ceil=c))
        x = self.layer3(_tpool(x, (2, 1, 1), (2, 1, 1), ceil=c))
        x = self.layer4(_tpool(x, (2, 1, 1), (2, 1, 1), ceil=c))
        return self.fc(self.dropout(x.mean(dim=(2, 3, 4))))


def _conv2plus1d(cin: int, cout: int, mid: int, stride: int) -> nn.Sequential:
    """torchvision's Conv2Plus1D: (1x3x3 conv, BN, ReLU, 3x1x1 conv), one Sequential."""
    return nn.Sequential(
        *_conv_bn(cin, mid, (1, 3, 3), (1, stride, stride)),
        nn.Conv3d(mid, cout, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
    )


class RefR21Basic(nn.Module):
    """torchvision's BasicBlock with Conv2Plus1D convs: conv1 = (Conv2Plus1D, BN, ReLU),
    conv2 = (Conv2Plus1D, BN), torchvision's key names (``conv1.0.3.weight``...)."""

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        mid = (cin * planes * 27) // (cin * 9 + 3 * planes)
        self.conv1 = nn.Sequential(
            _conv2plus1d(cin, planes, mid, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(_conv2plus1d(planes, planes, mid, 1), nn.BatchNorm3d(planes))
        self.downsample = None
        if cin != planes or stride != 1:
            self.downsample = nn.Sequential(*_conv_bn(cin, planes, (1, 1, 1), (stride,) * 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + res)


class RefVideoResNet18(nn.Module):
    """torchvision's VideoResNet-18 layout: a stem, four layers of two basic blocks (widths
    64-512, spatial stride 2 from layer 2), global average pool, fc. ``block(cin, planes,
    stride, layer)`` builds one block, ``stem(sw)`` the stem; the subclasses below pick them."""

    def __init__(
        self,
        stem: Callable[[int], nn.Module],
        block: Callable[[int, int, int, int], nn.Module],
        num_classes: int = 400,
        width: float = 1.0,
    ):
        super().__init__()
        w = lambda c: max(1, int(round(c * width)))  # noqa: E731
        self.stem = stem(w(64))
        cin, layers = w(64), []
        for i, planes in enumerate((64, 128, 256, 512)):
            s = 1 if i == 0 else 2
            layers.append(nn.Sequential(block(cin, w(planes), s, i), block(w(planes), w(planes), 1, i)))
            cin = w(planes)
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(x.mean(dim=(2, 3, 4)))


def _stem(*convs: tuple[int, int, tuple[int, int, int], tuple[int, int, int]]) -> nn.Sequential:
    """conv-BN-ReLU layers (cin, cout, kernel, stride), each padded by kernel // 2."""
    return nn.Sequential(*[m for cin, cout, k, stride in convs for m in _conv_bn(cin, cout, k, stride)])


class RefR2Plus1D18(RefVideoResNet18):
    """torchvision's r2plus1d_18: R(2+1)D stem 3->45->64, (2+1)D basic blocks, temporal stride
    2 in layers 2-4, no dropout (archlab's preset has 0.0)."""

    def __init__(self, num_classes: int = 400, width: float = 1.0):
        super().__init__(
            lambda sw: _stem((3, sw * 45 // 64, (1, 7, 7), (1, 2, 2)), (sw * 45 // 64, sw, (3, 1, 1), (1, 1, 1))),
            lambda cin, planes, s, _i: RefR21Basic(cin, planes, s),
            num_classes,
            width,
        )


class RefBasic3D(nn.Module):
    """torchvision's BasicBlock with Conv3DSimple (3x3x3) or Conv3DNoTemporal (1x3x3) convs."""

    def __init__(self, cin: int, planes: int, stride: int, temporal: bool):
        super().__init__()
        k = (3, 3, 3) if temporal else (1, 3, 3)
        st = (stride, stride, stride) if temporal else (1, stride, stride)
        self.conv1 = nn.Sequential(*_conv_bn(cin, planes, k, st))
        self.conv2 = nn.Sequential(*_conv_bn(planes, planes, k, relu=False))
        self.downsample = None
        if cin != planes or stride != 1:
            self.downsample = nn.Sequential(*_conv_bn(cin, planes, (1, 1, 1), st, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv2(self.conv1(x)) + res)


class RefR3D18(RefVideoResNet18):
    """torchvision's r3d_18 (``temporal=(True,)*4``) and mc3_18 (3D in layer1 only, then 2D
    convs with spatial-only strides): stem 3x7x7 stride (1,2,2), no pooling."""

    def __init__(self, num_classes: int = 400, width: float = 1.0, temporal: Sequence[bool] = (True, True, True, True)):
        super().__init__(
            lambda sw: _stem((3, sw, (3, 7, 7), (1, 2, 2))),
            lambda cin, planes, s, i: RefBasic3D(cin, planes, s, temporal[i]),
            num_classes,
            width,
        )


def _ref_p3d(preset: str) -> Callable[..., nn.Module]:
    g = get_preset(preset)
    layers = tuple(g.letters.split("|"))
    return lambda num_classes=400, width=1.0: RefP3D(layers, num_classes, width, caffe=g.pool == "caffe", cw=g.cw)


def _ref_pv(model: str) -> Callable[..., nn.Module]:
    return lambda num_classes=400, width=1.0: RefPVNet(model, num_classes, width)


# One plain reference per preset: every preset has one, so "at least as fast as a
# straightforward implementation" is checked for all of them (python -m archlab.bench reference
# --models all).
REFERENCES: dict[str, Callable[..., nn.Module]] = {
    **{p: _ref_p3d(p) for p in ("p3d63", "p3d131", "p3d199", "p3d_a50", "p3d_b50", "p3d_c50", "c2d50")},
    "r3d_18": RefR3D18,
    "mc3_18": lambda num_classes=400, width=1.0: RefR3D18(num_classes, width, (True, False, False, False)),
    "r2plus1d_18": RefR2Plus1D18,
    **{p: _ref_pv(p) for p in PV_MODELS},
}


def load_reference_weights(ref: nn.Module, model: nn.Module) -> nn.Module:
    """Copy ``model``'s state dict (archlab) into ``ref`` position by position; every entry's
    shape must match (both define their layers in the same order)."""
    src, dst = model.state_dict(), ref.state_dict()
    if len(src) != len(dst):
        raise ValueError(f"state dicts differ in length: archlab {len(src)}, reference {len(dst)}")
    mapped = {}
    for (dk, dv), (sk, sv) in zip(dst.items(), src.items()):
        linear_as_conv = dv.dim() == 5 and sv.dim() == 2 and dv.shape[:2] == sv.shape  # X3D's post_conv
        if dv.shape != sv.shape and not linear_as_conv:
            raise ValueError(f"reference {dk} {tuple(dv.shape)} != archlab {sk} {tuple(sv.shape)}")
        mapped[dk] = sv.reshape(dv.shape)
    ref.load_state_dict(mapped)
    return ref


def archlab_and_reference(
    preset: str = "p3d63", width: float = 1.0, classes: int = 400, seed: int = 0
) -> tuple[nn.Module, nn.Module]:
    """archlab's built ``preset`` (width-scaled) and the plain reference, with the same weights
    (BN statistics randomised so the comparison is not trivial), both in eval mode."""
    g = get_preset(preset, classes)
    if width != 1.0:
        g = scale_widths(g, width)
    torch.manual_seed(seed)
    model = randomize_bn(build(g), seed).eval()
    ref = REFERENCES[preset](num_classes=classes, width=width).eval()
    return model, load_reference_weights(ref, model)


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
