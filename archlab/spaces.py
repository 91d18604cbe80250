"""Search spaces: short YAML files that say which genomes a search may try.

A space is *define-by-run*: ``suggest(trial)`` asks an Optuna trial (or anything with
``suggest_categorical`` / ``suggest_int``) for its parameters and returns a Genome. The same
function serves Optuna's samplers, ``from_params`` (rebuild a genome from a trial's
parameters), ``sample`` (uniform random draws for baselines) and ``cardinality`` (the exact
number of parameter assignments), so the four can never disagree.

A YAML space (``search_spaces/NAME.yaml``) has these keys (see the shipped files):

    description  one line (required)
    kind         how the block letters are chosen:
                   interleave  the P3D global cycle (``cycle``, ``phase``) with the last
                               ``n_2d`` stages plain 2D (presets.p3d_letters)
                   uniform     one ``letters`` choice for every 3D block, last ``n_2d`` stages 2D
                   per_stage   each stage picks one of ``letters``; "cycle" continues the
                               global cycle through that stage
                   free        every block picks one of ``letters``
    depths       per stage, the block counts to choose from: [[1, 2, 3], [1, 2, 4], ...]
    widths       width multipliers of every stage and the stem (genome.scale_widths)
    fields       fixed genome fields in genome-string syntax, e.g. "stem=2d/s t=-,-,p,p";
                 unset fields keep the genome defaults (the official P3D skeleton)
    choices      genome fields to search, in the same syntax: {stem: [2d/ts, 2d/s]}
    cycle, phase, n_2d, letters    as above, per kind
    max_gmacs, max_params, input   constraints, checked by ``violates`` at clip ``input``
    python       "module:function": the space is ``function(trial) -> Genome``; only
                 description and the constraint keys may sit beside it

Every value that offers choices may also be a single value (fixed, not a parameter). Integer
choices that form a range are asked with ``suggest_int`` (ordered, which TPE exploits);
anything else with ``suggest_categorical``. Parameter names: ``depth_1..``, ``width``,
``n_2d``, ``phase``, ``letter``, ``letter_1..`` (per stage), ``block_2_3`` (stage 2, block 3)
and the ``choices`` field names.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


from . import named
from .errors import UserError
from .genome import FIELD_ORDER, LETTERS, MAX_BLOCKS_PER_STAGE, MAX_STAGES, Genome, GenomeError, parse, scale_widths

KINDS = ("interleave", "uniform", "per_stage", "free")
CYCLE = "cycle"
COMMON_KEYS = ("name", "description", "kind", "depths", "widths", "fields", "choices",
               "max_gmacs", "max_params", "input")
KIND_KEYS = {
    "interleave": ("cycle", "phase", "n_2d"),
    "uniform": ("letters", "n_2d"),
    "per_stage": ("letters", "cycle", "phase"),
    "free": ("letters",),
}
PYTHON_KEYS = ("name", "description", "python", "max_gmacs", "max_params", "input")
SEARCHABLE_FIELDS = ("stem", "fam", "s", "t", "drop")  # widths: ``widths``; classes: the dataset
DEFAULT_INPUT = "8x64x64"
ENUMERATION_LIMIT = 1_000_000


def spaces_dir() -> Path:
    """Where named spaces live: $ARCHLAB_SPACES if set, else the repository's search_spaces/."""
    return named.folder("ARCHLAB_SPACES", "search_spaces")


# ---- trials that are not Optuna's --------------------------------------------------------

