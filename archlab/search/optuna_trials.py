"""The search's trials as Optuna stores them: the one place that writes a trial's record
into Optuna, and the handles a resumed search needs (a trial left RUNNING by a stopped
driver trains again under its own number, from its last epoch)."""

from __future__ import annotations

from typing import Any

import optuna

from ..results.record import TrialRecord


def work_dir(kind: str, number: int) -> str:
    """A trial's directory inside the study (checkpoint.pt, best.pt, metrics.csv): named by
    the study's trial number, the one id users see, so a resumed trial finds its epochs."""
    return f"{kind}/{number:04d}"


def unfinished(study: optuna.Study) -> list[Any]:
    """The study's trials still RUNNING in Optuna: a driver stopped (Ctrl-C, a kill, a lost
    machine) before they ended. Nothing else will ever end them; the next run trains them."""
    return list(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))


def reattach(study: optuna.Study, frozen: Any) -> optuna.Trial:
    """A live handle on a RUNNING trial of an earlier process: suggestions on it return its
    stored parameters, and tell() ends it."""
    # PRIVATE (checked: optuna 5.0): FrozenTrial._trial_id, the storage key; a RUNNING trial
    # of a previous process has no other route to an optuna.Trial handle.
    return optuna.trial.Trial(study, frozen._trial_id)


def write_record(ot_trial: Any, record: TrialRecord) -> None:
    """The record as user attributes, before Optuna is told (a finished trial cannot change)."""
    for k, v in record.to_attrs().items():
        ot_trial.set_user_attr(k, v)
