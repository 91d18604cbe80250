"""Which trial of a study to export ("rank 1" on a multi-objective front).

* The search's full-budget trials compete: status ``ok`` (``record.FRONT``; a trial stopped
  at a rung has an earlier epoch's accuracy and never competes), with finite
  objectives. Baseline trials (``baseline`` true: references trained on the knee's skeleton)
  do not; export one with ``--trial b<N>``. The front is ``archlab.results.pareto.non_dominated`` on
  the study's objectives (study.yaml ``objectives``/``directions``).
* With a limit (``--max-latency MS`` on ``latency_ms``, ``--max-gmacs G`` on ``gmacs``): the
  trials within every limit are taken first, their front is computed, and its points are
  ranked by ``val_top1``, best first (ties: the study's other objectives, then trial number).
  Rank 1 is the most accurate trial within the budget; rank k the k-th most accurate
  non-dominated trial within it.
* Without limits: rank 1 is the front's knee point (``archlab.results.pareto.knee_point``: the front
  point closest to the utopia point after scaling each objective to [0, 1] over the front),
  the balanced trade-off to ship when nobody gave a budget. Rank k is the knee of the front
  that remains after removing ranks 1..k-1, so ranks walk from the balanced middle of the
  front towards its extremes (a tie goes to the earlier row of the results table).
``--trial ID`` bypasses the rule: ID is the study's trial number (``results.find_trial``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pandas as pd

from ..measure.forms import check_one_form
from ..results import pareto
from ..results.confirmed import accuracy_view
from ..results.record import FRONT
from ..util.errors import UserError

ACCURACY = "val_top1"
LIMIT_COLUMNS = {"max_latency": "latency_ms", "max_gmacs": "gmacs"}


def select_trial(
    df: Any,
    objectives: Sequence[str],
    directions: Sequence[str],
    rank: int = 1,
    max_latency: float | None = None,
    max_gmacs: float | None = None,
) -> tuple[Any, str]:
    """The index label of the rank-``rank`` trial by the rule in the module docstring, and the
    rule in words."""
    if rank < 1:
        raise UserError(f"--rank {rank}: ranks start at 1")
    absent = [o for o in objectives if o not in df.columns]
    if absent:
        raise UserError(f"the study's results have no column for the objective(s) {', '.join(absent)}")
    # full-budget trials only: a stopped one's accuracy is not final; each ranked on the mean
    # over all its seeds (the confirm step's too: archlab.results.confirmed), as the front is
    ok = accuracy_view(df[df["status"].isin(FRONT)])
    if "latency_ms" in objectives:
        check_one_form(ok)  # latencies of different forms/runtimes are not one front
    if "baseline" in ok.columns:
        ok = ok[~ok["baseline"].fillna(False).astype(bool)]
    ok = ok[ok[list(objectives)].apply(_finite_column).all(axis=1)]
    if ok.empty:
        raise UserError("no search trial trained to the full budget (status ok) with all objectives: nothing to export")
    limits = {LIMIT_COLUMNS[k]: v for k, v in (("max_latency", max_latency), ("max_gmacs", max_gmacs)) if v is not None}
    for col in limits:
        if col not in ok.columns:
            raise UserError(f"the study's results have no {col} column to apply the limit to")
    within = ok
    for col, limit in limits.items():
        within = within[within[col].astype(float) <= limit]
    what = " and ".join(f"{col} <= {v:g}" for col, v in limits.items())
    if within.empty:
        best = ", ".join(f"smallest {col} {ok[col].astype(float).min():g}" for col in limits)
        raise UserError(f"no finished search trial has {what} ({best})")
    front = within[pareto.non_dominated(within, objectives, directions).to_numpy()]

    if limits:
        keys = [ACCURACY] + [o for o in objectives if o != ACCURACY] + ["number"]
        ascending = [False] + [d == "min" for o, d in zip(objectives, directions) if o != ACCURACY] + [True]
        order = list(front.sort_values(keys, ascending=ascending, kind="stable").index)
        rule = f"best {ACCURACY} on the front of the {len(within)} trials with {what}"
    else:
        order, rest = [], front
        while len(order) < rank and not rest.empty:
            knee = pareto.knee_point(rest, objectives, directions)
            order.append(knee)
            rest = rest.drop(index=knee)
        rule = f"knee point of the {len(front)}-trial front on {', '.join(objectives)}"
        if rank > 1:
            rule += f" (rank {rank}: knee after removing ranks 1..{rank - 1})"
    if rank > len(order) or rank > len(front):
        raise UserError(
            f"--rank {rank}: the front has only {len(front)} trial(s)" + (f" with {what}" if limits else "")
        )
    return order[rank - 1], rule


def _finite_column(col: Any) -> Any:
    vals = pd.to_numeric(col, errors="coerce")
    return vals.notna() & vals.abs().ne(math.inf)
