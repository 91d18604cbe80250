"""The proxy trainer: one genome, a train and a val set, a few epochs, resumable.

What the search needs from a trial, and where it lives here:

* the same numbers from the same seed: seeds for torch/numpy/python, a shuffle order that is
  a function of ``(seed, epoch)`` (``data.loader.EpochShuffle``), and RNG states in the
  checkpoint, so a trial killed after epoch ``e`` and resumed reproduces the uninterrupted
  run exactly (a test checks this);
* a checkpoint after every epoch (``out_dir/checkpoint.pt``, written atomically), then the
  ``on_epoch`` callback, so Ray Tune can report that directory and stop the trial there;
* ``out_dir/best.pt``: the best-val-top1 weights with everything needed to use them
  (genome, classes, input size and normalisation), loadable with ``weights_only=True``;
* ``out_dir/metrics.csv``: one row per epoch;
* failures as values: a non-finite loss ends the trial with status ``"nan"``, running out of
  memory with ``"oom"``, a runtime error in the model with ``"error"``, each with a reason;
  none of them raises. Mistakes in the call itself (wrong class count, bad optimizer name)
  raise ``UserError`` before any training; exceptions from ``on_epoch`` propagate.

On CUDA: cudnn.benchmark, bf16 autocast and channels_last_3d. On CPU: plain fp32 NCDHW
(channels_last_3d is opt-in there: ``TrainConfig.channels_last``, measured in the benchmarks).
``TrainConfig.form`` (``archlab.measure.forms``) replaces both: precision x memory format, e.g. the
form ``archlab.training.calibrate.training_form(device)`` measured fastest and safe on this machine.
"""

from __future__ import annotations

import csv
import io
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.loader import MEAN, STD, make_loader, set_loader_epoch, to_input
from ..measure.forms import Form
from ..model.builder import build
from ..model.genome import Genome
from ..model.state_files import apply_init
from ..util.device import resolve_device
from ..util.errors import UserError
from ..util.files import atomic_write
from .checkpoint import CorruptCheckpoint, read_checkpoint, rng_state, set_rng_state
from .optim import lr_factor, make_optimizer
from .recipe import ProxyRecipe

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
METRICS = "metrics.csv"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A proxy recipe (WHAT is trained, ``archlab.training.recipe``: the only place with its defaults)
    plus how this run executes, which does not change the numbers a seed gives, except
    ``max_steps_per_epoch`` (a cut-down run for tests and benchmarks)."""

    recipe: ProxyRecipe = field(default_factory=ProxyRecipe)
    workers: int = 0
    device: str = "auto"  # "auto" = cuda if available, else cpu
    compile: bool = False
    # channels_last_3d memory format. None = the per-device default: on for CUDA, off for CPU,
    # where it was measured slower at 1 thread and at the proxy size (python -m archlab.bench
    # train); with 2+ threads on larger clips it can help (docs/notebook/benchmarks.md):
    # `archlab train --channels-last on`.
    channels_last: bool | None = None
    max_steps_per_epoch: int | None = None
    # The numeric form (forms.Form or its name, e.g. "bf16-autocast/cl3d"): None = the
    # per-device default above (with ``channels_last``). Callers that want this machine's
    # calibrated form pass calibrate.training_form(device); nothing picks it implicitly.
    form: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.recipe, ProxyRecipe):
            raise TypeError(f"TrainConfig.recipe must be a ProxyRecipe, not {type(self.recipe).__name__}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise UserError(f"--workers must be a whole number of at least 0 (got {self.workers!r})")
        if self.max_steps_per_epoch is not None and (
            isinstance(self.max_steps_per_epoch, bool)
            or not isinstance(self.max_steps_per_epoch, int)
            or self.max_steps_per_epoch < 1
        ):
            raise UserError(f"--max-steps must be at least 1 (got {self.max_steps_per_epoch!r})")
        if self.form is not None:
            if not isinstance(self.form, (str, Form)):
                raise UserError(f"--form {self.form!r} must be a forms.Form or its name, e.g. bf16-autocast/cl3d")
            form = _as_form(self.form)  # UserError for a bad name
            if self.channels_last is not None and form.channels_last != self.channels_last:
                raise UserError(f"channels_last={self.channels_last} contradicts form {form.name}: give one of them")


@dataclass
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float
    val_loss: float  # plain cross-entropy (no label smoothing)
    val_top1: float  # fractions in [0, 1]
    val_top5: float
    lr: float  # at the end of the epoch
    epoch_time_s: float
    train_clips_per_s: float


@dataclass
class TrainResult:
    status: str  # "ok" | "nan" | "oom" | "error"
    reason: str  # "" when ok
    history: list[EpochMetrics] = field(default_factory=list)
    best_top1: float = 0.0
    best_epoch: int = 0  # 1-based; 0 = no epoch finished
    train_time_s: float = 0.0  # sum of epoch times, resumed epochs included
    out_dir: str | None = None
    form: str = ""  # forms.Form.name it trained in
    # The seeds the plateau rule tried (archlab.training.plateau), the kept one last; empty
    # when the run did not go through the rule.
    seeds_tried: list[int] = field(default_factory=list)


class _Stop(Exception):
    """A trial ends early with a status (non-finite loss, out of memory, runtime error)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


