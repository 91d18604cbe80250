"""Checks of the values of a named YAML file, shared by spaces and experiments: each failure is
one UserError that names the file and the key, and echoes the value cut (errors.shorten)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .errors import UserError, shorten


def is_int(v: Any) -> bool:
    """A whole number written as one (``True`` and ``2.0`` are not)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """An int or a float that is finite (``.inf`` and ``.nan`` are YAML floats)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_positive_number(v: Any) -> bool:
    return is_number(v) and v > 0


def mapping(where: str, key: str, value: Any, allowed: Sequence[str], what: str = "") -> dict[str, Any]:
    """``value`` as a mapping whose keys are all in ``allowed``. ``key`` is where it sits
    ("" for the file itself); ``what`` names it in the unknown-key message ("kind free")."""
    at = f"key '{key}'" if key else "the file"
    if not isinstance(value, dict):
        raise UserError(f"{where}: {at}: expected a mapping ({_names(allowed)})")
    for k in value:
        if not isinstance(k, str):
            raise UserError(f"{where}: {at}: key {shorten(k)} is not a name")
        if k not in allowed:
            inside = f" for {what}" if what else f" in '{key}'" if key else ""
            raise UserError(f"{where}: unknown key {shorten(k)}{inside} (keys: {_names(allowed)})")
    return value


def _names(allowed: Sequence[str], budget: int = 320) -> str:
    """The allowed keys as a list for a one-line message: as many as fit in ``budget``
    characters, then how many more (a search's settings run to over 50 names)."""
    shown: list[str] = []
    for name in allowed:
        if len(", ".join([*shown, name])) > budget:
            return f"{', '.join(shown)}, ... and {len(allowed) - len(shown)} more"
        shown.append(name)
    return ", ".join(shown)


def positive(where: str, key: str, value: Any, typ: type) -> Any:
    """A positive finite number; for ``int`` keys a whole one (1e6 from a CLI float is fine)."""
    if not is_positive_number(value) or (typ is int and value != int(value)):
        raise UserError(
            f"{where}: key {key!r}: {shorten(value)} must be a positive {'integer' if typ is int else 'number'}"
        )
    return typ(value)
