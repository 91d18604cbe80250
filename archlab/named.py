"""Named YAML files: ``search_spaces/NAME.yaml`` and ``studies/NAME.yaml`` are both asked for
by a short name or by a path, and both folders can be moved with an environment variable.
One resolver, so a space and a study answer a typo with the same one-line error."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError

REPO = Path(__file__).resolve().parent.parent  # the package is installed editable (pip install -e .)


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
            raise UserError(f"{what} file {text} not found")
        return path
    path = where / f"{text}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in where.glob("*.yaml"))) or "none"
        raise UserError(f"unknown {what} {text!r}: {plural} are {known} (or give a path to a .yaml)")
    return path


def read(path: Path) -> Any:
    """The file's YAML, or one line that says where it is broken."""
    where = path.name
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(f"{where}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    except OSError as e:
        raise UserError(f"{where}: cannot read: {e.strerror}") from None


def name_and_description(path: Path, data: dict[str, Any]) -> tuple[str, str]:
    """The file's name (its stem; a ``name:`` key must agree) and its one-line description."""
    where, name = path.name, path.stem
    if "name" in data and data["name"] != name:
        raise UserError(f"{where}: key 'name': {data['name']!r} must match the file name {name!r}")
    desc = data.get("description")
    if not isinstance(desc, str) or not desc.strip() or "\n" in desc.strip():
        raise UserError(f"{where}: key 'description': give a one-line description")
    return name, desc.strip()
