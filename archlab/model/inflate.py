"""A 2D ImageNet ResNet's weights inflated into a video genome with the same skeleton.

The 2D network is a bottleneck ResNet state dict with torchvision's key names (``conv1``,
``bn1``, ``layer{i}.{j}.conv1..conv3``/``bn1..bn3``/``downsample``, ``fc``); timm's ResNets
(resnet50/101/152) use the same names. The genome must have its skeleton: stem width, stage
count, depths, widths, bottleneck. The rules are chosen so that every block computes its 2D
parent on each frame at step 0 (P3D's argument for factorising: S convs are 2D convs), and
are listed in docs/guide/weights.md:

- every 1xkxk and 1x1x1 conv takes the 2D kernel as it is; BN statistics and affine
  parameters are copied; the fc is copied when the class count matches;
- a 3x7x7 stem, a full 3x3x3 middle (``3``) and Slow's 3x1x1 first conv (``I``) get mean
  inflation (the kernel / T at each of T taps, as SlowFast's and mmaction2's ``inflate``);
- a serial temporal conv (``A`` after S, ``F`` before S) becomes the identity (``dirac_``)
  and the BN after it passes values through (mean 0, var 1 - eps, gamma 1, beta 0);
- a parallel temporal branch (``B``, ``C``) ends in a BN with gamma 0, so it adds zero; a
  ``cw`` other than 1 is undone by scaling the block's last 1x1x1 conv by 1 / cw;
- ``T`` (TSM) copies the 2D weights, as TSM does: its shift moves 1/4 of the channels, so it
  is the 2D block only on a static clip;
- ``R``, ``D``, ``X``, ``Y`` are refused (``REFUSED`` says why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from ..util.errors import UserError
from .blocks import ResBlock
from .builder import VideoNet, build
from .genome import Genome, stage_out

REFUSED = {
    "R": "(2+1)D's middle is 2.25x wider than the 2D 3x3 conv, so no copy of it computes the 2D block",
    "D": "a depthwise 3x3x3 conv cannot hold the 2D network's dense 3x3 conv",
    "X": "X3D's depthwise middle cannot hold the 2D network's dense 3x3 conv",
    "Y": "X3D's depthwise middle cannot hold the 2D network's dense 3x3 conv",
}
_BLOCK = re.compile(r"^layer(\d+)\.(\d+)\.conv1\.weight$")


@dataclass(frozen=True, kw_only=True)
class Skeleton:
    """What of a 2D ResNet a genome must repeat: stem width, and per stage (depth, inner width,
    output width)."""

    stem_width: int
    stages: tuple[tuple[int, int, int], ...]
    classes: int


def skeleton_of(sd: dict[str, torch.Tensor], where: str) -> Skeleton:
    """Read the skeleton off a 2D ResNet state dict (one line naming the file if it is not one)."""
    if "conv1.weight" not in sd:
        hint = " (a deep stem, as timm's resnet*d: no archlab stem holds it)" if "conv1.0.weight" in sd else ""
        raise UserError(f"{where} is not a 2D ResNet state dict: no conv1.weight{hint}")
    if sd["conv1.weight"].dim() != 4:
        raise UserError(f"{where}: conv1.weight is {tuple(sd['conv1.weight'].shape)}, not a 2D conv kernel")
    depth: dict[int, int] = {}
    for k in sd:
        m = _BLOCK.match(k)
        if m:
            i, j = int(m.group(1)), int(m.group(2))
            depth[i] = max(depth.get(i, 0), j + 1)
    if not depth or sorted(depth) != list(range(1, len(depth) + 1)):
        raise UserError(f"{where} is not a 2D ResNet state dict: no layer1..layerN blocks")
    if "layer1.0.conv3.weight" not in sd:
        raise UserError(f"{where} holds a basic-block ResNet (resnet18/34): --imagenet reads bottleneck ResNets")
    stages = tuple(
        (depth[i], sd[f"layer{i}.0.conv1.weight"].shape[0], sd[f"layer{i}.0.conv3.weight"].shape[0])
        for i in range(1, len(depth) + 1)
    )
    classes = sd["fc.weight"].shape[0] if "fc.weight" in sd else 0
    return Skeleton(stem_width=sd["conv1.weight"].shape[0], stages=stages, classes=classes)


def check_skeleton(genome: Genome, sk: Skeleton) -> None:
    """Raise one line naming the first part of ``genome`` that is not the 2D network's."""
    if genome.family != "bottleneck":
        raise UserError("the genome's family is basic: the 2D network is a bottleneck ResNet (fam=bottleneck)")
    if genome.stem not in ("2d", "3d"):
        raise UserError(f"stem {genome.stem}: only a 1x7x7 (2d) or 3x7x7 (3d) stem holds the 2D 7x7 conv")
    if genome.head != "fc":
        raise UserError(f"head {genome.head}: the 2D network's head is a global pool and an fc (head=fc)")
    if genome.stem_width != sk.stem_width:
        raise UserError(f"stem width {genome.stem_width}: the 2D network's stem is {sk.stem_width} wide")
    for i in range(max(len(genome.stages), len(sk.stages))):
        if i >= len(sk.stages):
            raise UserError(f"stage {i + 1}: the 2D network has {len(sk.stages)} stages")
        depth, inner, out = sk.stages[i]
        if i >= len(genome.stages):
            raise UserError(
                f"stage {i + 1}: the genome has {len(genome.stages)} stages, the 2D network {len(sk.stages)}"
            )
        s = genome.stages[i]
        mine = (s.depth, s.width, stage_out(genome, s.width))
        if mine != (depth, inner, out):
            raise UserError(
                f"stage {i + 1} differs from the 2D network's: {depth} blocks, width {inner} -> {out} there; "
                f"{mine[0]} blocks, width {mine[1]} -> {mine[2]} in the genome"
            )
    for i, s in enumerate(genome.stages):
        for j, letter in enumerate(s.letters):
            if letter in REFUSED:
                raise UserError(f"stage {i + 1}, block {j + 1}: '{letter}' has no inflation rule: {REFUSED[letter]}")


