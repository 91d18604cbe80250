"""Named YAML files: ``search_spaces/NAME.yaml`` and ``studies/NAME.yaml`` are both asked for
by a short name or by a path, and both folders can be moved with an environment variable.
One resolver, so a space and a study answer a typo with the same one-line error, and one
reader (``loader``: the file's YAML bounded in size, aliases, depth, lengths and numbers
before anything uses it). ``checks`` holds the value checks both kinds of file share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UserError, shorten
from . import loader

REPO = Path(__file__).resolve().parent.parent.parent  # the package is installed editable (pip install -e .)


def folder(env: str, default: str) -> Path:
    """``$env`` if set, else the repository's ``default`` folder."""
    value = os.environ.get(env)
    return Path(value) if value else REPO / default


def resolve(text: str, where: Path, what: str, plural: str) -> Path:
    """A ``.yaml`` path as given, or ``where/NAME.yaml`` for a bare name; a clear error names
    the ones there are."""
    if text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise UserError(f"{what} file {shorten(text, 200, plain=True)} not found")
        return path
    path = where / f"{text}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in where.glob("*.yaml"))) or "none"
        raise UserError(f"unknown {what} {shorten(text)}: {plural} are {known} (or give a path to a .yaml)")
    return path


def read(path: Path) -> Any:
    """The file's YAML, bounded (loader.py: size, aliases, depth, lengths, numbers), or one
    line that says where it is broken."""
    return loader.load(loader.read_text(path), path.name)


MAX_DESCRIPTION = 200  # characters: one line of `archlab spaces` / `archlab study list`


def name_and_description(path: Path, data: dict[str, Any]) -> tuple[str, str]:
    """The file's name (its stem; a ``name:`` key must agree) and its one-line description."""
    where, name = path.name, path.stem
    if "name" in data and data["name"] != name:
        raise UserError(f"{where}: key 'name': {shorten(data['name'])} must match the file name {shorten(name)}")
    desc = data.get("description")
    if not isinstance(desc, str) or not desc.strip() or "\n" in desc.strip():
        raise UserError(f"{where}: key 'description': give a one-line description")
    if len(desc.strip()) > MAX_DESCRIPTION:
        raise UserError(f"{where}: key 'description': {len(desc.strip()):,} characters; at most {MAX_DESCRIPTION} "
                        "(one line of a table: put the rest in a comment)")
    return name, desc.strip()
