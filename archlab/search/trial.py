"""The worker side of a trial: genome -> cheap costs -> latency -> proxy training, with a
report per epoch. Runs inside a Ray worker process; the driver never calls it.

Failures are reported as a final result with status and reason (``archlab.results.record``), so the
searcher records them in Optuna and the search goes on.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

from ..measure.latency_rule import latency_setup
from ..model.genome import Genome, parse
from ..model.reduction import Reduction
from ..results.record import REASON_CHARS, TSE_EPOCHS, Status
from ..training.recipe import ProxyRecipe
from ..util.clips import parse_clip
from . import orphans


def trial_genome(space: Any, config: dict[str, Any], num_classes: int | None) -> Genome:
    """The genome a trial is about, as the space writes it: the target (the network a user
    ships) of a study with a target. A baseline's and a confirm run's are given, not proposed."""
    if "genome" in config:
        g = parse(config["genome"])
    else:
        g = space.from_params({k: v for k, v in config.items() if not k.startswith("_")})
    return g if num_classes is None else g.with_(classes=num_classes)


def _earlier_seconds(work: Path, seeds: list[int], before: int) -> float:
    """The training seconds a trial spent before its first report of epoch ``before``: the
    epochs its seeds' checkpoints hold below it (a resumed trial, the plateau rule's first
    epochs) and the seeds the plateau rule set aside."""
    from ..training.checkpoint import CorruptCheckpoint
    from ..training.plateau import discarded_seconds
    from .seeds import checkpoint_history, seed_dir

    total = 0.0
    for i in range(len(seeds)):
        d = seed_dir(work, seeds, i)
        total += discarded_seconds(d)
        try:
            total += sum(m.epoch_time_s for m in checkpoint_history(d) if m.epoch < before)
        except (CorruptCheckpoint, KeyError, TypeError, ValueError):
            pass
    return total


def _earlier_losses(work: Path, seeds: list[int]) -> dict[int, float]:
    """The training losses of the epochs a resumed trial already trained: per epoch the mean
    over its seeds (what ``on_epoch`` reports for the later epochs, so the training-speed
    score sums like with like), for the epochs every seed's checkpoint holds. Empty for a new
    trial or an unreadable checkpoint (train() then decides)."""
    from ..training.checkpoint import CorruptCheckpoint
    from .seeds import checkpoint_history, seed_dir

    per_seed = []
    for i in range(len(seeds)):
        try:  # no checkpoint: no epochs, so no epoch every seed holds
            per_seed.append({m.epoch: m.train_loss for m in checkpoint_history(seed_dir(work, seeds, i))})
        except (CorruptCheckpoint, KeyError, TypeError, ValueError):  # damaged: train() sets it aside
            return {}
    common = set.intersection(*(set(h) for h in per_seed)) if per_seed else set()
    return {e: sum(h[e] for h in per_seed) / len(per_seed) for e in sorted(common)}


def _synflow(genome: Genome, clip: tuple[int, int, int]) -> float | None:
    """Synflow before any training (0.1 s on a proxy genome); None if it cannot be computed:
    a score beside the record must never fail the trial."""
    from ..measure.scores import synflow_of

    try:
        return synflow_of(genome, clip)
    except Exception:  # noqa: BLE001
        return None


@functools.lru_cache(maxsize=1)
def _state_2d(path: str) -> dict[str, Any]:
    """The 2D ResNet file of ``--init``, read once per worker process."""
    from ..model.state_files import read_state_dict

    return read_state_dict(path, "a 2D ResNet state dict")


def _inflated(genome: Genome, path: str) -> dict[str, Any]:
    """The proxy's initial weights: the 2D network of ``path`` inflated into ``genome``
    (a genome of another skeleton, or a letter without a rule, fails the trial in one line)."""
    from ..model.inflate import inflate_imagenet

    net, _ = inflate_imagenet(genome, _state_2d(path), path)
    return net.state_dict()


def _relative(path: str | Path, root: str) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


@functools.lru_cache(maxsize=2)
def _dataset(name: str, split: str, opts_json: str) -> Any:
    """A trial's dataset, kept by the worker process: Ray reuses a worker for the next trial
    (``reuse_actors``), which then skips generating or opening the data again (about 1 s of
    a 20-40 s proxy trial on the synthetic default)."""
    from ..data import get_dataset

    return get_dataset(name, split, **json.loads(opts_json))


def trial_entry(config: dict[str, Any], settings: dict[str, Any]) -> None:
    """The Ray trainable (``tune.with_parameters`` passes the study's settings)."""
    run_trial(config, settings)


def run_trial(config: dict[str, Any], s: dict[str, Any]) -> None:
    """One Ray Tune trial. ``s``: the study's settings as plain values (``driver.trial_settings``)."""
    import ray
    import torch
    from ray import tune

    from ..measure import profile
    from ..spaces import load_space
    from ..training.checkpoint import CorruptCheckpoint
    from ..training.trainer import TrainConfig
    from .seeds import seed_values, train_seeds, trial_seeds

    study_dir = s["study_dir"]
    work = Path(study_dir) / config["_work"]
    orphans.remember(work)  # a driver killed now leaves this worker running: the next search ends it
    torch.set_num_threads(max(1, int(s["cpus_per_trial"])))
    recipe, k = trial_seeds(ProxyRecipe.from_dict(s["recipe"]), config, s["seeds"])
    clip = recipe.clip
    t_start = time.perf_counter()
    # Every report carries the objectives and ASHA's metrics, even a failure's (Ray checks).
    base: dict[str, Any] = {
        "status": Status.RUNNING.value,
        "reason": "",
        "node": ray.get_runtime_context().get_node_id()[:12],
        "val_top1": 0.0,
        "val_top5": 0.0,
        "epochs": 0,
        "gmacs": math.nan,
        "params": 0,
        "latency_ms": math.inf,
    }

    def final(status: Status, reason: str, **metrics: Any) -> None:
        tune.report(
            {
                **base,
                **metrics,
                "status": status.value,
                "reason": reason[:REASON_CHARS],
                "trial_time_s": time.perf_counter() - t_start,
            }
        )

    try:
        space = load_space(s["space"])
        opts = {
            split: {**recipe.dataset_opts(s["data"], split), "root": s["data_root"], **s["data_opts"]}
            for split in ("train", "val")
        }
        train_set = _dataset(s["data"], "train", json.dumps(opts["train"], sort_keys=True))
        val_set = _dataset(s["data"], "val", json.dumps(opts["val"], sort_keys=True))
        target = trial_genome(space, config, len(train_set.classes))
        genome = Reduction(width=s.get("proxy_width") or 1.0).proxy_of(target)  # what trains
        target_clip = parse_clip(s["target_input"]) if s.get("target_input") else clip
        cost, proxy_cost = profile.cost(target, target_clip), profile.cost(genome, clip)
        base.update(
            genome=str(target),
            genome_id=target.id,
            proxy_genome=str(genome),
            proxy_genome_id=genome.id,
            gmacs=cost.gmacs,
            params=cost.params,
            proxy_gmacs=proxy_cost.gmacs,
            proxy_params=proxy_cost.params,
            label=config.get("_label", ""),
        )
        lat_form, runtime, device, runs = latency_setup(s)
        cache = profile.ProfileCache(Path(study_dir) / "profiles" / f"{os.getpid()}.json")

        def measured(g: Genome, at: tuple[int, int, int]) -> Any:
            return profile.latency(
                g, at, device=device, batch=1, runs=runs, cache=cache, form=lat_form, runtime=runtime
            )

        predicted = config.get("_predicted_ms")
        proxy_lat = measured(genome, clip)
        if s.get("latency") == "predicted" and predicted is not None:
            # The latency table's sum of parts, computed in the driver when it proposed the
            # genome; the full-budget trials are measured end to end after the search.
            lat_ms, lat_form_name, lat_runtime = float(predicted), str(lat_form.name), runtime
        else:
            lat = proxy_lat if (target, target_clip) == (genome, clip) else measured(target, target_clip)
            lat_ms, lat_form_name, lat_runtime = lat.median_ms, lat.form, lat.runtime
        base.update(
            latency_ms=lat_ms,
            clips_per_s=1000.0 / lat_ms if lat_ms > 0 else math.nan,
            proxy_latency_ms=proxy_lat.median_ms,
            predicted_latency_ms=predicted,
            drafts=config.get("_drafts"),
            latency_form=lat_form_name,
            latency_runtime=lat_runtime,
            train_form=s["train_form"],
        )

        # The trial's files live in the study directory: a copied or moved
        # study still exports and resumes, and a trial restarted after its worker or the
        # driver died continues from its last epoch's checkpoint.pt (train() resumes from it).
        cfg = TrainConfig(recipe=recipe, workers=s["workers"], device=device, form=s["train_form"])
        train_time = [0.0]
        # epoch -> the seeds' mean training loss; the epochs trained before the first report
        # (a resumed trial, the plateau rule's first epochs) are read from the checkpoints then
        losses: dict[int, float] = {}
        base["synflow"] = _synflow(genome, clip)

        def on_epoch(m: Any) -> None:
            done = m.epoch >= recipe.epochs
            if not losses:  # the first report
                losses.update(_earlier_losses(work, seed_values(recipe, k)))
                train_time[0] = _earlier_seconds(work, seed_values(recipe, k), m.epoch)
            train_time[0] += m.epoch_time_s
            losses[m.epoch] = m.train_loss
            last = [losses[e] for e in sorted(losses) if e <= m.epoch][-TSE_EPOCHS:]
            metrics = {
                **base,
                "val_top1": m.val_top1,
                "val_top5": m.val_top5,
                "train_loss": m.train_loss,
                "train_speed": float(sum(last)),
                "val_loss": m.val_loss,
                "epochs": m.epoch,
                "epoch_time_s": m.epoch_time_s,
                "train_time_s": train_time[0],
                "trial_time_s": time.perf_counter() - t_start,
                "status": (Status.OK if done else Status.RUNNING).value,
                "checkpoint": _relative(work, study_dir),
                **m.report(),
            }
            tune.report(metrics)

        init = _inflated(genome, s["init"]) if s.get("init") else None
        try:
            result = train_seeds(genome, train_set, val_set, cfg, k=k, out_dir=work, on_epoch=on_epoch, init=init)
        except CorruptCheckpoint as e:
            # A checkpoint cut short by a kill: that seed starts again from scratch (the trial
            # still counts once) and the record says so, instead of the trial ending as failed.
            aside = e.path.with_name(e.path.name + ".corrupt")
            e.path.replace(aside)
            base["restarted"] = f"{e}"[:REASON_CHARS]
            print(f"[restart] {e}; moved to {aside.name}, training again from scratch", flush=True)
            result = train_seeds(genome, train_set, val_set, cfg, k=k, out_dir=work, on_epoch=on_epoch, init=init)
        if result.status != "ok":
            best = max((h.val_top1 for h in result.history), default=0.0)
            final(Status.FAILED, f"{result.status}: {result.reason}", val_top1=best, epochs=len(result.history))
    except Exception as e:  # noqa: BLE001 - every failure is recorded, the search goes on
        if type(e).__name__ in ("StopIteration", "TuneError") or "ray" in type(e).__module__:
            raise
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        try:
            work.mkdir(parents=True, exist_ok=True)
            (work / "error.txt").write_text(traceback.format_exc())
        except OSError:
            pass
        final(Status.FAILED, reason, latency_ms=base.get("latency_ms", math.inf))
    finally:
        orphans.forget(work)
