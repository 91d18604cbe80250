"""What an experiment file says, as loaded and checked: the keys each section may hold, the limits
of their values, and the ``Experiment`` / ``TrainSpec`` values the loader builds."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fidelity.defaults import DEFAULTS as FIDELITY_DEFAULTS
from ..model.genome import Genome
from ..training.recipe import ProxyRecipe
from ..util import named

TOP_KEYS = ("name", "description", "train", "search", "fidelity", "cycle", "quick")
SEARCH_KEYS = ("common", "searches")
QUICK_KEYS = ("train", "search", "fidelity")
# A train section is ONE proxy recipe (archlab.training.recipe: the defaults search and `archlab train`
# use too), the seeds it runs (the recipe's seed, one run per seed), and the experiment's own keys.
RECIPE_KEYS = tuple(k for k in ProxyRecipe.names() if k != "seed")
# compare: a genome's label; every other row then gives its difference in mean val top-1 to
# that genome with Welch's 95% interval (a claim like "the mix beats pure A" needs one).
# workers: runs trained at once, one process each (with threads: 1, one per core: ~2x on 2 cores).
STUDY_TRAIN_DEFAULTS: dict[str, Any] = {
    "seeds": [0],
    "latency_runs": 10,
    "threads": None,
    "compare": None,
    "workers": 1,
}
TRAIN_KEYS = ("genomes", "seeds", *RECIPE_KEYS, "latency_runs", "threads", "compare", "workers")
# Upper bounds of an experiment's own train settings (the recipe bounds its keys, recipe.LIMITS, and
# SearchConfig a search's): an experiment runs unattended, and a value that passes a lower bound can
# still allocate or loop without end.
LIMITS: dict[str, int] = {"latency_runs": 10_000, "threads": 1024, "seeds": 100, "workers": 256}
# Set by the experiment itself: each search lives in the experiment's output under its label.
SEARCH_FIXED = ("name", "out")
# --quick, before the file's own quick: section. Sized so that every shipped experiment smoke-runs
# in about a minute on 2 CPU cores (the searches pay for Ray's start, 4-5 s, once).
QUICK_TRAIN: dict[str, Any] = {"epochs": 1, "train_clips": 64, "val_clips": 32}  # and the first seed only
# confirm_seeds 0: a smoke run stays a minute (the confirm step is tested in tests/test_search.py)
QUICK_SEARCH: dict[str, Any] = {"trials": 2, "epochs": 1, "grace_epochs": 1, "latency_runs": 2, "confirm_seeds": 0}
QUICK_SEARCH_SYNTHETIC: dict[str, Any] = {"train_clips": 64, "val_clips": 64}  # only where the data is synthetic
# A fidelity section is one `archlab fidelity` measurement (archlab.fidelity.runner): its own
# keys (the CLI's options, in snake_case; defaults in archlab.fidelity.defaults) and the proxy
# recipe's keys but seed (the seeds are 0..seeds-1).
FIDELITY_KEYS = (*FIDELITY_DEFAULTS, *RECIPE_KEYS)
# A cycle section (archlab.experiments.cycle): one search's front against the hand-made orders.
CYCLE_KEYS = ("search", "variants", "workers")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")  # labels are directory names


def experiment_folders() -> list[Path]:
    """Where an experiment's name is looked up, first hit wins: $ARCHLAB_EXPERIMENTS (or its old
    name $ARCHLAB_STUDIES, read for one release), ./experiments/, the package's own."""
    env = (
        "ARCHLAB_STUDIES"
        if os.environ.get("ARCHLAB_STUDIES") and not os.environ.get("ARCHLAB_EXPERIMENTS")
        else "ARCHLAB_EXPERIMENTS"
    )
    return named.folders(env, "experiments", "archlab.experiments")


@dataclass
class TrainSpec:
    """Genomes trained with one recipe over ``seeds``; ``genomes`` keep the file's order (the
    table's). Run k trains with ``recipe.with_(seed=seeds[k])``."""

    genomes: dict[str, Genome]
    recipe: ProxyRecipe
    seeds: list[int]
    latency_runs: int
    threads: int | None
    compare: str | None = None  # a label of ``genomes``
    workers: int = 1

    @property
    def clip(self) -> tuple[int, int, int]:
        return self.recipe.clip

    def run_recipe(self, seed: int) -> ProxyRecipe:
        return self.recipe.with_(seed=seed)


@dataclass
class Experiment:
    name: str
    description: str
    path: Path
    quick: bool
    train: TrainSpec | None
    searches: dict[str, Any] = field(default_factory=dict)  # label -> SearchConfig (name/out unset)
    fidelity: Any = None  # a FidelityConfig (out unset: the experiment's <out>/fidelity) or None
    cycle: Any = None  # a cycle.CycleSpec (which search's front vs the hand-made orders) or None

    def kinds(self) -> str:
        parts = []
        if self.train is not None:
            parts.append(
                f"train: {len(self.train.genomes)} genomes x {len(self.train.seeds)} seed(s), "
                f"{self.train.recipe.epochs} epoch(s)"
            )
        if self.searches:
            trials = sorted({c.trials for c in self.searches.values()})
            parts.append(f"search: {len(self.searches)} searches x {'/'.join(map(str, trials))} trials")
        if self.cycle is not None:
            parts.append(
                f"cycle: {len(self.cycle.variants)} hand-made orders on the front skeletons of "
                f"search {self.cycle.search}"
            )
        if self.fidelity is not None:
            f = self.fidelity
            parts.append(
                f"fidelity: {f.genomes} sampled genomes + {len(f.anchors)} anchors x {f.seeds} seeds, "
                f"{f.proxy.epochs} epoch(s), reference {f.ref().epochs}"
            )
        return "; ".join(parts)
