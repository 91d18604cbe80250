"""The results of a study, read from its Optuna storage (the single source of truth).

Every trial the search tried is an Optuna trial: its params (the space's choices), its
values (the objectives) and user attributes the search wrote before telling Optuna the
outcome (genome string, status, reason, latency, GMACs, params, epochs, checkpoint...).
This module turns that into one pandas table, a Pareto front, and the CSV files of a study
directory. It imports neither ray nor torch, so reports and exports can read a study
anywhere.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from . import pareto
from .errors import UserError
from .genome import LETTERS, GenomeError, parse

OBJECTIVES = {"acc": ("val_top1", "max"), "latency": ("latency_ms", "min"),
              "gmacs": ("gmacs", "min"), "params": ("params", "min")}
BASELINE_SUFFIX = ":baselines"
STATUSES = ("ok", "stopped", "failed", "rejected", "repeat", "running")  # repeat: an earlier trial's result reused
FINISHED = ("ok", "stopped")  # trained: to the last epoch, or until ASHA stopped it


def parse_objectives(text: str) -> tuple[list[str], list[str]]:
    """'acc,latency' -> (['val_top1', 'latency_ms'], ['max', 'min'])."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in keys if k not in OBJECTIVES]
    if bad or len(keys) != 2 or keys[0] != "acc":
        raise UserError(f"--objectives {text!r}: use acc,latency | acc,gmacs | acc,params")
    return [OBJECTIVES[k][0] for k in keys], [OBJECTIVES[k][1] for k in keys]


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that a reader never sees half of it (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes files private; these are ordinary results
    os.replace(tmp, path)


@dataclass
class StudyInfo:
    """What study.yaml holds, plus where the study lives."""

    dir: Path
    settings: dict[str, Any]

    @property
    def name(self) -> str:
        return self.settings["name"]

    @property
    def storage_url(self) -> str:
        url = self.settings.get("storage") or "optuna.db"
        if "://" in url:
            return url
        return f"sqlite:///{(self.dir / url).resolve()}"

    @property
    def objectives(self) -> list[str]:
        return list(self.settings["objectives"])

    @property
    def directions(self) -> list[str]:
        return list(self.settings["directions"])


def load_study_info(study_dir: str | Path) -> StudyInfo:
    d = Path(study_dir)
    f = d / "study.yaml"
    if not f.exists():
        raise UserError(f"{d} is not a study directory (no study.yaml): run `archlab search` first")
    try:
        settings = yaml.safe_load(f.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{f}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(settings, dict) or "objectives" not in settings:
        raise UserError(f"{f}: missing the study settings (objectives)")
    return StudyInfo(d, settings)


def _quiet_optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    return optuna


def _rows(study: Any, baseline: bool) -> list[dict[str, Any]]:
    optuna = _quiet_optuna()
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        state = t.state
        status = a.get("status")
        if status is None:
            status = {optuna.trial.TrialState.RUNNING: "running", optuna.trial.TrialState.WAITING: "running",
                      optuna.trial.TrialState.FAIL: "failed"}.get(state, "ok")
        if state == optuna.trial.TrialState.RUNNING:
            status = "running"
        row: dict[str, Any] = {
            "number": t.number,
            "trial_id": a.get("ray_trial_id", ""),
            "genome": a.get("genome", ""),
            "genome_id": a.get("genome_id", ""),
            "label": a.get("label", ""),
            "status": status,
            "reason": a.get("reason", ""),
            "val_top1": a.get("val_top1"),
            "val_top5": a.get("val_top5"),
            "latency_ms": a.get("latency_ms"),
            "clips_per_s": a.get("clips_per_s"),
            "gmacs": a.get("gmacs"),
            "params": a.get("params"),
            "epochs": a.get("epochs", 0),
            "train_time_s": a.get("train_time_s"),
            "trial_time_s": a.get("trial_time_s"),
            "node": a.get("node", ""),
            "checkpoint": a.get("checkpoint", ""),
            # the forms every figure was taken in (archlab.forms); empty for older studies
            "train_form": a.get("train_form", ""),
            "latency_form": a.get("latency_form", ""),
            "latency_runtime": a.get("latency_runtime", ""),
            "baseline": baseline,
            "optuna_state": state.name,
        }
        row.update({f"param_{k}": v for k, v in t.params.items()})
        rows.append(row)
    return rows


def _genome_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Per-stage letters, counts and fractions of each block type, depth (for 'what the mix does')."""
    extra = []
    for s in df["genome"]:
        row: dict[str, Any] = {}
        try:
            g = parse(s)
        except GenomeError:
            extra.append(row)
            continue
        for i, st in enumerate(g.stages, 1):
            row[f"stage{i}"] = st.letters
        counts = g.letter_counts()
        for l, n in counts.items():
            row[f"n_{l}"] = n
            row[f"frac_{l}"] = n / g.depth
        row["depth"] = g.depth
        row["width"] = g.stages[0].width
        extra.append(row)
    return pd.concat([df.reset_index(drop=True), pd.DataFrame(extra)], axis=1)


def load_results(study_dir: str | Path) -> tuple[pd.DataFrame, StudyInfo]:
    """All trials of a study (search and baselines) as one table, with the front marked."""
    info = load_study_info(study_dir)
    optuna = _quiet_optuna()
    rows: list[dict[str, Any]] = []
    summaries = {s.study_name for s in optuna.study.get_all_study_summaries(info.storage_url)} \
        if (info.dir / "optuna.db").exists() or "://" in (info.settings.get("storage") or "") else set()
    for name, baseline in ((info.name, False), (info.name + BASELINE_SUFFIX, True)):
        if name in summaries:
            rows += _rows(optuna.load_study(study_name=name, storage=info.storage_url), baseline)
    cols = ["number", "trial_id", "genome", "genome_id", "label", "status", "reason", "val_top1", "val_top5",
            "latency_ms", "clips_per_s", "gmacs", "params", "epochs", "train_time_s", "trial_time_s", "checkpoint",
            "node", "baseline"]
    df = pd.DataFrame(rows, columns=cols + sorted({k for r in rows for k in r} - set(cols) - {"optuna_state"}))
    df = df.sort_values(["baseline", "number"], kind="stable").reset_index(drop=True)
    df = _genome_columns(df)
    df["on_front"] = mark_front(df, info.objectives, info.directions)
    return df, info


def finished(df: pd.DataFrame) -> pd.DataFrame:
    """Trials whose objectives count: trained to the end or stopped early by ASHA."""
    return df[df["status"].isin(FINISHED)]


def mark_front(df: pd.DataFrame, objectives: list[str], directions: list[str]) -> pd.Series:
    mask = pd.Series(False, index=df.index, name="on_front")
    done = finished(df)
    if len(done):
        mask.loc[done.index] = pareto.non_dominated(done, objectives, directions)
    return mask


def write_tables(study_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """results.csv (every trial), pareto.csv (the front of the SEARCH trials, baselines shown
    beside it) and front.yaml (reference point + hypervolume). Returns (results, front, hv)."""
    df, info = load_results(study_dir)
    objs, dirs = info.objectives, info.directions
    write_atomic(info.dir / "results.csv", df.to_csv(index=False))
    front = df[df["on_front"]].sort_values(objs[1])
    write_atomic(info.dir / "pareto.csv", front.to_csv(index=False))
    search = finished(df[~df["baseline"]])
    hv: dict[str, Any] = {"objectives": objs, "directions": dirs}
    if len(search):
        ref = info.settings.get("reference_point") or pareto.reference_point(search, objs, dirs)
        hv["reference_point"] = [float(x) for x in ref]
        hv["hypervolume"] = pareto.hypervolume(search, objs, dirs, ref)
        hv["front_size"] = int(pareto.non_dominated(search, objs, dirs).sum())
    write_atomic(info.dir / "front.yaml", yaml.safe_dump(hv, sort_keys=False))
    return df, front, hv


def letters_summary(df: pd.DataFrame) -> str:
    return " ".join(f"{l}:{int(df[f'n_{l}'].sum())}" for l in LETTERS if f"n_{l}" in df)
