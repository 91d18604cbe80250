"""The proxy recipe: HOW a genome is trained to estimate its accuracy, defined once.

Why one place: the recipe used to be written four times (the search's config, the trainer's
config, the experiments' defaults and the CLI's defaults) and the copies disagreed. ``archlab
train``, the documented way to retrain a search's winner, defaulted to SGD with zero-initialised
residual branches, a recipe that leaves a proxy at chance where the search's recipe trains it
(docs/notebook/proxy-recipe.md). Now the search, ``archlab train``,
experiments and the CLI all take a ``ProxyRecipe``; the CLI's options are generated from its
fields (``add_arguments``/``from_args``), so a default can only be changed here.

The defaults are the search's measured recipe (docs/guide/recipe.md; the measurements:
docs/notebook/proxy-recipe.md, docs/notebook/proxy-fidelity.md):
AdamW at lr 2e-3, batch 8, plain init (no zero-init), 14 epochs, 8x32x32 clips, 1,200 train /
300 val clips, 6 classes, synthetic objects 1.4 times the size the dataset first had
(``object_scale``: it removed the seed lottery of the smaller objects), and 30% of the clips faint
(``faint``: a task with a Bayes error, so that a long-trained reference still ranks genomes
instead of saturating; the 14 epochs are what a proxy needs to read it).

A recipe is validated when it is built: every bad value is a ``UserError`` naming the CLI
option (``--batch must be at least 1 (got 0)``), before any side effect of whoever builds it.
It imports nothing heavy (no torch), so the CLI builds its parser without torch.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from ..util.errors import UserError

OPTIMIZERS = ("adamw", "sgd")
# Upper bounds: a typo (frames: 100000000) must be one line, not a dataset allocation that
# exhausts memory. Far above any proxy (experiment files are bounded by these too).
LIMITS = {"epochs": 1000, "batch": 4096, "frames": 256, "size": 512, "clips": 100_000, "classes": 1000}
# The synthetic objects' size bounds (archlab.data.synthetic.OBJECT_SCALE; a test keeps them equal:
# this module imports no torch).
OBJECT_SCALE = (0.5, 1.5)
# The plateau's upper edge for the plateau rule's dwell, a fraction above ln(classes): the epoch
# means of a seed that sits on the plateau stay within a few tenths of a percent of it, while a
# slow genome's loss comes down from 3-15% above it (archlab.training.plateau).
PLATEAU_ABOVE = 0.01
# Fields added after recipes were first stored (study.yaml, run.yaml, fidelity.json), with the
# value a stored recipe WITHOUT them was trained with; their defaults today differ.
ADDED = {
    "object_scale": 1.0,
    "faint": 0.0,
    "plateau_epochs": 0,
    "plateau_margin": 0.03,
    "plateau_restarts": 1,
    "plateau_dwell": 0,
}


def _opt(option: str, help: str, **extra: Any) -> dict[str, Any]:
    """Field metadata: the CLI option that sets it and its help text."""
    return {"option": option, "help": help, **extra}


@dataclass(frozen=True, kw_only=True)
class ProxyRecipe:
    """How a proxy is trained and on which clips. Keyword-only, frozen, validated."""

    # 14: on the faint task (below) a 7-epoch proxy's seeds split again; at 14 the seeds agree
    # and the proxy ranks like a longer-trained reference (docs/notebook/proxy-fidelity.md).
    # 2x the cost of 7.
    epochs: int = field(default=14, metadata=_opt("--epochs", "training epochs"))
    batch: int = field(default=8, metadata=_opt("--batch", "clips per optimizer step"))
    optimizer: str = field(
        default="adamw", metadata=_opt("--optimizer", "adamw or sgd (Nesterov momentum)", choices=OPTIMIZERS)
    )
    lr: float = field(default=2e-3, metadata=_opt("--lr", "peak learning rate (after warm-up; cosine decay to 0)"))
    momentum: float = field(default=0.9, metadata=_opt("--momentum", "SGD momentum (unused by adamw)"))
    weight_decay: float = field(default=5e-4, metadata=_opt("--weight-decay", "on conv and linear weights only"))
    label_smoothing: float = field(default=0.1, metadata=_opt("--label-smoothing", "of the training loss"))
    warmup: float = field(default=1.0, metadata=_opt("--warmup", "epochs of linear learning-rate warm-up"))
    # Zero-initialised residual branches (PySlowFast's habit) kept the 4-stage proxies at
    # chance at this budget (docs/notebook/proxy-recipe.md): off by default.
    zero_init: bool = field(default=False, metadata=_opt("--zero-init", "start each residual branch at zero"))
    frames: int = field(default=8, metadata=_opt("--frames", "frames per clip"))
    size: int = field(default=32, metadata=_opt("--size", "clip height = width, pixels"))
    train_clips: int = field(default=1200, metadata=_opt("--train-clips", "synthetic data: training clips"))
    val_clips: int = field(default=300, metadata=_opt("--val-clips", "synthetic data: validation clips"))
    classes: int = field(default=6, metadata=_opt("--classes", "synthetic data: classes (2..8)"))
    # 1.4 x the first task's objects: at 1.0 about half the seeds of a P3D proxy never left
    # chance (the loss sits at ln 6 while the order signal, a few moving pixels, drowns in the
    # content), and neither more epochs nor any optimiser lever rescued them
    # (docs/notebook/proxy-fidelity.md).
    object_scale: float = field(
        default=1.4,
        metadata=_opt("--object-scale", "synthetic data: size of the moving objects, x the first task's (0.5..1.5)"),
    )
    # 0.3: on opaque clips the reference saturates (most genomes near 1.0), so nothing can
    # tell whether the proxy ranks like it; with 30% faint clips none does
    # (docs/notebook/proxy-fidelity.md).
    faint: float = field(
        default=0.3,
        metadata=_opt(
            "--faint",
            "synthetic data: share of clips whose objects are faint (contrast 0..0.3), "
            "a task with a Bayes error (0..1)",
        ),
    )
    seed: int = field(default=0, metadata=_opt("--seed", "seed of the initialisation and the shuffle order"))
    # The plateau rule (archlab.training.plateau): a seed whose training loss is still within
    # plateau_margin of ln(classes) after plateau_epochs epochs trains again on another seed,
    # at most plateau_restarts times, before any scheduler or sampler sees its numbers. 7: the
    # last epoch before ASHA's rung at 8; the healthy take-offs measured on the P3D anchors
    # came by then. 10%: a seed that only starts to leave the plateau in epoch 7 has lost half
    # its schedule, and such seeds ended far below their genome's other seeds; one that took
    # off earlier is well below the bound by then. 1 restart: a genome that learns slowly is on
    # the plateau whatever its seed, and each restart costs it 7 epochs
    # (docs/notebook/seed-tail.md). plateau_epochs 0: off. plateau_dwell: the seed must also
    # have sat on the plateau (at most PLATEAU_ABOVE above ln(classes)) in each epoch before E
    # from E - dwell on: a stuck seed reaches ln(classes) in its first epochs and stays there,
    # while a genome that learns slowly comes down to it from far above only around epoch E and
    # is no faster on another seed, so restarting it costs E epochs and buys nothing. 3: the
    # stuck seeds measured sat there from epoch 3 on, the slow genomes came down at epoch 5-6.
    plateau_epochs: int = field(
        default=7,
        metadata=_opt(
            "--plateau-epochs",
            "epochs after which a seed still on the ln(classes) loss plateau restarts on another seed (0: off)",
        ),
    )
    plateau_margin: float = field(
        default=0.10,
        metadata=_opt("--plateau-margin", "the plateau: a training loss of at least (1 - this) x ln(classes)"),
    )
    plateau_restarts: int = field(
        default=1, metadata=_opt("--plateau-restarts", "at most this many restarts of a stuck run (0: off)")
    )
    plateau_dwell: int = field(
        default=3,
        metadata=_opt(
            "--plateau-dwell",
            f"a stuck seed also sat on the plateau (at most {PLATEAU_ABOVE * 100:g}%% above ln(classes)) in the "
            "epochs before the check from this many epochs before it on (0: only the check's epoch counts)",
        ),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            opt = f.metadata["option"]
            if f.type in ("int", int):
                if isinstance(v, bool) or not isinstance(v, int):
                    raise UserError(f"{opt} must be a whole number (got {_show(v)})")
            elif f.type in ("float", float):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise UserError(f"{opt} must be a finite number (got {_show(v)})")
                object.__setattr__(self, f.name, float(v))
            elif f.type in ("bool", bool):
                if not isinstance(v, bool):
                    raise UserError(f"{opt} must be true or false (got {_show(v)})")
        _in_range("--epochs", self.epochs, 1, LIMITS["epochs"])
        _in_range("--batch", self.batch, 1, LIMITS["batch"])
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"--optimizer must be one of {', '.join(OPTIMIZERS)} (got {_show(self.optimizer)})")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive (got {self.lr:g})")
        if not 0 <= self.momentum < 1:
            raise UserError(f"--momentum must be in [0, 1) (got {self.momentum:g})")
        if self.weight_decay < 0:
            raise UserError(f"--weight-decay must not be negative (got {self.weight_decay:g})")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"--label-smoothing must be in [0, 1) (got {self.label_smoothing:g})")
        if self.warmup < 0:
            raise UserError(f"--warmup must not be negative (got {self.warmup:g})")
        _in_range("--frames", self.frames, 1, LIMITS["frames"])
        _in_range("--size", self.size, 1, LIMITS["size"])
        _in_range("--train-clips", self.train_clips, 1, LIMITS["clips"])
        _in_range("--val-clips", self.val_clips, 1, LIMITS["clips"])
        _in_range("--classes", self.classes, 2, LIMITS["classes"])
        if not OBJECT_SCALE[0] <= self.object_scale <= OBJECT_SCALE[1]:
            raise UserError(
                f"--object-scale must be in [{OBJECT_SCALE[0]:g}, {OBJECT_SCALE[1]:g}] (got {self.object_scale:g})"
            )
        if not 0 <= self.faint <= 1:
            raise UserError(f"--faint must be in [0, 1] (got {self.faint:g})")
        _at_least("--seed", self.seed, 0)
        _in_range("--plateau-epochs", self.plateau_epochs, 0, LIMITS["epochs"])
        if not 0 < self.plateau_margin < 1:
            raise UserError(f"--plateau-margin must be in (0, 1) (got {self.plateau_margin:g})")
        _in_range("--plateau-restarts", self.plateau_restarts, 0, 100)
        _in_range("--plateau-dwell", self.plateau_dwell, 0, LIMITS["epochs"])

    # ---- uses ----------------------------------------------------------------------------

    @property
    def clip(self) -> tuple[int, int, int]:
        """(frames, height, width) of a proxy clip."""
        return (self.frames, self.size, self.size)

    def dataset_opts(self, data: str, split: str) -> dict[str, Any]:
        """Keyword arguments of ``archlab.data.get_dataset`` for ``split`` under this recipe:
        the clip, and for the synthetic dataset its size and classes."""
        opts: dict[str, Any] = {"frames": self.frames, "size": self.size}
        if data == "synthetic":
            opts["n_clips"] = self.train_clips if split == "train" else self.val_clips
            opts["num_classes"] = self.classes
            opts["object_scale"] = self.object_scale
            if self.faint > 0.0:  # only then: an opaque recipe's clips are those drawn before faint existed
                opts["faint"] = self.faint
        return opts

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for study.yaml, run.yaml, checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, where: str = "") -> "ProxyRecipe":
        """A recipe from stored or written settings; unknown keys are an error (a typo must
        not silently train with a default). A mapping that names every field but some of
        ``ADDED`` is a complete recipe stored before those fields existed (``as_dict`` of an
        older archlab): it gets the values it was trained with, so an old study resumes on
        its own data (a partial mapping, an experiment file's few keys, gets today's defaults)."""
        names = cls.names()
        bad = [k for k in values if k not in names]
        if bad:
            at = f"{where}: " if where else ""
            raise UserError(f"{at}unknown recipe key {bad[0]!r} (keys: {', '.join(names)})")
        return cls(**cls.stored_defaults(values), **dict(values))

    @classmethod
    def stored_defaults(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """The ``ADDED`` values a stored recipe ``values`` lacks, if it is a complete recipe
        from before them (every other field present); else nothing."""
        missing = [n for n in cls.names() if n not in values]
        if missing and all(n in ADDED for n in missing):
            return {n: ADDED[n] for n in missing}
        return {}

    def with_(self, **changes: Any) -> "ProxyRecipe":
        return replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    # ---- the CLI -------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
        """Add one option per field (``--batch``...), default ``None`` so that ``from_args``
        knows what the user gave; the help shows the recipe's default."""
        group = parser.add_argument_group("proxy recipe (defaults: the search's measured recipe)")
        for f in fields(cls):
            if f.name in skip:
                continue
            m = f.metadata
            default = f.default if f.default is not MISSING else None
            kw: dict[str, Any] = {
                "dest": f"recipe_{f.name}",
                "default": None,
                "help": f"{m['help']} (default {default})",
            }
            if f.type in ("bool", bool):
                kw["action"] = argparse.BooleanOptionalAction
            else:
                kw["type"] = {"int": int, "float": float, "str": str}.get(str(f.type), str)
                kw["metavar"] = f.name.upper()
                if "choices" in m:
                    kw["choices"] = m["choices"]
            group.add_argument(m["option"], **kw)

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: "ProxyRecipe | None" = None) -> "ProxyRecipe":
        """The recipe ``base`` (default: the defaults) with every option the user gave."""
        given = {
            f.name: getattr(args, f"recipe_{f.name}")
            for f in fields(cls)
            if getattr(args, f"recipe_{f.name}", None) is not None
        }
        return replace(base or cls(), **given)


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _at_least(option: str, value: int, low: int) -> None:
    if value < low:
        raise UserError(f"{option} must be at least {low} (got {value})")


def _in_range(option: str, value: int, low: int, high: int) -> None:
    _at_least(option, value, low)
    if value > high:
        raise UserError(f"{option} must be at most {high:,} (got {value:,})")