# ---- pieces ------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _check(genome: Genome, train_set: Any, val_set: Any, cfg: TrainConfig) -> tuple[int, int, int]:
    """Reject what cannot work before building anything; returns the clip (T, H, W). The
    recipe and config validated themselves when they were built."""
    if len(train_set) == 0 or len(val_set) == 0:
        raise UserError("the train and val sets must not be empty")
    n_classes = len(train_set.classes)
    if genome.classes != n_classes:
        raise UserError(
            f"the genome has {genome.classes} classes but the dataset has {n_classes}: "
            f"use genome.with_(classes={n_classes})"
        )
    clip = train_set[0][0]
    if clip.dtype != torch.uint8 or clip.dim() != 4 or clip.shape[0] != 3:
        raise UserError(f"datasets must yield uint8 clips [3, T, H, W], got {clip.dtype} {tuple(clip.shape)}")
    t, h, w = (int(v) for v in clip.shape[1:])
    if (t, h, w) != cfg.recipe.clip:
        raise UserError(
            f"the dataset's clips are {t}x{h}x{w} but the recipe's are "
            f"{'x'.join(map(str, cfg.recipe.clip))} (--frames, --size): build the datasets from the recipe"
        )
    from ..measure.profile import count_fast

    count_fast(genome, (t, h, w))  # UserError if the clip is too small for this network
    return t, h, w


def _as_form(form: "Form | str") -> Form:
    return form if isinstance(form, Form) else Form.parse(form)  # UserError for a bad name


def _write_metrics(history: list[EpochMetrics], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = [f.name for f in fields(EpochMetrics)]
    writer.writerow(names)
    for m in history:
        writer.writerow([getattr(m, n) for n in names])
    atomic_write(path, buf.getvalue())


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, torch.OutOfMemoryError):
        return True
    msg = str(e).lower()
    return "out of memory" in msg or "can't allocate memory" in msg or "cannot allocate memory" in msg


# ---- the loop ----------------------------------------------------------------------------


