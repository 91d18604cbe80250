"""The study directory: its lock and its stored settings (study.yaml).

One study = one directory (default ``runs/<name>/``):

    study.yaml     resolved settings (space, data, recipe, clip, objectives, budget, versions)
    optuna.db      Optuna storage: the single source of truth of what was tried. Study
                   ``<name>`` holds the proposals, ``<name>:baselines`` the reference points,
                   ``<name>:confirm`` the confirm step's runs (one per front point and seed).
    trials/NNNN/   trial NNNN's files: checkpoint.pt (resume), best.pt (export), metrics.csv
    baselines/NNNN/  the same for the baselines; confirm/NNNN/ for the confirm runs
    ray/           Ray Tune's logs, one experiment per run (never needed to resume or export)
    profiles/      cached latency/MAC profiles by (genome id, input, batch, device)
    results.csv    one row per trial (derived from optuna.db), pareto.csv, front.yaml
    .lock          one writer at a time
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..results.study import OBJECTIVES, load_study_info, open_storage
from ..util.errors import UserError
from ..util.files import FileLock, atomic_write
from ..util.versions import SEARCH, versions
from .config import DEFAULT_TRIALS, SearchConfig

# Settings a rerun may change without changing what the study means: where it lives and
# runs, how many trials at once, and a larger budget (the study continues).
RERUN_FREE = ("out", "address", "concurrency")


class StudyLock(FileLock):
    """An exclusive flock on ``.lock``: the kernel drops it if the driver dies, so a killed
    search never leaves a study locked."""

    def __init__(self, study_dir: Path):
        super().__init__(
            Path(study_dir) / ".lock",
            busy=f"study {study_dir} is in use by another archlab search "
            "(pid {pid}); wait for it or use another --name",
        )


def prepare_study(cfg: SearchConfig, resume: bool) -> tuple[SearchConfig, bool]:
    """The effective config and whether this continues a stored study. A stored study keeps
    its settings (only ``--trials`` may grow; where it runs may change). Writes nothing."""
    d = cfg.study_dir()
    if (d / "study.yaml").exists():
        info = load_study_info(d)
        open_storage(info)  # a corrupt optuna.db is one line now, before Ray starts
        old = info.settings
        kept = {k: v for k, v in old.items() if k in SearchConfig.keys() or k == "recipe"}
        for k in RERUN_FREE:
            kept[k] = getattr(cfg, k)
        kept["name"] = d.name
        stored = int(old.get("trials") or DEFAULT_TRIALS)
        kept["trials"] = stored if cfg.trials is None else max(stored, cfg.trials)
        kept["objectives"] = _objectives_text(old.get("objectives", cfg.objectives))
        if "target_input" not in old:
            _check_untargeted_resume(d, kept["space"])
        return SearchConfig.from_settings(kept), True
    if resume:
        raise UserError(f"--resume: there is no study at {d} (no study.yaml)")
    return (cfg if cfg.trials is not None else cfg.with_(trials=DEFAULT_TRIALS)), False


def _check_untargeted_resume(d: Path, space_name: str) -> None:
    """A study from before targets trained its space's genomes as they were written. If the
    space now describes targets (its widths are the shipped network's), its proposals would
    be trained at the target's width: refused, in one line. Reports and exports still read
    the study."""
    from ..spaces import load_space

    if load_space(space_name).target_clip is not None:
        raise UserError(
            f"{d} was searched before search spaces described target networks, and space "
            f"{Path(space_name).stem} now does: its new proposals would not be the networks this study trained. "
            "`archlab report` and `archlab export` still read it; search again under another --name"
        )


def _objectives_text(stored: Any) -> str:
    """study.yaml stores the resolved objectives (['val_top1', 'latency_ms']); the config
    takes the option's words ('acc,latency')."""
    if isinstance(stored, str):
        return stored
    words = {column: word for word, (column, _) in OBJECTIVES.items()}
    return ",".join(words.get(str(o), str(o)) for o in stored)


def write_settings(cfg: SearchConfig, objectives: list[str], directions: list[str]) -> None:
    """study.yaml: the settings, the proxy clip (``clip: [frames, height, width]``, what
    export and reports read) and the versions that produced the study."""
    d = cfg.study_dir()
    settings = cfg.settings()
    settings["name"] = d.name
    settings["clip"] = list(cfg.recipe.clip)
    settings["objectives"] = objectives
    settings["directions"] = directions
    settings["versions"] = versions(SEARCH)
    atomic_write(d / "study.yaml", yaml.safe_dump(settings, sort_keys=False))


def update_trials(study_dir: Path, trials: int) -> None:
    """A rerun with a larger ``--trials``: the stored budget grows (nothing else changes)."""
    f = study_dir / "study.yaml"
    settings = yaml.safe_load(f.read_text())
    if int(settings.get("trials", 0)) < trials:
        settings["trials"] = trials
        atomic_write(f, yaml.safe_dump(settings, sort_keys=False))
