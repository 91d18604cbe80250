"""Pareto fronts of trial tables: non-dominated sort, hypervolume, knee point.

Objectives are column names with a direction each ("max" for accuracy, "min" for latency,
GMACs, params). Internally everything is turned into minimisation by negating "max" columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..util.errors import UserError, shorten

DIRECTIONS = {"val_top1": "max", "latency_ms": "min", "gmacs": "min", "params": "min"}


def _as_min(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> np.ndarray:
    if len(objectives) != len(directions):
        raise UserError(f"{len(objectives)} objectives but {len(directions)} directions")
    for o, d in zip(objectives, directions):
        if o not in df.columns:
            raise UserError(f"objective {shorten(o)} is not a column of the results ({', '.join(df.columns)})")
        if d not in ("min", "max"):
            raise UserError(f"direction {shorten(d)} of {o} must be min or max")
    vals = df[list(objectives)].to_numpy(dtype=float)
    sign = np.array([1.0 if d == "min" else -1.0 for d in directions])
    return vals * sign


def non_dominated(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> pd.Series:
    """True for rows no other row dominates (<= in every objective, < in one). Rows with a
    missing objective are never on the front. Ties (identical points) are all kept."""
    valid = np.isfinite(_as_min(df, objectives, directions)).all(axis=1)
    mask = valid & ~dominated_by(df, df, objectives, directions).to_numpy()
    return pd.Series(mask, index=df.index, name="on_front")


def dominated_by(df: pd.DataFrame, by: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> pd.Series:
    """True for each row of ``df`` that some row of ``by`` with every objective known
    dominates (<= in every objective, < in one); an identical point does not dominate."""
    pts = _as_min(df, objectives, directions)
    others = _as_min(by, objectives, directions)
    others = others[np.isfinite(others).all(axis=1)]
    out = [bool(((others <= p).all(axis=1) & (others < p).any(axis=1)).any()) for p in pts]
    return pd.Series(out, index=df.index, dtype=bool)


def reference_point(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> list[float]:
    """A reference point every trial improves on: 0 for maximised objectives (accuracy), and
    1.1x the worst observed value for minimised ones. Recorded beside the front so that a
    hypervolume can be compared later."""
    ref = []
    for o, d in zip(objectives, directions):
        col = pd.to_numeric(df[o], errors="coerce").dropna()
        if d == "max":
            ref.append(min(0.0, float(col.min())) if len(col) else 0.0)
        else:
            ref.append(float(col.max()) * 1.1 if len(col) else 1.0)
    return ref


def hypervolume(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str], ref: Sequence[float]) -> float:
    """Exact 2-D hypervolume dominated by the rows, bounded by ``ref`` (a sweep over the
    front sorted by the first objective)."""
    if len(objectives) != 2:
        raise UserError(f"hypervolume is implemented for 2 objectives, not {len(objectives)}")
    pts = _as_min(df, objectives, directions)
    r = np.array(ref, dtype=float) * np.array([1.0 if d == "min" else -1.0 for d in directions])
    pts = pts[np.isfinite(pts).all(axis=1)]
    pts = pts[(pts < r).all(axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    hv, best_y = 0.0, r[1]
    for x, y in pts:
        if y < best_y:
            hv += (r[0] - x) * (best_y - y)
            best_y = y
    return float(hv)


def hypervolume_history(
    df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str], ref: Sequence[float]
) -> list[float]:
    """Hypervolume after each row, in row order (rows sorted by trial number by the caller)."""
    return [hypervolume(df.iloc[: i + 1], objectives, directions, ref) for i in range(len(df))]


def knee_point(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]):
    """The front point closest to the utopia point after scaling every objective to [0, 1]
    over the front: the balanced trade-off a user picks when given no budget. Returns the
    row's index label."""
    front = df[non_dominated(df, objectives, directions)]
    if front.empty:
        raise UserError("the front is empty: no trial finished with all objectives")
    pts = _as_min(front, objectives, directions)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    dist = np.linalg.norm((pts - lo) / span, axis=1)
    return front.index[int(np.argmin(dist))]
