"""A 2D ImageNet ResNet written as torchvision's ``resnet50/101/152`` (ResNet v1.5: stride on
the 3x3 conv), with torchvision's key names: the oracle of ``import-weights --imagenet``.

torchvision's wheel does not import beside the CPU build of torch, so the default tests use
this network; tests/test_zoo_libraries.py checks its key names and outputs against
torchvision's own ``resnet50`` where torchvision can be imported. An oracle, not product code.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}


class Bottleneck2D(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = None
        if stride != 1 or cin != 4 * planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, 4 * planes, 1, stride, bias=False), nn.BatchNorm2d(4 * planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet2D(nn.Module):
    """conv1 7x7/2, bn1, ReLU, max pool 3x3/2, four stages of bottlenecks, global average, fc."""

    def __init__(self, depths: Sequence[int] = DEPTHS["resnet50"], num_classes: int = 1000, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for i, d in enumerate(depths):
            planes = width * 2**i
            blocks = []
            for j in range(d):
                blocks.append(Bottleneck2D(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = 4 * planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.n_layers = len(depths)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for i in range(self.n_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(x.mean(dim=(2, 3)))


def randomize_bn2d(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters (a wrong mapping cannot hide)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def per_frame(model: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    """A 2D network on every frame of a (N, C, T, H, W) clip, its logits averaged over frames."""
    n, c, t, h, w = clip.shape
    frames = clip.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
    return model(frames).reshape(n, t, -1).mean(1)
