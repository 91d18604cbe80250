"""Optuna's samplers as a search names them (``nsga2``, ``tpe``, ``random``), each one
picklable: Ray Tune writes its search algorithm to the experiment directory."""

from __future__ import annotations

import threading
from typing import Any

import optuna


class PicklableNSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II that Ray Tune can pickle. Tune writes its search algorithm to the experiment
    directory when the Tuner is built, and optuna 5.1 gave the GA samplers a
    ``threading.Lock`` (``_thread_lock``, optuna/samplers/_ga/_base.py) that pickle refuses:
    every NSGA-II search failed with "cannot pickle '_thread.lock' object". The lock guards
    the sampler's generation cache within one process, so a copy gets a fresh one."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if "_thread_lock" in state:
            state["_thread_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_thread_lock" in state:
            self._thread_lock = threading.Lock()


def make_sampler(name: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return PicklableNSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 3)))
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.samplers.RandomSampler(seed=seed)
