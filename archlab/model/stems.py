"""Stems and pooling: what comes before and between the residual stages (``builder`` places
them). Apart from ``blocks.py`` because they are not residual blocks and take no letter; the
pooling rule (genome ``pool=``) is PyTorch's (pad 1, floor) or the official Caffe one (pad 0,
ceil).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Triple, bn, conv, dwconv


class Stem(nn.Sequential):
    """Stem conv(s) + BN + ReLU, stride (1,2,2); optional max pool."""

    def __init__(self, kind: str, width: int, pool: str, cin: int = 3, rule: str = "torch"):
        layers: list[nn.Module]
        if kind == "2d":
            layers = [conv(cin, width, (1, 7, 7), (1, 2, 2)), bn(width), nn.ReLU(inplace=True)]
        elif kind == "3d":
            layers = [conv(cin, width, (3, 7, 7), (1, 2, 2)), bn(width), nn.ReLU(inplace=True)]
        elif kind == "r21":
            mid = width * 45 // 64  # torchvision's R(2+1)D stem: 3 -> 45 -> 64
            layers = [
                conv(cin, mid, (1, 7, 7), (1, 2, 2)),
                bn(mid),
                nn.ReLU(inplace=True),
                conv(mid, width, (3, 1, 1)),
                bn(width),
                nn.ReLU(inplace=True),
            ]
        elif kind == "x3d":  # pytorchvideo's create_x3d_stem: no BN between the two convs
            layers = [
                conv(cin, width, (1, 3, 3), (1, 2, 2)),
                dwconv(width, (5, 1, 1)),
                bn(width),
                nn.ReLU(inplace=True),
            ]
        else:
            raise ValueError(f"unknown stem {kind!r}")
        caffe = rule == "caffe"  # Caffe: no padding, ceil rounding (windows at 0, 2, 4...)
        pad = (0, 0, 0) if caffe else (0, 1, 1)
        if pool == "ts":
            layers.append(ClampedMaxPool((2, 3, 3), (2, 2, 2), pad, ceil=caffe))
        elif pool == "s":
            layers.append(ClampedMaxPool((1, 3, 3), (1, 2, 2), pad, ceil=caffe))
        super().__init__(*layers)


class ClampedMaxPool(nn.Module):
    """Max pool whose temporal kernel shrinks to the clip length, so short clips (T=1) pass.

    The official P3D pools time by 2 four times (16 -> 1); an 8-frame clip would otherwise
    hit T=0. Floor mode, with spatial padding 1, keeps the sizes of PyTorch's ResNets
    (80 -> 40, 56 -> 28). ``ceil``: Caffe's rounding (with padding 0: the same sizes at the
    official clip, windows starting at 0 instead of -1).
    """

    def __init__(self, kernel: Triple, stride: Triple, padding: Triple = (0, 0, 0), ceil: bool = False):
        super().__init__()
        self.kernel, self.stride, self.padding, self.ceil = kernel, stride, padding, ceil

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[2]
        kt = min(self.kernel[0], t)
        st = self.stride[0] if t > 1 else 1
        if (kt, self.kernel[1], self.kernel[2]) == (1, 1, 1):
            return x
        return F.max_pool3d(
            x,
            (kt, self.kernel[1], self.kernel[2]),
            (st, self.stride[1], self.stride[2]),
            self.padding,
            ceil_mode=self.ceil,
        )


def temporal_pool(rule: str = "torch") -> ClampedMaxPool:
    return ClampedMaxPool((2, 1, 1), (2, 1, 1), ceil=rule == "caffe")
