"""The ``literature`` search space (search_spaces/literature.yaml): every block of the network
chooses among ALL the block letters of its family, so one search can mix P3D-A/B/C, 2D, 3D,
(2+1)D, ir-CSN, Slow, X3D and TSM blocks in one network.

Decisions, in order (Optuna define-by-run; parameter names are stable per family, so a
categorical's choices never change between trials):
    fam          bottleneck (12 letters) or basic (3 letters: 2, 3, R; torchvision BasicBlock)
    depth_1..4   1 or 2 blocks per stage
    width        0.5 or 1.0 of the P3D widths: the target's, as interleave.yaml (its proxy: x0.25)
    block_i_j    the letter of stage i, block j (bottleneck) / basic_i_j (basic family)
    sp           bottleneck only: the stride on the first 1x1x1 conv (P3D) or the middle
                 (torchvision / pytorchvideo)
    stem, t      the temporal skeleton of interleave.yaml: no pooling, or P3D's pools
Fixed: no dropout (the proxy recipe). X3D's own skeleton (ex=2.25, its stem and head) is a
preset (x3d_s ...), not part of this space: its X/Y letters appear here in ResNet bottlenecks.
"""

from __future__ import annotations

from typing import Any

from ..model.genome import LETTERS, Genome, parse, scale_widths

DEPTHS = (1, 2)
WIDTHS = (0.5, 1.0)
STEMS = ("2d/none", "2d/ts")
TEMPORAL = ("-,-,-,-", "-,p,p,p")
STRIDE_AT = ("first", "mid")
N_STAGES = 4


def family_letters(family: str) -> list[str]:
    return [letter for letter, v in LETTERS.items() if family in v.families]


def suggest(trial: Any) -> Genome:
    family = trial.suggest_categorical("fam", ["bottleneck", "basic"])
    depths = [trial.suggest_int(f"depth_{i}", DEPTHS[0], DEPTHS[-1]) for i in range(1, N_STAGES + 1)]
    width = trial.suggest_categorical("width", list(WIDTHS))
    letters = family_letters(family)
    prefix = "block" if family == "bottleneck" else "basic"
    stages = [
        "".join(trial.suggest_categorical(f"{prefix}_{i}_{j}", letters) for j in range(1, d + 1))
        for i, d in enumerate(depths, 1)
    ]
    fields = [
        f"stem={trial.suggest_categorical('stem', list(STEMS))}",
        f"t={trial.suggest_categorical('t', list(TEMPORAL))}",
        "drop=0.0",
    ]
    if family == "basic":
        fields.append("fam=basic")
    else:
        fields.append(f"sp={trial.suggest_categorical('sp', list(STRIDE_AT))}")
    return scale_widths(parse("|".join(stages) + " " + " ".join(fields)), width)


def _cardinality() -> int:
    total = 0
    for family, extra in (("bottleneck", len(STRIDE_AT)), ("basic", 1)):
        k = len(family_letters(family))
        per_stage = sum(k**d for d in DEPTHS)
        total += per_stage**N_STAGES * len(WIDTHS) * len(STEMS) * len(TEMPORAL) * extra
    return total


suggest.cardinality = _cardinality  # type: ignore[attr-defined]
