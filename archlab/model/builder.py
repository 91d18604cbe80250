"""Genome -> nn.Module.

The network is stem -> stages -> head. Each stage is an ``nn.Sequential`` of ``ResBlock``s,
preceded by a temporal max pool where the genome says ``t=p``. The head pools adaptively,
so any sensible clip size (8x112x112 ... 32x224x224) passes through the same network.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .blocks import ResBlock, Rules, bn, conv
from .genome import X3D_HEAD_WIDTH, Genome, stage_out
from .stems import Stem, temporal_pool


class VideoNet(nn.Module):
    """A video ResNet assembled from a genome; ``stages[i]`` is genome stage i+1."""

    def __init__(self, genome: Genome):
        super().__init__()
        self.genome_string = str(genome)
        self.stem = Stem(genome.stem, genome.stem_width, genome.stem_pool, rule=genome.pool)
        stages: list[nn.Module] = []
        cin = genome.stem_width
        rules = Rules(cw=genome.cw)
        for s in genome.stages:
            blocks: list[nn.Module] = []
            if s.temporal == "p":
                blocks.append(temporal_pool(genome.pool))
            cout = stage_out(genome, s.width)
            for j, letter in enumerate(s.letters):
                first = j == 0
                stride = (2 if (first and s.temporal == "c") else 1, s.stride if first else 1, s.stride if first else 1)
                blocks.append(
                    ResBlock(
                        letter, genome.family, cin, s.width, stride, cout=cout, stride_at=genome.stride_at, rules=rules
                    )
                )
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        # The head: ``neck`` before the global pool and ``post`` after it are identities for
        # head=fc (so older networks keep their modules and state dicts); X3D's head projects to
        # the last stage's inner width before pooling and lifts to 2048 after it.
        self.neck: nn.Module = nn.Identity()
        self.post: nn.Module = nn.Identity()
        if genome.head == "x3d":
            inner = genome.stages[-1].width
            self.neck = nn.Sequential(conv(cin, inner, (1, 1, 1)), bn(inner), nn.ReLU(inplace=True))
            self.post = nn.Sequential(nn.Linear(inner, X3D_HEAD_WIDTH, bias=False), nn.ReLU(inplace=True))
            cin = X3D_HEAD_WIDTH
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(genome.dropout)
        self.fc = nn.Linear(cin, genome.classes)
        self.num_features = cin

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.post(self.pool(self.neck(self.features(x))).flatten(1))
        return self.fc(self.dropout(x))


def init_weights(model: nn.Module, zero_init_last_bn: bool = False) -> None:
    """Kaiming-normal convs (fan-out, ReLU), BN at 1/0, small normal fc, as ResNets train."""
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:  # squeeze-excitation's convs
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if zero_init_last_bn:
        for m in model.modules():
            if isinstance(m, ResBlock):
                m.zero_init_last_bn()


def build(genome: Genome | str, *, zero_init_last_bn: bool = False) -> VideoNet:
    """Build the network for a genome (or genome string / preset name), freshly initialised."""
    if isinstance(genome, str):
        from .presets import resolve

        genome = resolve(genome)
    model = VideoNet(genome)
    init_weights(model, zero_init_last_bn)
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fuse_bn(model: nn.Module) -> nn.Module:
    """The inference form of a network: an eval-mode copy with every BatchNorm3d that directly
    follows a Conv3d in an ``nn.Sequential`` folded into the conv (weight scaled, bias added;
    BN -> Identity). Same outputs up to float rounding, one memory pass less per conv: what a
    deployed network runs (onnxruntime folds BN the same way), so latency is measured on it.
    Inference only; the original is left as it was."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for m in list(model.modules()):
        if not isinstance(m, nn.Sequential):
            continue
        for i in range(len(m) - 1):
            if isinstance(m[i], nn.Conv3d) and isinstance(m[i + 1], nn.BatchNorm3d):
                m[i] = fuse_conv_bn_eval(m[i], m[i + 1])
                m[i + 1] = nn.Identity()
    return model
