"""Ray Tune's trial hooks forwarded to the W&B tracker (``archlab.tracking``), which stays
free of Ray."""

from __future__ import annotations

from typing import Any

from ray.tune import Callback


class Tracking(Callback):
    """Forwards Ray Tune's trial hooks to the W&B tracker (``archlab.tracking``), which stays
    free of Ray. Picklable: the tracker drops its open runs when pickled."""

    def __init__(self, *, tracker: Any):
        self.tracker = tracker

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.tracker.trial_result(trial, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.tracker.trial_complete(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.tracker.trial_complete(trial, error=True)
