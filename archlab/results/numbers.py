"""The numbers and words a report shows, computed from the results table at hand."""

from __future__ import annotations

import math
import re
import textwrap
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..model.genome import GenomeError, parse
from ..model.presets import PRESETS
from . import pareto
from .confirmed import accuracy_view
from .reader import hypervolume_summary
from .record import FRONT


def _group(df: pd.DataFrame, objectives: Sequence[str], baseline: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The search trials (or the baselines) in trial-number order, and their objective values
    with every trial not trained to the full budget blanked: failed, rejected, running and
    stopped trials are steps where the hypervolume stays flat (their values do not count, even
    when a failed trial has some). Accuracy is the mean over all of a trial's seeds where known
    (``confirmed.accuracy_view``), as on the front: a seed its confirm runs refuted adds nothing."""
    rows = accuracy_view(df)
    rows = rows[rows["baseline"].astype(bool) == baseline].sort_values("number")
    pts = rows[list(objectives)].apply(pd.to_numeric, errors="coerce")
    pts.loc[~rows["status"].isin(FRONT)] = np.nan
    return rows, pts


def hypervolume_curve(
    df: pd.DataFrame,
    objectives: Sequence[str],
    directions: Sequence[str],
    ref: Sequence[float],
    *,
    baseline: bool = False,
) -> pd.DataFrame:
    """Hypervolume of the search trials (``baseline=True``: of the baselines, on their own)
    after each trial, in trial-number order: columns number, hypervolume. Only full-budget
    trials add to it (``_group``)."""
    rows, pts = _group(df, objectives, baseline)
    hv = pareto.hypervolume_history(pts, objectives, directions, ref) if len(pts) else []
    return pd.DataFrame({"number": rows["number"].astype(int).to_numpy(), "hypervolume": hv})


def hypervolume_time_curve(
    df: pd.DataFrame,
    objectives: Sequence[str],
    directions: Sequence[str],
    ref: Sequence[float],
    *,
    baseline: bool = False,
) -> pd.DataFrame:
    """Hypervolume of the search trials (or of the baselines) against wall-clock time: one row
    per trial that has completed, in completion order, columns number, elapsed_s (seconds from
    the first trial's start to this one's completion) and hypervolume (of every full-budget
    trial completed by then). Trials run concurrently and finish out of number order, so this
    is not the per-trial curve on another axis. Elapsed time is the wall clock: a study paused
    between an interrupted run and its ``--resume`` shows the pause as a flat stretch. Empty
    when the table has no times (``started`` / ``completed`` columns empty)."""
    rows, pts = _group(df, objectives, baseline)
    empty = pd.DataFrame(
        {"number": pd.Series(dtype=int), "elapsed_s": pd.Series(dtype=float), "hypervolume": pd.Series(dtype=float)}
    )
    if rows.empty or "started" not in rows or "completed" not in rows:
        return empty
    start = pd.to_datetime(rows["started"].replace("", None), errors="coerce", format="ISO8601")
    end = pd.to_datetime(rows["completed"].replace("", None), errors="coerce", format="ISO8601")
    done = end.notna().to_numpy()
    if not done.any() or start.isna().all():
        return empty
    t0 = start.min()
    elapsed = ((end - t0).dt.total_seconds()).to_numpy()[done]
    order = np.argsort(elapsed, kind="stable")
    pts = pts[done].iloc[order]
    hv = pareto.hypervolume_history(pts, objectives, directions, ref)
    return pd.DataFrame(
        {
            "number": rows["number"].astype(int).to_numpy()[done][order],
            "elapsed_s": elapsed[order].astype(float),
            "hypervolume": hv,
        }
    )


def study_hypervolume(
    df: pd.DataFrame, settings: dict[str, Any], objectives: list[str], directions: list[str]
) -> dict[str, Any]:
    """The same numbers as front.yaml (``results.hypervolume_summary``), from the table at hand."""
    return hypervolume_summary(df, objectives, directions, settings.get("reference_point"))


def preset_names(genomes: Sequence[str]) -> dict[str, str]:
    """genome string -> preset name, for the genomes that are a named model (any class count)."""
    known = {}
    for name, text in PRESETS.items():
        known[str(parse(text).with_(classes=1))] = name
    out = {}
    for g in genomes:
        try:
            key = str(parse(g).with_(classes=1))
        except GenomeError:
            continue
        if key in known:
            out[g] = known[key]
    return out


def short_genome(genome: str, width: int = 30, lines: int = 2) -> str:
    """A genome string that fits a plot label: the class count dropped (the same for every
    trial), wrapped at spaces, the rest cut with an ellipsis."""
    text = re.sub(r"\s+cls=\d+", "", genome or "?").strip()
    parts = textwrap.wrap(text, width=width, break_long_words=True, break_on_hyphens=False)
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][: width - 1] + "…"
    return "\n".join(parts)


def num(v: Any, fmt: str) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "-"
    return format(x, fmt) if math.isfinite(x) else "-"
