"""The plateau rule: a seed still on the training-loss plateau at ln(classes) after a few
epochs trains again on another seed, before anything downstream sees its numbers.

Why: a few initialisations sit on the plateau (the network predicts the class prior, so its
cross-entropy, label smoothing or not, is ln(classes)) long after the other seeds of the same
genome took off, and end far below them. A search trains one seed per proposal and ASHA
decides at its first rung: a good genome whose seed is still on the plateau there is stopped
and never seen again. The outcome is decided by the initial weights, so the cheap remedy is a
rule on the seed, not on the genome (the measurements: docs/notebook/seed-tail.md).

The rule, exactly: with ``recipe.plateau_epochs = E > 0`` (and ``E < recipe.epochs``), a
seed is *stuck* if its mean training loss of epoch ``E`` is at least
``(1 - recipe.plateau_margin) * ln(classes)`` and its loss of each epoch from
``E - recipe.plateau_dwell`` to ``E - 1`` was at most ``(1 + ABOVE) * ln(classes)``: it reached
the plateau early and stayed on it. A genome that learns slowly starts far above ln(classes)
(a random network's confident wrong guesses) and comes down through it only around epoch E; it
is as slow on every seed, so the rule leaves it alone rather than pay E epochs for another
seed as slow. A stuck seed is set aside and the run starts again from scratch on the next
seed of its sequence (``restart_seed``), at most ``recipe.plateau_restarts`` times; the last
seed tried is kept whatever its loss. The first ``E`` epochs of every try are trained without
``on_epoch`` (no report reaches a scheduler or a sampler); the kept seed then continues from
its epoch-``E`` checkpoint, so its numbers are exactly those an uninterrupted run of that seed
gives.

A run directory remembers its tries in ``plateau.json`` (``{"tried": [...], "settled": bool}``),
so a killed run resumes on the seed it was training and a finished one never tries again.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .recipe import PLATEAU_ABOVE as ABOVE
from .recipe import ProxyRecipe
from .trainer import BEST, CHECKPOINT, METRICS, EpochMetrics, TrainConfig, TrainResult, train

STATE = "plateau.json"
# A restart's seed: far from the seeds a study or a confirm step trains (seed + 1, + 2, ...),
# so a restarted seed never trains the same network as another seed of the same genome.
SEED_STEP = 1000


def restart_seed(seed: int, restart: int) -> int:
    """The seed of try ``restart`` (0 = the seed itself) of a run of ``seed``."""
    return seed + restart * SEED_STEP


def plateau_loss(classes: int) -> float:
    """The training loss of a network that predicts the class prior: ln(classes)."""
    return math.log(classes)


def rule_active(recipe: ProxyRecipe) -> bool:
    """Whether ``recipe`` restarts stuck seeds (the rule needs epochs after its check)."""
    return 0 < recipe.plateau_epochs < recipe.epochs and recipe.plateau_restarts > 0


def is_stuck(train_losses: Sequence[float], classes: int, epochs: int, margin: float, dwell: int = 0) -> bool:
    """Whether a run with these per-epoch training losses (epoch 1 first) is still on the
    plateau after ``epochs`` epochs: its loss of that epoch is within ``margin`` (a fraction)
    of ln(classes) or above it, and its loss of each of the ``dwell`` epochs before (those
    there are) was at most ``ABOVE`` above ln(classes). False while it has not trained that
    many epochs."""
    if epochs < 1 or len(train_losses) < epochs:
        return False
    ln = plateau_loss(classes)
    before = train_losses[max(0, epochs - 1 - dwell) : epochs - 1]
    return float(train_losses[epochs - 1]) >= (1.0 - margin) * ln and all(
        float(v) <= (1.0 + ABOVE) * ln for v in before
    )


@dataclass(frozen=True)
class Settled:
    """The seed a run keeps: ``cfg`` trains it (resuming from its epoch-E checkpoint),
    ``tried`` lists every seed tried, the kept one last."""

    cfg: TrainConfig
    tried: list[int]
    discarded_s: float = 0.0  # training seconds of the seeds set aside

    @property
    def restarts(self) -> int:
        return len(self.tried) - 1


class _Checked(Exception):
    """Raised from on_epoch after the rule's epoch: the probe is over."""


def _read_state(out: Path) -> dict[str, Any] | None:
    f = out / STATE
    if not f.exists():
        return None
    try:
        state = json.loads(f.read_text())
        tried = [int(s) for s in state["tried"]]
        if not tried:
            return None
        return {"tried": tried, "settled": bool(state["settled"]), "discarded_s": float(state.get("discarded_s", 0.0))}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # damaged: start the tries again (the checkpoint then decides)


def _write_state(out: Path, tried: list[int], settled: bool, discarded_s: float) -> None:
    tmp = out / f".{STATE}.tmp"
    tmp.write_text(json.dumps({"tried": tried, "settled": settled, "discarded_s": discarded_s}) + "\n")
    tmp.replace(out / STATE)


