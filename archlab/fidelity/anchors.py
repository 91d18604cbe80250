"""The fixed anchors of a fidelity measurement: known block mixes on one skeleton, so every
measurement ranks the same landmarks (2D-only must stay at chance on the synthetic task; the
P3D variants must leave it)."""

from __future__ import annotations

from typing import Sequence

from ..model.genome import Genome, parse

#: The anchors' shared skeleton: p3d_table1's (stem without pools, no temporal pools, width
#: 0.125, depths 1,1,3,1 with the last stage 2D), so every block letter sees all 8 frames.
SKELETON = "stem=2d/none sw=8 w=8,16,32,64 t=-,-,-,- drop=0.0"
ANCHORS: dict[str, str] = {
    "2D": "2|2|222|2",
    "P3D-A": "A|A|AAA|2",
    "P3D-B": "B|B|BBB|2",
    "P3D-C": "C|C|CCC|2",
    "A->B->C": "A|B|CAB|2",
    "3D": "3|3|333|2",
    "(2+1)D": "R|R|RRR|2",
}
#: Anchors that cannot see the order of frames (tests/test_temporal_sanity.py): they must
#: stay at chance; every other anchor should be well above it.
BLIND = ("2D",)


def anchor_genomes(names: Sequence[str]) -> list[tuple[str, Genome]]:
    """The anchors ``names`` (keys of ``ANCHORS``) as (label, genome) on ``SKELETON``."""
    return [(name, parse(f"{ANCHORS[name]} {SKELETON}")) for name in names]


def anchor_names(value: str | Sequence[str]) -> tuple[str, ...]:
    """An anchors setting as names: "all", "none", or the names themselves (checked by the
    caller, which knows where the value came from)."""
    if isinstance(value, str) and value in ("all", "none"):
        return tuple(ANCHORS) if value == "all" else ()
    return (value,) if isinstance(value, str) else tuple(value)
