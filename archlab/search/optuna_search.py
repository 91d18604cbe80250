"""Optuna behind Ray Tune's searcher API: proposals from the space's define-by-run function,
constraints checked in the driver, every outcome written as a ``TrialRecord``. With
``loopback.py`` the only file that touches private attributes of Ray Tune or Optuna; each
such use carries a comment ``PRIVATE (checked: ...)`` naming the version it was checked
against, and a version bump re-reads these lines first.

* ``DefineByRun``: the space as Optuna's define-by-run function plus the constraint check.
* ``RecordingOptunaSearch``: proposals from Optuna; rejected genomes and repeats are recorded
  in the driver and never launched.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from ..measure.profile import cost
from ..model.genome import parse
from ..results.record import FINISHED, Status, TrialRecord
from ..spaces import load_space
from ..util.errors import UserError
from .optuna_trials import reattach, work_dir, write_record

MAX_REJECTIONS_IN_A_ROW = 1000
MAX_REPEATS_IN_A_ROW = 100  # a space smaller than the budget: stop instead of looping
NOT_COPIED = ("train_time_s", "trial_time_s", "node", "ray_trial_id")  # a repeat took no time here

Echo = Callable[[str], None]


class DefineByRun:
    """The space as Optuna's define-by-run function, plus the constraint check, run in the
    driver. A class (not a closure) because Ray pickles the searcher to resume it.

    ``max_latency_ms``: a limit on the target's predicted latency (``latency``: the latency
    table's setting, ``LatencyTable.load`` keywords), known before training like GMACs and
    params. ``predict``: every proposal carries its predicted latency (``_predicted_ms``), for
    a search whose latency objective is the prediction. ``classes``: the data's class count,
    so that the genome judged and predicted has the head the trial builds."""

    def __init__(
        self,
        *,
        space: str,
        max_gmacs: float | None,
        max_params: float | None,
        clip: tuple[int, int, int],
        max_latency_ms: float | None = None,
        latency: dict[str, Any] | None = None,
        predict: bool = False,
        classes: int | None = None,
    ):
        if (max_latency_ms is not None or predict) and latency is None:
            raise ValueError("a latency limit or prediction needs the latency table's setting")
        self.args = (space, max_gmacs, max_params)
        self.clip = clip
        self.max_latency_ms, self.latency, self.predict = max_latency_ms, latency, predict
        self.classes = classes  # the data's class count: the head the trials build (None: the space's)
        self.space: Any = None
        self.table: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "space": None, "table": None}

    def loaded(self) -> Any:
        if self.space is None:
            name, max_gmacs, max_params = self.args
            self.space = load_space(name, max_gmacs=max_gmacs, max_params=max_params, classes=self.classes)
        return self.space

    def latency_table(self) -> Any:
        """The latency table the limit and the predictions read (``archlab latency-table``);
        parts it lacks are measured when first needed, and saved."""
        if self.table is None:
            from ..measure.latency_table import LatencyTable

            self.table = LatencyTable.load(**(self.latency or {}))
        return self.table

    def predicted_ms(self, genome: Any) -> float:
        return self.latency_table().predict(genome, self.clip).total_ms

    def violates(self, genome: Any) -> str | None:
        """None if ``genome`` meets every limit known before training, else the reason: the
        space's GMACs and params first (counted, free), then the predicted latency."""
        reason = self.loaded().violates(genome, self.clip)
        if reason is None and self.max_latency_ms is not None:
            ms = self.predicted_ms(genome)
            if ms > self.max_latency_ms:
                clip = "x".join(map(str, self.clip))
                reason = f"{ms:.1f} ms predicted > max_latency_ms {self.max_latency_ms:g} at {clip}"
        return reason

    def constraints(self, genome: Any) -> dict[str, float]:
        """Each limit as Optuna's constraint value (relative excess, <= 0 when met)."""
        out = self.loaded().constraints(genome, self.clip)
        if self.max_latency_ms is not None:
            out["max_latency_ms"] = self.predicted_ms(genome) / self.max_latency_ms - 1.0
        return out

    def check(self, trial: Any) -> str | None:
        """The space's genome for ``trial`` (a draft: ``feasible.DraftTrial``) checked against
        the limits: None when it meets them, else the reason."""
        return self.violates(self.loaded().suggest(trial))

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        genome = self.loaded().suggest(trial)
        reason = self.violates(genome)
        # Told, not failed: every proposal carries its constraint values, so
        # Optuna 5's samplers rank an infeasible genome by how far it overshoots (constrained
        # domination) instead of never hearing of it. Set once: a reattached trial has them.
        if not trial.constraints:
            for key, value in self.constraints(genome).items():
                trial.set_constraint(key, value)
        drafts = getattr(trial.study.sampler, "drafts_taken", {}).pop(trial.number, None)
        config = {
            "_number": trial.number,
            "_rejected": reason or "",
            "_genome": str(genome),
            "_work": work_dir("trials", trial.number),
        }
        if drafts is not None:
            config["_drafts"] = drafts
        if self.predict or self.max_latency_ms is not None:
            config["_predicted_ms"] = self.predicted_ms(genome)
        return config


