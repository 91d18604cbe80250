"""Reading a space file: every key checked, each error one line naming the file and the key
(the YAML itself is read bounded by archlab.util.named)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from ..model.genome import LETTERS, MAX_BLOCKS_PER_STAGE, MAX_STAGES, Genome, GenomeError, parse
from ..util import named
from ..util.clips import parse_clip
from ..util.errors import UserError, shorten
from ..util.yaml_checks import is_int, is_positive_number, mapping, positive
from .space import CYCLE, KINDS, PythonSpace, Space, YamlSpace, merge_fields
from .trials import ExtremeTrial

COMMON_KEYS = (
    "name",
    "description",
    "kind",
    "depths",
    "widths",
    "fields",
    "choices",
    "max_gmacs",
    "max_params",
    "input",
    "target",
    "proxy",
)
KIND_KEYS = {
    "interleave": ("cycle", "phase", "n_2d"),
    "uniform": ("letters", "n_2d"),
    "per_stage": ("letters", "cycle", "phase"),
    "free": ("letters",),
}
PYTHON_KEYS = ("name", "description", "python", "max_gmacs", "max_params", "input", "target", "proxy")
SEARCHABLE_FIELDS = ("stem", "fam", "s", "t", "drop")  # widths: ``widths``; classes: the dataset
DEFAULT_INPUT = "8x64x64"


def space_folders() -> list[Path]:
    """Where a space's name is looked up, first hit wins: $ARCHLAB_SPACES, ./search_spaces/,
    the spaces the package ships."""
    return named.folders("ARCHLAB_SPACES", "search_spaces", "archlab.spaces")


def load_space(
    name_or_path: str, *, classes: int | None = None, max_gmacs: float | None = None, max_params: int | None = None
) -> Space:
    """A space by name (``NAME.yaml`` in ``space_folders()``) or by path to a ``.yaml`` file.
    ``max_gmacs`` / ``max_params`` override the file's constraints; ``classes`` sets every
    genome's class count."""
    path = named.resolve(str(name_or_path), space_folders(), "search space", "spaces")
    space = _from_file(path)
    space.classes = classes
    if max_gmacs is not None:
        space.max_gmacs = positive(path.name, "max_gmacs", max_gmacs, float)
    if max_params is not None:
        space.max_params = positive(path.name, "max_params", max_params, int)
    return space


def list_spaces() -> list[Space]:
    """Every space that a name finds (``space_folders``), by name."""
    return [load_space(str(p)) for p in named.listing(space_folders()).values()]