def _clear(out: Path) -> None:
    """Set a stuck seed's files aside: the next try starts from scratch."""
    for name in (CHECKPOINT, BEST, METRICS):
        (out / name).unlink(missing_ok=True)


def settle(
    genome: Any,
    train_set: Any,
    val_set: Any,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    init: dict[str, Any] | None = None,
) -> Settled:
    """Apply the plateau rule to the run of ``cfg`` in ``out_dir``: train each try's first
    E epochs (no ``on_epoch``), keep the first seed that left the plateau (or the last try).
    Without the rule (off, or E not below the epochs) nothing is trained."""
    r = cfg.recipe
    if not rule_active(r):
        return Settled(cfg, [r.seed])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = _read_state(out)
    if state is not None and state["settled"]:
        return Settled(replace(cfg, recipe=r.with_(seed=state["tried"][-1])), state["tried"], state["discarded_s"])
    tried = state["tried"] if state is not None else [r.seed]
    discarded = state["discarded_s"] if state is not None else 0.0
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    while True:
        seed = tried[-1]
        try_cfg = replace(cfg, recipe=r.with_(seed=seed))
        _write_state(out, tried, False, discarded)

        def stop_after(m: EpochMetrics) -> None:
            if m.epoch >= r.plateau_epochs:
                raise _Checked

        try:
            result = train(
                genome, train_set, val_set, try_cfg, out_dir=out, on_epoch=stop_after, progress=progress, init=init
            )
        except _Checked:
            result = None
        history = _history(out) if result is None else result.history
        if result is not None and result.status != "ok":
            break  # a failure (NaN, out of memory): train() reports it again when the run goes on
        losses = [m.train_loss for m in history]
        if len(tried) > r.plateau_restarts or not is_stuck(
            losses, len(train_set.classes), r.plateau_epochs, r.plateau_margin, r.plateau_dwell
        ):
            break
        nxt = restart_seed(r.seed, len(tried))
        say(
            f"[plateau] seed {seed}: its training loss {stuck_phrase(r)} ({losses[r.plateau_epochs - 1]:.3f} "
            f"there, ln({len(train_set.classes)}) = {plateau_loss(len(train_set.classes)):.3f}): "
            f"restarting on seed {nxt}"
        )
        discarded += sum(m.epoch_time_s for m in history)
        _clear(out)
        tried.append(nxt)
    _write_state(out, tried, True, discarded)
    return Settled(replace(cfg, recipe=r.with_(seed=tried[-1])), tried, discarded)


def stuck_phrase(recipe: ProxyRecipe) -> str:
    """What makes a seed stuck under ``recipe``, to follow "a seed whose training loss": "has
    been at most 1% above ln(classes) since epoch 4 and is still within 10% of it after epoch 7"."""
    still = f"within {recipe.plateau_margin:.0%} of"
    after = f"after epoch {recipe.plateau_epochs}"
    first = max(1, recipe.plateau_epochs - recipe.plateau_dwell)
    if first < recipe.plateau_epochs:
        return f"has been at most {ABOVE:.0%} above ln(classes) since epoch {first} and is still {still} it {after}"
    return f"is still {still} ln(classes) {after}"


def discarded_seconds(out_dir: str | Path) -> float:
    """Training seconds a run spent on the seeds the rule set aside (0 without tries)."""
    state = _read_state(Path(out_dir))
    return state["discarded_s"] if state is not None else 0.0


def _history(out: Path) -> list[EpochMetrics]:
    from .checkpoint import read_checkpoint

    return [EpochMetrics(**m) for m in read_checkpoint(out / CHECKPOINT)["history"]]


def train_settled(
    genome: Any,
    train_set: Any,
    val_set: Any,
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    progress: bool = False,
    init: dict[str, Any] | None = None,
) -> TrainResult:
    """``trainer.train`` under the plateau rule: settle the seed, then train it to the end
    (``on_epoch`` sees the kept seed's epochs after E only). ``result.seeds_tried`` lists the
    seeds tried; ``result.train_time_s`` includes the seconds of the seeds set aside. Without
    ``out_dir`` the tries live in a temporary directory."""
    if out_dir is None and rule_active(cfg.recipe):
        with tempfile.TemporaryDirectory(prefix="archlab-plateau-") as tmp:
            result = train_settled(genome, train_set, val_set, cfg, tmp, on_epoch, progress, init)
            result.out_dir = None
            return result
    if out_dir is None:
        result = train(genome, train_set, val_set, cfg, on_epoch=on_epoch, progress=progress, init=init)
        result.seeds_tried = [cfg.recipe.seed]
        return result
    s = settle(genome, train_set, val_set, cfg, out_dir, progress=progress, init=init)
    result = train(genome, train_set, val_set, s.cfg, out_dir=out_dir, on_epoch=on_epoch, progress=progress, init=init)
    result.seeds_tried = list(s.tried)
    result.train_time_s += s.discarded_s
    return result
