"""The driver: validate, open the study, start Ray, run the trials, write the tables.

Traps handled here (shared/STACK_NOTES.md): the objectives go to OptunaSearch only (a metric
on TuneConfig would silently make the study single-objective); ASHA prunes on accuracy
alone; after Ctrl-C ``Tuner.fit`` returns as if finished, so the driver counts what really
finished. Security: a local Ray cluster listens on 127.0.0.1 only and keeps Ray's token
authentication on (with ``RAY_AUTH_MODE=disabled`` and all interfaces, any host that could
reach the GCS port ran code in the search).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..model.genome import Genome, parse
from ..results.record import Status
from ..results.study import BASELINE_SUFFIX, load_study_info, parse_objectives
from ..results.tail import plateau_counts, plateau_line
from ..results.writers import write_tables
from ..util.clips import clip_text
from ..util.errors import UserError
from .config import TRIAL_SETTINGS, SearchConfig, SearchOutcome, check_environment
from .latency import define_by_run, remeasure_latencies
from .studydir import StudyLock, prepare_study, update_trials, write_settings


def trial_settings(cfg: SearchConfig, study_dir: Path) -> dict[str, Any]:
    """What a worker needs of the study, as plain values (Ray ships them to every trial)."""
    s = {k: getattr(cfg, k) for k in TRIAL_SETTINGS}
    s["recipe"] = cfg.recipe.as_dict()
    s["study_dir"] = str(study_dir.resolve())
    # Ray workers do not start in the driver's working directory: a relative space file or
    # data root failed every trial ("search space file tiny.yaml not found").
    for k in ("space", "data_root", "init"):
        if s.get(k) and Path(s[k]).exists():
            s[k] = str(Path(s[k]).resolve())
    return s


def _target_line(cfg: SearchConfig) -> str:
    """What the search's costs and accuracies are of, in one line."""
    proxy = f"{clip_text(cfg.recipe.clip)} clips, {cfg.recipe.epochs} epochs"
    if not cfg.target_input:
        return f"costs of the trained networks themselves at {proxy.split(' clips')[0]} (this study has no target)"
    width = f"width x{cfg.reduction.width:g}, " if cfg.reduction.width != 1 else ""
    return (
        f"target: the space's networks at {cfg.target_input} (latency, GMACs and params are the target's)  ·  "
        f"proxy: {width}{proxy} (trained to estimate accuracy)"
    )


def init_ray(cfg: SearchConfig) -> float:
    """Start (or join) Ray; the seconds it took. A local cluster listens on 127.0.0.1 only."""
    import ray
    import torch

    from .loopback import bind_local_cluster_to_loopback  # imports Ray: only when a search runs

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    t0 = time.perf_counter()
    if ray.is_initialized():
        return 0.0
    kwargs: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True
    )
    try:
        if cfg.address:
            ray.init(address=cfg.address, **kwargs)
        else:
            bind_local_cluster_to_loopback()  # and Ray's token auth stays on (its default)
            # address="local": always a new private cluster. Without it ray.init attaches to any
            # cluster `ray start` left running on this machine (another user's, another study's)
            # and then refuses num_cpus: seen when two searches ran on one machine.
            ray.init(address="local", num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(), **kwargs)
    except ConnectionError as e:
        raise UserError(f"--address {cfg.address}: cannot reach a Ray cluster there ({e})") from None
    return time.perf_counter() - t0


