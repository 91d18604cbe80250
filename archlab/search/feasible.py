"""Proposals that meet the search's constraints by construction: the sampler's proposal is
drawn again, up to a bounded number of times, until its genome fits.

Over-budget genomes cost little time each, but left to the sampler they are most of what it
proposes, and each one fills the study (optuna.db, the report, W&B) and NSGA-II's population.
The constraints a search knows before training (GMACs, params, predicted latency) are cheap
to evaluate, so ``FeasibleSampler`` wraps the search's sampler: when Optuna first asks it for
a trial's parameters, it drafts a complete proposal the way the wrapped sampler would (its
relative parameters, the rest from its independent sampling), builds the genome with the
space's own define-by-run function, and keeps the first draft that meets the constraints. The
trial then receives exactly that draft. This is rejection sampling from the sampler's own
proposal distribution: what the sampler has learnt is kept, the infeasible part is cut off.

After ``tries`` infeasible drafts the last one is proposed as it is and the search records it
as rejected, as it did before (a space whose limits almost nothing meets still says so). The
number of drafts a trial took is recorded with it (``redraws``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution


class DraftTrial:
    """Answers a space's ``suggest_categorical`` / ``suggest_int`` the way an Optuna trial
    would: fixed (enqueued) values first, a single choice as it is, the sampler's relative
    draw where it has one, else the sampler's independent draw. Records what it answered."""

    def __init__(self, relative: dict[str, Any], fixed: dict[str, Any], independent: Callable[[str, Any], Any]):
        self.relative, self.fixed, self.independent = relative, fixed, independent
        self.params: dict[str, Any] = {}

    def _answer(self, name: str, distribution: BaseDistribution) -> Any:
        if name in self.params:
            return self.params[name]
        if name in self.fixed:
            value = self.fixed[name]
        elif distribution.single():
            value = optuna.distributions._get_single_value(distribution)  # PRIVATE (checked: optuna 5.1)
        elif name in self.relative and distribution._contains(distribution.to_internal_repr(self.relative[name])):
            value = self.relative[name]
        else:
            value = self.independent(name, distribution)
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._answer(name, CategoricalDistribution(list(choices)))

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self._answer(name, IntDistribution(low, high))


class FeasibleSampler(optuna.samplers.BaseSampler):
    """``base`` with every proposal redrawn (at most ``tries`` drafts) until ``check`` passes.

    ``check(draft_trial)`` runs the space's define-by-run function on the draft and returns
    None when its genome meets the constraints, else the reason. Picklable when ``base`` and
    ``check`` are (Ray Tune writes the searcher, sampler included, to its experiment)."""

    def __init__(self, *, base: optuna.samplers.BaseSampler, check: Any, tries: int):
        if isinstance(tries, bool) or not isinstance(tries, int) or tries < 1:
            raise ValueError(f"tries must be a positive integer, not {tries!r}")
        if not callable(check):
            raise ValueError("check must be callable")
        self.base, self.check, self.tries = base, check, tries
        self._drafts: dict[int, dict[str, Any]] = {}  # trial number -> the chosen draft's parameters
        self.drafts_taken: dict[int, int] = {}  # trial number -> drafts it took (1: the first fitted)

    def infer_relative_search_space(self, study: optuna.Study, trial: Any) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: Any, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        fixed = dict(trial.system_attrs.get("fixed_params", {}))
        draft = DraftTrial({}, fixed, lambda n, d: None)
        for taken in range(1, self.tries + 1):
            relative = self.base.sample_relative(study, trial, search_space)
            draft = DraftTrial(relative, fixed, lambda n, d: self.base.sample_independent(study, trial, n, d))
            if self.check(draft) is None:
                break
        self._drafts[trial.number] = draft.params
        self.drafts_taken[trial.number] = taken
        return {k: v for k, v in draft.params.items() if k in search_space and k not in fixed}

    def sample_independent(
        self, study: optuna.Study, trial: Any, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        draft = self._drafts.get(trial.number, {})
        if param_name in draft and param_distribution._contains(param_distribution.to_internal_repr(draft[param_name])):
            return draft[param_name]
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: Any) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Sequence[float] | None) -> None:
        self._drafts.pop(trial.number, None)
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
