"""The block library: a residual wrapper around named transforms (stems and pools: stems.py).

Modelled on PySlowFast's resnet_helper: ``ResBlock`` owns the shortcut, the residual add and
the final ReLU; a *transform* owns what happens inside. Transforms are looked up by genome
letter in ``TRANSFORMS``; a new block type is one class with ``@register("X")`` plus one row
in ``alphabet.LETTERS``.

P3D-A/B/C follow the official Caffe definition (see docs/anchors.md): bottleneck with the
spatial stride on the FIRST 1x1x1 conv (genome ``sp=first``), no conv biases, BN after every
conv, and ReLU placement  A: S-BN-ReLU-T-BN-ReLU;  B: ReLU(ReLU(BN(S x)) + BN(T x));
C: s = ReLU(BN(S x)); ReLU(cw*s + cw*BN(T s)) with cw = 0.5 in the official model (``cw=0.5``).

The rest of the factorised-3D-ResNet family lives here too, one middle per letter: ir-CSN (D),
Slow (I), pytorchvideo's R(2+1)D-50 (F), X3D (X, Y) and TSM (T). A letter class may declare
how it changes the bottleneck around its middle (class attributes ``first_kernel``, ``shift``,
``shortcut_norm``), so the block wrapper needs no per-letter branches.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def dwconv(c: int, kernel: Triple, stride: Triple = (1, 1, 1)) -> nn.Conv3d:
    """A depthwise (one filter per channel) bias-free conv with 'same' padding."""
    return nn.Conv3d(c, c, kernel, stride=stride, padding=tuple(k // 2 for k in kernel), groups=c, bias=False)


@dataclass(frozen=True)
class Rules:
    """Genome-wide rules a middle may read (fields of the genome, not of one block)."""

    cw: float = 1.0  # P3D-C's sum weights (genome cw=)


def r21_midplanes(cin: int, cout: int) -> int:
    """R(2+1)D's mid-planes: keeps the (2+1)D pair's parameters equal to a 3x3x3 conv's."""
    return (cin * cout * 27) // (cin * 9 + 3 * cout)


