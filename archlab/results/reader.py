"""The results of a study: the ONE reader of a study directory, with ``study`` (its settings
and storage).

A study directory is read here and nowhere else (report, export, tracking, dashboard and
experiments all come through this module and ``study``), so there is one answer to "what did
this study find":

* ``study.load_study_info``: ``study.yaml``, the settings the search stored (objectives,
  directions, the proxy clip, ...), checked, as a ``StudyInfo``.
* ``load_results``: every trial of the study, read from its Optuna storage (the single source
  of truth: ``results.csv`` is derived from it), one ``record.TrialRecord`` per Optuna trial
  turned into one pandas row, baselines included, the front marked.
* ``find_trial``: the row a user means by ``--trial ID``. The id users see everywhere (CLI
  tables, the report, W&B run names) is the study's trial NUMBER (``trial`` column): ``7``
  for search trial 7, ``b0`` for baseline 0 (baselines are numbered in their own Optuna
  study). A Ray trial id is accepted only where it names exactly one trial: rejected
  proposals share the Ray trial they were proposed for.

This module imports neither ray nor torch, so reports and exports can read a study anywhere.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..model.genome import LETTERS, GenomeError, parse
from ..util.errors import UserError, shorten
from . import confirmed, pareto
from .record import ATTRS, FINISHED, FRONT, STATUSES, TrialRecord
from .remeasure import remeasured
from .study import BASELINE_SUFFIX, StudyInfo, load_study_info, open_storage, quiet_optuna, storage_errors

# The columns every results table has, in this order (then param_*, then genome columns).
COLUMNS = (
    "trial",
    "number",
    "trial_id",
    "genome",
    "genome_id",
    "proxy_genome",
    "proxy_genome_id",
    "label",
    "status",
    "reason",
    "val_top1",
    "val_top5",
    "latency_ms",
    "clips_per_s",
    "gmacs",
    "params",
    "proxy_latency_ms",
    "proxy_gmacs",
    "proxy_params",
    "epochs",
    "train_time_s",
    "trial_time_s",
    "checkpoint",
    "node",
    "train_form",
    "latency_form",
    "latency_runtime",
    "baseline",
)
# When the trial started and ended (Optuna's datetime_start / datetime_complete: the search asks
# Optuna for a trial as Ray launches it and tells it the outcome as it ends), ISO 8601, empty
# while running: the wall-clock axis of the hypervolume history. Not part of a trial's record
# (export's model card and W&B carry COLUMNS only).
TIME_COLUMNS = ("started", "completed")

__all__ = [
    "COLUMNS",
    "FINISHED",
    "STATUSES",
    "TIME_COLUMNS",
    "confirm_settings",
    "find_trial",
    "finished",
    "hypervolume_summary",
    "letters_summary",
    "load_confirm_rows",
    "load_results",
    "mark_front",
    "row",
    "table",
    "trial_name",
]


def trial_name(number: int, baseline: bool) -> str:
    """The id a user sees and types for a trial: '7' (search trial 7) or 'b0' (baseline 0)."""
    return f"b{int(number)}" if baseline else str(int(number))


def row(
    number: int,
    rec: TrialRecord,
    baseline: bool,
    params: dict[str, Any] | None = None,
    *,
    started: datetime | None = None,
    completed: datetime | None = None,
) -> dict[str, Any]:
    """One row of a results table: a trial's number, its record, whether it is a baseline,
    the space's choices (``param_*``) and when it started and completed (``TIME_COLUMNS``).
    A value that is not finite is missing, as the record stores it (``TrialRecord.to_attrs``),
    so a table is the same read back or built."""
    out: dict[str, Any] = {"trial": trial_name(number, baseline), "number": number, "trial_id": rec.ray_trial_id or ""}
    for name in ATTRS:
        if name != "ray_trial_id":
            v = getattr(rec, name)
            out[name] = None if isinstance(v, float) and not math.isfinite(v) else v  # as stored: missing
    out["status"] = rec.status.value
    # the forms' words are empty for studies from before forms were recorded (fp32 eager torch)
    for k in ("genome", "genome_id", "label", "checkpoint", "node", "train_form", "latency_form", "latency_runtime"):
        out[k] = out[k] or ""
    # a study from before targets trained the network its costs are of: it is its own proxy
    out["proxy_genome"] = out["proxy_genome"] or out["genome"]
    out["proxy_genome_id"] = out["proxy_genome_id"] or out["genome_id"]
    out["epochs"] = out["epochs"] or 0
    out["baseline"] = baseline
    out["started"] = started.isoformat() if started is not None else ""
    out["completed"] = completed.isoformat() if completed is not None else ""
    out.update({f"param_{k}": v for k, v in (params or {}).items()})
    return out


def _rows(study: Any, baseline: bool) -> list[dict[str, Any]]:
    return [
        row(
            t.number,
            TrialRecord.from_attrs(t.user_attrs, t.state.name),
            baseline,
            t.params,
            started=t.datetime_start,
            completed=t.datetime_complete,
        )
        for t in study.get_trials(deepcopy=False)
    ]


def table(
    rows: list[dict[str, Any]],
    objectives: list[str],
    directions: list[str],
    *,
    confirm_rows: list[dict[str, Any]] = (),
    confirm_seeds: int = 0,
    base_seed: int = 0,
    latencies: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The results table of ``rows`` (``row`` dicts): the columns in order, search trials then
    baselines by number, genome columns, each trial's seeds (its own and its confirm runs'
    ``confirm_rows``: ``archlab.results.confirmed.COLUMNS``), the front marked on the mean over all
    seeds, which front it is (``front``: provisional | confirmed, the same on every row) and,
    for front points, the front points whose accuracy CIs overlap theirs (``indistinct_from``)
    and ``distinguishable`` (no overlap; missing for a point with one seed: no CI).
    ``load_results`` builds its table with this; tests build tables from trial records with
    it, without a database. ``latencies``: a function of the table that returns it with the
    latencies measured again after the search (``remeasure.apply``), before the front is marked."""
    known = (*COLUMNS, *TIME_COLUMNS)
    df = pd.DataFrame(rows, columns=list(known) + sorted({k for r in rows for k in r} - set(known)))
    df = df.astype({"trial": str, "trial_id": str, "genome": str, "status": str, "baseline": bool})
    df[list(TIME_COLUMNS)] = df[list(TIME_COLUMNS)].fillna("").astype(str)
    df = df.sort_values(["baseline", "number"], kind="stable").reset_index(drop=True)
    df = _genome_columns(df)
    if latencies is not None:
        df = latencies(df)
    df = confirmed.add_columns(df, confirm_rows)
    df["on_front"] = mark_front(df, objectives, directions)
    df["front"] = confirmed.front_kind(
        df, confirm_rows, objectives, directions, extra=confirm_seeds, base_seed=base_seed
    )
    df["indistinct_from"] = pd.Series([None] * len(df), index=df.index, dtype="object")
    df["distinguishable"] = pd.Series([None] * len(df), index=df.index, dtype="object")
    front = df[df["on_front"]]
    if len(front):
        near = confirmed.overlaps(front)
        df.loc[front.index, "indistinct_from"] = near
        df.loc[front.index, "distinguishable"] = near.map(lambda v: None if v is None else v == "")
    return df


