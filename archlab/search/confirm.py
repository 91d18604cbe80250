"""The confirm step: after the budget, every point of the front is
retrained with ``--confirm-seeds N`` more seeds and the final front is computed on the
means over all its seeds (the rules, with no Ray: ``archlab.results.confirmed``).

Each (front point, seed) is one Ray trial of one seed (the worker reads ``_seed`` from the
config: ``seeds.trial_seeds``), so the runs of all points share the cluster like search
trials; no scheduler stops them (a confirm run is a measurement, not a proposal). They are
stored in their own Optuna study ``<name>:confirm``, like the baselines in
``<name>:baselines``: they do not count towards ``--trials``, never enter the sampler, and a
killed confirm step resumes without retraining a run that ended (``confirmed.attempted``).

Rounds: a refuted point can uncover a point it dominated, which was never confirmed, so the
step repeats plan -> run until every point of the front under the current means has its
confirm seeds. Each round confirms at least one new point, so there are at most as many
rounds as trained trials; on the runs measured here the second round, when there was one,
had one or two points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import optuna
from ray.tune.search import Searcher

from ..results.confirmed import SUFFIX, attempted, plan
from ..results.reader import load_confirm_rows, load_results
from .baselines import FixedGenomes
from .optuna_trials import reattach, unfinished, work_dir
from .progress import Progress


class ConfirmRuns(FixedGenomes):
    """Proposes (trial number, genome, seed) runs; each Optuna trial of ``<name>:confirm``
    names the search trial it retrains (``confirm_of``) and its seed (``seeds``) from the
    moment it is asked, so an interrupted run is known for what it was."""

    def __init__(self, *, runs: list[tuple[int, str, int]], study: optuna.Study, objectives: list[str]):
        super().__init__(genomes=[], study=study, objectives=objectives)
        self.runs = list(runs)
        # a run a killed driver left RUNNING continues under its own number, from its last epoch
        self.left = {
            (t.user_attrs.get("confirm_of"), tuple(t.user_attrs.get("seeds") or ())): t for t in unfinished(study)
        }

    def suggest(self, trial_id: str) -> dict | None:
        if trial_id in self.ot_trials:
            return self.ot_trials[trial_id][1]
        if not self.runs:
            return Searcher.FINISHED
        number, genome, seed = self.runs.pop(0)
        frozen = self.left.pop((number, (seed,)), None)
        ot = self.study.ask() if frozen is None else reattach(self.study, frozen)
        for k, v in (("confirm_of", number), ("seeds", [seed]), ("genome", genome)):
            ot.set_user_attr(k, v)
        config = {
            "genome": genome,
            "_seed": seed,
            "_label": f"confirm #{number}",
            "_work": work_dir("confirm", ot.number),
        }
        self.ot_trials[trial_id] = (ot, config)
        return config


def run_confirm(
    cfg: Any,
    study_dir: Path,
    *,
    storage: Any,
    directions: list[str],
    objectives: list[str],
    launch: Callable[[str, Any, int, list], None],
    echo: Callable[[str], None],
) -> bool:
    """Run the confirm step to the end; True if it was interrupted (runs left to do).
    ``launch(name, searcher, num_samples, callbacks)`` runs one Ray Tune experiment without a
    scheduler (the driver's ``tune_run``: this module does not import the driver)."""
    name = study_dir.name
    cstudy = optuna.create_study(
        study_name=name + SUFFIX,
        storage=storage,
        load_if_exists=True,
        directions=["maximize" if d == "max" else "minimize" for d in directions],
    )
    rounds = len(load_results(study_dir)[0]) + 1  # each round confirms a new point: a bound, never reached
    for round_ in range(1, rounds + 1):
        df, _ = load_results(study_dir)
        todo = plan(
            df, load_confirm_rows(study_dir), objectives, directions, extra=cfg.confirm_seeds, base_seed=cfg.recipe.seed
        )
        if not todo:
            return False
        points = sorted({n for n, _, _ in todo})
        echo(
            f"confirm step{f' (round {round_})' if round_ > 1 else ''}: {len(points)} front point(s) "
            f"(#{', #'.join(map(str, points))}) x {cfg.confirm_seeds} more seed(s): {len(todo)} run(s)"
        )
        launch(
            f"{name}-confirm",
            ConfirmRuns(runs=todo, study=cstudy, objectives=objectives),
            len(todo),
            [Progress(echo=echo, total=len(todo), label="confirm", epochs=cfg.recipe.epochs)],
        )
        ended = attempted(load_confirm_rows(study_dir))
        if any((n, s) not in ended for n, _, s in todo):
            return True
    return False
