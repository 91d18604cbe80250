"""The genome: a frozen value that describes one whole video network, and its string form.

The string is the user's handle on an architecture (tables, logs, plot labels, W&B runs,
model cards), so it is short for the common case and exact for the rest:

    ABC|ABCA|BCABCA|222                      P3D-63 (all other fields at their defaults)
    33|33|33|33 stem=3d/none fam=basic t=-,c,c,c cls=400    r3d_18

Stages are separated by ``|``, one letter per block. Global fields follow, separated by
spaces, written in the fixed order of ``FIELD_ORDER`` and only where they differ from the default
(input may give them in any order),
so one network has exactly one string: ``format(parse(s)) == s`` for every canonical ``s``
and ``parse(format(g)) == g`` for every genome.

This module imports no torch: genomes are parsed, validated and hashed in processes that
never build a network (the search driver, the report).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from ..util.errors import UserError, shorten

# The alphabet (letters, families, stems, pools, heads, limits) is alphabet.py, re-exported here.
from .alphabet import (  # noqa: F401
    DEFAULT_EX,
    EXPANSION,
    FAMILIES,
    HEADS,
    LETTERS,
    MAX_BLOCKS_PER_STAGE,
    MAX_STAGES,
    MAX_WIDTH,
    POOL_RULES,
    STEM_KINDS,
    STEM_POOLS,
    STRIDE_AT,
    TEMPORAL,
    X3D_HEAD_WIDTH,
    Letter,
)


class GenomeError(UserError, ValueError):
    """A genome string or value the user wrote is not a valid network (one line, specific)."""


@dataclass(frozen=True)
class Stage:
    """One residual stage: its blocks' letters, width (bottleneck planes), and downsampling."""

    letters: str
    width: int
    stride: int = 2  # spatial stride of the stage's first block
    temporal: str = "p"  # one of TEMPORAL

    @property
    def depth(self) -> int:
        return len(self.letters)