def _genome_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Per-stage letters, counts and fractions of each block type, depth (for 'what the mix does')."""
    extra = []
    for s in df["genome"]:
        row: dict[str, Any] = {}
        try:
            g = parse(s)
        except GenomeError:
            extra.append(row)
            continue
        for i, st in enumerate(g.stages, 1):
            row[f"stage{i}"] = st.letters
        counts = g.letter_counts()
        for letter, n in counts.items():
            row[f"n_{letter}"] = n
            row[f"frac_{letter}"] = n / g.depth
        row["depth"] = g.depth
        row["width"] = g.stages[0].width
        extra.append(row)
    return pd.concat([df.reset_index(drop=True), pd.DataFrame(extra)], axis=1)


def load_results(study_dir: str | Path) -> tuple[pd.DataFrame, StudyInfo]:
    """All trials of a study (search and baselines) as one table, with the front marked."""
    info = load_study_info(study_dir)
    storage = open_storage(info)
    rows: list[dict[str, Any]] = []
    confirm_rows: list[dict[str, Any]] = []
    if storage is not None:
        optuna = quiet_optuna()
        with storage_errors(info):
            names = {s.study_name for s in optuna.study.get_all_study_summaries(storage)}
            for name, baseline in ((info.name, False), (info.name + BASELINE_SUFFIX, True)):
                if name in names:
                    rows += _rows(optuna.load_study(study_name=name, storage=storage), baseline)
            confirm_rows = _confirm_rows(optuna, storage, info.name, names)
    return table(
        rows,
        info.objectives,
        info.directions,
        confirm_rows=confirm_rows,
        **confirm_settings(info),
        latencies=lambda df: remeasured(df, info.settings, info.dir),
    ), info


def confirm_settings(info: StudyInfo) -> dict[str, int]:
    """The confirm step's settings of a study: its ``confirm_seeds`` and the recipe seed (a
    trial's first seed when its record predates ``seeds``). A study.yaml from before the
    confirm step has no ``confirm_seeds``: a resumed search runs it with the default, so the
    reader takes the same default (such a study's front stays provisional until its confirm
    runs exist)."""
    s = info.settings
    recipe = s.get("recipe") if isinstance(s.get("recipe"), dict) else s
    n = s.get("confirm_seeds")
    return {
        "confirm_seeds": confirmed.DEFAULT_SEEDS if n is None else int(n),
        "base_seed": int(recipe.get("seed") or 0),
    }


def load_confirm_rows(study_dir: str | Path) -> list[dict[str, Any]]:
    """The confirm runs of a study (``<name>:confirm``) as ``row`` dicts; [] if none."""
    info = load_study_info(study_dir)
    storage = open_storage(info)
    if storage is None:
        return []
    optuna = quiet_optuna()
    with storage_errors(info):
        names = {s.study_name for s in optuna.study.get_all_study_summaries(storage)}
        return _confirm_rows(optuna, storage, info.name, names)


def _confirm_rows(optuna: Any, storage: Any, name: str, names: set[str]) -> list[dict[str, Any]]:
    if name + confirmed.SUFFIX not in names:
        return []
    return _rows(optuna.load_study(study_name=name + confirmed.SUFFIX, storage=storage), False)


# ---- what a table says -----------------------------------------------------------------------


def finished(df: pd.DataFrame) -> pd.DataFrame:
    """Trials whose objectives count: trained to the end or stopped early by ASHA."""
    return df[df["status"].isin(FINISHED)]


def mark_front(df: pd.DataFrame, objectives: list[str], directions: list[str]) -> pd.Series:
    """The front of the full-budget trials, on each one's mean over all its seeds (the
    confirmed mean once the confirm step ran: ``confirmed.accuracy_view``)."""
    mask = pd.Series(False, index=df.index, name="on_front")
    done = confirmed.accuracy_view(df[df["status"].isin(FRONT)])  # a trial stopped at a rung is never on a front
    if len(done):
        mask.loc[done.index] = pareto.non_dominated(done, objectives, directions)
    return mask


def find_trial(df: pd.DataFrame, text: str) -> Any:
    """The row label of the trial a user named: its trial number as shown everywhere ('7', or
    'b0' for a baseline), or a Ray trial id that names exactly one trial. One line otherwise."""
    key = str(text).strip()
    by_name = df.index[df["trial"] == key]
    by_ray = df.index[(df["trial_id"] == key) & (df["trial_id"] != "")]
    hits = list(dict.fromkeys([*by_name, *by_ray]))
    if len(hits) == 1:
        return hits[0]
    if not hits:
        names = list(df["trial"])
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise UserError(
            f"--trial {shorten(key)}: no such trial in the study ({len(names)} trials: {shown or 'none'}); "
            "give a trial number as the report and the search print it"
        )
    which = ", ".join(df.loc[hits, "trial"])
    if len(by_name) and len(by_ray):
        raise UserError(
            f"--trial {shorten(key)} is ambiguous: trial number {key} and the Ray trial id of trial(s) "
            f"{which}; give the trial number of the one you mean"
        )
    raise UserError(
        f"--trial {shorten(key)} is ambiguous: the Ray trial id is shared by {len(hits)} trials ({which}: "
        "proposals rejected or repeated within one Ray trial); give the trial number"
    )


def hypervolume_summary(
    df: pd.DataFrame, objectives: list[str], directions: list[str], reference_point: list[float] | None = None
) -> dict[str, Any]:
    """What front.yaml holds: the objectives, and over the full-budget SEARCH trials (baselines
    are shown beside the front, never part of it) the reference point (study.yaml's, else
    ``pareto.reference_point``), the hypervolume and the front's size, on each point's mean
    over its seeds (``confirmed.accuracy_view``); with baselines, the hypervolume of the
    baselines' own points from the SAME reference point (a hypervolume compares only with
    another from the same point; a baseline beyond it adds nothing).

    The point is taken from the search trials alone, so training the baselines (after the
    search) never moves the search's hypervolume; every hypervolume of the study (this one,
    the report's curves against trials and wall time) uses this one point."""
    full = df[df["status"].isin(FRONT)]
    search = confirmed.accuracy_view(full[~full["baseline"].astype(bool)])
    base = full[full["baseline"].astype(bool)]
    hv: dict[str, Any] = {"objectives": list(objectives), "directions": list(directions)}
    if "front" in df.columns and len(df):
        hv["front"] = str(df["front"].iloc[0])  # provisional | confirmed (archlab.results.confirmed)
    if len(search):
        ref = reference_point or pareto.reference_point(search, objectives, directions)
        hv["reference_point"] = [float(x) for x in ref]
        hv["hypervolume"] = pareto.hypervolume(search, objectives, directions, ref)
        hv["front_size"] = int(pareto.non_dominated(search, objectives, directions).sum())
        if len(base):
            hv["baselines_hypervolume"] = pareto.hypervolume(base, objectives, directions, ref)
    return hv


def letters_summary(df: pd.DataFrame) -> str:
    return " ".join(f"{letter}:{int(df[f'n_{letter}'].sum())}" for letter in LETTERS if f"n_{letter}" in df)
