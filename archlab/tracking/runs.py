"""What a W&B run of a study is: its stable id, its config and summary, and the registry
(``<study>/wandb/archlab-runs.json``) of which runs exist and what they last showed."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..model.genome import LETTERS, GenomeError, parse
from ..results.record import TrialRecord
from ..util.files import atomic_write

REGISTRY = "archlab-runs.json"
# What a trial's results carry (search.run_trial) and where each goes.
HISTORY_KEYS = ("val_top1", "val_top5", "train_loss", "val_loss", "epoch_time_s", "train_time_s", "trial_time_s")
SUMMARY_KEYS = (
    "val_top1",
    "val_top5",
    "train_loss",
    "val_loss",
    "latency_ms",
    "clips_per_s",
    "gmacs",
    "params",
    "epochs",
    "train_time_s",
    "trial_time_s",
    "status",
    "reason",
    "genome",
    "genome_id",
    "label",
)


def run_prefix(study_name: str) -> str:
    """Readable and unique per study name: a slug plus a short hash of the exact name."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", study_name).strip("-")[:40] or "study"
    return f"{slug}-{hashlib.sha1(study_name.encode()).hexdigest()[:6]}"


def trial_run_id(study_name: str, number: int | None = None, trial_id: str | None = None) -> str:
    """The stable W&B id of a trial's run: by Optuna trial number for search trials, by Ray
    trial id for baselines (their numbers live in another Optuna study)."""
    if number is not None:
        return f"{run_prefix(study_name)}-t{int(number)}"
    if not trial_id:
        raise ValueError("a trial needs an Optuna number or a Ray trial id")
    return f"{run_prefix(study_name)}-b{re.sub(r'[^A-Za-z0-9_]+', '_', str(trial_id))}"


def study_run_id(study_name: str) -> str:
    return f"{run_prefix(study_name)}-study"


def clean(v: Any) -> Any:
    """JSON-safe scalars: numpy numbers to Python, NaN/inf to None (W&B cannot store them)."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def genome_config(genome: str) -> dict[str, Any]:
    """The columns a W&B user filters and groups on: per-stage letters, counts and fractions of
    every block type (zeros included, so every run has every column), depth and width."""
    if not genome:
        return {}
    out: dict[str, Any] = {"genome": genome}
    try:
        g = parse(genome)
    except GenomeError:
        return out
    for i, st in enumerate(g.stages, 1):
        out[f"stage{i}"] = st.letters
    counts = g.letter_counts()
    for letter in LETTERS:
        out[f"n_{letter}"] = counts[letter]
        out[f"frac_{letter}"] = counts[letter] / g.depth
    out.update(depth=g.depth, width=g.stages[0].width, widths=",".join(str(s.width) for s in g.stages), family=g.family)
    return out


def trial_config(
    result: dict[str, Any], study_name: str, number: int | None, trial_id: str, label: str
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "study": study_name,
        "trial_number": number,
        "trial_id": trial_id,
        "baseline": number is None,
        "label": label or result.get("label", ""),
    }
    cfg.update(genome_config(result.get("genome", "")))
    for k in ("genome_id", "gmacs", "params"):
        if result.get(k) is not None:
            cfg[k] = clean(result[k])
    return cfg


def final_summary(result: dict[str, Any], error: bool) -> dict[str, Any]:
    """What a finished trial's run shows in W&B's runs table: its last result, with the final
    status by the one normalising rule the search records (``record.TrialRecord.from_result``:
    a last result still 'running' means ASHA stopped it; an error makes it failed)."""
    s = {k: clean(result[k]) for k in SUMMARY_KEYS if k in result}
    rec = TrialRecord.from_result({k: v for k, v in result.items() if k in ("status", "reason")}, error)
    s["status"] = rec.status.value
    if rec.reason or "reason" in s:
        s["reason"] = rec.reason
    return s


def read_registry(study_dir: Path) -> dict[str, Any]:
    path = study_dir / "wandb" / REGISTRY
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"runs": {}, "study": {}}
    data.setdefault("runs", {})
    data.setdefault("study", {})
    return data


def write_registry(study_dir: Path, data: dict[str, Any]) -> None:
    atomic_write(study_dir / "wandb" / REGISTRY, json.dumps(data, indent=1, sort_keys=True))


def registered_runs(study_dir: str | Path) -> dict[str, Any]:
    """run id -> what the registry knows (config, summary, run directories...)."""
    return read_registry(Path(study_dir))["runs"]
