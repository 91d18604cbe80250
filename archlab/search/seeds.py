"""K seeds of one genome inside one trial (``--seeds K``), trained
INTERLEAVED epoch by epoch: epoch 1 of every seed, then epoch 2 of every seed, ...

Why interleaved and not one seed after another: the scheduler's rungs compare trials at an
epoch. Sequential seeds could only report the first seed's epochs to ASHA (the others come
after the rungs, and a report at the last epoch makes Ray's ASHA stop the trial at
``max_t``), so a rung would stop or keep a genome on one seed's luck, the very noise the
seeds are there to remove (docs/notebook/proxy-fidelity.md). Interleaved,
every report is the mean over the K seeds of the same epoch: ASHA's and MO-ASHA's rungs
decide on the K-seed mean, a trial stopped at a rung has spent the same share of its budget
as with one seed, progress lines and W&B curves stay one per epoch, and the last report is
the objective: the K-seed mean of the last epoch.

How: ``trainer.train`` resumes from ``checkpoint.pt`` exactly (RNG states included; a test
checks it), so each seed trains one epoch at a time into its own directory and pauses by
raising from ``on_epoch`` after its checkpoint is written. Seed ``i`` of K is
``recipe.seed + i``, and its numbers are the ones ``archlab train --seed`` gives for that seed
(tests/test_seeds.py). Pausing costs one model build, loader set-up and checkpoint load per
seed and epoch, a small fraction of a proxy epoch (docs/notebook/confirm-step.md). With
K = 1 nothing is interleaved: one
``train`` call, as before.

The first seed trains in the trial's work directory itself (its ``best.pt`` is what the
record's ``checkpoint`` points at and what ``archlab export`` exports); seed ``s`` > first in
``<work>/seed<s>/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from ..results.stats import interval
from ..training.checkpoint import read_checkpoint
from ..training.plateau import settle
from ..training.recipe import ProxyRecipe
from ..training.trainer import CHECKPOINT, EpochMetrics, TrainConfig, TrainResult, train
from .config import MAX_SEEDS, _int


@dataclass
class SeedsEpoch(EpochMetrics):
    """One epoch of a K-seed trial: EpochMetrics' fields hold the means over the seeds
    (``epoch_time_s`` the sum: the wall time the trial spent on that epoch), plus each seed's
    values. ``val_top1_std`` is the sample std (ddof 1), None with one seed."""

    seeds: list[int] = field(default_factory=list)
    seed_top1: list[float] = field(default_factory=list)
    val_top1_std: float | None = None
    # The plateau rule (archlab.training.plateau): the seeds it set aside, and how many.
    plateau_seeds: list[int] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """What a trial adds to its Ray report (and so to its record)."""
        return {
            "seeds": list(self.seeds),
            "seed_top1": list(self.seed_top1),
            "val_top1_std": self.val_top1_std,
            "restarted_plateau": len(self.plateau_seeds),
            "plateau_seeds": list(self.plateau_seeds),
        }


def seed_values(recipe: ProxyRecipe, k: int) -> list[int]:
    """The seeds a K-seed trial trains: the recipe's seed, then the next K - 1. ``k`` is
    checked like ``SearchConfig`` checks ``--seeds`` (one line, the same words)."""
    _int("--seeds", k, 1, MAX_SEEDS)
    return [recipe.seed + i for i in range(k)]


def trial_seeds(recipe: ProxyRecipe, config: dict[str, Any], k: int) -> tuple[ProxyRecipe, int]:
    """The recipe and seed count of one Ray trial: the study's (``--seeds``), or for a
    confirm run (``archlab.search.confirm``: its config names one ``_seed``) that one seed."""
    if "_seed" in config:
        return recipe.with_(seed=int(config["_seed"])), 1
    return recipe, int(k)


def combine(
    epoch: int, per_seed: list[EpochMetrics], seeds: list[int], set_aside: list[int] | None = None
) -> SeedsEpoch:
    """The K-seed view of one epoch (means of the seeds' metrics, sum of their times);
    ``seeds`` the trial's seeds, ``set_aside`` those of them the plateau rule restarted (seed
    s then trained ``plateau.restart_seed(s, 1)``, ...: ``archlab train --seed s`` takes the
    same path, so the record's seeds stay the ones to retrain it with)."""
    n = len(per_seed)
    mean = {
        f.name: sum(getattr(m, f.name) for m in per_seed) / n
        for f in fields(EpochMetrics)
        if f.name not in ("epoch", "epoch_time_s")
    }
    top1 = [m.val_top1 for m in per_seed]
    std = interval(top1).std if n > 1 else None
    return SeedsEpoch(
        epoch=epoch,
        epoch_time_s=sum(m.epoch_time_s for m in per_seed),
        **mean,
        seeds=list(seeds),
        seed_top1=top1,
        val_top1_std=None if std is None or not math.isfinite(std) else std,
        plateau_seeds=list(set_aside or []),
    )


class _Pause(Exception):
    """Raised from on_epoch after the epoch's checkpoint: the seed continues later."""


def seed_dir(work: Path, seeds: list[int], i: int) -> Path:
    return work if i == 0 else work / f"seed{seeds[i]}"


def checkpoint_history(d: Path) -> list[EpochMetrics]:
    """The epochs a seed's directory already holds (a resumed trial), from its checkpoint;
    read once per seed when the trial starts (later epochs come from ``on_epoch``)."""
    f = d / CHECKPOINT
    if not f.exists():
        return []
    return [EpochMetrics(**m) for m in read_checkpoint(f)["history"]]  # CorruptCheckpoint if damaged


def train_seeds(
    genome: Any,
    train_set: Any,
    val_set: Any,
    cfg: TrainConfig,
    *,
    k: int,
    out_dir: str | Path,
    on_epoch: Callable[[SeedsEpoch], None],
    init: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``k`` seeds of ``genome`` interleaved; ``on_epoch`` gets each epoch's K-seed
    view once every seed finished it. A seed that fails (NaN, out of memory, error) fails
    the trial: its reason names the seed; the history holds the epochs all seeds finished.
    Resumes: a seed directory with a checkpoint continues after its epoch; an epoch every
    seed had already finished is reported again only if it is the last (the final result
    must reach the searcher). ``init``: every seed starts from these weights (train's ``init``).

    The plateau rule (``archlab.training.plateau``) settles each seed first, one after the
    other: a seed still on the plateau after the rule's epochs is replaced before any epoch is
    reported; the reports keep the trial's seeds and name those set aside. A seed's directory
    keeps the name of the trial's seed."""
    seeds = seed_values(cfg.recipe, k)
    work = Path(out_dir)
    dirs = [seed_dir(work, seeds, i) for i in range(k)]
    settled = [
        settle(
            genome,
            train_set,
            val_set,
            TrainConfig(**{**{f.name: getattr(cfg, f.name) for f in fields(cfg)}, "recipe": cfg.recipe.with_(seed=s)}),
            d,
            init=init,
        )
        for s, d in zip(seeds, dirs)
    ]
    cfgs = [s.cfg for s in settled]
    trained = [c.recipe.seed for c in cfgs]
    set_aside = [seed for s in settled for seed in s.tried[:-1]]
    discarded_s = sum(s.discarded_s for s in settled)
    if k == 1:
        reported = []

        def one(m: EpochMetrics) -> None:
            reported.append(m.epoch)
            on_epoch(combine(m.epoch, [m], seeds, set_aside))

        r = train(genome, train_set, val_set, cfgs[0], out_dir=work, on_epoch=one, init=init)
        if r.status == "ok" and r.history and not reported:
            # Killed after its last epoch's checkpoint, before that epoch was recorded: train()
            # had nothing left to train. Report the checkpoint's last epoch (a trial that
            # reported nothing broke the whole search: Ray's strict metric check).
            on_epoch(combine(r.history[-1].epoch, [r.history[-1]], seeds, set_aside))
        r.seeds_tried = list(settled[0].tried)
        r.train_time_s += discarded_s
        return r
    done = [checkpoint_history(d) for d in dirs]
    out = TrainResult(status="ok", reason="", out_dir=str(work))
    epochs = cfg.recipe.epochs

    for e in range(1, epochs + 1):
        trained_now = False
        for i in range(k):
            if len(done[i]) >= e:
                continue

            def pause(m: EpochMetrics, i: int = i) -> None:  # after the epoch's checkpoint is written
                done[i].append(m)
                raise _Pause  # the recipe's epochs stay the trial's: they set the LR schedule

            try:
                r = train(genome, train_set, val_set, cfgs[i], out_dir=dirs[i], on_epoch=pause, init=init)
            except _Pause:
                r = None
            if len(done[i]) < e:  # it returned without the epoch: NaN, out of memory, an error
                out.status = r.status if r is not None and r.status != "ok" else "error"
                out.reason = f"seed {trained[i]}: {r.reason if r is not None and r.reason else 'no epoch ' + str(e)}"
                return _close(out, done, e - 1, seeds, set_aside, discarded_s, trained)
            trained_now = True
        view = combine(e, [d[e - 1] for d in done], seeds, set_aside)
        out.history.append(view)
        if trained_now or e == epochs:
            on_epoch(view)
    return _close(out, done, epochs, seeds, set_aside, discarded_s, trained)


def _close(
    out: TrainResult,
    done: list[list[EpochMetrics]],
    epochs: int,
    seeds: list[int],
    set_aside: list[int],
    discarded_s: float,
    trained: list[int],
) -> TrainResult:
    out.history = [combine(e, [d[e - 1] for d in done], seeds, set_aside) for e in range(1, epochs + 1)]
    if out.history:
        best = max(out.history, key=lambda m: m.val_top1)
        out.best_top1, out.best_epoch = best.val_top1, best.epoch
    out.train_time_s = sum(m.epoch_time_s for d in done for m in d) + discarded_s
    out.seeds_tried = [*set_aside, *trained]
    return out
