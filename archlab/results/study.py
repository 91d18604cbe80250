"""A study directory's settings and its Optuna storage: ``study.yaml`` read and checked as a
``StudyInfo``, and the storage opened to read. The rows and tables built from them are
``reader``'s; both modules together are the one reader of a study directory.

A corrupt or truncated ``optuna.db`` (or ``study.yaml``) is a UserError, one line, not a
sqlalchemy traceback; the storage is opened without creating tables, so a reader never writes
into a study. This module imports neither ray nor torch.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..util.clips import parse_clip
from ..util.errors import UserError, shorten
from . import pareto

OBJECTIVES = {
    "acc": ("val_top1", "max"),
    "latency": ("latency_ms", "min"),
    "gmacs": ("gmacs", "min"),
    "params": ("params", "min"),
}
BASELINE_SUFFIX = ":baselines"
STORAGE_FILE = "optuna.db"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def parse_objectives(text: str) -> tuple[list[str], list[str]]:
    """'acc,latency' -> (['val_top1', 'latency_ms'], ['max', 'min'])."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in OBJECTIVES]
    if bad or len(keys) != 2 or keys[0] != "acc":
        raise UserError(f"--objectives {shorten(text)}: use acc,latency | acc,gmacs | acc,params")
    return [OBJECTIVES[k][0] for k in keys], [OBJECTIVES[k][1] for k in keys]


# ---- study.yaml ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyInfo:
    """What study.yaml holds, plus where the study lives."""

    dir: Path
    settings: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.settings.get("name") or self.dir.resolve().name)

    @property
    def storage_url(self) -> str:
        url = self.settings.get("storage") or STORAGE_FILE
        if "://" in url:
            return url
        return f"sqlite:///{(self.dir / url).resolve()}"

    @property
    def storage_file(self) -> Path | None:
        """The study's SQLite file, or None for an RDB URL (a shared database)."""
        url = self.settings.get("storage") or STORAGE_FILE
        return None if "://" in url else self.dir / url

    @property
    def objectives(self) -> list[str]:
        return [str(o) for o in self.settings["objectives"]]

    @property
    def directions(self) -> list[str]:
        """'max'/'min' per objective: study.yaml's ``directions`` (Optuna's 'maximize' read as
        'max'), else each objective's usual direction (``pareto.DIRECTIONS``)."""
        stored = self.settings.get("directions")
        if stored is None:
            return [pareto.DIRECTIONS[o] for o in self.objectives]
        return [{"maximize": "max", "minimize": "min"}.get(str(d), str(d)) for d in stored]

    @property
    def target_clip(self) -> tuple[int, int, int] | None:
        """The clip of the network the study's costs are of (its target), or None for a study
        from before targets, whose costs are its proxies' at the proxy clip."""
        text = self.settings.get("target_input")
        return parse_clip(text) if text else None

    @property
    def cost_clip(self) -> tuple[int, int, int] | None:
        """The clip the study's latency, GMACs and params are taken at: the target's, else the
        proxy's (a study from before targets)."""
        return self.target_clip or self.clip

    @property
    def proxy_width(self) -> float:
        """The width multiplier of the study's proxies (1.0: a study from before targets)."""
        return float(self.settings.get("proxy_width") or 1.0)

    def units(self) -> str:
        """What the study's costs are of, in one line for a table's header: the target at its
        clip (latency on which device, runtime and form), or, for a study from before targets,
        the trained proxies themselves."""
        s = self.settings
        where = (
            f"{'cuda' if float(s.get('gpus_per_trial') or 0) > 0 else 'cpu'}, "
            f"{s.get('latency_runtime') or 'torch'} {s.get('latency_form') or 'fp32/ncdhw'}, batch 1"
        )
        clip = "x".join(map(str, self.clip)) if self.clip else "?"
        if self.target_clip is None:
            return (
                f"costs are the proxies' own at {clip} ({where}): this study is from before targets; "
                "they are not the costs of a network you would ship"
            )
        width = f"width x{self.proxy_width:g}, " if self.proxy_width != 1 else ""
        how = (
            "predicted by the latency table, the full-budget trials' measured end to end"
            if s.get("latency") == "predicted"
            else "measured end to end"
        )
        return (
            f"costs of the target, the network shipped: latency ms at {'x'.join(map(str, self.target_clip))} "
            f"({where}; {how}), GMACs and params at that clip; accuracy of its proxy ({width}{clip} clips)"
        )

    @property
    def clip(self) -> tuple[int, int, int] | None:
        """(frames, height, width) of the proxy clips the study trained and measured on, or None
        if study.yaml does not say. Read from ``clip: [T, H, W]``, else ``recipe: {frames,
        size}``, else top-level ``frames``/``size`` (what the search stores)."""
        s = self.settings
        if isinstance(s.get("clip"), (list, tuple)) and len(s["clip"]) == 3:
            t, h, w = s["clip"]
        else:
            src = s["recipe"] if isinstance(s.get("recipe"), dict) else s
            if src.get("frames") is None or src.get("size") is None:
                return None
            t, h, w = src["frames"], src["size"], src["size"]
        try:
            clip = (int(t), int(h), int(w))
        except (TypeError, ValueError):
            raise UserError(
                f"{self.dir / 'study.yaml'}: the proxy clip {shorten([t, h, w])} is not three whole numbers"
            ) from None
        if min(clip) < 1:
            raise UserError(f"{self.dir / 'study.yaml'}: the proxy clip {'x'.join(map(str, clip))} is not positive")
        return clip