def _as3d(w: torch.Tensor, t: int = 1) -> torch.Tensor:
    """A 2D kernel (O, I, kh, kw) as a 3D one with ``t`` taps: mean inflation (each tap w / t)."""
    return w.unsqueeze(2).repeat(1, 1, t, 1, 1) / t


def _conv(conv: nn.Module, sd: dict[str, torch.Tensor], key: str, where: str) -> None:
    assert isinstance(conv, nn.Conv3d)
    w = _as3d(sd[key], conv.kernel_size[0])
    if w.shape != conv.weight.shape:
        raise UserError(f"{where}: {key} is {tuple(sd[key].shape)}, the genome's conv {tuple(conv.weight.shape)}")
    conv.weight.copy_(w)


def _bn(bn: nn.Module, sd: dict[str, torch.Tensor], prefix: str) -> None:
    assert isinstance(bn, nn.BatchNorm3d)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, name).copy_(sd[f"{prefix}.{name}"])


def _identity(conv: nn.Module, bn: nn.Module) -> None:
    """A conv that copies its input (centre tap 1 on the diagonal) and a BN that passes it on."""
    assert isinstance(conv, nn.Conv3d) and isinstance(bn, nn.BatchNorm3d)
    nn.init.dirac_(conv.weight)
    bn.weight.fill_(1.0)
    bn.bias.zero_()
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)


def _silence(bn: nn.Module) -> None:
    """A BN whose output is zero (gamma 0, beta 0): the branch it ends adds nothing."""
    assert isinstance(bn, nn.BatchNorm3d)
    bn.weight.zero_()
    bn.bias.zero_()


def _block(block: ResBlock, sd: dict[str, torch.Tensor], p: str, cw: float, where: str) -> None:
    t, mid, letter = block.transform, block.transform.b, block.letter
    _conv(t.a[0], sd, f"{p}.conv1.weight", where)  # 1x1x1, or I's 3x1x1 by mean inflation
    _bn(t.a[1], sd, f"{p}.bn1")
    if letter == "3":
        _conv(mid.c[0], sd, f"{p}.conv2.weight", where)
        _bn(mid.c[1], sd, f"{p}.bn2")
    else:  # 2 A B C F I T: an S = 1x3x3 conv with its BN
        _conv(mid.s[0], sd, f"{p}.conv2.weight", where)
        _bn(mid.s[1], sd, f"{p}.bn2")
    if letter in ("A", "F"):
        _identity(mid.t[0], mid.t[1])
    elif letter in ("B", "C"):
        _silence(mid.t[1])
    _conv(t.c[0], sd, f"{p}.conv3.weight", where)
    if letter == "C" and cw != 1.0:
        t.c[0].weight.mul_(1.0 / cw)  # ReLU(cw * s) = cw * ReLU(s): the next conv undoes cw
    _bn(t.c[1], sd, f"{p}.bn3")
    has_2d = f"{p}.downsample.0.weight" in sd
    if has_2d != isinstance(block.shortcut, nn.Sequential):
        raise UserError(f"{where}: block {p} has {'a' if has_2d else 'no'} projection shortcut in the 2D network")
    if has_2d:
        _conv(block.shortcut[0], sd, f"{p}.downsample.0.weight", where)
        _bn(block.shortcut[1], sd, f"{p}.downsample.1")


def inflate_imagenet(genome: Genome, sd: dict[str, torch.Tensor], where: str) -> tuple[VideoNet, bool]:
    """Build ``genome`` with ``sd``'s 2D weights by the rules above; also whether the fc was
    copied (False: the class counts differ and the fc is freshly initialised)."""
    sk = skeleton_of(sd, where)
    check_skeleton(genome, sk)
    net = build(genome)
    try:
        with torch.no_grad():
            _conv(net.stem[0], sd, "conv1.weight", where)
            _bn(net.stem[1], sd, "bn1")
            for i, stage in enumerate(net.stages):
                blocks = [b for b in stage if isinstance(b, ResBlock)]
                for j, block in enumerate(blocks):
                    _block(block, sd, f"layer{i + 1}.{j}", genome.cw, where)
            copy_fc = sk.classes == genome.classes and sd["fc.weight"].shape[1] == net.fc.in_features
            if copy_fc:
                net.fc.weight.copy_(sd["fc.weight"])
                net.fc.bias.copy_(sd["fc.bias"])
    except KeyError as e:
        raise UserError(f"{where} is not a whole 2D ResNet state dict: no {e.args[0]}") from None
    return net, copy_fc
