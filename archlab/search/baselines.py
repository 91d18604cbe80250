"""The baselines' searcher: the paper's reference genomes on the search's skeleton, a fixed
list, recorded in their own Optuna study beside the search's."""

from __future__ import annotations

import logging
from typing import Any

import optuna
from ray.tune.search import Searcher

from ..results.record import TrialRecord
from .optuna_trials import reattach, unfinished, work_dir, write_record


class FixedGenomes(Searcher):
    """Proposes a fixed list of genomes (the baselines) and records them in their own
    Optuna study beside the search's."""

    def __init__(self, *, genomes: list[tuple[str, str]], study: optuna.Study, objectives: list[str]):
        super().__init__(metric=None, mode=None)
        self.todo = list(genomes)
        self.study = study
        self.objectives = objectives
        self.ot_trials: dict[str, tuple[Any, dict]] = {}
        # a baseline an earlier run left RUNNING trains again under its own number
        self.running = {t.user_attrs.get("label"): t for t in unfinished(study)}

    def suggest(self, trial_id: str) -> dict | None:
        if trial_id in self.ot_trials:
            return self.ot_trials[trial_id][1]
        if not self.todo:
            return Searcher.FINISHED
        label, genome = self.todo.pop(0)
        frozen = self.running.pop(label, None)
        ot = self.study.ask() if frozen is None else reattach(self.study, frozen)
        ot.set_user_attr("label", label)
        config = {"genome": genome, "_label": label, "_work": work_dir("baselines", ot.number)}
        self.ot_trials[trial_id] = (ot, config)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        ot, _ = self.ot_trials[trial_id]
        record = TrialRecord.from_result(result, error, ray_trial_id=trial_id)
        try:
            write_record(ot, record)
        except optuna.exceptions.UpdateFinishedTrialError:
            return  # already recorded before an interrupt
        values = None if record.told_fail or not result else [result.get(m) for m in self.objectives]
        state = optuna.trial.TrialState.FAIL if values is None else optuna.trial.TrialState.COMPLETE
        try:
            self.study.tell(ot, values, state=state)
        except Exception as e:  # noqa: BLE001 - already told (a restored run)
            logging.getLogger(__name__).debug("tell: %s", e)