def resources(cfg: SearchConfig) -> tuple[dict[str, float], int]:
    """Per-trial resources and how many trials run at once, checked against the cluster."""
    import ray

    res = ray.cluster_resources()
    cpus, gpus = res.get("CPU", 1.0), res.get("GPU", 0.0)
    if cfg.gpus_per_trial > gpus:
        raise UserError(f"--gpus-per-trial {cfg.gpus_per_trial:g}: the Ray cluster has {gpus:g} GPUs")
    if cfg.cpus_per_trial > cpus:
        raise UserError(f"--cpus-per-trial {cfg.cpus_per_trial:g}: the Ray cluster has {cpus:g} CPUs")
    fit = int(cpus // cfg.cpus_per_trial)
    if cfg.gpus_per_trial > 0:
        fit = min(fit, int(gpus // cfg.gpus_per_trial))
    return {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial}, cfg.concurrency or max(1, fit)


@dataclass(frozen=True)
class Counts:
    """Trials of an Optuna study by what they mean for the budget."""

    finished: int = 0
    failed: int = 0
    not_trained: int = 0  # rejected or interrupted
    repeats: int = 0
    running: int = 0

    @property
    def counted(self) -> int:
        return self.finished + self.failed


def count(study: Any) -> Counts:
    import optuna

    n = dict(finished=0, failed=0, not_trained=0, repeats=0, running=0)
    for t in study.get_trials(deepcopy=False):
        st = t.user_attrs.get("status")
        if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING):
            n["running"] += 1
        elif st in (Status.REJECTED.value, Status.INTERRUPTED.value):
            n["not_trained"] += 1
        elif st == Status.REPEAT.value:
            n["repeats"] += 1
        elif t.state == optuna.trial.TrialState.FAIL:
            n["failed"] += 1
        else:
            n["finished"] += 1
    return Counts(**n)


@dataclass(frozen=True, kw_only=True)
class TuneRun:
    """One Tuner run: a searcher over the study's trainable."""

    name: str
    searcher: Any
    num_samples: int
    scheduler: Any | None
    callbacks: list


def tune_run(cfg: SearchConfig, study_dir: Path, run: TuneRun, concurrency: int, res: dict) -> Any:
    from ray import tune

    from .trial import trial_entry

    trainable = tune.with_resources(tune.with_parameters(trial_entry, settings=trial_settings(cfg, study_dir)), res)
    # Never Tuner.restore: optuna.db is the one record of what was tried,
    # and each driver run is a new Ray experiment. A restored experiment re-ran trials that
    # had already failed and threw their results away (Optuna had been told FAIL), and its
    # checkpoints lived in Ray's session temp directory. Now a trial's files are in the study
    # (trials/NNNN/), and an unfinished trial is proposed again under its number and resumes
    # from its last epoch (optuna_trials.unfinished).
    tuner = tune.Tuner(
        trainable,
        # reuse_actors: a new trial runs in a finished trial's worker process instead of a
        # fresh one, saving the process start and imports (~2.5 s per trial, measured on
        # the default run, 12% of a short proxy trial).
        tune_config=tune.TuneConfig(
            search_alg=run.searcher,
            scheduler=run.scheduler,
            num_samples=run.num_samples,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=_new_run_name(study_dir, run.name),
            storage_path=str(study_dir.resolve() / "ray"),
            verbose=0,
            callbacks=run.callbacks,
            # a worker that dies (killed, out of host memory) is started again
            # up to WORKER_RETRIES times; it resumes from its trial's last epoch
            failure_config=tune.FailureConfig(max_failures=WORKER_RETRIES),
        ),
    )
    return tuner.fit()


WORKER_RETRIES = 2


def _new_run_name(study_dir: Path, name: str) -> str:
    """``<name>`` for the first run, then ``<name>.2``, ``<name>.3``...: Ray's logs of every run kept."""
    ray_dir = study_dir / "ray"
    k = 1
    while (ray_dir / (name if k == 1 else f"{name}.{k}")).exists():
        k += 1
    return name if k == 1 else f"{name}.{k}"


def baseline_genomes(g: Genome) -> list[tuple[str, str]]:
    """The paper's reference points on the skeleton of ``g`` (same depth per stage, widths,
    strides and stem): pure A, B, C, all-2D, and the global A->B->C interleave, each with a
    2D last stage as in the paper."""
    from ..model.presets import p3d_letters

    depths = tuple(s.depth for s in g.stages)
    out = []
    for label, cycle in (("pure A", "A"), ("pure B", "B"), ("pure C", "C"), ("2D", "2"), ("A->B->C", "ABC")):
        letters = p3d_letters(depths, cycle=cycle, n_2d_stages=1 if len(depths) > 1 else 0).split("|")
        stages = tuple(
            s.__class__(letters=letters_of_stage, width=s.width, stride=s.stride, temporal=s.temporal)
            for s, letters_of_stage in zip(g.stages, letters)
        )
        out.append((label, str(g.with_(stages=stages, family="bottleneck"))))
    return out


def search(cfg: SearchConfig, resume: bool = False, echo: Callable[[str], None] = print) -> SearchOutcome:
    """Run (or continue) a study; returns what happened. Every setting is checked before
    anything is written; every outcome is in optuna.db before the next trial starts, and
    tables are rewritten at the end even after an interrupt."""
    import optuna

    from .feasible import FeasibleSampler
    from .optuna_search import RecordingOptunaSearch
    from .optuna_trials import unfinished

    # Deferred: the searchers subclass Ray's classes, and `import archlab.search` (which the
    # studies and the CLI's parser do) must not pay for importing Ray.
    from .orphans import end_orphans
    from .progress import Progress
    from .samplers import make_sampler

    t_start = time.perf_counter()
    warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space`")
    objectives, directions = parse_objectives(cfg.objectives)
    check_environment(cfg)
    cfg, resumed = prepare_study(cfg, resume)
    if not resumed:  # "calibrated" becomes this machine's forms, fixed in study.yaml
        from ..spaces import load_space
        from ..training.calibrate import search_forms

        cfg = search_forms(cfg).with_target(load_space(cfg.space))
    study_dir = cfg.study_dir()
    name = study_dir.name
    ray_start = init_ray(cfg)
    res, concurrency = resources(cfg)  # a setting the cluster cannot run is refused before study.yaml exists

    with StudyLock(study_dir):
        for pid, where in end_orphans(study_dir):  # the lock held: no other search of it is alive
            echo(f"[orphan]   ended worker pid {pid} of {where}, left running by a killed search")
        if resumed:
            update_trials(study_dir, cfg.trials)
        else:
            write_settings(cfg, objectives, directions)
        info = load_study_info(study_dir)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(info.storage_url)
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            directions=["maximize" if d == "max" else "minimize" for d in directions],
            load_if_exists=True,
        )
        done_before = count(study).counted
        requeue = unfinished(study)
        todo = cfg.trials - done_before
        r = cfg.recipe
        echo(
            f"study {study_dir}  ·  space {cfg.space}  ·  data {cfg.data}  ·  "
            f"objectives {', '.join(f'{o} ({d})' for o, d in zip(objectives, directions))}  ·  "
            f"trains in {cfg.train_form}, latency in {cfg.latency_runtime} {cfg.latency_form}"
        )
        echo(_target_line(cfg))
        echo(
            f"{'resuming: ' + str(done_before) + ' trials already done, ' if resumed else ''}"
            f"{max(todo, 0)} trials to run, {concurrency} at a time, {r.epochs} epochs each "
            f"({'ASHA on val_top1' if cfg.scheduler == 'asha' else 'MO-ASHA on ' + ' & '.join(objectives)}, "
            f"grace {cfg.grace_epochs})  ·  Ray started in {ray_start:.1f} s"
        )
        from ..training.plateau import rule_active, stuck_phrase  # torch: only when a search runs

        if rule_active(r):
            echo(
                f"plateau rule: each trial reports from epoch {r.plateau_epochs + 1} on; a seed whose training loss "
                f"{stuck_phrase(r)} trains again on another seed first (at most {r.plateau_restarts}x)"
            )
        wandb_cb = _wandb_callbacks(cfg, study_dir, echo)
        exhausted = False  # the sampler only proposed genomes already trained: a space smaller than --trials
        if todo > 0:
            define = define_by_run(cfg, echo)
            sampler = make_sampler(cfg.sampler, r.seed, cfg.trials)
            if cfg.proposal_tries > 1:
                sampler = FeasibleSampler(base=sampler, check=define.check, tries=cfg.proposal_tries)
            searcher = RecordingOptunaSearch(
                define=define,
                objectives=objectives,
                directions=directions,
                sampler=sampler,
                storage=storage,
                study_name=name,
                budget=cfg.trials,
                proposed=done_before,
                requeue=requeue,
                echo=echo,
            )
            scheduler = _scheduler(cfg, objectives, directions)
            # Rejected genomes end at once and do not count: allow for many of them.
            run = TuneRun(
                name=f"{name}-t{cfg.trials}",
                searcher=searcher,
                num_samples=cfg.trials * 10,
                scheduler=scheduler,
                callbacks=[Progress(echo=echo, total=todo, label="trial", epochs=r.epochs), *wandb_cb],
            )
            tune_run(cfg, study_dir, run, concurrency, res)
            exhausted = searcher.exhausted
        n = count(study)
        interrupted = n.running > 0 or (n.counted < cfg.trials and not exhausted)
        if not interrupted:  # before the confirm step: the front it confirms is the one on these
            remeasure_latencies(cfg, study_dir, objectives, echo)
        if cfg.confirm_seeds and not interrupted:  # retrain the front's points with more seeds (search/confirm.py)
            from .confirm import run_confirm

            def launch(run_name: str, searcher: Any, n: int, callbacks: list) -> None:
                tune_run(
                    cfg,
                    study_dir,
                    TuneRun(name=run_name, searcher=searcher, num_samples=n, scheduler=None, callbacks=callbacks),
                    concurrency,
                    res,
                )

            interrupted = run_confirm(
                cfg, study_dir, storage=storage, directions=directions, objectives=objectives, launch=launch, echo=echo
            )

        if cfg.baselines and not interrupted:
            interrupted = _run_baselines(
                cfg,
                study_dir,
                storage=storage,
                directions=directions,
                objectives=objectives,
                slots=(concurrency, res),
                wandb_cb=wandb_cb,
                echo=echo,
            )
            if not interrupted:
                remeasure_latencies(cfg, study_dir, objectives, echo)  # the baselines' genomes
        df, _, hv = write_tables(study_dir)
        if plateau_counts(df)[0]:  # the search's own tail: the proposals the plateau rule restarted
            echo(plateau_line(df))
        _finish_wandb(wandb_cb, df, hv)
    return SearchOutcome(
        study_dir=study_dir,
        interrupted=interrupted,
        finished=n.finished,
        failed=n.failed,
        rejected=n.not_trained,
        repeated=n.repeats,
        wall_s=time.perf_counter() - t_start,
        ray_start_s=ray_start,
        hypervolume=hv.get("hypervolume"),
        concurrency=concurrency,
    )


def _scheduler(cfg: SearchConfig, objectives: list[str], directions: list[str]) -> Any:
    """The early-stopping scheduler: rungs at grace * 2**k epochs below the last epoch."""
    from ray.tune.schedulers import ASHAScheduler

    from .mo_asha import MOASHAScheduler

    r = cfg.recipe
    grace = min(cfg.grace_epochs, r.epochs)
    if cfg.scheduler == "mo-asha":
        return MOASHAScheduler(
            metrics=objectives, modes=directions, time_attr="epochs", max_t=r.epochs, grace=grace, eta=2
        )
    return ASHAScheduler(
        metric="val_top1", mode="max", max_t=r.epochs, grace_period=grace, reduction_factor=2, time_attr="epochs"
    )


def _run_baselines(
    cfg: SearchConfig,
    study_dir: Path,
    *,
    storage: Any,
    directions: list[str],
    objectives: list[str],
    slots: tuple[int, dict],
    wandb_cb: list,
    echo: Callable[[str], None],
) -> bool:
    import optuna

    from ..results.pareto import knee_point
    from ..results.reader import finished, load_results
    from .baselines import FixedGenomes
    from .progress import Progress

    name = study_dir.name
    df, _ = load_results(study_dir)
    search_df = finished(df[~df["baseline"]])
    if search_df.empty:
        echo("baselines: skipped (no finished search trial to take the skeleton from)")
        return False
    knee = parse(search_df.loc[knee_point(search_df, objectives, directions), "genome"])
    bstudy = optuna.create_study(
        study_name=name + BASELINE_SUFFIX,
        storage=storage,
        load_if_exists=True,
        directions=["maximize" if d == "max" else "minimize" for d in directions],
    )
    done = {
        t.user_attrs.get("label")
        for t in bstudy.get_trials(deepcopy=False)
        if t.state != optuna.trial.TrialState.RUNNING
    }
    todo = [(label, g) for label, g in baseline_genomes(knee) if label not in done]
    if not todo:
        return False
    echo(f"baselines on the knee point's skeleton ({knee}): {', '.join(label for label, _ in todo)}")
    run = TuneRun(
        name=name + "-baselines",
        searcher=FixedGenomes(genomes=todo, study=bstudy, objectives=objectives),
        num_samples=len(todo),
        scheduler=None,
        callbacks=[Progress(echo=echo, total=len(todo), label="baseline", epochs=cfg.recipe.epochs), *wandb_cb],
    )
    tune_run(cfg, study_dir, run, *slots)
    n = count(bstudy)
    return n.running > 0 or n.counted < len(todo) + len(done)


# W&B lives in archlab.tracking; the search wraps its tracker in a Ray callback.
def _wandb_callbacks(cfg: SearchConfig, study_dir: Path, echo: Callable[[str], None]) -> list:
    from ..tracking import make_tracker
    from .wandb_callback import Tracking

    tracker = make_tracker(cfg.wandb, study_dir, echo)
    return [] if tracker is None else [Tracking(tracker=tracker)]


def _finish_wandb(callbacks: list, df: Any, hv: dict) -> None:
    for cb in callbacks:
        cb.tracker.finish_study(df, hv)


def shutdown() -> None:
    import sys

    ray = sys.modules.get("ray")
    if ray is None:  # no search ran in this process: nothing to stop
        return
    if ray.is_initialized():
        ray.shutdown()
    from .loopback import restore_cluster_default

    restore_cluster_default()
