"""The confirmed front: a front point's accuracy over ALL its seeds.

A trial's accuracy is its own seeds' mean (``--seeds K``, one by default); with the seed
noise the fidelity runs measured (docs/notebook/proxy-fidelity.md) a front of single seeds is
a front of lucky seeds. After the budget the search retrains every point of
the front with ``--confirm-seeds N`` more seeds (``archlab.search.confirm``, stored in the
Optuna study ``<name>:confirm``, one trial per point and seed, ``confirm_of`` = the point's
trial number). This module turns those runs into numbers, with no Ray, Optuna or torch, so
the results reader, the report and tests use the same rules:

* ``add_columns``: per trial its seeds' values (its own + its ``ok`` confirm runs), their
  count, mean, std and t-based 95% CI (``results.stats.interval``);
* ``accuracy_view``: the table with ``val_top1`` replaced by that mean: the front, the
  hypervolume and export's ranks are computed on it, so a lucky seed refuted by its confirm
  runs leaves the front;
* ``search_front`` / ``plan``: the search trials on the front under the current means, and
  the confirm runs still missing for them. The driver repeats plan -> run until nothing is
  missing: a refuted point can uncover a point that was dominated and never confirmed, and
  every point of the final front must have its confirm seeds;
* ``front_kind``: ``confirmed`` when every search front point has had all its confirm runs,
  else ``provisional`` (the confirm step off, not run yet, or interrupted);
* ``overlaps``: the front points whose accuracy CIs overlap: not distinguishable on
  accuracy by these seeds.

Baselines are never retrained (they are references beside the front, not its points).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd

from . import pareto
from .record import COUNTED, FRONT
from .stats import interval

SUFFIX = ":confirm"
DEFAULT_SEEDS = 2  # --confirm-seeds' default (SearchConfig's), also for a study.yaml that predates it
ACCURACY = "val_top1"
CONFIRMED, PROVISIONAL = "confirmed", "provisional"
COLUMNS = ("n_seeds", "top1_mean", "top1_std", "top1_ci95_low", "top1_ci95_high")


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def own_values(row: Mapping[str, Any]) -> list[float]:
    """A trial's own seed values: ``seed_top1`` (``--seeds``), else its one ``val_top1``
    (records from before seeds were recorded)."""
    seeds = row.get("seed_top1")
    if isinstance(seeds, (list, tuple)) and seeds:
        return [float(v) for v in seeds]
    v = _number(row.get(ACCURACY))
    return [] if v is None else [v]


def own_seeds(row: Mapping[str, Any], base_seed: int) -> list[int]:
    seeds = row.get("seeds")
    if isinstance(seeds, (list, tuple)) and seeds:
        return [int(s) for s in seeds]
    return [int(base_seed)]


def confirm_values(confirm_rows: Sequence[Mapping[str, Any]]) -> dict[int, list[float]]:
    """Trial number -> the val_top1 of its finished (``ok``) confirm runs, in seed order."""
    out: dict[int, list[tuple[int, float]]] = {}
    for r in confirm_rows:
        v, of = _number(r.get(ACCURACY)), r.get("confirm_of")
        if r.get("status") in FRONT and v is not None and of is not None:
            seed = (r.get("seeds") or [0])[0]
            out.setdefault(int(of), []).append((int(seed), v))
    return {k: [v for _, v in sorted(vs)] for k, vs in out.items()}


def attempted(confirm_rows: Sequence[Mapping[str, Any]]) -> set[tuple[int, int]]:
    """(trial number, seed) of every confirm run that trained or tried to (``ok``, or
    ``failed``: the same seed fails the same way): never run twice. One a killed driver left
    running (or, in an older study, closed as ``interrupted``) runs again: a running one under
    its own number, from its last epoch (``search.confirm.ConfirmRuns``)."""
    done = set()
    for r in confirm_rows:
        if r.get("status") in COUNTED and r.get("confirm_of") is not None and r.get("seeds"):
            done.add((int(r["confirm_of"]), int(r["seeds"][0])))
    return done


def add_columns(df: pd.DataFrame, confirm_rows: Sequence[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """``COLUMNS`` for every trial trained to the full budget (others: missing); confirm runs
    count for search trials only."""
    extra = confirm_values(confirm_rows)
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for _, r in df.iterrows():
        values = own_values(r) if r["status"] in FRONT else []
        if values and not bool(r.get("baseline", False)):
            values += extra.get(int(r["number"]), [])
        if not values:
            for c in COLUMNS:
                cols[c].append(None)
            continue
        ci = interval(values)
        cols["n_seeds"].append(ci.n)
        cols["top1_mean"].append(ci.mean)
        for c, v in (("top1_std", ci.std), ("top1_ci95_low", ci.low), ("top1_ci95_high", ci.high)):
            cols[c].append(v if math.isfinite(v) else None)
    out = df.copy()
    for c in COLUMNS:
        out[c] = pd.Series(cols[c], index=df.index, dtype="float64" if c != "n_seeds" else "Int64")
    return out


def accuracy_view(df: pd.DataFrame) -> pd.DataFrame:
    """The table with val_top1 = the mean over all of a trial's seeds where known: what
    fronts, hypervolumes and ranks are computed on."""
    if "top1_mean" not in df.columns:
        return df
    view = df.copy()
    mean = pd.to_numeric(view["top1_mean"], errors="coerce")
    view[ACCURACY] = mean.where(mean.notna(), pd.to_numeric(view[ACCURACY], errors="coerce"))
    return view


def search_front(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> pd.DataFrame:
    """The search trials (no baselines) on the front of the full-budget search trials,
    under ``accuracy_view``."""
    view = accuracy_view(df)
    ok = view[view["status"].isin(FRONT) & ~view["baseline"].astype(bool)]
    if ok.empty:
        return ok
    return ok[pareto.non_dominated(ok, objectives, directions).to_numpy()]


def plan(
    df: pd.DataFrame,
    confirm_rows: Sequence[Mapping[str, Any]],
    objectives: Sequence[str],
    directions: Sequence[str],
    *,
    extra: int,
    base_seed: int,
) -> list[tuple[int, str, int]]:
    """The confirm runs still to train: (trial number, genome, seed) for each search front
    point and each of its ``extra`` seeds after its own (own seeds s..s+K-1: s+K, s+K+1, ...)
    that has not been attempted."""
    if extra <= 0:
        return []
    done = attempted(confirm_rows)
    todo = []
    for _, r in search_front(add_columns(df, confirm_rows), objectives, directions).iterrows():
        first = max(own_seeds(r, base_seed)) + 1
        for seed in range(first, first + extra):
            if (int(r["number"]), seed) not in done:
                todo.append((int(r["number"]), str(r["genome"]), seed))
    return todo


def front_kind(
    df: pd.DataFrame,
    confirm_rows: Sequence[Mapping[str, Any]],
    objectives: Sequence[str],
    directions: Sequence[str],
    *,
    extra: int,
    base_seed: int,
) -> str:
    """``confirmed`` when the confirm step is on and no confirm run of a front point is missing."""
    if extra <= 0 or search_front(add_columns(df, confirm_rows), objectives, directions).empty:
        return PROVISIONAL
    return (
        CONFIRMED
        if not plan(df, confirm_rows, objectives, directions, extra=extra, base_seed=base_seed)
        else PROVISIONAL
    )


def overlaps(front: pd.DataFrame) -> pd.Series:
    """For each front row, the trial names (space-separated) of the other front rows whose
    accuracy 95% CI overlaps its own: not distinguishable on accuracy. Empty text: it is
    distinguishable from every other point; missing: it has no CI (one seed)."""
    lo = pd.to_numeric(front["top1_ci95_low"], errors="coerce")
    hi = pd.to_numeric(front["top1_ci95_high"], errors="coerce")
    out = []
    for i in front.index:
        if pd.isna(lo[i]):
            out.append(None)
            continue
        hits = [
            str(front.at[j, "trial"])
            for j in front.index
            if j != i and not pd.isna(lo[j]) and lo[i] <= hi[j] and lo[j] <= hi[i]
        ]
        out.append(" ".join(hits))
    return pd.Series(out, index=front.index, dtype="object")
