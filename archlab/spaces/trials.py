"""Trials that are not Optuna's: what a space's ``suggest`` is asked by when it is sampled
uniformly, rebuilt from stored parameters, enumerated, or checked at its extremes. Each
answers ``suggest_categorical`` / ``suggest_int`` like an Optuna trial, so the one
define-by-run function serves all of them and they can never disagree."""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

from ..util.errors import UserError, shorten

ENUMERATION_LIMIT = 1_000_000


class RandomTrial:
    """Draws every parameter uniformly (``Space.sample``) and records what it drew."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.params[name] = choices[self.rng.randrange(len(choices))]
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        self.params[name] = self.rng.randint(low, high)
        return self.params[name]


class FixedTrial:
    """Answers from a dict, like optuna.trial.FixedTrial, but a missing or out-of-range
    value is a one-line UserError instead of a warning and a genome outside the space."""

    def __init__(self, space: str, params: dict[str, Any]):
        self.space, self.given = space, params
        self.params: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self.given:
            raise UserError(f"space {self.space}: parameter {shorten(name)} is missing")
        return self.given[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self._get(name)
        if value not in list(choices) or isinstance(value, bool) != isinstance(choices[0], bool):
            raise UserError(f"space {self.space}: {name}={shorten(value)} is not one of {shorten(list(choices))}")
        self.params[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UserError(f"space {self.space}: {name}={shorten(value)} is not an integer in {low}..{high}")
        self.params[name] = value
        return value


class Enumerator:
    """Walks the decision tree of a define-by-run function, one leaf per run (odometer over
    the choices met so far): counts assignments of spaces a formula cannot."""

    def __init__(self, path: list[int]):
        self.path = path
        self.arity: list[int] = []

    def _pick(self, n: int) -> int:
        i = len(self.arity)
        self.arity.append(n)
        if i == len(self.path):
            self.path.append(0)
        return self.path[i]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[self._pick(len(choices))]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return low + self._pick(high - low + 1)


def enumerate_count(suggest: Callable[[Any], Any], limit: int = ENUMERATION_LIMIT) -> int:
    """The number of distinct parameter assignments ``suggest`` can make (runs it once per
    assignment; raises UserError past ``limit``)."""
    path: list[int] = []
    count = 0
    while True:
        trial = Enumerator(path)
        suggest(trial)
        count += 1
        if count > limit:
            raise UserError(f"more than {limit:,} parameter assignments: too many to enumerate")
        del path[len(trial.arity) :]
        while path and path[-1] + 1 >= trial.arity[len(path) - 1]:
            path.pop()
        if not path:
            return count
        path[-1] += 1


def ask(trial: Any, name: str, choices: Sequence[Any]) -> Any:
    """One parameter: fixed if there is one choice, suggest_int for an integer range,
    suggest_categorical otherwise."""
    if len(choices) == 1:
        return choices[0]
    if is_int_range(choices):
        return trial.suggest_int(name, min(choices), max(choices))
    return trial.suggest_categorical(name, list(choices))


def is_int_range(choices: Sequence[Any]) -> bool:
    ints = all(isinstance(c, int) and not isinstance(c, bool) for c in choices)
    # the length first: [0, 100000000] must not build a list of 10^8 integers to compare
    return ints and max(choices) - min(choices) + 1 == len(choices) and len(set(choices)) == len(choices)


class ExtremeTrial:
    """Always the first/last choice (``min``/``max``): a cheap load-time check."""

    def __init__(self, pick: Callable[[Sequence[Any]], Any]):
        self.pick = pick

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return choices[0] if self.pick is min else choices[-1]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return low if self.pick is min else high
