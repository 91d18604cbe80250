"""The block library: a residual wrapper around named transforms, plus stems.

Modelled on PySlowFast's resnet_helper: ``ResBlock`` owns the shortcut, the residual add and
the final ReLU; a *transform* owns what happens inside. Transforms are looked up by genome
letter in ``TRANSFORMS``; a new block type is one class with ``@register("X")`` plus one row
in ``genome.LETTERS``.

P3D-A/B/C follow the official Caffe definition (see shared/ANCHORS.md): bottleneck with the
spatial stride on the FIRST 1x1x1 conv, no conv biases, BN after every conv, and ReLU
placement  A: S-BN-ReLU-T-BN-ReLU;  B: ReLU(ReLU(BN(S x)) + BN(T x));
C: s = ReLU(BN(S x)); ReLU(s + BN(T s)).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .genome import EXPANSION

Triple = tuple[int, int, int]


def conv(cin: int, cout: int, kernel: Triple, stride: Triple = (1, 1, 1)) -> nn.Conv3d:
    """A bias-free conv with 'same' padding: every conv in these networks is followed by BN."""
    pad = tuple(k // 2 for k in kernel)
    return nn.Conv3d(cin, cout, kernel, stride=stride, padding=pad, bias=False)


def bn(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c)


def r21_midplanes(cin: int, cout: int) -> int:
    """R(2+1)D's mid-planes: keeps the (2+1)D pair's parameters equal to a 3x3x3 conv's."""
    return (cin * cout * 27) // (cin * 9 + 3 * cout)


# ---- transforms: bottleneck middles -------------------------------------------------------
#
# A middle transform maps p -> p channels at stride 1 (the bottleneck strides its first
# 1x1x1 conv). A basic-family transform maps cin -> cout with a stride and ends WITHOUT a
# final ReLU on its second conv (the ResBlock adds and applies it).

TRANSFORMS: dict[str, type[nn.Module]] = {}


