"""Named YAML files: search spaces and experiments are both asked for by a short name or by a
path. A name is looked up in a user's folder (an environment variable), then the current
directory's ``search_spaces/`` or ``experiments/``, then the files the package ships.
One resolver, so a space and an experiment answer a typo with the same one-line error, and one
reader (``loader``: the file's YAML bounded in size, aliases, depth, lengths and numbers
before anything uses it). ``checks`` holds the value checks both kinds of file share."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from . import yaml_loader as loader
from .errors import UserError, shorten


def folders(env: str, local: str, package: str) -> list[Path]:
    """Where files of one kind are looked up, first hit wins: ``$env`` (a user's folder), the
    current directory's ``local`` folder if there is one, then the package's own
    (``package``'s ``builtin/`` folder, shipped as package data in every install)."""
    out = [Path(os.environ[env])] if os.environ.get(env) else []
    if Path(local).is_dir():
        out.append(Path(local))
    out.append(Path(str(resources.files(package) / "builtin")))
    return out


def listing(where: list[Path]) -> dict[str, Path]:
    """Every ``NAME.yaml`` in ``where`` by name, sorted; a name in an earlier folder hides the
    same name in a later one."""
    found: dict[str, Path] = {}
    for folder in where:
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else ():
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def resolve(text: str, where: list[Path], what: str, plural: str) -> Path:
    """A ``.yaml`` path as given, or the first ``NAME.yaml`` in ``where`` for a bare name; a
    clear error names the ones there are."""
    if text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise UserError(f"{what} file {shorten(text, 200, plain=True)} not found")
        return path
    known = listing(where)
    if text not in known:
        names = ", ".join(known) or "none"
        raise UserError(f"unknown {what} {shorten(text)}: {plural} are {names} (or give a path to a .yaml)")
    return known[text]


def read(path: Path) -> Any:
    """The file's YAML, bounded (loader.py: size, aliases, depth, lengths, numbers), or one
    line that says where it is broken."""
    return loader.load(loader.read_text(path), path.name)


MAX_DESCRIPTION = 200  # characters: one line of `archlab spaces` / `archlab experiment list`


def name_and_description(path: Path, data: dict[str, Any]) -> tuple[str, str]:
    """The file's name (its stem; a ``name:`` key must agree) and its one-line description."""
    where, name = path.name, path.stem
    if "name" in data and data["name"] != name:
        raise UserError(f"{where}: key 'name': {shorten(data['name'])} must match the file name {shorten(name)}")
    desc = data.get("description")
    if not isinstance(desc, str) or not desc.strip() or "\n" in desc.strip():
        raise UserError(f"{where}: key 'description': give a one-line description")
    if len(desc.strip()) > MAX_DESCRIPTION:
        raise UserError(
            f"{where}: key 'description': {len(desc.strip()):,} characters; at most {MAX_DESCRIPTION} "
            "(one line of a table: put the rest in a comment)"
        )
    return name, desc.strip()