class _RandomTrial:
    """Draws every parameter uniformly (``Space.sample``) and records what it drew."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.params[name] = choices[self.rng.randrange(len(choices))]
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        self.params[name] = self.rng.randint(low, high)
        return self.params[name]


class _FixedTrial:
    """Answers from a dict, like optuna.trial.FixedTrial, but a missing or out-of-range
    value is a one-line UserError instead of a warning and a genome outside the space."""

    def __init__(self, space: str, params: dict[str, Any]):
        self.space, self.given = space, params
        self.params: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self.given:
            raise UserError(f"space {self.space}: parameter {name!r} is missing")
        return self.given[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self._get(name)
        if value not in list(choices) or isinstance(value, bool) != isinstance(choices[0], bool):
            raise UserError(f"space {self.space}: {name}={value!r} is not one of {list(choices)}")
        self.params[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UserError(f"space {self.space}: {name}={value!r} is not an integer in {low}..{high}")
        self.params[name] = value
        return value


class _Enumerator:
    """Walks the decision tree of a define-by-run function, one leaf per run (odometer over
    the choices met so far): counts assignments of spaces a formula cannot."""

    def __init__(self, path: list[int]):
        self.path = path
        self.arity: list[int] = []

    def _pick(self, n: int) -> int:
        i = len(self.arity)
        self.arity.append(n)
        if i == len(self.path):
            self.path.append(0)
        return self.path[i]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[self._pick(len(choices))]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return low + self._pick(high - low + 1)


def enumerate_count(suggest: Callable[[Any], Any], limit: int = ENUMERATION_LIMIT) -> int:
    """The number of distinct parameter assignments ``suggest`` can make (runs it once per
    assignment; raises UserError past ``limit``)."""
    path: list[int] = []
    count = 0
    while True:
        trial = _Enumerator(path)
        suggest(trial)
        count += 1
        if count > limit:
            raise UserError(f"more than {limit:,} parameter assignments: too many to enumerate")
        del path[len(trial.arity):]
        while path and path[-1] + 1 >= trial.arity[len(path) - 1]:
            path.pop()
        if not path:
            return count
        path[-1] += 1


def _ask(trial: Any, name: str, choices: Sequence[Any]) -> Any:
    """One parameter: fixed if there is one choice, suggest_int for an integer range,
    suggest_categorical otherwise."""
    if len(choices) == 1:
        return choices[0]
    if _is_int_range(choices):
        return trial.suggest_int(name, min(choices), max(choices))
    return trial.suggest_categorical(name, list(choices))


def _is_int_range(choices: Sequence[Any]) -> bool:
    ints = all(isinstance(c, int) and not isinstance(c, bool) for c in choices)
    return ints and sorted(choices) == list(range(min(choices), max(choices) + 1))


# ---- spaces --------------------------------------------------------------------------------

@dataclass
class Space:
    """A named set of genomes. Subclasses implement ``suggest`` (and ``cardinality``)."""

    name: str
    description: str
    max_gmacs: float | None = None
    max_params: int | None = None
    clip: tuple[int, int, int] = (8, 64, 64)
    classes: int | None = None  # set every genome's class count (None: the space's own)
    source: str | None = None

    def suggest(self, trial: Any) -> Genome:
        raise NotImplementedError

    def cardinality(self) -> int:
        """Distinct parameter assignments (not distinct genomes: see the kinds' notes)."""
        return enumerate_count(self.suggest)

    def from_params(self, params: dict[str, Any]) -> Genome:
        """The genome of a trial's parameters (extra keys, e.g. a learning rate, are ignored)."""
        return self.suggest(_FixedTrial(self.name, params))

    def sample_params(self, rng: random.Random, *, constrained: bool = True, tries: int = 1000) -> dict[str, Any]:
        """Uniformly random parameters; with ``constrained``, redrawn until the genome meets
        the space's constraints (uniform over the assignments that do)."""
        for _ in range(tries):
            trial = _RandomTrial(rng)
            g = self.suggest(trial)
            if not constrained or self.violates(g) is None:
                return trial.params
        raise UserError(f"space {self.name}: no genome within its constraints in {tries} random draws "
                        f"({self._limits()})")

    def sample(self, rng: random.Random, *, constrained: bool = True) -> Genome:
        """A uniformly random genome of the space (see ``sample_params``)."""
        return self.from_params(self.sample_params(rng, constrained=constrained))

    def violates(self, genome: Genome, clip: tuple[int, int, int] | None = None) -> str | None:
        """None if ``genome`` meets max_gmacs / max_params at ``clip`` (default: the space's
        input), else the reason. Meta-device counting: no arithmetic, cached by genome id."""
        if self.max_gmacs is None and self.max_params is None:
            return None
        from .profile import cost

        clip = clip or self.clip
        c = cost(genome, clip, method="fast")
        if self.max_gmacs is not None and c.gmacs > self.max_gmacs:
            return f"{c.gmacs:.3f} GMACs > max_gmacs {self.max_gmacs:g} at {'x'.join(map(str, clip))}"
        if self.max_params is not None and c.params > self.max_params:
            return f"{c.params:,} params > max_params {self.max_params:,}"
        return None

    def _limits(self) -> str:
        parts = []
        if self.max_gmacs is not None:
            parts.append(f"max_gmacs {self.max_gmacs:g} at {'x'.join(map(str, self.clip))}")
        if self.max_params is not None:
            parts.append(f"max_params {self.max_params:,}")
        return ", ".join(parts) or "no constraints"

    def _finish(self, g: Genome) -> Genome:
        return g if self.classes is None else g.with_(classes=self.classes)


@dataclass
class YamlSpace(Space):
    """A space of one of the four KINDS, read from a YAML file."""

    kind: str = "interleave"
    depths: tuple[tuple[int, ...], ...] = ()
    widths: tuple[float, ...] = (1.0,)
    fields: str = ""
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    cycle: str = "ABC"
    phase: tuple[int, ...] = (0,)
    n_2d: tuple[int, ...] = (1,)
    letters: tuple[str, ...] = ()

    def suggest(self, trial: Any) -> Genome:
        depths = [_ask(trial, f"depth_{i}", d) for i, d in enumerate(self.depths, 1)]
        width = _ask(trial, "width", self.widths)
        chosen = {k: _ask(trial, k, v) for k, v in self.choices.items()}
        n = len(depths)
        if self.kind in ("interleave", "uniform"):
            n_2d = _ask(trial, "n_2d", self.n_2d)
            if n_2d >= n:
                picks, phase = ["2"] * n, 0
            elif self.kind == "interleave":
                picks, phase = [CYCLE] * (n - n_2d) + ["2"] * n_2d, _ask(trial, "phase", self.phase)
            else:
                picks, phase = [_ask(trial, "letter", self.letters)] * (n - n_2d) + ["2"] * n_2d, 0
            stages = _cycle_letters(depths, picks, self.cycle, phase)
        elif self.kind == "per_stage":
            picks = [_ask(trial, f"letter_{i}", self.letters) for i in range(1, n + 1)]
            phase = _ask(trial, "phase", self.phase) if CYCLE in picks else 0
            stages = _cycle_letters(depths, picks, self.cycle, phase)
        else:  # free
            stages = ["".join(_ask(trial, f"block_{i}_{j}", self.letters) for j in range(1, d + 1))
                      for i, d in enumerate(depths, 1)]
        text = "|".join(stages) + " " + _merge_fields(self.fields, chosen)
        g = parse(text)
        if width != 1:
            g = scale_widths(g, width)
        return self._finish(g)

    def cardinality(self) -> int:
        """Closed form of the assignments ``suggest`` can make (a test checks it against
        ``enumerate_count``). Parameters a choice makes irrelevant (the phase when no stage
        uses the cycle) are not asked, so they do not multiply the count."""
        n = len(self.depths)
        total = len(self.widths)
        for v in self.choices.values():
            total *= len(v)
        if self.kind == "free":
            for d in self.depths:
                total *= sum(len(self.letters) ** k for k in d)
            return total
        for d in self.depths:
            total *= len(d)
        if self.kind == "interleave":
            return total * sum(len(self.phase) if k < n else 1 for k in self.n_2d)
        if self.kind == "uniform":
            return total * sum(len(self.letters) if k < n else 1 for k in self.n_2d)
        L = len(self.letters)
        plain = L - (1 if CYCLE in self.letters else 0)
        return total * (plain ** n + (L ** n - plain ** n) * len(self.phase))


def _cycle_letters(depths: Sequence[int], picks: Sequence[str], cycle: str, phase: int) -> list[str]:
    """Stage letters: a stage picking ``cycle`` continues the global cycle (its counter runs
    over cycle stages only, as in presets.p3d_letters); any other pick fills its stage."""
    out, k = [], phase
    for d, pick in zip(depths, picks):
        if pick == CYCLE:
            out.append("".join(cycle[(k + j) % len(cycle)] for j in range(d)))
            k += d
        else:
            out.append(pick * d)
    return out


def _merge_fields(fixed: str, chosen: dict[str, str]) -> str:
    """Genome fields in FIELD_ORDER: the fixed ones with the searched ones added."""
    values = dict(tok.split("=", 1) for tok in fixed.split())
    values.update({k: str(v) for k, v in chosen.items()})
    return " ".join(f"{k}={values[k]}" for k in FIELD_ORDER if k in values)


@dataclass
class PythonSpace(Space):
    """A space written as a function ``fn(trial) -> Genome`` (the YAML ``python:`` key)."""

    fn: Callable[[Any], Genome] | None = None

    def suggest(self, trial: Any) -> Genome:
        assert self.fn is not None
        g = self.fn(trial)
        if not isinstance(g, Genome):
            raise UserError(f"space {self.name}: {self.source} returned {type(g).__name__}, not a Genome")
        return self._finish(g)

    def cardinality(self) -> int:
        """``fn.cardinality`` (an int or a function) if the author gave one, else counted by
        enumerating the function's decisions (up to a million)."""
        declared = getattr(self.fn, "cardinality", None)
        if declared is not None:
            return int(declared() if callable(declared) else declared)
        try:
            return enumerate_count(self.suggest)
        except UserError as e:
            raise UserError(f"space {self.name}: {e}; give the function a `cardinality` attribute") from None


# ---- loading -------------------------------------------------------------------------------

def load_space(name_or_path: str, *, classes: int | None = None, max_gmacs: float | None = None,
               max_params: int | None = None) -> Space:
    """A space by name (``search_spaces/NAME.yaml``) or by path to a ``.yaml`` file.
    ``max_gmacs`` / ``max_params`` override the file's constraints; ``classes`` sets every
    genome's class count."""
    path = named.resolve(str(name_or_path), spaces_dir(), "search space", "spaces")
    space = _from_file(path)
    space.classes = classes
    if max_gmacs is not None:
        space.max_gmacs = _positive(path.name, "max_gmacs", max_gmacs, float)
    if max_params is not None:
        space.max_params = _positive(path.name, "max_params", max_params, int)
    return space


def list_spaces() -> list[Space]:
    """Every space in search_spaces/, by name."""
    return [load_space(str(p)) for p in sorted(spaces_dir().glob("*.yaml"))]


def _from_file(path: Path) -> Space:
    where = path.name
    data = named.read(path)
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of keys (description, kind, depths, ...)")
    for key in data:
        if not isinstance(key, str):
            raise UserError(f"{where}: key {key!r} is not a name")
    name, desc = named.name_and_description(path, data)
    common = dict(
        name=name,
        description=desc,
        max_gmacs=_positive(where, "max_gmacs", data["max_gmacs"], float) if "max_gmacs" in data else None,
        max_params=_positive(where, "max_params", data["max_params"], int) if "max_params" in data else None,
        clip=_clip(where, data.get("input", DEFAULT_INPUT)),
        source=str(path),
    )
    if "python" in data:
        _only(where, data, PYTHON_KEYS, "a python space")
        return PythonSpace(fn=_import(where, data["python"]), **common)  # type: ignore[arg-type]

    kind = data.get("kind")
    if kind not in KINDS:
        raise UserError(f"{where}: key 'kind': {kind!r} is not one of {', '.join(KINDS)} (or use 'python')")
    _only(where, data, COMMON_KEYS + KIND_KEYS[kind], f"kind {kind}")
    if "depths" not in data:
        raise UserError(f"{where}: key 'depths' is required: block counts per stage, e.g. [[1, 2], [1, 2, 4]]")
    depths = _depths(where, data["depths"])
    n = len(depths)
    fields = _fields(where, data.get("fields", ""), n)
    family = parse("|".join("2" * n) + (" " + fields if fields else "")).family
    space = YamlSpace(
        kind=kind,
        depths=depths,
        widths=_choices(where, "widths", data.get("widths", 1.0), _is_positive_number),
        fields=fields,
        choices=_field_choices(where, data.get("choices", {}), fields, n),
        **common,  # type: ignore[arg-type]
    )
    if "cycle" in KIND_KEYS[kind]:
        space.cycle = _letters_str(where, "cycle", data.get("cycle", "ABC"), family)
    if "phase" in KIND_KEYS[kind]:
        space.phase = _choices(where, "phase", data.get("phase", 0), lambda v: _is_int(v) and v >= 0)
    if "n_2d" in KIND_KEYS[kind]:
        space.n_2d = _choices(where, "n_2d", data.get("n_2d", 1), lambda v: _is_int(v) and 0 <= v <= n)
    if "letters" in KIND_KEYS[kind]:
        if "letters" not in data:
            raise UserError(f"{where}: key 'letters' is required for kind {kind}")
        allow_cycle = kind == "per_stage"
        space.letters = _choices(where, "letters", data["letters"],
                                 lambda v: (allow_cycle and v == CYCLE) or (isinstance(v, str) and v in LETTERS))
        for ch in space.letters:
            if ch != CYCLE and family not in LETTERS[ch].families:
                raise UserError(f"{where}: key 'letters': {ch!r} is not valid in the {family} family")
    # Build the smallest and the largest genome once: a bad combination fails at load time.
    for pick in (min, max):
        trial = _ExtremeTrial(pick)
        try:
            space.suggest(trial)
        except GenomeError as e:
            raise UserError(f"{where}: the space contains an invalid genome: {e}") from None
    return space


class _ExtremeTrial:
    """Always the first/last choice (``min``/``max``): a cheap load-time check."""

    def __init__(self, pick: Callable[[Sequence[Any]], Any]):
        self.pick = pick

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[0] if self.pick is min else choices[-1]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return low if self.pick is min else high


# ---- validation helpers (each error names the file and the key) ----------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_positive_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and v == v and v != float("inf")


def _only(where: str, data: dict, allowed: Sequence[str], what: str) -> None:
    for key in data:
        if key not in allowed:
            raise UserError(f"{where}: unknown key {key!r} for {what} (keys: {', '.join(allowed)})")


def _positive(where: str, key: str, value: Any, typ: type) -> Any:
    """A positive number; for ``int`` keys a whole one (1e6 from a CLI float is fine)."""
    if not _is_positive_number(value) or (typ is int and value != int(value)):
        raise UserError(f"{where}: key {key!r}: {value!r} must be a positive {'integer' if typ is int else 'number'}")
    return typ(value)


def _choices(where: str, key: str, value: Any, ok: Callable[[Any], bool]) -> tuple[Any, ...]:
    """A value or a list of distinct values, each passing ``ok``."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, str) and key == "letters" and len(value) > 1 and value != CYCLE:
        items = list(value)  # letters: ABC23R
    if not items:
        raise UserError(f"{where}: key {key!r}: give at least one value")
    for v in items:
        if not ok(v):
            raise UserError(f"{where}: key {key!r}: {v!r} is not allowed here")
    if len(set(map(repr, items))) != len(items):
        raise UserError(f"{where}: key {key!r}: values repeat")
    return tuple(items)


def _depths(where: str, value: Any) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STAGES:
        raise UserError(f"{where}: key 'depths': give one entry per stage (1..{MAX_STAGES} stages)")
    out = []
    for i, d in enumerate(value, 1):
        ok = lambda v: _is_int(v) and 1 <= v <= MAX_BLOCKS_PER_STAGE  # noqa: E731
        try:
            out.append(_choices(where, "depths", d, ok))
        except UserError:
            raise UserError(f"{where}: key 'depths', stage {i}: {d!r} must be block counts in "
                            f"1..{MAX_BLOCKS_PER_STAGE}") from None
    return tuple(out)


def _letters_str(where: str, key: str, value: Any, family: str) -> str:
    if not isinstance(value, str) or not value or any(ch not in LETTERS for ch in value):
        raise UserError(f"{where}: key {key!r}: {value!r} must be block letters ({' '.join(LETTERS)})")
    for ch in value:
        if family not in LETTERS[ch].families:
            raise UserError(f"{where}: key {key!r}: {ch!r} is not valid in the {family} family")
    return value


def _fields(where: str, value: Any, n: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"{where}: key 'fields': give genome fields as text, e.g. \"stem=2d/s t=-,-,p,p\"")
    for tok in value.split():
        key = tok.partition("=")[0]
        if key in ("w", "sw"):
            raise UserError(f"{where}: key 'fields': {key}= is not allowed (widths are the 'widths' multipliers "
                            "of the P3D widths)")
    # Probe with C blocks (2 in the basic family): a field that acts only on some letters
    # (cw=) must survive the canonical round trip that drops fields a network cannot use.
    probe = "2" if "fam=basic" in value.split() else "C"
    try:
        g = parse("|".join(probe * n) + " " + value)
    except GenomeError as e:
        raise UserError(f"{where}: key 'fields': {e}") from None
    # canonical order, defaults dropped: the letters-free part of the genome string
    return " ".join(str(g).split()[1:])


def _field_choices(where: str, value: Any, fields: str, n: int) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise UserError(f"{where}: key 'choices': give a mapping of genome fields to values, e.g. {{stem: [2d/ts, 2d/s]}}")
    out: dict[str, tuple[str, ...]] = {}
    for key, vals in value.items():
        if key not in SEARCHABLE_FIELDS:
            raise UserError(f"{where}: key 'choices': {key!r} is not a searchable field ({', '.join(SEARCHABLE_FIELDS)})")
        items = tuple(str(v) for v in (vals if isinstance(vals, list) else [vals]))
        for v in items:
            try:
                parse("|".join("2" * n) + " " + _merge_fields(fields, {key: v}))
            except GenomeError as e:
                raise UserError(f"{where}: key 'choices', {key}={v}: {e}") from None
        if len(set(items)) != len(items) or not items:
            raise UserError(f"{where}: key 'choices', {key}: give distinct values")
        out[key] = items
    return out


def _clip(where: str, value: Any) -> tuple[int, int, int]:
    from .profile import parse_clip

    try:
        return parse_clip(str(value))
    except UserError as e:
        raise UserError(f"{where}: key 'input': {e}") from None


def _import(where: str, value: Any) -> Callable[[Any], Genome]:
    if not isinstance(value, str) or value.count(":") != 1:
        raise UserError(f"{where}: key 'python': {value!r} must be module:function")
    module, func = value.split(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except ImportError as e:
        raise UserError(f"{where}: key 'python': cannot import {module}: {e}") from None
    except AttributeError:
        raise UserError(f"{where}: key 'python': {module} has no {func!r}") from None
    if not callable(fn):
        raise UserError(f"{where}: key 'python': {value} is not a function")
    return fn