def train(
    genome: Genome,
    train_set: Any,
    val_set: Any,
    cfg: TrainConfig,
    out_dir: str | Path | None = None,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    progress: bool = False,
    init: dict[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``genome`` on ``train_set`` for ``cfg.recipe.epochs`` epochs, validating after each.

    If ``out_dir`` holds a ``checkpoint.pt`` the run resumes after its epoch (the genome must
    match). ``on_epoch(metrics)`` runs after each epoch's checkpoint is written; whatever it
    raises propagates (that is how Ray Tune stops a trial). Non-finite loss, out-of-memory and
    runtime errors of the model end the run with a status instead of raising. ``init``: start
    from these weights (an archlab state dict of ``genome``, e.g. ``import-weights --imagenet``;
    the fc stays freshly initialised where its class count differs) instead of a fresh
    initialisation; a resumed checkpoint still wins.
    """
    clip = _check(genome, train_set, val_set, cfg)
    device = resolve_device(cfg.device)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT if out is not None else None
    result = TrainResult(status="ok", reason="", out_dir=str(out) if out is not None else None)

    r = cfg.recipe
    seed_everything(r.seed)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    net = build(genome, zero_init_last_bn=r.zero_init)
    if init is not None:
        apply_init(net, init, "the --init checkpoint")
    net = net.to(device)
    channels_last = cuda if cfg.channels_last is None else cfg.channels_last
    form = (
        _as_form(cfg.form)
        if cfg.form is not None
        else Form("bf16-autocast" if cuda else "fp32", "cl3d" if channels_last else "ncdhw")
    )
    form.apply_threads()
    net = form.apply_model(net)
    result.form = form.name
    model: nn.Module = torch.compile(net) if cfg.compile else net
    optimizer = make_optimizer(net, r)

    train_loader = make_loader(
        train_set,
        r.batch,
        shuffle=True,
        workers=cfg.workers,
        device=device,
        seed=r.seed,
        drop_last=len(train_set) >= 2 * r.batch,
        persistent=not hasattr(train_set, "set_epoch"),
    )
    val_loader = make_loader(
        val_set,
        r.batch,
        shuffle=False,
        workers=cfg.workers,
        device=device,
        seed=r.seed,
        persistent=not hasattr(val_set, "set_epoch"),
    )
    steps = len(train_loader)
    if cfg.max_steps_per_epoch is not None:
        steps = min(steps, cfg.max_steps_per_epoch)
    total_steps = steps * r.epochs
    warmup_steps = min(total_steps, max(0, round(r.warmup * steps)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, warmup_steps))

    start_epoch = 0
    if ckpt_path is not None and ckpt_path.exists():
        ck = read_checkpoint(ckpt_path)
        if ck["genome"] != str(genome):
            raise UserError(
                f"{ckpt_path} is a checkpoint of {ck['genome']!r}, not of {str(genome)!r}: use another output directory"
            )
        try:
            net.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            scheduler.load_state_dict(ck["scheduler"])
            result.history = [EpochMetrics(**m) for m in ck["history"]]
            start_epoch = int(ck["epoch"]) + 1
            set_rng_state(ck["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CorruptCheckpoint(
                f"{ckpt_path} does not fit its genome ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:200] if str(e) else ''}): delete it to start over",
                path=ckpt_path,
            ) from None
    for m in result.history:
        if m.val_top1 > result.best_top1 or result.best_epoch == 0:
            result.best_top1, result.best_epoch = m.val_top1, m.epoch

    input_info = {
        "frames": clip[0],
        "size": clip[1],
        "height": clip[1],
        "width": clip[2],
        "mean": list(MEAN),
        "std": list(STD),
    }
    amp = form.autocast(device)

    for epoch in range(start_epoch, r.epochs):
        t0 = time.perf_counter()
        try:
            train_loss, train_time, n_train = _train_epoch(
                model,
                train_loader,
                optimizer=optimizer,
                scheduler=scheduler,
                cfg=cfg,
                epoch=epoch,
                steps=steps,
                device=device,
                form=form,
                amp=amp,
                progress=progress,
            )
            val_loss, top1, top5 = _evaluate(model, val_loader, device, form, amp)
            if not math.isfinite(val_loss):
                raise _Stop("nan", f"non-finite validation loss after epoch {epoch + 1}")
        except _Stop as stop:
            result.status, result.reason = stop.status, stop.reason
            break
        except RuntimeError as e:  # includes torch.OutOfMemoryError
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            result.status = "oom" if _is_oom(e) else "error"
            result.reason = f"epoch {epoch + 1}: {first}"
            if cuda:
                torch.cuda.empty_cache()
            break
        m = EpochMetrics(
            epoch=epoch + 1,
            train_loss=train_loss,
            val_loss=val_loss,
            val_top1=top1,
            val_top5=top5,
            lr=optimizer.param_groups[0]["lr"],
            epoch_time_s=time.perf_counter() - t0,
            train_clips_per_s=n_train / train_time if train_time > 0 else 0.0,
        )
        result.history.append(m)
        improved = result.best_epoch == 0 or m.val_top1 > result.best_top1
        if improved:
            result.best_top1, result.best_epoch = m.val_top1, m.epoch
        if progress:
            print(
                f"epoch {m.epoch}/{r.epochs}  loss {m.train_loss:.3f}  val loss {m.val_loss:.3f}  "
                f"top1 {m.val_top1:.3f}  top5 {m.val_top5:.3f}  {m.train_clips_per_s:.1f} clips/s  "
                f"{m.epoch_time_s:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        if out is not None:
            if improved:
                best = {
                    "model": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                    "genome": str(genome),
                    "epoch": m.epoch,
                    "metrics": asdict(m),
                    "classes": list(train_set.classes),
                    "input": input_info,
                    "form": form.name,
                }
                atomic_write(out / BEST, partial(torch.save, best))
            resume = {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "rng": rng_state(),
                "history": [asdict(h) for h in result.history],
                "genome": str(genome),
                "config": asdict(cfg),
            }
            atomic_write(ckpt_path, partial(torch.save, resume))  # type: ignore[arg-type]
            _write_metrics(result.history, out / METRICS)
        if on_epoch is not None:
            on_epoch(m)

    result.train_time_s = sum(h.epoch_time_s for h in result.history)
    return result


def _train_epoch(
    model: nn.Module,
    loader: Any,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    epoch: int,
    steps: int,
    device: torch.device,
    form: Form,
    amp: Any,
    progress: bool,
) -> tuple[float, float, int]:
    """One epoch of at most ``steps`` optimizer steps; (mean loss, seconds, clips seen)."""
    model.train()
    set_loader_epoch(loader, epoch, cfg.recipe.seed)
    total, n_clips = 0.0, 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=steps,
            desc=f"epoch {epoch + 1}/{cfg.recipe.epochs}",
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.5,
        )
    t0 = time.perf_counter()
    try:
        for step, (clips, labels) in enumerate(loader):
            if step >= steps:
                break
            x = form.apply_input(to_input(clips, device, channels_last=form.channels_last))
            y = labels.to(device, non_blocking=True)
            with amp:
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.recipe.label_smoothing)
            value = loss.item()
            if not math.isfinite(value):
                raise _Stop("nan", f"non-finite training loss ({value}) at epoch {epoch + 1}, step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += value
            n_clips += len(labels)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    return total / max(1, min(steps, len(loader))), elapsed, n_clips


@torch.no_grad()
def _evaluate(model: nn.Module, loader: Any, device: torch.device, form: Form, amp: Any) -> tuple[float, float, float]:
    """(mean cross-entropy, top-1, top-5) over the whole loader, in eval mode."""
    model.eval()
    set_loader_epoch(loader, 0)
    loss_sum, top1, top5, n = 0.0, 0, 0, 0
    for clips, labels in loader:
        x = form.apply_input(to_input(clips, device, channels_last=form.channels_last))
        y = labels.to(device, non_blocking=True)
        with amp:
            logits = model(x)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        k = min(5, logits.shape[1])
        pred = logits.topk(k, dim=1).indices
        hit = pred == y[:, None]
        top1 += int(hit[:, 0].sum())
        top5 += int(hit.any(dim=1).sum())
        n += len(labels)
    return loss_sum / n, top1 / n, top5 / n
