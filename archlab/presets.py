"""Named genomes that reproduce published models exactly (parameter counts in ANCHORS.md)."""

from __future__ import annotations

from .genome import Genome, GenomeError, parse

P3D_DEPTHS = {"p3d63": (3, 4, 6, 3), "p3d131": (3, 4, 23, 3), "p3d199": (3, 8, 36, 3)}


def p3d_letters(depths: tuple[int, ...], cycle: str = "ABC", phase: int = 0, n_2d_stages: int = 1) -> str:
    """The official interleave: block type = GLOBAL index of the 3D block mod 3 (no reset per
    stage); the last ``n_2d_stages`` stages are plain 2D."""
    stages, k = [], phase
    for i, d in enumerate(depths):
        if i >= len(depths) - n_2d_stages:
            stages.append("2" * d)
            continue
        stages.append("".join(cycle[(k + j) % len(cycle)] for j in range(d)))
        k += d
    return "|".join(stages)


def _torchvision(letters: str, stem: str, temporal: str) -> str:
    return f"{letters} stem={stem} fam=basic t={temporal} drop=0.0"


PRESETS: dict[str, str] = {
    "p3d63": p3d_letters(P3D_DEPTHS["p3d63"]),
    "p3d131": p3d_letters(P3D_DEPTHS["p3d131"]),
    "p3d199": p3d_letters(P3D_DEPTHS["p3d199"]),
    "c2d50": p3d_letters(P3D_DEPTHS["p3d63"], cycle="2"),
    "p3d_a50": p3d_letters(P3D_DEPTHS["p3d63"], cycle="A"),
    "p3d_b50": p3d_letters(P3D_DEPTHS["p3d63"], cycle="B"),
    "p3d_c50": p3d_letters(P3D_DEPTHS["p3d63"], cycle="C"),
    "r3d_18": _torchvision("33|33|33|33", "3d/none", "-,c,c,c"),
    "mc3_18": _torchvision("33|22|22|22", "3d/none", "-,-,-,-"),
    "r2plus1d_18": _torchvision("RR|RR|RR|RR", "r21/none", "-,c,c,c"),
}

DESCRIPTIONS: dict[str, str] = {
    "p3d63": "P3D ResNet-63 (official: A->B->C cycle, 2D res5)",
    "p3d131": "P3D ResNet-131",
    "p3d199": "P3D ResNet-199",
    "c2d50": "2D ResNet-50 on the P3D skeleton (no temporal convs)",
    "p3d_a50": "pure P3D-A at ResNet-50 depth (paper Table 1)",
    "p3d_b50": "pure P3D-B at ResNet-50 depth",
    "p3d_c50": "pure P3D-C at ResNet-50 depth",
    "r3d_18": "torchvision r3d_18 (3D ResNet-18)",
    "mc3_18": "torchvision mc3_18 (mixed 3D/2D)",
    "r2plus1d_18": "torchvision r2plus1d_18 ((2+1)D ResNet-18)",
}

# The clip each model was defined for.
DEFAULT_INPUT: dict[str, tuple[int, int, int]] = {
    **{k: (16, 160, 160) for k in PRESETS if k.startswith(("p3d", "c2d"))},
    **{k: (16, 112, 112) for k in ("r3d_18", "mc3_18", "r2plus1d_18")},
}


def get(name: str, classes: int | None = None) -> Genome:
    if name not in PRESETS:
        raise GenomeError(f"unknown preset {name!r}: presets are {', '.join(PRESETS)}")
    g = parse(PRESETS[name])
    return g if classes is None else g.with_(classes=classes)


def resolve(text: str, classes: int | None = None) -> Genome:
    """A preset name or a genome string -> Genome (the CLI's GENOME|PRESET argument)."""
    text = text.strip()
    if text in PRESETS:
        return get(text, classes)
    if text and text.replace("_", "").isalnum() and text.lower() == text and "|" not in text \
            and not set(text) <= set("ABCR23"):
        raise GenomeError(f"unknown preset {text!r}: presets are {', '.join(PRESETS)}")
    g = parse(text)
    return g if classes is None else g.with_(classes=classes)
