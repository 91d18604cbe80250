"""A study directory as the search leaves it, built from trial records, for tests.

Why here and not in each test file: three test files used to write results tables by hand,
each with its own copy of the trial schema (and one wrote a study.yaml key the search never
writes, which hid a bug in reading the study back). This writer goes through the real pieces instead:
``study.yaml`` from the search's own settings writer, ``optuna.db`` with one Optuna trial per
``record.TrialRecord`` (user attributes from ``to_attrs``, told COMPLETE with its objective
values when finished, FAIL when the search tells Optuna FAIL, RUNNING while running), and
the derived tables from ``results.writers.write_tables``.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import optuna

from ..results.confirmed import SUFFIX as CONFIRM_SUFFIX
from ..results.record import Status, TrialRecord
from ..results.study import BASELINE_SUFFIX, load_study_info, parse_objectives
from ..results.writers import write_tables
from ..search import SearchConfig
from ..search import write_settings as search_write_settings


def write_settings(study_dir: Path, *, objectives: str = "acc,latency", **config: Any) -> None:
    """study.yaml through ``search.write_settings``: ``config`` are SearchConfig fields and
    ProxyRecipe fields (``frames=4, size=32``), routed as the search routes them."""
    study_dir = Path(study_dir)
    cfg = SearchConfig.from_settings(
        {"out": str(study_dir.parent), "name": study_dir.name, "objectives": objectives, **config}
    )
    objs, dirs = parse_objectives(cfg.objectives)
    study_dir.mkdir(parents=True, exist_ok=True)
    search_write_settings(cfg, objs, dirs)


Times = Sequence[tuple[datetime, datetime | None]]
"""(datetime_start, datetime_complete) per trial, None while running; without them Optuna
stamps each trial with the moment it was written."""


def _add(
    study: Any, rec: TrialRecord, objectives: Sequence[str], when: tuple[datetime, datetime | None] | None = None
) -> None:
    attrs = rec.to_attrs()
    if rec.status is Status.RUNNING:
        state, values = optuna.trial.TrialState.RUNNING, None
    elif rec.status is Status.REJECTED:  # as the search tells it: COMPLETE, worst values
        state = optuna.trial.TrialState.COMPLETE
        values = [0.0 if d == optuna.study.StudyDirection.MAXIMIZE else math.inf for d in study.directions]
    elif rec.told_fail:
        state, values = optuna.trial.TrialState.FAIL, None
    elif rec.status is Status.STOPPED:  # as the search tells it: PRUNED, no final values
        state, values = optuna.trial.TrialState.PRUNED, None
    else:
        state, values = optuna.trial.TrialState.COMPLETE, [float(attrs[o]) for o in objectives]
    trial = optuna.trial.create_trial(state=state, values=values, user_attrs=attrs)
    if when is not None:
        trial.datetime_start, trial.datetime_complete = when[0], (None if rec.status is Status.RUNNING else when[1])
    study.add_trial(trial)


def write_study(
    study_dir: str | Path,
    trials: Sequence[TrialRecord],
    baselines: Sequence[TrialRecord] = (),
    /,
    *,
    tables: bool = True,
    times: Times = (),
    baseline_times: Times = (),
    confirm: Sequence[TrialRecord] = (),
    **config: Any,
) -> Path:
    """A finished study at ``study_dir``: settings (see ``write_settings``), the search trials
    numbered 0, 1, ... in order, the baselines in the ``<name>:baselines`` study, the confirm
    runs (records with ``confirm_of`` and ``seeds``) in ``<name>:confirm``, and
    results.csv / pareto.csv / front.yaml unless ``tables`` is false. ``times`` and
    ``baseline_times`` (one pair per trial, or empty) set when each trial started and ended."""
    for recs, when in ((trials, times), (baselines, baseline_times)):
        if when and len(when) != len(recs):
            raise ValueError(f"{len(when)} times for {len(recs)} trials")
    d = Path(study_dir)
    write_settings(d, **config)
    info = load_study_info(d)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if x == "max" else "minimize" for x in info.directions]
    for name, recs, when in (
        (info.name, trials, times),
        (info.name + BASELINE_SUFFIX, baselines, baseline_times),
        (info.name + CONFIRM_SUFFIX, confirm, ()),
    ):
        if name != info.name and not recs:
            continue
        study = optuna.create_study(study_name=name, storage=info.storage_url, directions=directions)
        for i, rec in enumerate(recs):
            _add(study, rec, info.objectives, when[i] if when else None)
    if tables:
        write_tables(d)
    return d