def register(letter: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if letter in TRANSFORMS:
            raise ValueError(f"block letter {letter!r} registered twice")
        TRANSFORMS[letter] = cls
        return cls

    return deco


class SpatialConv(nn.Sequential):
    """S: 1x3x3 conv + BN (+ ReLU), the 2D part of every factorised block."""

    def __init__(self, cin: int, cout: int, stride: Triple = (1, 1, 1), relu: bool = True):
        layers: list[nn.Module] = [conv(cin, cout, (1, 3, 3), stride), bn(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class TemporalConv(nn.Sequential):
    """T: 3x1x1 conv + BN (+ ReLU)."""

    def __init__(self, cin: int, cout: int, stride: Triple = (1, 1, 1), relu: bool = True):
        layers: list[nn.Module] = [conv(cin, cout, (3, 1, 1), stride), bn(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class FullConv(nn.Sequential):
    """3x3x3 conv + BN (+ ReLU)."""

    def __init__(self, cin: int, cout: int, stride: Triple = (1, 1, 1), relu: bool = True):
        layers: list[nn.Module] = [conv(cin, cout, (3, 3, 3), stride), bn(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class R21Conv(nn.Sequential):
    """(2+1)D: 1x3x3 (cin->mid, spatial stride) BN ReLU, 3x1x1 (mid->cout, temporal stride) BN."""

    def __init__(self, cin: int, cout: int, mid: int, stride: Triple = (1, 1, 1), relu: bool = True):
        st, ss = stride[0], stride[1]
        super().__init__(
            SpatialConv(cin, mid, (1, ss, ss)),
            TemporalConv(mid, cout, (st, 1, 1), relu=relu),
        )


@register("A")
class P3DA(nn.Module):
    """P3D-A: the temporal conv follows the spatial conv (cascade)."""

    def __init__(self, p: int):
        super().__init__()
        self.s = SpatialConv(p, p)
        self.t = TemporalConv(p, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.t(self.s(x))


@register("B")
class P3DB(nn.Module):
    """P3D-B: spatial and temporal convs see the same input; their outputs are summed."""

    def __init__(self, p: int):
        super().__init__()
        self.s = SpatialConv(p, p)
        self.t = TemporalConv(p, p, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.s(x) + self.t(x))


@register("C")
class P3DC(nn.Module):
    """P3D-C: the temporal conv of S is added back to S (a residual inside the middle)."""

    def __init__(self, p: int):
        super().__init__()
        self.s = SpatialConv(p, p)
        self.t = TemporalConv(p, p, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.s(x)
        return F.relu(s + self.t(s))


@register("2")
class Plain2D(nn.Module):
    """2D: a 1x3x3 middle; no mixing across frames."""

    def __init__(self, p: int):
        super().__init__()
        self.s = SpatialConv(p, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s(x)


@register("3")
class Full3D(nn.Module):
    """3D: a full 3x3x3 middle (C3D / I3D style)."""

    def __init__(self, p: int):
        super().__init__()
        self.c = FullConv(p, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x)


@register("R")
class R21(nn.Module):
    """(2+1)D: 1x3x3 then 3x1x1 with R(2+1)D's mid-planes (parameter-matched to 3x3x3)."""

    def __init__(self, p: int):
        super().__init__()
        self.c = R21Conv(p, p, r21_midplanes(p, p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x)


# ---- the basic family: the letter decides the kind of both 3x3 convs ----------------------

def basic_convs(letter: str, cin: int, cout: int, stride: Triple) -> tuple[nn.Module, nn.Module]:
    """The two convs of a torchvision-style BasicBlock (conv1 with ReLU, conv2 without)."""
    if letter == "3":
        return FullConv(cin, cout, stride), FullConv(cout, cout, relu=False)
    if letter == "2":
        return SpatialConv(cin, cout, stride), SpatialConv(cout, cout, relu=False)
    if letter == "R":
        mid = r21_midplanes(cin, cout)  # once per block, from (inplanes, planes), as torchvision
        return R21Conv(cin, cout, mid, stride), R21Conv(cout, cout, mid, relu=False)
    raise ValueError(f"block letter {letter!r} has no basic-family form")


class BottleneckTransform(nn.Module):
    """1x1x1 (stride here, as the official P3D) -> letter middle -> 1x1x1 expand (+BN)."""

    def __init__(self, letter: str, cin: int, planes: int, stride: Triple):
        super().__init__()
        self.a = nn.Sequential(conv(cin, planes, (1, 1, 1), stride), bn(planes), nn.ReLU(inplace=True))
        self.b = TRANSFORMS[letter](planes)
        self.c = nn.Sequential(conv(planes, planes * EXPANSION["bottleneck"], (1, 1, 1)),
                               bn(planes * EXPANSION["bottleneck"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(self.b(self.a(x)))


class BasicTransform(nn.Module):
    def __init__(self, letter: str, cin: int, planes: int, stride: Triple):
        super().__init__()
        self.a, self.b = basic_convs(letter, cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class ResBlock(nn.Module):
    """Residual wrapper: ReLU(transform(x) + shortcut(x)); a 1x1x1 projection where shapes change."""

    def __init__(self, letter: str, family: str, cin: int, planes: int, stride: Triple):
        super().__init__()
        self.letter = letter
        cout = planes * EXPANSION[family]
        Transform = BottleneckTransform if family == "bottleneck" else BasicTransform
        self.transform = Transform(letter, cin, planes, stride)
        self.shortcut: nn.Module = nn.Identity()
        if cin != cout or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(conv(cin, cout, (1, 1, 1), stride), bn(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.transform(x) + self.shortcut(x))

    def zero_init_last_bn(self) -> None:
        """Start the block as identity: the last BN of the residual branch gets gamma = 0."""
        last = [m for m in self.transform.modules() if isinstance(m, nn.BatchNorm3d)][-1]
        nn.init.zeros_(last.weight)


# ---- stems and pooling -----------------------------------------------------------------

class Stem(nn.Sequential):
    """Stem conv(s) + BN + ReLU, stride (1,2,2); optional max pool."""

    def __init__(self, kind: str, width: int, pool: str, cin: int = 3):
        layers: list[nn.Module]
        if kind == "2d":
            layers = [conv(cin, width, (1, 7, 7), (1, 2, 2)), bn(width), nn.ReLU(inplace=True)]
        elif kind == "3d":
            layers = [conv(cin, width, (3, 7, 7), (1, 2, 2)), bn(width), nn.ReLU(inplace=True)]
        elif kind == "r21":
            mid = width * 45 // 64  # torchvision's R(2+1)D stem: 3 -> 45 -> 64
            layers = [conv(cin, mid, (1, 7, 7), (1, 2, 2)), bn(mid), nn.ReLU(inplace=True),
                      conv(mid, width, (3, 1, 1)), bn(width), nn.ReLU(inplace=True)]
        else:
            raise ValueError(f"unknown stem {kind!r}")
        if pool == "ts":
            layers.append(ClampedMaxPool((2, 3, 3), (2, 2, 2), (0, 1, 1)))
        elif pool == "s":
            layers.append(ClampedMaxPool((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        super().__init__(*layers)


class ClampedMaxPool(nn.Module):
    """Max pool whose temporal kernel shrinks to the clip length, so short clips (T=1) pass.

    The official P3D pools time by 2 four times (16 -> 1); an 8-frame clip would otherwise
    hit T=0. Floor mode, with spatial padding 1, keeps the sizes of PyTorch's ResNets
    (80 -> 40, 56 -> 28).
    """

    def __init__(self, kernel: Triple, stride: Triple, padding: Triple = (0, 0, 0)):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        kt = min(self.kernel[0], t)
        st = self.stride[0] if t > 1 else 1
        if (kt, self.kernel[1], self.kernel[2]) == (1, 1, 1):
            return x
        return F.max_pool3d(x, (kt, self.kernel[1], self.kernel[2]), (st, self.stride[1], self.stride[2]),
                            self.padding)


def temporal_pool() -> ClampedMaxPool:
    return ClampedMaxPool((2, 1, 1), (2, 1, 1))
