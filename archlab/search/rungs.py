"""Multi-objective asynchronous successive halving (MO-ASHA): the rung decisions.

Why not Ray's ASHAScheduler: it ranks trials on ONE metric, so on an accuracy/latency search
it stops a cheap trial whose accuracy is merely middling at the rung, although that trial may
be the best point of the front at its cost. MO-ASHA (Schmucker et al., "Multi-objective
multi-fidelity hyperparameter optimization with application to fairness", 2021; the MOASHA
of Syne Tune) ranks the trials that reached a rung by non-dominated sorting instead: a trial
continues if its rank among them is in the top ``1/eta``.

The rule, exactly (so a reader can check a decision by hand):

* rungs are at ``grace * eta**k`` epochs for every ``k`` with a milestone below ``max_t``;
* when a trial first reports at or past a rung's milestone, its objective vector joins that
  rung's record; the FIRST trial at a rung always continues;
* otherwise all vectors at the rung (the new one included, ``n`` in all) are put in a
  priority order: non-dominated front index first (0 = not dominated), then crowding distance
  (NSGA-II's, larger first: the ends of a front and isolated points are preferred, which keeps
  the front spread along the cost axis), then arrival order;
* the new trial continues iff ``(number of vectors strictly ahead of it) / n <= 1 / eta``.

The cost objective (latency) is known before training, so at a rung a trial is compared on
(accuracy at that epoch, latency). This module holds the arithmetic only; the Ray Tune
scheduler that calls it lives with the rest of the Ray wiring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..util.errors import UserError

CONTINUE, STOP = "continue", "stop"


def _as_min(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != len(directions):
        raise ValueError(f"points must be n x {len(directions)}, got shape {pts.shape}")
    sign = np.array([1.0 if d == "min" else -1.0 for d in directions])
    pts = pts * sign
    return np.where(np.isfinite(pts), pts, np.inf)


def front_indices(points: np.ndarray) -> np.ndarray:
    """Non-dominated front index of every row of a minimisation problem (0 = the front)."""
    n = len(points)
    rank = np.full(n, -1)
    remaining = np.arange(n)
    level = 0
    while remaining.size:
        p = points[remaining]
        dominated = np.zeros(len(remaining), dtype=bool)
        for k in range(len(remaining)):
            le = (p <= p[k]).all(axis=1)
            lt = (p < p[k]).any(axis=1)
            dominated[k] = bool((le & lt).any())
        rank[remaining[~dominated]] = level
        remaining = remaining[dominated]
        level += 1
    return rank


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of ONE front (ends get infinity)."""
    n, m = points.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(points[:, j], kind="stable")
        col = points[order, j]
        dist[order[0]] = dist[order[-1]] = np.inf
        span = col[-1] - col[0]
        if not np.isfinite(span) or span <= 0:
            continue
        dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def priority_order(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of ``points`` from most to least preferred (see the module docstring)."""
    pts = _as_min(points, directions)
    # A trial with a missing or non-finite objective (a failed epoch) ranks behind every
    # trial that reported numbers, whatever its other objectives are.
    invalid = ~np.isfinite(pts).all(axis=1)
    fronts = np.zeros(len(pts), dtype=int)
    crowd = np.zeros(len(pts))
    valid = np.flatnonzero(~invalid)
    if valid.size:
        fronts[valid] = front_indices(pts[valid])
        for level in np.unique(fronts[valid]):
            members = valid[fronts[valid] == level]
            crowd[members] = crowding_distance(pts[members])
    return sorted(range(len(pts)), key=lambda i: (bool(invalid[i]), fronts[i], -crowd[i], i))


def keep(points: Sequence[Sequence[float]], directions: Sequence[str], eta: float) -> bool:
    """Does the LAST of ``points`` (the trial just arrived at the rung) continue?"""
    n = len(points)
    if n <= 1:
        return True
    order = priority_order(points, directions)
    ahead = order.index(n - 1)
    return ahead / n <= 1.0 / eta


class Rungs:
    """The rung records of one MO-ASHA bracket; ``decide`` is called on every trial report."""

    def __init__(self, *, grace: int, max_t: int, eta: float, directions: Sequence[str]):
        if not (isinstance(grace, int) and grace >= 1):
            raise UserError(f"MO-ASHA: grace must be a positive number of epochs (got {grace!r})")
        if not (isinstance(max_t, int) and max_t >= grace):
            raise UserError(f"MO-ASHA: max_t ({max_t!r}) must be an integer >= grace ({grace})")
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta > 1):
            raise UserError(f"MO-ASHA: eta must be a number > 1 (got {eta!r})")
        if not directions or any(d not in ("min", "max") for d in directions):
            raise UserError(f"MO-ASHA: directions must be min or max (got {list(directions)!r})")
        self.grace, self.max_t, self.eta = grace, max_t, float(eta)
        self.directions = tuple(directions)
        milestones = []
        t = float(grace)
        while t < max_t:
            milestones.append(int(round(t)))
            t *= self.eta
        self.milestones: tuple[int, ...] = tuple(dict.fromkeys(milestones))
        self.records: dict[int, dict[str, tuple[float, ...]]] = {m: {} for m in self.milestones}

    def decide(self, trial_id: str, epoch: int, point: Sequence[float]) -> str:
        """CONTINUE or STOP for ``trial_id`` after it reported ``point`` at ``epoch``."""
        if len(point) != len(self.directions):
            raise ValueError(f"point {tuple(point)} has {len(point)} objectives, expected {len(self.directions)}")
        for milestone in reversed(self.milestones):
            rung = self.records[milestone]
            if epoch < milestone or trial_id in rung:
                continue
            others = list(rung.values())
            rung[trial_id] = tuple(float(v) for v in point)
            if not keep([*others, rung[trial_id]], self.directions, self.eta):
                return STOP
            break
        return CONTINUE

    def rung_of(self, trial_id: str) -> int | None:
        """The highest milestone ``trial_id`` reached (None: stopped or ended before any)."""
        reached = [m for m in self.milestones if trial_id in self.records[m]]
        return max(reached) if reached else None
