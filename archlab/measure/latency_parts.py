"""A network as a chain of parts, each named by what decides its cost: the parts the latency
table times once and sums (``latency_table``).

Every network ``builder`` makes is a chain: the stem (with its pool), then per stage an
optional temporal max pool (``t=p``) and the residual blocks, then the head (global pool,
the fc layer, X3D's neck and 2048-wide layer). A part's time depends only on its module and
the shape it receives, so its **key** holds exactly that and nothing else:

* ``stem``: kind, width, stem pool (and the pool rule, when there is a pool), input clip;
* ``tpool``: the pool rule and the input C x T x H x W;
* ``block``: family, letter, planes, output channels, stride (t, h, w), where the stride sits
  (``sp``, only when there is a stride and a bottleneck), P3D-C's sum weight (``cw``, only
  for C blocks) and the input C x T x H x W;
* ``head``: kind, classes (X3D: the inner width too) and the input C x T x H x W.

What cannot change the time is left out (dropout, which is an identity at inference; ``cw``
of a block that is not C; ``sp`` of a stride-1 block), so two genomes that share a part
share its measurement.

The shapes come from arithmetic plus one meta-device forward per temporal/spatial skeleton
(the stem, the pool rule, each stage's strides and temporal rule, the clip): a block's
letter and widths never change T, H or W (every conv pads to 'same' and only strides
shrink), so the skeleton's forward serves every genome that shares it and a whole space's
parts are listed in seconds. A test checks the parts against hooks on the built network.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from ..model.builder import VideoNet
from ..model.genome import Genome, Stage, stage_out
from ..util.errors import UserError

Clip = tuple[int, int, int]  # frames, height, width
Shape = tuple[int, int, int, int]  # C, T, H, W of one clip (batch 1)
Dims = tuple[int, int, int]  # T, H, W

KINDS = ("stem", "tpool", "block", "head")


@dataclass(frozen=True)
class Part:
    """One part of a network: ``kind`` (one of KINDS), ``key`` (what decides its time, see the
    module docstring), ``path`` (where it sits in the built network: ``stem``,
    ``stages.1.0``, ``head``) and ``shape`` (its input, C x T x H x W, batch 1)."""

    kind: str
    key: str
    path: str
    shape: Shape


def _key(part_kind: str, /, **fields: object) -> str:
    """'block fam=bottleneck letter=A ...': the part's kind, then the fields in the order given."""
    return " ".join([part_kind] + [f"{k}={v}" for k, v in fields.items()])


def _shape(s: tuple[int, ...]) -> str:
    return "x".join(map(str, s))


@dataclass(frozen=True)
class _Skeleton:
    """T x H x W into each stage, into its first block (after a ``t=p`` pool), out of it."""

    stage_in: tuple[Dims, ...]
    block_in: tuple[Dims, ...]
    stage_out: tuple[Dims, ...]


def _skeleton_genome(g: Genome) -> Genome:
    """``g`` with one 2D block per stage and narrow widths: the same T, H and W everywhere."""
    stages = tuple(Stage("2", 8, s.stride, s.temporal) for s in g.stages)
    return g.with_(stages=stages, stem_width=8, classes=1, head="fc", cw=1.0, dropout=0.0)