def _from_file(path: Path) -> Space:
    where = path.name
    data = named.read(path)
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of keys (description, kind, depths, ...)")
    for key in data:
        if not isinstance(key, str):
            raise UserError(f"{where}: key {shorten(key)} is not a name")
    name, desc = named.name_and_description(path, data)
    target_clip, proxy_width = _target_and_proxy(where, data)
    common = dict(
        name=name,
        description=desc,
        max_gmacs=positive(where, "max_gmacs", data["max_gmacs"], float) if "max_gmacs" in data else None,
        max_params=positive(where, "max_params", data["max_params"], int) if "max_params" in data else None,
        clip=target_clip or _clip(where, data.get("input", DEFAULT_INPUT)),
        target_clip=target_clip,
        proxy_width=proxy_width,
        source=str(path),
    )
    if "python" in data:
        mapping(where, "", data, PYTHON_KEYS, "a python space")
        return PythonSpace(fn=_import(where, data["python"]), **common)  # type: ignore[arg-type]

    kind = data.get("kind")
    if kind not in KINDS:
        raise UserError(f"{where}: key 'kind': {shorten(kind)} is not one of {', '.join(KINDS)} (or use 'python')")
    mapping(where, "", data, COMMON_KEYS + KIND_KEYS[kind], f"kind {kind}")
    if "depths" not in data:
        raise UserError(f"{where}: key 'depths' is required: block counts per stage, e.g. [[1, 2], [1, 2, 4]]")
    depths = _depths(where, data["depths"])
    n = len(depths)
    fields = _fields(where, data.get("fields", ""), n)
    family = parse("|".join("2" * n) + (" " + fields if fields else "")).family
    space = YamlSpace(
        kind=kind,
        depths=depths,
        widths=_choices(where, "widths", data.get("widths", 1.0), is_positive_number),
        fields=fields,
        choices=_field_choices(where, data.get("choices", {}), fields, n),
        **common,  # type: ignore[arg-type]
    )
    if "cycle" in KIND_KEYS[kind]:
        space.cycle = _letters_str(where, "cycle", data.get("cycle", "ABC"), family)
    if "phase" in KIND_KEYS[kind]:
        k = len(space.cycle)  # phase k+i is phase i again: a larger one only repeats genomes
        space.phase = _choices(
            where,
            "phase",
            data.get("phase", 0),
            lambda v: is_int(v) and 0 <= v < k,
            f" (an integer in 0..{k - 1}: the cycle {space.cycle} has {k} letters)",
        )
    if "n_2d" in KIND_KEYS[kind]:
        space.n_2d = _choices(
            where,
            "n_2d",
            data.get("n_2d", 1),
            lambda v: is_int(v) and 0 <= v <= n,
            f" (an integer in 0..{n}: the space has {n} stages)",
        )
    if "letters" in KIND_KEYS[kind]:
        if "letters" not in data:
            raise UserError(f"{where}: key 'letters' is required for kind {kind}")
        allow_cycle = kind == "per_stage"
        space.letters = _choices(
            where,
            "letters",
            data["letters"],
            lambda v: (allow_cycle and v == CYCLE) or (isinstance(v, str) and v in LETTERS),
        )
        for ch in space.letters:
            if ch != CYCLE and family not in LETTERS[ch].families:
                raise UserError(f"{where}: key 'letters': {shorten(ch)} is not valid in the {family} family")
    # Build the smallest and the largest genome once: a bad combination fails at load time.
    for pick in (min, max):
        trial = ExtremeTrial(pick)
        try:
            space.suggest(trial)
        except GenomeError as e:
            raise UserError(f"{where}: the space contains an invalid genome: {e}") from None
    return space


# ---- validation helpers (each error names the file and the key) ----------------------------