# ---- transforms: bottleneck middles -------------------------------------------------------
#
# A middle transform maps p -> p channels: ``Middle(p, stride, rules)``; ``stride`` is (1,1,1)
# unless the genome puts the stage's stride on the middle (sp=mid). A basic-family transform maps cin -> cout with a stride and ends WITHOUT a
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

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        self.s = SpatialConv(p, p, (1, stride[1], stride[2]))
        self.t = TemporalConv(p, p, (stride[0], 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.t(self.s(x))


@register("B")
class P3DB(nn.Module):
    """P3D-B: spatial and temporal convs see the same input; their outputs are summed."""

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        self.s = SpatialConv(p, p, stride)
        self.t = TemporalConv(p, p, stride, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.s(x) + self.t(x))


@register("C")
class P3DC(nn.Module):
    """P3D-C: the temporal conv of S is added back to S (a residual inside the middle), both
    weighted by ``rules.cw`` (the official Caffe Eltwise: coeff 0.5, 0.5)."""

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        self.s = SpatialConv(p, p, stride)
        self.t = TemporalConv(p, p, relu=False)
        self.cw = float(rules.cw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.s(x)
        if self.cw == 1.0:  # the original rule, computed exactly as before
            return F.relu(s + self.t(s))
        return F.relu(self.cw * s + self.cw * self.t(s))


@register("2")
class Plain2D(nn.Module):
    """2D: a 1x3x3 middle; no mixing across frames."""

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        self.s = SpatialConv(p, p, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s(x)


@register("3")
class Full3D(nn.Module):
    """3D: a full 3x3x3 middle (C3D / I3D style)."""

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        self.c = FullConv(p, p, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x)


@register("R")
class R21(nn.Module):
    """(2+1)D: 1x3x3 then 3x1x1 with R(2+1)D's mid-planes (parameter-matched to 3x3x3)."""

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        self.c = R21Conv(p, p, r21_midplanes(p, p), stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x)


@register("F")
class R21Bottleneck(nn.Module):
    """pytorchvideo's R(2+1)D-50 middle: 3x1x1 (temporal stride) BN ReLU, then 1x3x3 (spatial
    stride) BN ReLU, both p wide (no mid-planes formula: the bottleneck is already narrow)."""

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        self.t = TemporalConv(p, p, (stride[0], 1, 1))
        self.s = SpatialConv(p, p, (1, stride[1], stride[2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s(self.t(x))


@register("D")
class ChannelSeparated(nn.Module):
    """ir-CSN (Tran et al., ICCV 2019): the 3x3x3 middle made depthwise; the 1x1x1 convs
    around it do all the channel mixing. Few MACs, but memory-bound on most backends."""

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        self.c = nn.Sequential(dwconv(p, (3, 3, 3), stride), bn(p), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x)


@register("I")
class Inflated(Plain2D):
    """Slow pathway / I3D-style inflation (SlowFast's res4-res5): the bottleneck's FIRST conv is
    3x1x1, the middle stays 1x3x3."""

    first_kernel: Triple = (3, 1, 1)


@register("T")
class TemporalShiftBlock(Plain2D):
    """TSM (Lin et al., ICCV 2019): a 2D bottleneck whose residual branch starts with a
    zero-parameter, zero-MAC shift of 1/8 of the channels one frame back and 1/8 forward."""

    shift: bool = True


def se_width(c: int, ratio: float = 0.0625, divisor: int = 8) -> int:
    """X3D's squeeze-excitation width: ratio * c rounded to a multiple of 8 (at least 8, and
    not below 90% of the exact value), as pytorchvideo's round_width."""
    w = c * ratio
    out = max(divisor, int(w + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * w else out


class SqueezeExcite(nn.Module):
    """Squeeze-excitation (Hu et al.): x * sigmoid(conv(relu(conv(avgpool(x))))), convs 1x1x1 with bias."""

    def __init__(self, c: int, reduced: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc1 = nn.Conv3d(c, reduced, 1, bias=True)
        self.fc2 = nn.Conv3d(reduced, c, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(self.pool(x)))))


@register("X")
class X3DMiddle(nn.Module):
    """X3D (Feichtenhofer, CVPR 2020): depthwise 3x3x3, BN, squeeze-excitation, swish. X3D's
    shortcut normalises only where the channel count changes (a stride-only projection is a
    bare conv), as pytorchvideo's create_x3d_res_block."""

    shortcut_norm: str = "channels"
    use_se: bool = True

    def __init__(self, p: int, stride: Triple = (1, 1, 1), rules: Rules = Rules()):
        super().__init__()
        layers: list[nn.Module] = [dwconv(p, (3, 3, 3), stride), bn(p)]
        if self.use_se:
            layers.append(SqueezeExcite(p, se_width(p)))
        layers.append(nn.SiLU(inplace=True))
        self.c = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x)


@register("Y")
class X3DMiddleNoSE(X3DMiddle):
    """X3D's other blocks: the same middle without squeeze-excitation (X3D alternates X, Y)."""

    use_se = False


class TemporalShift(nn.Module):
    """Shift channels [0, c/8) one frame towards the past and [c/8, c/4) one towards the future,
    zero-filled at the clip's ends (TSM's bidirectional shift, fold_div 8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fold = x.shape[1] // 8
        if fold == 0:
            return x
        back = F.pad(x[:, :fold, 1:], (0, 0, 0, 0, 0, 1))
        fwd = F.pad(x[:, fold : 2 * fold, :-1], (0, 0, 0, 0, 1, 0))
        return torch.cat([back, fwd, x[:, 2 * fold :]], 1)


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
    """[shift] -> first conv (1x1x1, or the letter's first_kernel) -> letter middle -> 1x1x1 to
    ``cout`` (+BN). The stride sits on the first conv (sp=first, official P3D) or on the middle
    (sp=mid)."""

    def __init__(
        self,
        letter: str,
        cin: int,
        planes: int,
        stride: Triple,
        cout: int | None = None,
        stride_at: str = "first",
        rules: Rules = Rules(),
    ):
        super().__init__()
        Middle = TRANSFORMS[letter]
        cout = planes * EXPANSION["bottleneck"] if cout is None else cout
        first, mid = (stride, (1, 1, 1)) if stride_at == "first" else ((1, 1, 1), stride)
        self.shift: nn.Module = TemporalShift() if getattr(Middle, "shift", False) else nn.Identity()
        self.a = nn.Sequential(
            conv(cin, planes, getattr(Middle, "first_kernel", (1, 1, 1)), first), bn(planes), nn.ReLU(inplace=True)
        )
        self.b = Middle(planes, mid, rules)
        self.c = nn.Sequential(conv(planes, cout, (1, 1, 1)), bn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(self.b(self.a(self.shift(x))))


class BasicTransform(nn.Module):
    def __init__(
        self,
        letter: str,
        cin: int,
        planes: int,
        stride: Triple,
        cout: int | None = None,
        stride_at: str = "first",
        rules: Rules = Rules(),
    ):
        super().__init__()
        self.a, self.b = basic_convs(letter, cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class ResBlock(nn.Module):
    """Residual wrapper: ReLU(transform(x) + shortcut(x)); a 1x1x1 projection where shapes change."""

    def __init__(
        self,
        letter: str,
        family: str,
        cin: int,
        planes: int,
        stride: Triple,
        *,
        cout: int | None = None,
        stride_at: str = "first",
        rules: Rules = Rules(),
    ):
        super().__init__()
        self.letter = letter
        cout = planes * EXPANSION[family] if cout is None else cout
        Transform = BottleneckTransform if family == "bottleneck" else BasicTransform
        self.transform = Transform(letter, cin, planes, stride, cout, stride_at, rules)
        self.shortcut: nn.Module = nn.Identity()
        if cin != cout or stride != (1, 1, 1):
            norm = (
                family != "bottleneck"
                or getattr(TRANSFORMS[letter], "shortcut_norm", "always") == "always"
                or cin != cout
            )
            self.shortcut = nn.Sequential(conv(cin, cout, (1, 1, 1), stride), *([bn(cout)] if norm else []))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.transform(x) + self.shortcut(x))

    def zero_init_last_bn(self) -> None:
        """Start the block as identity: the last BN of the residual branch gets gamma = 0."""
        last = [m for m in self.transform.modules() if isinstance(m, nn.BatchNorm3d)][-1]
        nn.init.zeros_(last.weight)