@functools.lru_cache(maxsize=4096)
def _skeleton(text: str, clip: Clip) -> _Skeleton:
    from ..model.genome import parse

    g = parse(text)
    with torch.device("meta"):
        model = VideoNet(g)
    model.eval()
    seen: dict[str, Dims] = {}

    def pre(name: str):  # noqa: ANN202 - a hook factory
        return lambda _m, inp: seen.__setitem__(name, tuple(inp[0].shape[2:]))

    def post(name: str):  # noqa: ANN202
        return lambda _m, _i, out: seen.__setitem__(name, tuple(out.shape[2:]))

    hooks = []
    for i, stage in enumerate(model.stages):
        hooks.append(stage.register_forward_pre_hook(pre(f"in{i}")))
        hooks.append(stage[-1].register_forward_pre_hook(pre(f"block{i}")))
        hooks.append(stage.register_forward_hook(post(f"out{i}")))
    try:
        with torch.no_grad():
            model.features(torch.empty(1, 3, *clip, device="meta"))
    except RuntimeError as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        if not any(k in msg.lower() for k in ("too small", "kernel size", "input size", "output size")):
            raise
        raise UserError(f"input {_shape(clip)} is too small for this network: {msg}") from None
    finally:
        for h in hooks:
            h.remove()
    n = len(g.stages)
    return _Skeleton(
        stage_in=tuple(seen[f"in{i}"] for i in range(n)),
        block_in=tuple(seen[f"block{i}"] for i in range(n)),
        stage_out=tuple(seen[f"out{i}"] for i in range(n)),
    )


def genome_parts(genome: Genome, clip: Clip) -> list[Part]:
    """The parts of ``genome``'s network at ``clip`` (batch 1), in the order they run."""
    sk = _skeleton(str(_skeleton_genome(genome)), tuple(clip))
    pooled = genome.stem_pool != "none"
    parts = [
        Part(
            "stem",
            _key(
                "stem",
                kind=genome.stem,
                width=genome.stem_width,
                pool=genome.stem_pool + (f"/{genome.pool}" if pooled else ""),
                input=_shape((3, *clip)),
            ),
            "stem",
            (3, *clip),
        )
    ]
    cin = genome.stem_width
    for i, s in enumerate(genome.stages):
        offset = 0
        if s.temporal == "p":
            shape = (cin, *sk.stage_in[i])
            parts.append(Part("tpool", _key("tpool", rule=genome.pool, input=_shape(shape)), f"stages.{i}.0", shape))
            offset = 1
        cout = stage_out(genome, s.width)
        dims = sk.block_in[i]
        for j, letter in enumerate(s.letters):
            first = j == 0
            stride = (2 if first and s.temporal == "c" else 1, s.stride if first else 1, s.stride if first else 1)
            shape = (cin, *dims)
            fields: dict[str, object] = {
                "fam": genome.family,
                "letter": letter,
                "planes": s.width,
                "cout": cout,
                "stride": _shape(stride),
                "sp": genome.stride_at if genome.family == "bottleneck" and stride != (1, 1, 1) else "-",
            }
            if letter == "C" and genome.family == "bottleneck":
                fields["cw"] = repr(float(genome.cw))
            fields["input"] = _shape(shape)
            parts.append(Part("block", _key("block", **fields), f"stages.{i}.{j + offset}", shape))
            cin, dims = cout, sk.stage_out[i]
    shape = (cin, *dims)
    head: dict[str, object] = {"kind": genome.head, "classes": genome.classes}
    if genome.head == "x3d":
        head["inner"] = genome.stages[-1].width
    parts.append(Part("head", _key("head", **head, input=_shape(shape)), "head", shape))
    return parts


def distinct_parts(genomes: Iterable[Genome], clip: Clip) -> dict[str, Part]:
    """The distinct parts (by key) of ``genomes`` at ``clip``, in the order first met."""
    out: dict[str, Part] = {}
    for g in genomes:
        for p in genome_parts(g, clip):
            out.setdefault(p.key, p)
    return out


class HeadPart(nn.Module):
    """The network's head as one module (neck, global pool, post, dropout, fc), computing
    what ``VideoNet.forward`` computes after ``features``: the part the table times as ``head``."""

    def __init__(self, model: VideoNet):
        super().__init__()
        self.neck, self.pool, self.post = model.neck, model.pool, model.post
        self.dropout, self.fc = model.dropout, model.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.post(self.pool(self.neck(x)).flatten(1))))


def part_module(model: VideoNet, part: Part) -> nn.Module:
    """The module of ``part`` in ``model`` (a network built from the part's genome)."""
    if part.kind == "head":
        return HeadPart(model)
    return model.get_submodule(part.path)