def _choices(where: str, key: str, value: Any, ok: Callable[[Any], bool], hint: str = "") -> tuple[Any, ...]:
    """A value or a list of distinct values, each passing ``ok``."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, str) and key == "letters" and len(value) > 1 and value != CYCLE:
        items = list(value)  # letters: ABC23R
    if not items:
        raise UserError(f"{where}: key {shorten(key)}: give at least one value")
    for v in items:
        if not ok(v):
            raise UserError(f"{where}: key {shorten(key)}: {shorten(v)} is not allowed here{hint}")
    if len(set(map(repr, items))) != len(items):
        raise UserError(f"{where}: key {shorten(key)}: values repeat")
    return tuple(items)


def _depths(where: str, value: Any) -> tuple[tuple[int, ...], ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STAGES:
        raise UserError(f"{where}: key 'depths': give one entry per stage (1..{MAX_STAGES} stages)")
    out = []
    for i, d in enumerate(value, 1):
        ok = lambda v: is_int(v) and 1 <= v <= MAX_BLOCKS_PER_STAGE  # noqa: E731
        try:
            out.append(_choices(where, "depths", d, ok))
        except UserError:
            raise UserError(
                f"{where}: key 'depths', stage {i}: {shorten(d)} must be block counts in 1..{MAX_BLOCKS_PER_STAGE}"
            ) from None
    return tuple(out)


def _letters_str(where: str, key: str, value: Any, family: str) -> str:
    if not isinstance(value, str) or not value or any(ch not in LETTERS for ch in value):
        raise UserError(f"{where}: key {shorten(key)}: {shorten(value)} must be block letters ({' '.join(LETTERS)})")
    for ch in value:
        if family not in LETTERS[ch].families:
            raise UserError(f"{where}: key {shorten(key)}: {shorten(ch)} is not valid in the {family} family")
    return value


def _fields(where: str, value: Any, n: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"{where}: key 'fields': give genome fields as text, e.g. \"stem=2d/s t=-,-,p,p\"")
    for tok in value.split():
        key = tok.partition("=")[0]
        if key in ("w", "sw"):
            raise UserError(
                f"{where}: key 'fields': {key}= is not allowed (widths are the 'widths' multipliers of the P3D widths)"
            )
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
        raise UserError(
            f"{where}: key 'choices': give a mapping of genome fields to values, e.g. {{stem: [2d/ts, 2d/s]}}"
        )
    out: dict[str, tuple[str, ...]] = {}
    for key, vals in value.items():
        if key not in SEARCHABLE_FIELDS:
            raise UserError(
                f"{where}: key 'choices': {shorten(key)} is not a searchable field ({', '.join(SEARCHABLE_FIELDS)})"
            )
        items = tuple(str(v) for v in (vals if isinstance(vals, list) else [vals]))
        for v in items:
            try:
                parse("|".join("2" * n) + " " + merge_fields(fields, {key: v}))
            except GenomeError as e:
                raise UserError(f"{where}: key 'choices', {key}={v}: {e}") from None
        if len(set(items)) != len(items) or not items:
            raise UserError(f"{where}: key 'choices', {key}: give distinct values")
        out[key] = items
    return out


def _target_and_proxy(where: str, data: dict[str, Any]) -> tuple[tuple[int, int, int] | None, float]:
    """The ``target:`` section (``input``: the clip the shipped network sees; the constraints
    are counted there) and the ``proxy:`` section (``width``: the multiplier that reduces a
    target to the proxy a search trains). A space without a target trains its genomes as
    written and counts its constraints at ``input``."""
    from ..model.reduction import Reduction

    target = mapping(where, "target", data.get("target") or {}, ("input",))
    proxy = mapping(where, "proxy", data.get("proxy") or {}, ("width",))
    if "target" not in data:
        if "proxy" in data:
            raise UserError(f"{where}: key 'proxy': a proxy reduces a target: give the 'target' section too")
        return None, 1.0
    if "input" in data:
        raise UserError(f"{where}: key 'input': with a 'target' section the constraints are counted at its input")
    if "input" not in target:
        raise UserError(f"{where}: key 'target.input' is required: the clip the shipped network sees, e.g. 16x112x112")
    clip = _clip(where, target["input"], "target.input")
    width = proxy.get("width", 1.0)
    try:
        Reduction(width=width)
    except UserError:
        raise UserError(f"{where}: key 'proxy.width': {shorten(width)} must be a number in (0, 1]") from None
    return clip, float(width)


def _clip(where: str, value: Any, key: str = "input") -> tuple[int, int, int]:
    try:
        return parse_clip(str(value))
    except UserError as e:
        raise UserError(f"{where}: key '{key}': {e}") from None


def _import(where: str, value: Any) -> Callable[[Any], Genome]:
    if not isinstance(value, str) or value.count(":") != 1:
        raise UserError(f"{where}: key 'python': {shorten(value)} must be module:function")
    module, func = value.split(":")
    try:
        fn = getattr(importlib.import_module(module), func)
    except ImportError as e:
        raise UserError(f"{where}: key 'python': cannot import {shorten(module)}: {shorten(str(e), 120)}") from None
    except AttributeError:
        raise UserError(f"{where}: key 'python': {shorten(module)} has no {shorten(func)}") from None
    if not callable(fn):
        raise UserError(f"{where}: key 'python': {shorten(value)} is not a function")
    return fn