@dataclass(frozen=True)
class Genome:
    """A whole network. Build it with ``archlab.model.builder.build``; print it with ``str()``."""

    stages: tuple[Stage, ...]
    stem: str = "2d"
    stem_pool: str = "ts"
    stem_width: int = 64
    family: str = "bottleneck"
    dropout: float = 0.5
    classes: int = 400
    pool: str = "torch"  # one of POOL_RULES
    ex: float = DEFAULT_EX  # bottleneck inner width = ex x output width (X3D: 2.25)
    stride_at: str = "first"  # one of STRIDE_AT
    cw: float = 1.0  # P3D-C's sum: ReLU(cw*s + cw*BN(T s)); the official Caffe model uses 0.5
    head: str = "fc"  # one of HEADS

    def __post_init__(self) -> None:
        validate(self)
        # One network, one string: a field that cannot change this network takes its
        # default, so no two strings name the same network (cw only acts on C blocks; the
        # basic family has no bottleneck for ex and stride_at to act on).
        if self.cw != 1.0 and not any("C" in s.letters for s in self.stages):
            object.__setattr__(self, "cw", 1.0)
        if self.family == "basic":
            object.__setattr__(self, "ex", DEFAULT_EX)
            object.__setattr__(self, "stride_at", "first")

    def __str__(self) -> str:
        return format_genome(self)

    @property
    def id(self) -> str:
        """Stable short id: a hash of the canonical string (cache keys, run names, dedup)."""
        return genome_id(self)

    @property
    def letters(self) -> str:
        return "|".join(s.letters for s in self.stages)

    @property
    def depth(self) -> int:
        return sum(s.depth for s in self.stages)

    def letter_counts(self) -> dict[str, int]:
        return {letter: sum(s.letters.count(letter) for s in self.stages) for letter in LETTERS}

    def with_(self, **changes: Any) -> "Genome":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": [
                {"letters": s.letters, "width": s.width, "stride": s.stride, "temporal": s.temporal}
                for s in self.stages
            ],
            "stem": self.stem,
            "stem_pool": self.stem_pool,
            "stem_width": self.stem_width,
            "family": self.family,
            "dropout": self.dropout,
            "classes": self.classes,
            "pool": self.pool,
            "ex": self.ex,
            "stride_at": self.stride_at,
            "cw": self.cw,
            "head": self.head,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Genome":
        try:
            stages = tuple(Stage(**s) for s in d["stages"])
            rest = {k: v for k, v in d.items() if k != "stages"}
            return cls(stages=stages, **rest)
        except GenomeError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise GenomeError(f"bad genome JSON: {shorten(str(e), 120, plain=True)}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Genome":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise GenomeError(f"bad genome JSON: {e}") from None


# ---- defaults that depend on the number of stages --------------------------------------


def default_widths(n: int) -> tuple[int, ...]:
    return tuple(64 * 2**i for i in range(n))


def default_strides(n: int) -> tuple[int, ...]:
    return tuple(1 if i == 0 else 2 for i in range(n))


def default_temporal(n: int) -> tuple[str, ...]:
    return tuple("-" if i == 0 else "p" for i in range(n))


def stage_out(g: "Genome", planes: int) -> int:
    """Output channels of a stage whose blocks are ``planes`` wide inside: planes for the basic
    family; planes / ex for the bottleneck (4 x planes at ResNet's ex=0.25, 24 for X3D's 54)."""
    if g.family == "basic":
        return planes
    return max(1, int(round(planes / g.ex)))


# ---- validation --------------------------------------------------------------------------


def _one_of(label: str, value: object, choices: Collection[str]) -> None:
    """A field that takes one of a fixed set of words: one message shape for all of them."""
    if value not in choices:
        raise GenomeError(f"{label}{shorten(value)} is not one of {', '.join(choices)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(g: Genome) -> None:
    """Raise GenomeError naming the first problem, or return None for a buildable genome."""
    if not isinstance(g.stages, tuple) or not g.stages:
        raise GenomeError("a genome needs at least one stage")
    if len(g.stages) > MAX_STAGES:
        raise GenomeError(f"{len(g.stages)} stages: at most {MAX_STAGES} are allowed")
    _one_of("family ", g.family, FAMILIES)
    _one_of("stem ", g.stem, STEM_KINDS)
    _one_of("stem pool ", g.stem_pool, STEM_POOLS)
    if not _is_int(g.stem_width) or not 1 <= g.stem_width <= MAX_WIDTH:
        raise GenomeError(f"stem width {shorten(g.stem_width)} must be an integer in 1..{MAX_WIDTH}")
    if not _is_int(g.classes) or not 1 <= g.classes <= 1_000_000:
        raise GenomeError(f"classes {shorten(g.classes)} must be a positive integer")
    if isinstance(g.dropout, bool) or not isinstance(g.dropout, (int, float)) or not 0.0 <= g.dropout < 1.0:
        raise GenomeError(f"dropout {shorten(g.dropout)} must be a number in [0, 1)")
    _one_of("pool rule ", g.pool, POOL_RULES)
    _one_of("stride placement sp=", g.stride_at, STRIDE_AT)
    _one_of("head ", g.head, HEADS)
    if isinstance(g.ex, bool) or not isinstance(g.ex, (int, float)) or not 0.0 < g.ex <= 16.0:
        raise GenomeError(f"expansion ex={shorten(g.ex)} must be a number in (0, 16]")
    if isinstance(g.cw, bool) or not isinstance(g.cw, (int, float)) or not 0.0 < g.cw <= 1.0:
        raise GenomeError(f"P3D-C sum weight cw={shorten(g.cw)} must be a number in (0, 1]")
    for i, s in enumerate(g.stages, 1):
        if not isinstance(s, Stage):
            raise GenomeError(f"stage {i} is not a Stage")
        if not isinstance(s.letters, str) or not s.letters:
            raise GenomeError(f"stage {i} is empty: give at least one block letter")
        if len(s.letters) > MAX_BLOCKS_PER_STAGE:
            raise GenomeError(f"stage {i} has {len(s.letters)} blocks: at most {MAX_BLOCKS_PER_STAGE}")
        for j, ch in enumerate(s.letters, 1):
            if ch not in LETTERS:
                raise GenomeError(f"stage {i}, position {j}: {ch!r} is not a block letter ({' '.join(LETTERS)})")
            if g.family not in LETTERS[ch].families:
                ok = " ".join(k for k, v in LETTERS.items() if g.family in v.families)
                raise GenomeError(f"stage {i}, position {j}: {ch!r} is not valid in the {g.family} family ({ok})")
        if not _is_int(s.width) or not 1 <= s.width <= MAX_WIDTH:
            raise GenomeError(f"stage {i}: width {shorten(s.width)} must be an integer in 1..{MAX_WIDTH}")
        if not _is_int(s.stride) or s.stride not in (1, 2):
            raise GenomeError(f"stage {i}: spatial stride {shorten(s.stride)} must be 1 or 2")
        if s.temporal not in TEMPORAL:
            raise GenomeError(
                f"stage {i}: temporal downsampling {shorten(s.temporal)} is not one of {' '.join(TEMPORAL)}"
            )


# ---- the string form ---------------------------------------------------------------------

FIELD_ORDER = ("stem", "pool", "fam", "sw", "w", "ex", "s", "sp", "t", "cw", "head", "drop", "cls")


def _fmt_float(x: float) -> str:
    return repr(float(x) + 0.0)  # + 0.0: -0.0 is 0.0, one network, one string, one id


def format_genome(g: Genome) -> str:
    """The canonical string: letters, then non-default fields in FIELD_ORDER."""
    n = len(g.stages)
    parts = [g.letters]
    stem = f"{g.stem}/{g.stem_pool}"
    if stem != "2d/ts":
        parts.append(f"stem={stem}")
    if g.pool != "torch":
        parts.append(f"pool={g.pool}")
    if g.family != "bottleneck":
        parts.append(f"fam={g.family}")
    if g.stem_width != 64:
        parts.append(f"sw={g.stem_width}")
    widths = tuple(s.width for s in g.stages)
    if widths != default_widths(n):
        parts.append("w=" + ",".join(map(str, widths)))
    if g.ex != DEFAULT_EX:
        parts.append(f"ex={_fmt_float(g.ex)}")
    strides = tuple(s.stride for s in g.stages)
    if strides != default_strides(n):
        parts.append("s=" + ",".join(map(str, strides)))
    if g.stride_at != "first":
        parts.append(f"sp={g.stride_at}")
    temporal = tuple(s.temporal for s in g.stages)
    if temporal != default_temporal(n):
        parts.append("t=" + ",".join(temporal))
    if g.cw != 1.0:
        parts.append(f"cw={_fmt_float(g.cw)}")
    if g.head != "fc":
        parts.append(f"head={g.head}")
    if g.dropout != 0.5:
        parts.append(f"drop={_fmt_float(g.dropout)}")
    if g.classes != 400:
        parts.append(f"cls={g.classes}")
    return " ".join(parts)


def _int_list(key: str, value: str, n: int) -> list[int]:
    items = value.split(",")
    if len(items) != n:
        raise GenomeError(f"field {key}= has {len(items)} values but the genome has {n} stages")
    out = []
    for k, item in enumerate(items, 1):
        if not item.isascii() or not item.isdigit() or (len(item) > 1 and item[0] == "0"):
            raise GenomeError(f"field {key}=, value {k}: {shorten(item)} is not a plain positive integer")
        if len(item) > 9:  # int() refuses 4,300+ digits (a ValueError); every limit here is < 10^9
            raise GenomeError(f"field {key}=, value {k}: {shorten(item)} is too large")
        out.append(int(item))
    return out


def _int(key: str, value: str) -> int:
    return _int_list(key, value, 1)[0]


def _float(key: str, value: str) -> float:
    try:
        x = float(value) + 0.0  # -0.0 is 0.0
    except ValueError:
        raise GenomeError(f"{key}={shorten(value, plain=True)} is not a number") from None
    if x != x or x in (float("inf"), float("-inf")):  # NaN, inf
        raise GenomeError(f"{key}={shorten(value, plain=True)} is not a finite number")
    return x


def parse(text: str) -> Genome:
    """Parse a genome string. Raises GenomeError (and nothing else) on any bad input."""
    if not isinstance(text, str):
        raise GenomeError(f"a genome string must be text, got {type(text).__name__}")
    tokens = text.split()
    if not tokens:
        raise GenomeError("empty genome string: expected stages of block letters like ABC|ABCA|222")
    letters, fields = tokens[0], tokens[1:]
    if "=" in letters:
        raise GenomeError(f"the genome must start with its block letters (e.g. ABC|ABCA), not {shorten(letters)}")
    stage_letters = letters.split("|")
    for i, s in enumerate(stage_letters, 1):
        if not s:
            raise GenomeError(f"stage {i} is empty: give at least one block letter")
        if len(s) > MAX_BLOCKS_PER_STAGE:
            raise GenomeError(f"stage {i} has {len(s):,} blocks: at most {MAX_BLOCKS_PER_STAGE}")
        for j, ch in enumerate(s, 1):
            if ch not in LETTERS:
                raise GenomeError(f"stage {i}, position {j}: {ch!r} is not a block letter ({' '.join(LETTERS)})")
    n = len(stage_letters)
    if n > MAX_STAGES:
        raise GenomeError(f"{n} stages: at most {MAX_STAGES} are allowed")

    # Fields are accepted in any order; the canonical string always spells them in FIELD_ORDER.
    values: dict[str, str] = {}
    for tok in fields:
        key, eq, value = tok.partition("=")
        if not eq or not value:
            raise GenomeError(f"field {shorten(tok)} must look like key=value ({' '.join(FIELD_ORDER)})")
        if key not in FIELD_ORDER:
            raise GenomeError(f"unknown field {shorten(key)}: fields are {' '.join(FIELD_ORDER)}")
        if key in values:
            raise GenomeError(f"field {key}= is given twice")
        values[key] = value

    stem, stem_pool = "2d", "ts"
    if "stem" in values:
        stem, slash, stem_pool = values["stem"].partition("/")
        if not slash:
            raise GenomeError(f"stem={shorten(values['stem'], plain=True)} must be KIND/POOL, e.g. stem=3d/none")
    family = values.get("fam", "bottleneck")
    stem_width = _int("sw", values["sw"]) if "sw" in values else 64
    widths = _int_list("w", values["w"], n) if "w" in values else default_widths(n)
    strides = _int_list("s", values["s"], n) if "s" in values else default_strides(n)
    temporal = values["t"].split(",") if "t" in values else list(default_temporal(n))
    if len(temporal) != n:
        raise GenomeError(f"field t= has {len(temporal)} values but the genome has {n} stages")
    dropout = 0.5
    if "drop" in values:
        try:
            dropout = float(values["drop"]) + 0.0  # -0.0 is 0.0
        except ValueError:
            raise GenomeError(f"drop={shorten(values['drop'], plain=True)} is not a number") from None
        if dropout != dropout:  # NaN
            raise GenomeError("drop=nan is not a number in [0, 1)")
    classes = _int("cls", values["cls"]) if "cls" in values else 400
    # Fields added with the model family (pool, ex, sp, cw, head): absent from every older
    # string, so their defaults are the old behaviour and an old string means what it meant.
    pool = values.get("pool", "torch")
    ex = _float("ex", values["ex"]) if "ex" in values else DEFAULT_EX
    stride_at = values.get("sp", "first")
    cw = _float("cw", values["cw"]) if "cw" in values else 1.0
    head = values.get("head", "fc")

    g = Genome(
        stages=tuple(
            Stage(letters=letters_of_stage, width=w, stride=s, temporal=t)
            for letters_of_stage, w, s, t in zip(stage_letters, widths, strides, temporal)
        ),
        stem=stem,
        stem_pool=stem_pool,
        stem_width=stem_width,
        family=family,
        dropout=dropout,
        classes=classes,
        pool=pool,
        ex=ex,
        stride_at=stride_at,
        cw=cw,
        head=head,
    )
    # A string with a field spelled at its default value is accepted but is not canonical;
    # that is fine for input. Canonical output always comes from format_genome.
    return g


def genome_id(g: Genome) -> str:
    return hashlib.sha1(format_genome(g).encode()).hexdigest()[:10]


def scale_widths(g: Genome, multiplier: float, *, stem: bool = True) -> Genome:
    """The same architecture at a different width (proxy networks): widths rounded, >= 1."""
    if multiplier <= 0:
        raise GenomeError(f"width multiplier {multiplier} must be positive")
    stages = tuple(replace(s, width=max(1, int(round(s.width * multiplier)))) for s in g.stages)
    sw = max(1, int(round(g.stem_width * multiplier))) if stem else g.stem_width
    return replace(g, stages=stages, stem_width=sw)
