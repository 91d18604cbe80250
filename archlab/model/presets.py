"""Named genomes that reproduce published models exactly (parameter counts in docs/anchors.md)."""

from __future__ import annotations

from .genome import LETTERS, Genome, GenomeError, parse

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


def official_p3d(letters: str) -> str:
    """The official (Caffe) P3D rules on a letter string: Caffe's max pooling (pad 0, ceil
    rounding) and P3D-C's 0.5/0.5 sum, so the released weights compute the released function."""
    return f"{letters} pool=caffe" + (" cw=0.5" if "C" in letters else "")


def _stages(*stages: str) -> str:
    return "|".join(stages)


def x3d_letters(depths: tuple[int, ...]) -> str:
    """X3D's blocks: squeeze-excitation on every other block of a stage, from the first (X Y X ...)."""
    return _stages(*("".join("XY"[j % 2] for j in range(d)) for d in depths))


# X3D-S/M (depth factor 2.2) and X3D-L (5.0): stem 24, output widths 24-192, inner 2.25x.
_X3D = "stem=x3d/none sw=24 w=54,108,216,432 ex=2.25 s=2,2,2,2 sp=mid t=-,-,-,- head=x3d"
R50 = (3, 4, 6, 3)

PRESETS: dict[str, str] = {
    "p3d63": official_p3d(p3d_letters(P3D_DEPTHS["p3d63"])),
    "p3d131": official_p3d(p3d_letters(P3D_DEPTHS["p3d131"])),
    "p3d199": official_p3d(p3d_letters(P3D_DEPTHS["p3d199"])),
    "c2d50": official_p3d(p3d_letters(P3D_DEPTHS["p3d63"], cycle="2")),
    "p3d_a50": official_p3d(p3d_letters(P3D_DEPTHS["p3d63"], cycle="A")),
    "p3d_b50": official_p3d(p3d_letters(P3D_DEPTHS["p3d63"], cycle="B")),
    "p3d_c50": official_p3d(p3d_letters(P3D_DEPTHS["p3d63"], cycle="C")),
    "r3d_18": _torchvision("33|33|33|33", "3d/none", "-,c,c,c"),
    "mc3_18": _torchvision("33|22|22|22", "3d/none", "-,-,-,-"),
    "r2plus1d_18": _torchvision("RR|RR|RR|RR", "r21/none", "-,c,c,c"),
    # pytorchvideo 0.1.5's models (hub, random init): structure and parameter counts exact.
    "csn_r101": _stages(*("D" * d for d in P3D_DEPTHS["p3d131"])) + " stem=3d/s sp=mid t=-,c,c,c drop=0.0",
    "slow_r50": "222|2222|IIIIII|III stem=2d/s sp=mid t=-,-,-,-",
    "r2plus1d_r50": _stages(*("F" * d for d in R50)) + " stem=2d/none s=2,2,2,2 sp=mid t=-,-,c,c",
    "x3d_s": f"{x3d_letters((3, 5, 11, 7))} {_X3D}",
    "x3d_m": f"{x3d_letters((3, 5, 11, 7))} {_X3D}",
    "x3d_l": f"{x3d_letters((5, 10, 25, 15))} {_X3D}",
    "tsm_r50": _stages(*("T" * d for d in R50)) + " stem=2d/s sp=mid t=-,-,-,-",
}

DESCRIPTIONS: dict[str, str] = {
    "p3d63": "P3D ResNet-63 (official: A->B->C cycle, 2D res5, Caffe pooling, C sums 0.5/0.5)",
    "p3d131": "P3D ResNet-131 (official rules)",
    "p3d199": "P3D ResNet-199 (official rules; archlab import-weights reads its caffemodel)",
    "c2d50": "2D ResNet-50 on the P3D skeleton (no temporal convs)",
    "p3d_a50": "pure P3D-A at ResNet-50 depth (paper Table 1)",
    "p3d_b50": "pure P3D-B at ResNet-50 depth",
    "p3d_c50": "pure P3D-C at ResNet-50 depth",
    "r3d_18": "torchvision r3d_18 (3D ResNet-18)",
    "mc3_18": "torchvision mc3_18 (mixed 3D/2D)",
    "r2plus1d_18": "torchvision r2plus1d_18 ((2+1)D ResNet-18)",
    "csn_r101": "ir-CSN-101 (depthwise 3x3x3 bottlenecks; pytorchvideo csn_r101)",
    "slow_r50": "Slow-only R50 (3x1x1 first conv in res4-res5; pytorchvideo slow_r50)",
    "r2plus1d_r50": "R(2+1)D-50 bottleneck (pytorchvideo r2plus1d_r50)",
    "x3d_s": "X3D-S (pytorchvideo x3d_s; 13x160x160)",
    "x3d_m": "X3D-M (the X3D-S network at 16x224x224)",
    "x3d_l": "X3D-L (pytorchvideo x3d_l; 16x312x312)",
    "tsm_r50": "TSM ResNet-50 (temporal shift in every bottleneck; 2D ResNet-50 parameters)",
}

# The presets whose released weights ``archlab import-weights`` reads, per library (model/zoo.py
# maps the key names). Here, not in zoo.py: the CLI lists them without importing torch.
ZOO: dict[str, tuple[str, ...]] = {
    "torchvision": ("r3d_18", "mc3_18", "r2plus1d_18"),
    "pytorchvideo": ("x3d_s", "x3d_m", "x3d_l", "slow_r50", "csn_r101", "r2plus1d_r50"),
}

# The clip each model was defined for.
DEFAULT_INPUT: dict[str, tuple[int, int, int]] = {
    **{k: (16, 160, 160) for k in PRESETS if k.startswith(("p3d", "c2d"))},
    **{k: (16, 112, 112) for k in ("r3d_18", "mc3_18", "r2plus1d_18")},
    "csn_r101": (32, 224, 224),
    "slow_r50": (8, 224, 224),
    "r2plus1d_r50": (16, 224, 224),
    "x3d_s": (13, 160, 160),
    "x3d_m": (16, 224, 224),
    "x3d_l": (16, 312, 312),
    "tsm_r50": (8, 224, 224),
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
    if (
        text
        and text.replace("_", "").isalnum()
        and text.lower() == text
        and "|" not in text
        and not set(text) <= set(LETTERS)
    ):
        raise GenomeError(f"unknown preset {text!r}: presets are {', '.join(PRESETS)}")
    g = parse(text)
    return g if classes is None else g.with_(classes=classes)
