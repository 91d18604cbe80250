"""The numbers and words a report shows, computed from the results table at hand."""

from __future__ import annotations

import math
import re
import textwrap
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import pareto
from ..genome import GenomeError, parse
from ..presets import PRESETS
from ..record import FINISHED
from ..results import hypervolume_summary


def hypervolume_curve(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str],
                      ref: Sequence[float]) -> pd.DataFrame:
    """Hypervolume of the search trials (not the baselines) after each trial, in trial-number
    order: columns number, hypervolume. Failed, rejected and running trials are steps where it
    stays flat (their objective values do not count, even when a failed trial has some)."""
    search = df[~df["baseline"].astype(bool)].sort_values("number")
    pts = search[list(objectives)].apply(pd.to_numeric, errors="coerce")
    pts.loc[~search["status"].isin(FINISHED)] = np.nan
    hv = pareto.hypervolume_history(pts, objectives, directions, ref) if len(pts) else []
    return pd.DataFrame({"number": search["number"].astype(int).to_numpy(), "hypervolume": hv})


def study_hypervolume(df: pd.DataFrame, settings: dict[str, Any], objectives: list[str],
                      directions: list[str]) -> dict[str, Any]:
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
