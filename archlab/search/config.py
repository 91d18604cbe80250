"""What defines a study, validated in ONE place before anything is written or started.

``SearchConfig`` is keyword-only and checks every value when it is built (``__post_init__``):
a bad value is one ``UserError`` naming the CLI option (``--trials must be at least 1 (got
0)``). ``check_environment`` then checks what needs the file system or the package's tables
(the space loads, the dataset exists, ``--out`` is a writable folder), still without side
effects. The search runs both before it creates the study directory, so a rejected setting is
never stored in study.yaml (``--cpus-per-trial 0`` used to be stored, then crash every later
run of the same study).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..model.reduction import Reduction
from ..training.recipe import ProxyRecipe
from ..util.clips import clip_text, parse_clip
from ..util.errors import UserError, shorten
from ..util.outdir import writable_folder

SAMPLERS = ("nsga2", "tpe", "random")
SCHEDULERS = ("asha", "mo-asha")
WANDB = ("auto", "online", "offline", "off")
LATENCY_SOURCES = ("measured", "predicted")
DATASETS = ("synthetic", "ucf101", "folder")  # archlab.data.DATASETS (checked by a test); no torch here
MAX_TRIALS = 100_000
DEFAULT_TRIALS = 12
MAX_SEEDS = 100  # --seeds and --confirm-seeds


# The SearchConfig fields a trial reads (driver.trial_settings passes them to each worker).
TRIAL_SETTINGS = (
    "space",
    "data",
    "data_root",
    "data_opts",
    "cpus_per_trial",
    "gpus_per_trial",
    "max_gmacs",
    "max_params",
    "latency",
    "latency_runs",
    "workers",
    "train_form",
    "latency_form",
    "latency_runtime",
    "seeds",
    "target_input",
    "proxy_width",
    "init",
)


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Everything that defines a study. Stored as study.yaml; a resumed study reuses it."""

    space: str = "interleave"
    name: str | None = None
    out: str = "runs"
    data: str = "synthetic"
    data_root: str | None = None
    data_opts: Mapping[str, Any] = field(default_factory=dict)  # passed to the dataset, last (wins)
    objectives: str = "acc,latency"
    # Trials that train (rejections and repeats do not count). None: DEFAULT_TRIALS for a new
    # study, the stored budget for one that continues (so `--resume` never changes it).
    trials: int | None = None
    # How every proxy is trained, and on which clips (archlab.training.recipe: its only definition).
    recipe: ProxyRecipe = field(default_factory=ProxyRecipe)
    sampler: str = "nsga2"
    concurrency: int | None = None  # None: as many as the CPUs/GPUs allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None  # an existing Ray cluster; None: a local one on 127.0.0.1
    baselines: bool = False
    max_gmacs: float | None = None  # of the target, at the target clip (overrides the space's)
    max_params: float | None = None
    # A limit on the target's latency in ms, judged by the latency table's prediction before
    # training (archlab.measure.latency_table), at the trials' device, runtime, form and threads.
    max_latency_ms: float | None = None
    # The trials' latency objective: "measured" end to end by each trial, or "predicted" by the
    # latency table (the full-budget trials are measured end to end after the search either way).
    latency: str = "measured"
    # Proposals the sampler draws for a trial until one meets the limits known before training
    # (archlab.search.feasible); after that many the last is recorded as rejected. 1: the
    # sampler's proposals as they come (the over-budget ones rejected).
    proposal_tries: int = 100
    # The network a user ships and its proxy (archlab.model.reduction): the clip the target
    # sees ("16x112x112"; None: the space's ``target:`` input) and the proxy's width multiplier
    # (None: the space's ``proxy:`` width). A new study stores both resolved; a study from
    # before targets stores neither, and its costs are its proxies' at the recipe's clip.
    target_input: str | None = None
    proxy_width: float | None = None
    # A 2D ImageNet ResNet state dict every proxy is inflated from (archlab.model.inflate): the
    # proxy must then keep the target's widths (proxy_width 1).
    init: str | None = None
    storage: str | None = None  # an RDB URL for a shared database; default optuna.db in the study
    # ASHA: the fewest epochs a trial gets before it can be stopped. Under the 14-epoch faint
    # recipe a proxy's ranking only agrees with its final one from about epoch 8 on: a rung
    # before 8 stops on noise (docs/notebook/proxy-recipe.md, docs/notebook/proxy-fidelity.md).
    grace_epochs: int = 8
    # Early stopping at the rungs: "asha" (Ray's, on val_top1 alone) or "mo-asha" (archlab.search.rungs:
    # non-dominated rank of (val_top1 at the rung, latency), so a cheap trial on the front at
    # its cost is not stopped for a middling accuracy). Either way a stopped trial is never on
    # the front nor told to the sampler as final.
    scheduler: str = "asha"
    latency_runs: int = 5
    # After the budget, every trained genome's latency is measured again in this many shuffled
    # passes, one genome at a time, and the front uses each one's fastest pass (archlab.results.remeasure:
    # a trial measured its own beside another trial's training, and even on a quiet machine one
    # pass reads well above the fastest of several: docs/notebook/latency.md). 0: the trials'
    # own values.
    latency_passes: int = 5
    # The forms (archlab.measure.forms names) trials train and measure latency in, and the runtime of
    # the latency objective (archlab.measure.runtimes). fp32/ncdhw by default, stated in study.yaml:
    # bf16's effect on proxy ranking is not established (it moved a proxy's outcome more than a
    # layout change did: docs/notebook/calibration.md) and calibrating on first use costs
    # minutes, more than half of the default search. CALIBRATED opts in: resolved to this machine's measured choice when the
    # study is created (calibrate.search_forms), so study.yaml never stores the word.
    train_form: str = "fp32/ncdhw"
    latency_form: str = "fp32/ncdhw"
    latency_runtime: str = "torch"
    workers: int = 0
    wandb: str = "auto"
    # Seeds per trial, trained interleaved epoch by epoch (archlab.search.seeds); the objective
    # is their mean. 1 by default (docs/guide/search.md, docs/notebook/confirm-step.md): extra
    # seeds are spent on the front's points by the confirm step instead of on every proposal.
    seeds: int = 1
    # The confirm step: after the budget, every point of the front is retrained with this many
    # more seeds and the final front is computed on the means over all its seeds (0: off).
    confirm_seeds: int = 2  # = archlab.results.confirmed.DEFAULT_SEEDS (not imported: pandas; a test checks)

    def __post_init__(self) -> None:
        if not isinstance(self.recipe, ProxyRecipe):
            raise TypeError(f"SearchConfig.recipe must be a ProxyRecipe, not {type(self.recipe).__name__}")
        _text("--space", self.space)
        if self.name is not None:
            _text("--name", self.name)
            if self.name in (".", "..") or "/" in self.name or os.sep in self.name:
                raise UserError(f"--name must be a plain folder name (got {_show(self.name)})")
        _text("--out", self.out)
        _choice("--data", self.data, DATASETS)
        if self.data_root is not None:
            _text("--data-root", self.data_root)
        if self.data != "synthetic" and not self.data_root:
            raise UserError(f"--data {self.data} needs --data-root PATH")
        if self.data == "synthetic" and self.data_root:
            raise UserError("--data-root: the synthetic dataset is generated in memory and takes no root")
        if not isinstance(self.data_opts, Mapping) or not all(
            isinstance(k, str) and k.isidentifier() for k in self.data_opts
        ):
            raise UserError(f"--data-opt must be KEY=VALUE pairs (got {_show(self.data_opts)})")
        object.__setattr__(self, "data_opts", dict(self.data_opts))
        from ..results.study import parse_objectives  # noqa: PLC0415 - only when a config is built

        parse_objectives(self.objectives)
        if self.trials is not None:
            _int("--trials", self.trials, 1, MAX_TRIALS)
        _choice("--sampler", self.sampler, SAMPLERS)
        _choice("--scheduler", self.scheduler, SCHEDULERS)
        if self.concurrency is not None:
            _int("--concurrency", self.concurrency, 1, 10_000)
        _number("--cpus-per-trial", self.cpus_per_trial, positive=True)
        _number("--gpus-per-trial", self.gpus_per_trial, positive=False)
        if self.address is not None:
            _text("--address", self.address)
        if not isinstance(self.baselines, bool):
            raise UserError(f"--baselines must be true or false (got {_show(self.baselines)})")
        if self.max_gmacs is not None:
            _number("--max-gmacs", self.max_gmacs, positive=True)
        if self.max_params is not None:
            _number("--max-params", self.max_params, positive=True)
        if self.max_latency_ms is not None:
            _number("--max-latency-ms", self.max_latency_ms, positive=True)
        _choice("--latency", self.latency, LATENCY_SOURCES)
        _int("--proposal-tries", self.proposal_tries, 1, 100_000)
        if self.storage is not None:
            _text("--storage", self.storage)
        if self.target_input is not None:
            _text("--target-input", self.target_input)
            try:
                parse_clip(self.target_input)
            except UserError as e:
                raise UserError(f"--target-input: {e}") from None
        if self.proxy_width is not None:
            Reduction(width=self.proxy_width)
        if self.init is not None:
            _text("--init", self.init)
            if not Path(self.init).is_file():
                raise UserError(f"--init {_show(self.init)}: no such file (a 2D ResNet state dict)")
        _int("--grace-epochs", self.grace_epochs, 1, 10_000)
        _int("--latency-runs", self.latency_runs, 1, 10_000)
        _int("--latency-passes", self.latency_passes, 0, 100)
        _int("--workers", self.workers, 0, 256)
        _int("--seeds", self.seeds, 1, MAX_SEEDS)
        _int("--confirm-seeds", self.confirm_seeds, 0, MAX_SEEDS)
        _choice("--wandb", self.wandb, WANDB)
        from ..measure.forms import CALIBRATED, Form  # noqa: PLC0415 - torch, only when a config is built
        from ..measure.runtimes import RUNTIMES  # noqa: PLC0415

        for option, v in (("--train-form", self.train_form), ("--latency-form", self.latency_form)):
            _text(option, v)
            if v != CALIBRATED:
                try:
                    Form.parse(v)
                except UserError as e:
                    raise UserError(f"{option} {_show(v)}: {e} (or {CALIBRATED})") from None
        _choice("--latency-runtime", self.latency_runtime, RUNTIMES)

    def study_dir(self) -> Path:
        return Path(self.out) / (self.name or f"{Path(self.space).stem}-{self.data}")

    def with_target(self, space: Any) -> "SearchConfig":
        """This config with the target clip and the proxy width the space declares filled in
        where the options left them unset: what a new study stores, so that a later change of
        the space file never changes what an existing study measured."""
        target = self.target_input or (clip_text(space.target_clip) if space.target_clip else None)
        width = float(self.proxy_width if self.proxy_width is not None else space.proxy_width)
        if target is None and width != 1.0:
            raise UserError(f"--proxy-width {width:g}: the space declares no target to reduce; give --target-input")
        if self.init is not None and width != 1.0:
            raise UserError(
                f"--init with proxy width {width:g}: inflated 2D weights fit full widths only; give --proxy-width 1 "
                "(the proxy then reduces the clip and the epochs)"
            )
        return replace(self, target_input=target, proxy_width=width)

    @property
    def reduction(self) -> Reduction:
        """How this search's proxies are reduced from its targets (none: a study from before
        targets trained the networks its costs are of)."""
        return Reduction(width=self.proxy_width if self.proxy_width is not None else 1.0)

    @property
    def cost_clip(self) -> tuple[int, int, int]:
        """The clip the search's costs and constraints are taken at: the target's, else the
        proxy's (a study without a target)."""
        return parse_clip(self.target_input) if self.target_input else self.recipe.clip

    @property
    def predicts_latency(self) -> bool:
        """True when the latency table judges proposals: a latency limit, or predicted latency
        as the trials' objective."""
        return self.max_latency_ms is not None or self.latency == "predicted"

    def with_(self, **changes: Any) -> "SearchConfig":
        return SearchConfig.from_settings({**self.settings(), **changes})

    def settings(self) -> dict[str, Any]:
        """Plain values, the recipe as a nested mapping (what study.yaml stores)."""
        out = asdict(self)
        out["recipe"] = self.recipe.as_dict()
        return out

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The flat setting names: the search's own and the recipe's (a study file or an old
        study.yaml writes ``epochs: 3`` beside ``trials: 8``)."""
        return tuple(f.name for f in fields(cls) if f.name != "recipe") + ProxyRecipe.names()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "SearchConfig":
        """A config from flat settings (recipe keys routed into the recipe) or with a
        ``recipe`` mapping (study.yaml); flat recipe keys win over the mapping."""
        own_names = {f.name for f in fields(cls)} - {"recipe"}
        bad = [k for k in settings if k not in own_names and k not in ProxyRecipe.names() and k != "recipe"]
        if bad:
            raise UserError(f"unknown search setting {_show(bad[0])} (settings: {', '.join(cls.keys())})")
        recipe = dict(settings.get("recipe") or {})
        recipe.update({k: v for k, v in settings.items() if k in ProxyRecipe.names()})
        own = {k: v for k, v in settings.items() if k in own_names}
        return cls(**own, recipe=ProxyRecipe.from_dict(recipe))


def check_environment(cfg: SearchConfig) -> None:
    """What needs the disk or the package's tables, still with no side effect: the space
    loads, the data root exists, and ``--out`` is (or can become) a writable folder."""
    from ..spaces import load_space  # noqa: PLC0415 - the genome machinery, only when a search runs

    load_space(cfg.space, max_gmacs=cfg.max_gmacs, max_params=cfg.max_params)
    if cfg.data_root is not None and not Path(cfg.data_root).is_dir() and "cache" not in cfg.data_opts:
        raise UserError(f"--data-root {shorten(cfg.data_root, plain=True)}: no such folder")
    writable_folder("--out", cfg.out)
    d = cfg.study_dir()
    if d.exists() and not d.is_dir():
        raise UserError(f"--out/--name: {d} exists and is not a folder")


def _show(v: Any) -> str:
    return shorten(v)


def _text(option: str, v: Any) -> None:
    if not isinstance(v, str) or not v or len(v) > 4096:
        raise UserError(f"{option} must be a non-empty text of at most 4096 characters (got {_show(v)})")


def _choice(option: str, v: Any, choices: tuple[str, ...]) -> None:
    if v not in choices:
        raise UserError(f"{option} must be one of {', '.join(choices)} (got {_show(v)})")


def _int(option: str, v: Any, low: int, high: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise UserError(f"{option} must be a whole number (got {_show(v)})")
    if v < low:
        raise UserError(f"{option} must be at least {low} (got {v})")
    if v > high:
        raise UserError(f"{option} must be at most {high:,} (got {v:,})")


def _number(option: str, v: Any, *, positive: bool) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UserError(f"{option} must be a finite number (got {_show(v)})")
    if positive and not v > 0:
        raise UserError(f"{option} must be positive (got {v:g})")
    if not positive and v < 0:
        raise UserError(f"{option} must not be negative (got {v:g})")


@dataclass(frozen=True, kw_only=True)
class SearchOutcome:
    study_dir: Path
    interrupted: bool
    finished: int
    failed: int
    rejected: int  # never trained: over a constraint, or interrupted before it started
    repeated: int  # never trained: an earlier trial's result reused
    wall_s: float
    ray_start_s: float
    hypervolume: float | None
    concurrency: int = 1  # trials that ran at once
