"""MO-ASHA as a Ray Tune scheduler: the Ray side of archlab.search.rungs (checked against ray 2.60).

It replaces ``ASHAScheduler(metric="val_top1")``: Ray's own schedulers take one metric (its
docs warn they "may not work correctly with multi-objective optimization"). The decisions are
``archlab.search.rungs.Rungs``'; this class only feeds it the reported objectives and tells Ray.
A trial reaches ``max_t`` on its own (the trainable returns after its last epoch), so the
scheduler never stops it there: a STOP from this scheduler always means "stopped at a rung",
and ``rung_of(trial_id)`` says which.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from .rungs import STOP, Rungs


class MOASHAScheduler(FIFOScheduler):
    """Keyword-only and validated before Ray sees it (``Rungs`` raises UserError)."""

    def __init__(
        self, *, metrics: Sequence[str], modes: Sequence[str], time_attr: str, max_t: int, grace: int, eta: float = 2.0
    ):
        if len(metrics) != len(modes) or len(metrics) < 2:
            raise ValueError(f"MO-ASHA needs >= 2 metrics with one mode each, got {metrics} / {modes}")
        self._rungs = Rungs(grace=grace, max_t=max_t, eta=eta, directions=modes)
        super().__init__()
        self._metrics, self._modes, self._time_attr = tuple(metrics), tuple(modes), time_attr
        self.stopped: dict[str, int] = {}  # trial id -> the rung (epochs) it was stopped at

    @property
    def milestones(self) -> tuple[int, ...]:
        return self._rungs.milestones

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        # TuneConfig(metric=, mode=) would make the search single-objective (STACK_NOTES):
        # this scheduler has its own objectives and accepts none from Tune.
        return metric is None and mode is None

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self._time_attr not in result:
            return TrialScheduler.CONTINUE
        point = []
        for m in self._metrics:
            v = result.get(m)
            point.append(float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan)
        decision = self._rungs.decide(str(trial.trial_id), int(result[self._time_attr]), point)
        if decision == STOP:
            self.stopped[str(trial.trial_id)] = int(self._rungs.rung_of(str(trial.trial_id)) or 0)
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def rung_of(self, trial_id: str) -> int | None:
        return self._rungs.rung_of(str(trial_id))

    def debug_string(self) -> str:
        return f"MO-ASHA: rungs {list(self._rungs.milestones)}, {len(self.stopped)} stopped"

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))  # our own file, written by save() above
