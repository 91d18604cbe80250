"""The genome's alphabet: block letters, families, stems, pools, heads and their limits.

The vocabulary the genome string is written in, apart from the value and its parser
(``genome.py``, which re-exports every name here) so each module stays one concept and
within the size rule. Imports nothing: the search driver and the report read it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Letter:
    """One block letter: what it means and which block families it can live in."""

    letter: str
    description: str
    families: tuple[str, ...]
    temporal: bool  # does the block mix information across frames?


# The alphabet. A new block type is one row here plus one transform class registered in
# blocks.py (a test checks the two agree).
LETTERS: dict[str, Letter] = {
    letter.letter: letter
    for letter in (
        Letter("A", "P3D-A: temporal conv after spatial conv (S -> T)", ("bottleneck",), True),
        Letter("B", "P3D-B: spatial and temporal convs in parallel, summed", ("bottleneck",), True),
        Letter("C", "P3D-C: spatial conv plus temporal conv of it (S + T(S))", ("bottleneck",), True),
        Letter("2", "2D: 1x3x3 spatial conv only", ("bottleneck", "basic"), False),
        Letter("3", "3D: full 3x3x3 conv", ("bottleneck", "basic"), True),
        Letter("R", "(2+1)D: 1x3x3 then 3x1x1 with R(2+1)D mid-planes", ("bottleneck", "basic"), True),
        Letter(
            "F", "(2+1)D bottleneck (pytorchvideo R(2+1)D-50): 3x1x1 then 1x3x3, both p wide", ("bottleneck",), True
        ),
        Letter("D", "ir-CSN: depthwise 3x3x3 middle (channel-separated)", ("bottleneck",), True),
        Letter("I", "Slow / I3D inflation: 3x1x1 first conv, 1x3x3 middle", ("bottleneck",), True),
        Letter("X", "X3D: depthwise 3x3x3, squeeze-excitation, swish", ("bottleneck",), True),
        Letter("Y", "X3D without squeeze-excitation (X3D's alternate blocks)", ("bottleneck",), True),
        Letter("T", "TSM: 1/8 of the channels shifted each way in time, then a 2D bottleneck", ("bottleneck",), True),
    )
}

FAMILIES = ("bottleneck", "basic")
EXPANSION = {"bottleneck": 4, "basic": 1}
STEM_KINDS = {
    "2d": "1x7x7 conv, stride (1,2,2)",
    "3d": "3x7x7 conv, stride (1,2,2)",
    "r21": "(2+1)D stem: 1x7x7 then 3x1x1, as R(2+1)D",
    "x3d": "X3D stem: 1x3x3 conv, stride (1,2,2), then depthwise 5x1x1",
}
STEM_POOLS = {
    "ts": "max pool 2x3x3, stride (2,2,2) (official P3D with pool=caffe)",
    "s": "max pool 1x3x3, stride (1,2,2)",
    "none": "no stem pooling",
}
TEMPORAL = {
    "-": "no temporal downsampling",
    "p": "max pool (2,1,1) stride (2,1,1) before the stage (official P3D)",
    "c": "temporal stride 2 on the stage's first conv and its shortcut",
}
# How max pools (stem and t=p) pad and round. ``torch`` is archlab's original rule (and the
# popular PyTorch port's); ``caffe`` is the official P3D's Caffe pooling. Same output shapes at
# the official clip, different windows (docs/anchors.md): only the official rule imports the
# released weights exactly.
POOL_RULES = {
    "torch": "spatial padding 1, floor rounding: windows start at -1, 1, 3...",
    "caffe": "no padding, ceil rounding (Caffe; the official P3D): windows start at 0, 2, 4...",
}
# Where a stage's first block puts its stride in the bottleneck family.
STRIDE_AT = {
    "first": "on the first 1x1x1 conv (official P3D, Caffe ResNets)",
    "mid": "on the middle conv (torchvision, pytorchvideo: CSN, Slow, R(2+1)D-50, X3D, TSM)",
}
HEADS = {
    "fc": "global average pool, dropout, fc",
    "x3d": "X3D head: 1x1x1 conv to the last stage's inner width, BN, ReLU, global average pool, "
    "a 2048-wide layer, ReLU, dropout, fc",
}
X3D_HEAD_WIDTH = 2048
DEFAULT_EX = 0.25  # inner width / output width of a bottleneck: ResNet's 1/4
MAX_BLOCKS_PER_STAGE = 64
MAX_STAGES = 6
MAX_WIDTH = 4096
