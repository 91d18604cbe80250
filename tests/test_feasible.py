"""Proposals that meet the search's limits by construction (archlab.search.feasible): the
sampler's proposal is drawn again until the genome fits, and the trial gets exactly the
draft that fitted. Driven through Optuna's own ask/tell with the search's real define-by-run
function and samplers (no Ray: the searcher only relays these calls)."""

from __future__ import annotations

import pickle
import zlib

import optuna
import pytest

from archlab.search.feasible import FeasibleSampler
from archlab.search.optuna_search import DefineByRun
from archlab.search.samplers import make_sampler
from archlab.spaces import load_space

CLIP = (16, 112, 112)


def _run(sampler_name: str, tries: int, trials: int = 40, seed: int = 3) -> tuple[list[str], list[dict]]:
    """``trials`` asks of a study on the interleave space at its target clip; trained ones get
    made-up values from their costs (accuracy rises with GMACs, latency = GMACs)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    define = DefineByRun(space="interleave", max_gmacs=None, max_params=None, clip=CLIP)
    base = make_sampler(sampler_name, seed, trials)
    sampler = base if tries == 1 else FeasibleSampler(base=base, check=define.check, tries=tries)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    reasons, configs = [], []
    space = load_space("interleave")
    for _ in range(trials):
        trial = study.ask()
        config = define(trial)
        configs.append({**config, "params": dict(trial.params)})
        assert str(space.from_params(trial.params)) == config["_genome"]  # the trial holds the draft
        if config["_rejected"]:
            reasons.append(config["_rejected"])
            study.tell(trial, [0.0, float("inf")])
        else:
            from archlab.measure.profile import cost

            g = cost(space.from_params(trial.params), CLIP, method="fast").gmacs
            study.tell(trial, [g / (1.0 + g) + (zlib.crc32(config["_genome"].encode()) % 7) / 100, g])
    return reasons, configs


@pytest.mark.parametrize("sampler_name", ["nsga2", "tpe", "random"])
def test_redrawn_proposals_meet_the_limits(sampler_name):
    # The interleave space's own limit (6.7 target GMACs) rejects a large share of what the
    # samplers propose as they come; redrawn, none is rejected.
    rejected_as_they_come, _ = _run(sampler_name, tries=1)
    rejected_redrawn, configs = _run(sampler_name, tries=100)
    assert len(rejected_as_they_come) >= 3, rejected_as_they_come
    assert rejected_redrawn == []
    drafts = [c["_drafts"] for c in configs]
    assert min(drafts) == 1 and max(drafts) > 1  # some proposals fitted at once, some were redrawn
    assert all("GMACs > max_gmacs 6.7" in r for r in rejected_as_they_come)


def test_the_last_draft_is_rejected_when_nothing_fits():
    # A limit no genome of the space meets: the tries run out and the proposal is recorded as
    # rejected, as without redrawing (the search then says the limits are too tight).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    define = DefineByRun(space="interleave", max_gmacs=0.001, max_params=None, clip=CLIP)
    sampler = FeasibleSampler(base=make_sampler("nsga2", 0, 10), check=define.check, tries=5)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    trial = study.ask()
    config = define(trial)
    assert config["_drafts"] == 5
    assert "GMACs > max_gmacs 0.001" in config["_rejected"]


def test_enqueued_parameters_are_kept():
    # A baseline enqueues its parameters: they are proposed as given, never redrawn.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("interleave")
    define = DefineByRun(space="interleave", max_gmacs=None, max_params=None, clip=CLIP)
    sampler = FeasibleSampler(base=make_sampler("nsga2", 0, 10), check=define.check, tries=100)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    params = space.sample_params(__import__("random").Random(4))
    study.enqueue_trial(params)
    trial = study.ask()
    config = define(trial)
    assert trial.params == params
    assert config["_genome"] == str(space.from_params(params))


def test_the_sampler_pickles_with_its_check():
    # Ray Tune pickles the searcher, sampler included, to its experiment directory.
    define = DefineByRun(space="interleave", max_gmacs=None, max_params=None, clip=CLIP)
    sampler = FeasibleSampler(base=make_sampler("nsga2", 0, 10), check=define.check, tries=7)
    copy = pickle.loads(pickle.dumps(sampler))
    assert copy.tries == 7 and copy.check.__self__.args == define.args


@pytest.mark.parametrize("tries", [0, -1, True, 2.5])
def test_tries_must_be_a_positive_integer(tries):
    with pytest.raises(ValueError, match="tries must be a positive integer"):
        FeasibleSampler(base=make_sampler("random", 0, 10), check=lambda t: None, tries=tries)
