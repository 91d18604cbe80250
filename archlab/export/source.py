"""What is exported: one network, its weights and what is known about it (a ``Source``).

``resolve_source`` turns ``archlab export``'s arguments into a Source: a genome or preset
with fresh or given weights, or a trial of a study (read through ``archlab.results.reader``, the one
reader of a study directory; chosen by ``select.select_trial`` or named by ``--trial``) with
its checkpoint. Checkpoints are read with ``weights_only=True`` (no code runs) and must fit
the genome exactly; every problem is one UserError line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..measure.graph_files import Clip
from ..model.builder import build
from ..model.genome import Genome, GenomeError, parse
from ..model.presets import DEFAULT_INPUT, resolve
from ..results.reader import COLUMNS as RECORD_COLUMNS
from ..results.reader import find_trial, load_results
from ..util.errors import UserError
from .select import select_trial


@dataclass
class Source:
    """One network to export: its genome, weights and everything the card says about it."""

    genome: Genome
    state_dict: dict[str, torch.Tensor] | None  # None: freshly initialised (seed 0)
    weights: dict[str, Any]  # how the weights came: {"kind": "trial"|"none"|"path", ...}
    classes: list[str] | None = None  # from the checkpoint
    clip: Clip | None = None  # the clip it was trained/searched on
    mean: list[float] | None = None
    std: list[float] | None = None
    trial: dict[str, Any] | None = None  # its results.csv row (study exports)
    selection: str | None = None  # how that trial was chosen, in words
    study_dir: Path | None = None
    study_name: str | None = None
    role: str = "network"  # "target" (what a study's front is of) | "proxy" (what its trial trained) | "network"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint as the trainer writes it ({"model": state_dict, "genome", "classes",
    "input", ...}) or a bare state_dict, read with ``weights_only=True`` (no code runs)."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"checkpoint {p} is a directory: give the checkpoint file (e.g. {p / 'best.pt'})")
    if not p.is_file():
        raise UserError(f"checkpoint {p} does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
        raise UserError(f"checkpoint {p} cannot be read ({type(e).__name__}: {_first_line(e)})") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        ckpt = dict(obj)
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        ckpt = {"model": obj}
    else:
        raise UserError(f"checkpoint {p} holds neither {{'model': state_dict, ...}} nor a state_dict")
    ckpt["model"] = _strip_prefix(ckpt["model"])
    return ckpt


def _strip_prefix(sd: dict[str, Any]) -> dict[str, Any]:
    """Drop a prefix every key shares from torch.compile (``_orig_mod.``) or DataParallel."""
    for prefix in ("_orig_mod.", "module."):
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def check_fits(model: nn.Module, state_dict: dict[str, Any], where: str, genome: Genome) -> None:
    """Raise one UserError line unless ``state_dict`` has exactly the model's keys and shapes."""
    want = model.state_dict()
    missing = [k for k in want if k not in state_dict]
    unexpected = [k for k in state_dict if k not in want]
    shapes = [
        k
        for k in want
        if k in state_dict
        and (not isinstance(state_dict[k], torch.Tensor) or tuple(state_dict[k].shape) != tuple(want[k].shape))
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if shapes:
        k = shapes[0]
        got = list(state_dict[k].shape) if isinstance(state_dict[k], torch.Tensor) else type(state_dict[k]).__name__
        parts.append(f"{len(shapes)} of another shape (e.g. {k} {got} vs {list(want[k].shape)})")
    raise UserError(f"the weights in {where} do not fit genome '{genome}': {', '.join(parts)}")


def _weights_from(path: Path, genome: Genome, shown: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint meant for ``genome``; its state_dict and the rest of it."""
    ckpt = load_checkpoint(path)
    if ckpt.get("genome") is not None:
        try:
            theirs = parse(str(ckpt["genome"]))
        except GenomeError as e:
            raise UserError(f"checkpoint {shown} names an invalid genome: {e}") from None
        if theirs != genome:
            raise UserError(f"checkpoint {shown} was trained for genome '{theirs}', not '{genome}'")
    return ckpt["model"], ckpt


def resolve_source(
    study_dir: str | Path | None = None,
    genome: str | None = None,
    *,
    rank: int | None = None,
    trial: str | None = None,
    weights: str | None = None,
    max_latency: float | None = None,
    max_gmacs: float | None = None,
    proxy: bool = False,
) -> Source:
    """What ``archlab export`` was asked for, checked, with the weights loaded.

    Exactly one of ``study_dir`` and ``genome``. A study's trial exports its target, the
    network its costs are of, at the target clip: untrained ("none", the default) or with the
    weights of a retrain (a path: ``archlab train STUDY --rank 1`` writes them). ``proxy``
    exports what the trial trained instead, with its ``best.pt`` ("trial", the default then).
    A study from before targets trained its networks at their own costs: a trial is its own
    target, and its weights are the trial's by default. ``weights`` for a genome: "none"
    (default) or a path.
    """
    if (study_dir is None) == (genome is None):
        raise UserError("give either a STUDY_DIR or --genome GENOME|PRESET (exactly one)")
    if rank is not None and trial is not None:
        raise UserError("--rank and --trial choose a trial two ways: give one")
    for name, value in (("--max-latency", max_latency), ("--max-gmacs", max_gmacs)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise UserError(f"{name} {value:g} must be a positive number")
    if genome is not None:
        if rank is not None or trial is not None or max_latency is not None or max_gmacs is not None:
            raise UserError(
                "--rank, --trial, --max-latency and --max-gmacs choose a trial of a study; "
                "they do not apply to --genome"
            )
        if proxy:
            raise UserError("--proxy exports a study trial's proxy; it does not apply to --genome")
        return _genome_source(genome, weights or "none")
    assert study_dir is not None
    return _study_source(Path(study_dir), rank, trial, weights, max_latency, max_gmacs, proxy)


def _genome_source(text: str, weights: str) -> Source:
    g = resolve(text)
    clip = DEFAULT_INPUT.get(text.strip())
    if weights == "trial":
        raise UserError("--weights trial needs a STUDY_DIR; with --genome use --weights none or a PATH")
    if weights == "none":
        return Source(genome=g, state_dict=None, weights={"kind": "none"}, clip=clip)
    sd, ckpt = _weights_from(Path(weights), g, weights)
    return _with_checkpoint(Source(genome=g, state_dict=sd, weights={"kind": "path", "path": weights}, clip=clip), ckpt)


def _study_source(
    d: Path,
    rank: int | None,
    trial: str | None,
    weights: str | None,
    max_latency: float | None,
    max_gmacs: float | None,
    proxy: bool,
) -> Source:
    df, info = load_results(d)
    targeted = info.target_clip is not None
    role = "proxy" if proxy or not targeted else "target"
    if weights is None:
        weights = "none" if role == "target" else "trial"
    if weights == "trial" and role == "target":
        raise UserError(
            "--weights trial: a trial trained the target's proxy, not the target; export the target with the "
            "weights of its retrain (archlab train STUDY --rank N --out DIR, then --weights DIR/best.pt), or "
            "the proxy with --proxy"
        )
    if trial is not None:
        if max_latency is not None or max_gmacs is not None:
            raise UserError("--max-latency/--max-gmacs choose among trials; they do not apply to --trial")
        label = find_trial(df, trial)
        selection = f"trial {df.loc[label, 'trial']} (given with --trial)"
    else:
        rank = 1 if rank is None else rank
        label, rule = select_trial(df, info.objectives, info.directions, rank, max_latency, max_gmacs)
        selection = f"rank {rank}: {rule}"
    row = {k: json_value(v) for k, v in df.loc[label, [*RECORD_COLUMNS, "on_front"]].to_dict().items()}
    name = row["trial"]
    try:
        g = parse(str(row["proxy_genome"] if role == "proxy" else row["genome"]))
    except GenomeError as e:
        raise UserError(f"trial {name}: its genome in the study is invalid: {e}") from None

    # The target's clip, or the clip the proxy trained at (study.yaml); a checkpoint's own
    # input spec, read below, is the same clip and wins if it says more (mean/std).
    src = Source(
        genome=g,
        state_dict=None,
        weights={"kind": weights if weights in ("trial", "none") else "path"},
        clip=info.target_clip if role == "target" else info.clip,
        trial=row,
        selection=selection,
        study_dir=d,
        study_name=info.name,
        role=role if targeted else "network",
    )
    if weights == "none":
        return src
    if weights == "trial":
        ck = row.get("checkpoint")
        if not isinstance(ck, str) or not ck.strip():
            raise UserError(
                f"trial {name} (status {row.get('status')}) has no checkpoint; use --weights none or --weights PATH"
            )
        rel = Path(ck.strip()) / "best.pt"
        path, shown = d / rel, str(d / rel)
        src.weights["path"] = rel.as_posix()  # relative to the study: the card stays valid if it moves
    else:
        path, shown = Path(weights), weights
        src.weights["path"] = weights
    sd, ckpt = _weights_from(path, g, shown)
    src.state_dict = sd
    return _with_checkpoint(src, ckpt)


def _with_checkpoint(src: Source, ckpt: dict[str, Any]) -> Source:
    """Take the classes, input spec, epoch and metrics the trainer stored with the weights."""
    for key in ("epoch", "metrics"):
        if ckpt.get(key) is not None:
            src.weights[key] = json_value(ckpt[key])
    if ckpt.get("classes") is not None:
        src.classes = [str(c) for c in ckpt["classes"]]
    spec = ckpt.get("input")
    if isinstance(spec, dict):
        if spec.get("frames") and spec.get("size"):
            h = int(spec.get("height") or spec["size"])
            src.clip = (int(spec["frames"]), h, int(spec.get("width") or h))
        if spec.get("mean") is not None and spec.get("std") is not None:
            src.mean, src.std = [float(v) for v in spec["mean"]], [float(v) for v in spec["std"]]
    return src


def build_model(src: Source) -> nn.Module:
    """The eager network in eval mode (dropout off, BN running statistics)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)  # --weights none is reproducible
        model = build(src.genome)
    if src.state_dict is not None:
        check_fits(model, src.state_dict, src.weights.get("path", "the checkpoint"), src.genome)
        model.load_state_dict(src.state_dict, strict=True)
    return model.eval()


def json_value(v: Any) -> Any:
    """numpy/pandas scalars and NaN -> plain JSON values, recursively."""
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, torch.Tensor):
        return json_value(v.tolist())
    if hasattr(v, "item") and callable(v.item):
        try:
            v = v.item()
        except (TypeError, ValueError):
            return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line if len(line) <= 200 else line[:197] + "..."