class RecordingOptunaSearch(OptunaSearch):
    """OptunaSearch that stores each trial's outcome in the study and tells Optuna FAIL for
    failed, rejected and repeated trials (so they never enter the front or the sampler's model).

    It also owns the budget: ``budget`` trials that TRAIN. A genome over a constraint is
    rejected here, in the driver, before Ray ever sees it: it is recorded in Optuna (status
    ``rejected``, with its GMACs and params) and the sampler is asked again. Launching it as
    a Ray trial instead cost about 4 s of a trial slot per rejection (measured on the
    default run), and a constraint must never eat the search's budget.

    A genome the study already trained to the end (NSGA-II's crossover proposes one again
    now and then: 1 of 12 on the default run) is not trained twice: the new trial records the
    earlier trial's result (status ``repeat``) and does not count towards the budget. Optuna
    is told FAIL, as for a rejection: told the copied values instead, the duplicates filled
    NSGA-II's population, its children became copies of the same parents, and a resumed
    16-genome search stopped as "exhausted" after 3 trained genomes. A genome proposed while
    another trial is training it is not trained twice either: it is recorded as a repeat of
    that trial (no result of its own: the other one's does not exist yet), told FAIL, and the
    sampler is asked again. Before, it trained again: in ``sampler_vs_random`` NSGA-II proposed
    3 such twins in 36 trials (2 of one search's 12), a budget spent on a known answer."""

    def __init__(
        self,
        *,
        define: DefineByRun,
        objectives: list[str],
        directions: list[str],
        sampler: optuna.samplers.BaseSampler,
        storage: Any,
        study_name: str,
        budget: int,
        proposed: int,
        requeue: list[Any],
        echo: Echo,
    ):
        super().__init__(
            space=define, metric=objectives, mode=directions, sampler=sampler, storage=storage, study_name=study_name
        )
        self.define = define
        self.directions = list(directions)
        self.budget = budget
        self.proposed = proposed  # trials already trained (a resumed study) or launched here
        self.counted: set[str] = set()
        self.exhausted = False  # every recent proposal was a genome already trained
        self.requeue = list(requeue)  # RUNNING trials of an earlier run: trained first, same numbers
        self._echo = echo

    def save(self, checkpoint_path: str) -> None:
        # PRIVATE (checked: ray 2.60): OptunaSearch.save pickles self.__dict__; the echo
        # function (a lambda of the CLI) does not pickle and is the driver's, not state.
        echo = self.__dict__.pop("_echo")
        try:
            super().save(checkpoint_path)
        finally:
            self._echo = echo

    def suggest(self, trial_id: str) -> dict | None:
        # PRIVATE (checked: ray 2.60): OptunaSearch._ot_trials maps Ray trial ids to Optuna
        # trials; it is the only way to reach the Optuna trial a suggestion created.
        if self.requeue and trial_id not in self._ot_trials:
            # PRIVATE (checked: ray 2.60): _ot_study, see _reject. OptunaSearch.suggest then
            # reruns the define-by-run function on the reattached trial: same parameters.
            frozen = self.requeue.pop(0)
            self._ot_trials[trial_id] = reattach(self._ot_study, frozen)
            self.counted.add(trial_id)
            self.proposed += 1
            self._echo(
                f"[resume]   #{frozen.number} {frozen.user_attrs.get('genome', '')} -- left unfinished by "
                "the last run: trained again from its last epoch"
            )
            return super().suggest(trial_id)
        if self.exhausted or (trial_id not in self._ot_trials and self.proposed >= self.budget):
            return Searcher.FINISHED
        repeats = drafts = 0
        for _ in range(MAX_REJECTIONS_IN_A_ROW):
            config = super().suggest(trial_id)
            if not config:
                break
            if config.get("_rejected"):
                self._reject(trial_id, config)
                drafts += int(config.get("_drafts") or 1)
                if drafts >= MAX_REJECTIONS_IN_A_ROW:  # redrawn proposals: as many drafts, in fewer trials
                    raise UserError(
                        f"{drafts} proposals in a row broke the space's constraints: loosen --max-gmacs / "
                        "--max-params / --max-latency-ms or the space's limits"
                    )
                continue
            earlier = self._trained_before(self._ot_trials[trial_id])
            if earlier is not None:
                self._repeat(trial_id, earlier)
            else:
                twin = self._training_now(self._ot_trials[trial_id])
                if twin is None:
                    break
                self._twin(trial_id, config, twin)
            repeats += 1
            if repeats >= MAX_REPEATS_IN_A_ROW:
                self.exhausted = True
                self._echo(
                    f"[done]     the sampler proposed {repeats} trained (or training) genomes in a row: the space looks "
                    "exhausted, so the search ends here"
                )
                return Searcher.FINISHED
        else:
            raise UserError(
                f"{MAX_REJECTIONS_IN_A_ROW} proposals in a row broke the space's constraints or "
                "repeated trained genomes: loosen --max-gmacs / --max-params / --max-latency-ms or the space's limits"
            )
        if config and trial_id not in self.counted:
            self.counted.add(trial_id)
            self.proposed += 1
        return config

    def _reject(self, trial_id: str, config: dict) -> None:
        # PRIVATE (checked: ray 2.60): _ot_trials (above) and _ot_study, the optuna.Study
        # OptunaSearch created from storage + study_name.
        ot, genome = self._untrained(trial_id, config, Status.REJECTED, config["_rejected"])
        # COMPLETE with the worst values and its (violated) constraints: constrained domination
        # puts it below every feasible trial whatever the values, and ranks it among the
        # infeasible ones by how far it overshoots; told FAIL, the sampler never learnt where the
        # limit lies. The front and the tables read the status `rejected`.
        worst = [0.0 if d == "max" else math.inf for d in self.directions]
        self._ot_study.tell(ot, worst, state=optuna.trial.TrialState.COMPLETE)
        self._echo(f"[rejected] #{ot.number} {genome}  -- {config['_rejected']} (not trained, not counted)")

    def _trained_before(self, ot: Any) -> Any:
        """The earliest trial of this study with the same parameters that trained to the end."""
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # PRUNED: stopped at a rung
        for t in self._ot_study.get_trials(deepcopy=False, states=states):
            if t.number != ot.number and t.params == ot.params and t.user_attrs.get("status") in FINISHED:
                return t
        return None

    def _training_now(self, ot: Any) -> Any:
        """Another trial of this study with the same parameters that is training (RUNNING)."""
        for t in self._ot_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if t.number != ot.number and t.params == ot.params:
                return t
        return None

    def _untrained(self, trial_id: str, config: dict, status: Status, reason: str) -> tuple[Any, Any]:
        """Record a proposal that is never trained (over a limit, or a twin of a training
        trial): its genome and cost, 0 epochs. Returns (the Optuna trial, the genome)."""
        ot = self._ot_trials.pop(trial_id)
        genome = parse(config["_genome"])
        c = cost(genome, self.define.clip, method="fast")
        write_record(
            ot,
            TrialRecord(
                status=status,
                reason=reason,
                ray_trial_id=trial_id,
                genome=str(genome),
                genome_id=genome.id,
                gmacs=c.gmacs,
                params=c.params,
                predicted_latency_ms=config.get("_predicted_ms"),
                drafts=config.get("_drafts"),
                epochs=0,
            ),
        )
        return ot, genome

    def _twin(self, trial_id: str, config: dict, twin: Any) -> None:
        ot, genome = self._untrained(
            trial_id,
            config,
            Status.REPEAT,
            f"same genome as trial #{twin.number}, which was training: not trained twice (its result is that trial's)",
        )
        self._ot_study.tell(ot, None, state=optuna.trial.TrialState.FAIL)
        self._echo(
            f"[repeat]   #{ot.number} {genome}  -- same genome as #{twin.number}, still training: "
            "not trained twice (not counted)"
        )

    def _repeat(self, trial_id: str, earlier: Any) -> None:
        ot = self._ot_trials.pop(trial_id)
        copied = {k: v for k, v in earlier.user_attrs.items() if k not in NOT_COPIED}
        record = TrialRecord.from_attrs(copied).with_(
            status=Status.REPEAT,
            ray_trial_id=trial_id,
            reason=f"same genome as trial #{earlier.number}: its result reused, not retrained",
        )
        write_record(ot, record)
        self._ot_study.tell(ot, None, state=optuna.trial.TrialState.FAIL)
        self._echo(
            f"[repeat]   #{ot.number} {earlier.user_attrs.get('genome', '?')}  -- same genome as "
            f"#{earlier.number}: its result reused (not trained, not counted)"
        )

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        # PRIVATE (checked: ray 2.60): _completed_trials, the set OptunaSearch keeps of trials
        # it already told Optuna about.
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        record = TrialRecord.from_result(result, error, ray_trial_id=trial_id)
        try:
            write_record(self._ot_trials[trial_id], record)
        except optuna.exceptions.UpdateFinishedTrialError:
            # A resumed run re-reported a trial Optuna already holds as finished: keep it.
            self._completed_trials.add(trial_id)
            return None
        if record.told_fail:
            return super().on_trial_complete(trial_id, None, True)
        if record.status is Status.STOPPED:
            # Stopped at a rung: its accuracy is an earlier epoch's, not a final value. Told
            # PRUNED (OptunaSearch tells PRUNED for no values and no error), so the sampler
            # never models it as final; the record keeps the epochs it reached.
            return super().on_trial_complete(trial_id, None, False)
        # ok: Optuna gets the values even if Ray reported an error after the final epoch
        # (record.final_status: that result is complete)
        return super().on_trial_complete(trial_id, result, False)
