"""Weights & Biases tracking of a search: one W&B run per trial, one run for the whole study.

The only module that imports wandb. Everything is logged from the search DRIVER through Ray
Tune callbacks (the trial workers never touch W&B): the driver already sees every result, so
no credentials, files or service processes have to reach the workers.

Layout (``<study>`` = the study directory, ``<name>`` = its study name):

    <study>/wandb/offline-run-<time>-<run id>/   W&B's own run directories (``wandb sync`` them)
    <study>/wandb/{cache,config,data,artifacts}/ W&B's caches and staged tables (offline mode;
                                                 online, the user's own W&B config is kept)
    <study>/wandb/tmp/                           temp files of wandb and its service process
    <study>/wandb/archlab-runs.json              which run ids exist, their config and final
                                                 summary (lets a resumed search and the end of
                                                 the study reopen a run with the same content)

Run ids are stable: ``<slug>-<hash>-t<optuna number>`` for a search trial, ``...-b<ray trial
id>`` for a baseline, ``...-study`` for the study run, where slug and hash come from the study
name. With ``resume="allow"`` a resumed search continues the same runs instead of creating new
ones. Offline, W&B cannot look up a run, so each reopening writes one more run directory with
the same id; ``wandb sync`` uploads them in start order into that one run. To keep reopenings
rare the callback never reopens a finished run for a repeated result, and at the end of the
study reopens only the runs whose ``on_front`` flag changed.

Runs go to project ``archlab`` (or $WANDB_PROJECT, entity $WANDB_ENTITY), grouped by study
name; job types ``trial``, ``baseline`` and ``study``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..util.errors import UserError
from .env import MODES, PROJECT, has_credentials, resolve_mode, wandb_env
from .runs import (
    HISTORY_KEYS,
    REGISTRY,
    SUMMARY_KEYS,
    final_summary,
    genome_config,
    registered_runs,
    run_prefix,
    study_run_id,
    trial_config,
    trial_run_id,
)
from .tracker import TABLE_COLUMNS, WandbTracker

__all__ = [
    "HISTORY_KEYS",
    "MODES",
    "PROJECT",
    "REGISTRY",
    "SUMMARY_KEYS",
    "TABLE_COLUMNS",
    "WandbTracker",
    "final_summary",
    "genome_config",
    "has_credentials",
    "make_tracker",
    "registered_runs",
    "resolve_mode",
    "run_prefix",
    "study_run_id",
    "trial_config",
    "trial_run_id",
    "wandb_env",
]


def make_tracker(mode: str, study_dir: Path, echo: Callable[[str], None]) -> WandbTracker | None:
    """The tracker that logs a search to W&B, or None when the mode resolves to off.
    'auto' is online when W&B credentials are configured, else offline files in the study.
    Checked before the search starts: a bad mode, online without credentials, or (asked for
    explicitly) a wandb that cannot be imported is one UserError line."""
    resolved = resolve_mode(mode)
    if resolved == "off":
        return None
    if resolved == "online" and not has_credentials():
        raise UserError(
            "--wandb online: no W&B credentials (set WANDB_API_KEY or run `wandb login`); "
            "use --wandb offline to log locally"
        )
    study_dir = Path(study_dir)
    try:
        with wandb_env(study_dir.resolve(), resolved):
            import wandb  # noqa: F401 - fail here, once, if it cannot be imported (inside wandb_env: it makes a temp dir)
    except ImportError as e:
        if mode == "auto":
            echo(f"W&B: not logging ({e})")
            return None
        raise UserError(f"--wandb {mode}: wandb cannot be imported ({e})") from None
    echo(f"W&B: logging {resolved} (one run per trial, group {study_dir.name!r}) into {study_dir / 'wandb'}")
    return WandbTracker(resolved, study_dir, echo)
