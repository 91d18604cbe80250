"""The tables a search leaves in its directory (results.csv, pareto.csv, front.yaml), derived
from the study as ``reader`` reads it and written at the end of every search run; for people
and other tools, never read back as truth (Optuna's storage is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..util.files import atomic_write
from .reader import hypervolume_summary, load_results


def write_tables(study_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """results.csv (every trial), pareto.csv (the front of the SEARCH trials, baselines shown
    beside it; its ``front`` column says provisional or confirmed, ``top1_mean`` and the CI
    columns give each point's accuracy over all its seeds) and front.yaml (reference point +
    hypervolume, on those means). Returns (results, front, hv)."""
    df, info = load_results(study_dir)
    atomic_write(info.dir / "results.csv", df.to_csv(index=False))
    front = df[df["on_front"]].sort_values(info.objectives[1])
    atomic_write(info.dir / "pareto.csv", front.to_csv(index=False))
    hv = hypervolume_summary(df, info.objectives, info.directions, info.settings.get("reference_point"))
    atomic_write(info.dir / "front.yaml", yaml.safe_dump(hv, sort_keys=False))
    return df, front, hv