def load_study_info(study_dir: str | Path) -> StudyInfo:
    d = Path(study_dir)
    f = d / "study.yaml"
    if not d.is_dir():
        raise UserError(f"study directory {d} does not exist")
    if not f.is_file():
        raise UserError(f"{d} is not a study directory (no study.yaml): run `archlab search` first")
    try:
        settings = yaml.safe_load(f.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{f}: not valid YAML ({first_line(e)})") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("objectives"), list):
        raise UserError(f"{f}: missing the study settings (objectives)")
    info = StudyInfo(d, settings)
    unknown = [o for o in info.objectives if o not in pareto.DIRECTIONS and settings.get("directions") is None]
    if unknown:
        raise UserError(
            f"{f}: objective {shorten(unknown[0])} has no known direction ({', '.join(pareto.DIRECTIONS)}); "
            "add `directions:`"
        )
    if len(info.directions) != len(info.objectives) or set(info.directions) - {"max", "min"}:
        raise UserError(
            f"{f}: directions {shorten(settings.get('directions'))} do not match objectives "
            f"{shorten(info.objectives)} (one of max/min each)"
        )
    return info


# ---- the Optuna storage --------------------------------------------------------------------


def quiet_optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    return optuna


@contextlib.contextmanager
def storage_errors(info: StudyInfo) -> Iterator[None]:
    """Turn what a damaged storage raises (sqlalchemy / sqlite / Optuna's wrapper of them)
    into one line naming the file."""
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    where = info.storage_file if info.storage_file is not None else info.storage_url
    try:
        yield
    except (StorageInternalError, sqlalchemy.exc.SQLAlchemyError, sqlite3.Error) as e:
        cause = e.__cause__ or e.__context__ or e
        why = re.sub(r"^\([\w.]+\)\s*", "", first_line(cause))  # sqlalchemy's "(sqlite3.DatabaseError) "
        raise UserError(
            f"{where} cannot be read as an Optuna storage ({why}): it is corrupt or "
            f"truncated; restore it from a copy (results.csv holds the last table written from "
            f"it)"
        ) from None


def open_storage(info: StudyInfo) -> Any | None:
    """The study's Optuna storage, opened to read: never creates tables (a reader does not
    write into a study). None when the study has no storage file yet (nothing tried). A file
    that is empty, not SQLite, truncated or damaged is a UserError."""
    f = info.storage_file
    if f is not None:
        if not f.exists():
            return None
        try:
            with open(f, "rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as e:
            raise UserError(f"{f} cannot be read ({e.strerror})") from None
        if not head:
            raise UserError(
                f"{f} is empty (0 bytes): the Optuna storage was truncated; restore it from a copy "
                "(results.csv holds the last table written from it)"
            )
        if head != _SQLITE_MAGIC:
            raise UserError(
                f"{f} is not an SQLite database (corrupt or overwritten); restore it from a copy "
                "(results.csv holds the last table written from it)"
            )
    optuna = quiet_optuna()
    with storage_errors(info):
        try:
            return optuna.storages.RDBStorage(info.storage_url, skip_table_creation=True)
        except RuntimeError as e:  # a schema of another Optuna version
            raise UserError(f"{f or info.storage_url}: {first_line(e)}") from None


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line if len(line) <= 200 else line[:197] + "..."
