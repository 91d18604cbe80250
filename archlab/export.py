"""Ship one architecture as a standalone model: a torch.export program, ONNX, and a model card.

Why these formats: ``model.pt2`` (``torch.export``) runs with ``torch.export.load(p).module()``
in a process that has no archlab and no model class; ``model.onnx`` runs in onnxruntime without
torch at all. Both have a dynamic batch dimension; frames, height and width are fixed at export
time (``ClampedMaxPool`` branches on the clip length, so the frame count must be static).

Which trial a study exports ("rank 1" on a multi-objective front):
  * The search's finished trials compete: status ``ok`` or ``stopped`` (ASHA stopped it early; its
    metrics are its last epoch's), as ``archlab.results.finished`` defines them, with finite
    objectives. Baseline trials (``baseline`` true: references trained on the knee's skeleton)
    do not; export one with ``--trial``. The front is ``archlab.pareto.non_dominated`` on the
    study's objectives (study.yaml ``objectives``/``directions``).
  * With a limit (``--max-latency MS`` on ``latency_ms``, ``--max-gmacs G`` on ``gmacs``): the
    trials within every limit are taken first, their front is computed, and its points are
    ranked by ``val_top1``, best first (ties: the study's other objectives, then trial number).
    Rank 1 is the most accurate trial within the budget; rank k the k-th most accurate
    non-dominated trial within it.
  * Without limits: rank 1 is the front's knee point (``archlab.pareto.knee_point``: the front
    point closest to the utopia point after scaling each objective to [0, 1] over the front),
    the balanced trade-off to ship when nobody gave a budget. Rank k is the knee of the front
    that remains after removing ranks 1..k-1, so ranks walk from the balanced middle of the
    front towards its extremes (a tie goes to the earlier row of results.csv).
  ``--trial ID`` bypasses the rule (ID is a ``trial_id``, or a trial ``number``).

Nothing is written unless the exported files reproduce the eager model: every requested
format is saved into a temporary directory beside the destination, loaded back from disk,
and run on fresh random clips at batch sizes other than the example batch it was traced with
(which proves the batch dimension is dynamic). The check passes when the maximum absolute
difference is within ``REL_TOL`` (1e-4) of the output scale (the largest absolute eager
logit); float32 reordering noise is ~1e-6 of it, a wrong layer is orders of magnitude more.
Only then are the card and checksums written and the directory renamed into place.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import math
import os
import platform
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .builder import fuse_bn
from .errors import UserError
from .genome import Genome, GenomeError, parse

Clip = tuple[int, int, int]  # frames, height, width

FORMATS = ("pt2", "onnx")
FILE_NAMES = {"pt2": "model.pt2", "onnx": "model.onnx"}
INPUT_NAME, OUTPUT_NAME = "clip", "logits"
EXAMPLE_BATCH = 2  # traced example (embedded in model.pt2); batch 1 would be specialised
VERIFY_BATCHES = (2, 3, 1)  # fresh clips; 3 and 1 differ from the example batch
REL_TOL = 1e-4  # max |exported - eager| <= REL_TOL * max |eager|
# A .pt2 in a bf16 form (``--form``) against fp32 eager: bf16 keeps 8 significant bits
# (4e-3 per rounding); 60 layers accumulate ~1e-2 of the output scale (measured 1.5e-3 on
# p3d63 weights at init), a wrong layer gives O(1). The same bound calibration uses.
BF16_REL_TOL = 2e-2
ABS_FLOOR = 1e-6  # ... or this, for a model whose logits are all ~0
DEFAULT_CLIP: Clip = (16, 160, 160)
ACCURACY = "val_top1"
LIMIT_COLUMNS = {"max_latency": "latency_ms", "max_gmacs": "gmacs"}
REQUIRED_COLUMNS = ("trial_id", "number", "genome", "status", ACCURACY, "checkpoint")
ONNX_MAX_EMBEDDED_BYTES = 1_800_000_000  # protobuf's 2 GiB limit, with headroom


class VerificationError(Exception):
    """An exported file does not reproduce the eager model (an exporter problem, not the
    user's): carries the numbers; nothing was written."""

    def __init__(self, checks: list["Check"]):
        self.checks = checks
        bad = [c for c in checks if not c.ok]
        super().__init__("; ".join(c.describe() for c in bad))


# ---- what is exported --------------------------------------------------------------------

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


@dataclass
class Check:
    """One verification: an exported format against eager torch on one batch of fresh clips."""

    format: str
    batch: int
    max_abs_err: float
    max_rel_err: float  # max_abs_err / scale
    scale: float  # max |eager logit|
    tol: float  # allowed max_abs_err
    ok: bool

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (f"{self.format} batch {self.batch}: max abs err {self.max_abs_err:.2e} "
                f"(rel {self.max_rel_err:.2e} of output scale {self.scale:.3g}), "
                f"tolerance {self.tol:.2e}: {verdict}")


@dataclass
class ExportResult:
    out_dir: Path
    files: dict[str, dict[str, Any]]  # file name -> {"sha256", "bytes"}
    checks: list[Check]
    card: dict[str, Any]
    replaced: bool = False  # an earlier export in out_dir was replaced
    notes: list[str] = field(default_factory=list)


# ---- studies: reading and choosing a trial ----------------------------------------------

def load_study(study_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """results.csv as a DataFrame (ids as text) and study.yaml as a dict."""
    import pandas as pd
    import yaml

    d = Path(study_dir)
    if not d.is_dir():
        raise UserError(f"study directory {d} does not exist")
    csv = d / "results.csv"
    if not csv.is_file():
        raise UserError(f"{d} has no results.csv: is it a study directory (archlab search --out ...)?")
    try:
        df = pd.read_csv(csv, dtype={"trial_id": str, "genome": str, "genome_id": str,
                                     "checkpoint": str, "status": str})
    except (ValueError, OSError) as e:
        raise UserError(f"{csv} cannot be read: {_first_line(e)}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{csv} lacks the column(s) {', '.join(missing)}")
    settings: dict[str, Any] = {}
    yml = d / "study.yaml"
    if yml.is_file():
        try:
            settings = yaml.safe_load(yml.read_text()) or {}
        except yaml.YAMLError as e:
            raise UserError(f"{yml} is not valid YAML: {_first_line(e)}") from None
        if not isinstance(settings, dict):
            raise UserError(f"{yml} must hold a mapping of settings")
    return df, settings


def objectives_of(settings: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The study's objectives and their directions ("max"/"min"): study.yaml's ``objectives``
    (default val_top1 + latency_ms), directions from study.yaml or ``pareto.DIRECTIONS``."""
    from .pareto import DIRECTIONS

    objectives = settings.get("objectives") or [ACCURACY, "latency_ms"]
    if isinstance(objectives, str):
        objectives = [objectives]
    directions = settings.get("directions")
    if directions is None:
        unknown = [o for o in objectives if o not in DIRECTIONS]
        if unknown:
            raise UserError(f"study.yaml: objective {unknown[0]!r} has no known direction "
                            f"({', '.join(DIRECTIONS)}); add `directions:`")
        directions = [DIRECTIONS[o] for o in objectives]
    directions = [{"maximize": "max", "minimize": "min"}.get(str(d), str(d)) for d in directions]  # Optuna's words
    return [str(o) for o in objectives], [str(d) for d in directions]


def select_trial(df: Any, objectives: Sequence[str], directions: Sequence[str], rank: int = 1,
                 max_latency: float | None = None, max_gmacs: float | None = None) -> tuple[Any, str]:
    """The index label of the rank-``rank`` trial by the rule in the module docstring, and the
    rule in words."""
    from . import pareto

    if rank < 1:
        raise UserError(f"--rank {rank}: ranks start at 1")
    absent = [o for o in objectives if o not in df.columns]
    if absent:
        raise UserError(f"results.csv has no column for the objective(s) {', '.join(absent)}")
    from .results import finished

    ok = finished(df)
    if "latency_ms" in objectives:
        from .forms import check_one_form

        check_one_form(ok)  # latencies of different forms/runtimes are not one front
    if "baseline" in ok.columns:
        ok = ok[~ok["baseline"].fillna(False).astype(bool)]
    ok = ok[ok[list(objectives)].apply(_finite_column).all(axis=1)]
    if ok.empty:
        raise UserError("no search trial finished (status ok or stopped) with all objectives: nothing to export")
    limits = {LIMIT_COLUMNS[k]: v for k, v in (("max_latency", max_latency), ("max_gmacs", max_gmacs))
              if v is not None}
    for col in limits:
        if col not in ok.columns:
            raise UserError(f"results.csv has no {col} column to apply the limit to")
    within = ok
    for col, limit in limits.items():
        within = within[within[col].astype(float) <= limit]
    what = " and ".join(f"{col} <= {v:g}" for col, v in limits.items())
    if within.empty:
        best = ", ".join(f"smallest {col} {ok[col].astype(float).min():g}" for col in limits)
        raise UserError(f"no finished search trial has {what} ({best})")
    front = within[pareto.non_dominated(within, objectives, directions).to_numpy()]

    if limits:
        keys = [ACCURACY] + [o for o in objectives if o != ACCURACY] + ["number"]
        ascending = [False] + [d == "min" for o, d in zip(objectives, directions) if o != ACCURACY] + [True]
        order = list(front.sort_values(keys, ascending=ascending, kind="stable").index)
        rule = f"best {ACCURACY} on the front of the {len(within)} trials with {what}"
    else:
        order, rest = [], front
        while len(order) < rank and not rest.empty:
            knee = pareto.knee_point(rest, objectives, directions)
            order.append(knee)
            rest = rest.drop(index=knee)
        rule = f"knee point of the {len(front)}-trial front on {', '.join(objectives)}"
        if rank > 1:
            rule += f" (rank {rank}: knee after removing ranks 1..{rank - 1})"
    if rank > len(order) or rank > len(front):
        raise UserError(f"--rank {rank}: the front has only {len(front)} trial(s)"
                        + (f" with {what}" if limits else ""))
    return order[rank - 1], rule


def find_trial(df: Any, trial: str) -> Any:
    """The row label of ``--trial ID``: a trial_id, else (for digits) a trial number."""
    hit = df.index[df["trial_id"].astype(str) == str(trial)]
    if len(hit) == 0 and str(trial).isdigit():
        hit = df.index[df["number"].astype("Int64") == int(trial)]
    if len(hit) == 0:
        ids = list(df["trial_id"].astype(str))
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise UserError(f"trial {trial!r} is not in results.csv ({len(ids)} trials: {shown})")
    if len(hit) > 1:
        raise UserError(f"trial {trial!r} matches {len(hit)} rows of results.csv; give its trial_id")
    return hit[0]


def _finite_column(col: Any) -> Any:
    import pandas as pd

    vals = pd.to_numeric(col, errors="coerce")
    return vals.notna() & vals.abs().ne(math.inf)


# ---- checkpoints --------------------------------------------------------------------------

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
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def check_fits(model: nn.Module, state_dict: dict[str, Any], where: str, genome: Genome) -> None:
    """Raise one UserError line unless ``state_dict`` has exactly the model's keys and shapes."""
    want = model.state_dict()
    missing = [k for k in want if k not in state_dict]
    unexpected = [k for k in state_dict if k not in want]
    shapes = [k for k in want if k in state_dict and
              (not isinstance(state_dict[k], torch.Tensor) or tuple(state_dict[k].shape) != tuple(want[k].shape))]
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


# ---- resolving what to export -------------------------------------------------------------

def resolve_source(study_dir: str | Path | None = None, genome: str | None = None, *, rank: int | None = None,
                   trial: str | None = None, weights: str | None = None, max_latency: float | None = None,
                   max_gmacs: float | None = None) -> Source:
    """What ``archlab export`` was asked for, checked, with the weights loaded.

    Exactly one of ``study_dir`` and ``genome``. ``weights``: "trial" (default for a study:
    the trial's ``best.pt``), "none" (fresh initialisation, default for a genome) or a path.
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
            raise UserError("--rank, --trial, --max-latency and --max-gmacs choose a trial of a study; "
                            "they do not apply to --genome")
        return _genome_source(genome, weights or "none")
    assert study_dir is not None
    return _study_source(Path(study_dir), rank, trial, weights or "trial", max_latency, max_gmacs)


def _genome_source(text: str, weights: str) -> Source:
    from .presets import DEFAULT_INPUT, resolve

    g = resolve(text)
    clip = DEFAULT_INPUT.get(text.strip())
    if weights == "trial":
        raise UserError("--weights trial needs a STUDY_DIR; with --genome use --weights none or a PATH")
    if weights == "none":
        return Source(genome=g, state_dict=None, weights={"kind": "none"}, clip=clip)
    sd, ckpt = _weights_from(Path(weights), g, weights)
    return _with_checkpoint(Source(genome=g, state_dict=sd, weights={"kind": "path", "path": weights},
                                   clip=clip), ckpt)


def _study_source(d: Path, rank: int | None, trial: str | None, weights: str,
                  max_latency: float | None, max_gmacs: float | None) -> Source:
    df, settings = load_study(d)
    if trial is not None:
        if max_latency is not None or max_gmacs is not None:
            raise UserError("--max-latency/--max-gmacs choose among trials; they do not apply to --trial")
        label = find_trial(df, trial)
        selection = f"trial {trial} (given with --trial)"
    else:
        objectives, directions = objectives_of(settings)
        rank = 1 if rank is None else rank
        label, rule = select_trial(df, objectives, directions, rank, max_latency, max_gmacs)
        selection = f"rank {rank}: {rule}"
    row = {k: _json_value(v) for k, v in df.loc[label].to_dict().items()}
    tid = row["trial_id"]
    try:
        g = parse(str(row["genome"]))
    except GenomeError as e:
        raise UserError(f"trial {tid}: its genome in results.csv is invalid: {e}") from None

    clip = None
    study_input = settings.get("input") or {}
    if isinstance(study_input, dict) and study_input.get("frames") and study_input.get("size"):
        clip = (int(study_input["frames"]), int(study_input["size"]), int(study_input["size"]))
    src = Source(genome=g, state_dict=None, weights={"kind": weights if weights in ("trial", "none") else "path"},
                 clip=clip, trial=row, selection=selection, study_dir=d,
                 study_name=str(settings.get("name") or d.resolve().name))
    if weights == "none":
        return src
    if weights == "trial":
        ck = row.get("checkpoint")
        if not isinstance(ck, str) or not ck.strip():
            raise UserError(f"trial {tid} (status {row.get('status')}) has no checkpoint in results.csv; "
                            f"use --weights none or --weights PATH")
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
            src.weights[key] = _json_value(ckpt[key])
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
    from .builder import build

    with torch.random.fork_rng():
        torch.manual_seed(0)  # --weights none is reproducible
        model = build(src.genome)
    if src.state_dict is not None:
        check_fits(model, src.state_dict, src.weights.get("path", "the checkpoint"), src.genome)
        model.load_state_dict(src.state_dict, strict=True)
    return model.eval()


# ---- export and verification --------------------------------------------------------------

def _batch_dim() -> dict[int, Any]:
    return {0: torch.export.Dim("batch", min=1)}


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporters' chatter (torchvision-op notices, deprecation warnings) is not for users."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_pt2(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with _quiet():
        program = torch.export.export(model, (example,), dynamic_shapes=(_batch_dim(),))
        torch.export.save(program, str(path))


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    big = sum(p.numel() * p.element_size() for p in model.state_dict().values()) > ONNX_MAX_EMBEDDED_BYTES
    with _quiet():
        torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=(_batch_dim(),),
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          external_data=big, verbose=False)
    import onnx

    onnx.checker.check_model(str(path))


Runner = Callable[[torch.Tensor], torch.Tensor]


def load_pt2(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


def load_onnx(path: Path) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])

    return run


def random_clips(clip: Clip, batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *clip, generator=g)


def compare(fmt: str, batch: int, got: torch.Tensor, want: torch.Tensor, rel_tol: float = REL_TOL) -> Check:
    """One check: max abs error against ``rel_tol`` x the output scale (max |eager|)."""
    if tuple(got.shape) != tuple(want.shape):
        return Check(fmt, batch, math.inf, math.inf, 0.0, 0.0, False)
    got, want = got.detach().float(), want.detach().float()
    scale = float(want.abs().max())
    err = float((got - want).abs().max())
    if not math.isfinite(err):
        err = math.inf
    tol = max(rel_tol * scale, ABS_FLOOR)
    return Check(fmt, batch, err, err / scale if scale > 0 else math.inf if err > 0 else 0.0, scale, tol,
                 err <= tol)


def verify(model: nn.Module, runners: dict[str, Runner], clip: Clip,
           batches: Sequence[int] = VERIFY_BATCHES, seed: int = 1234,
           rel_tols: dict[str, float] | None = None) -> list[Check]:
    """Every runner against eager ``model`` on fresh random clips of each batch size
    (``rel_tols``: per format, default ``REL_TOL``)."""
    rel_tols = rel_tols or {}
    checks = []
    for i, b in enumerate(batches):
        x = random_clips(clip, b, seed + i)
        with torch.no_grad():
            want = model(x)
        if not torch.isfinite(want).all():
            raise UserError("the model's outputs are not finite (NaN/inf): the weights are broken")
        for fmt, run in runners.items():
            checks.append(compare(fmt, b, run(x.clone()), want, rel_tols.get(fmt, REL_TOL)))
    return sorted(checks, key=lambda c: list(runners).index(c.format))  # grouped by format


def default_out_dir(src: Source) -> Path:
    base = src.study_dir / "export" if src.study_dir is not None else Path("export")
    return base / src.genome.id


def export(src: Source, out: str | Path | None = None, formats: Sequence[str] = FORMATS,
           clip: Clip | None = None, progress: Callable[[str], None] = lambda _m: None,
           form: Any = None) -> ExportResult:
    """Export, verify, write the card; all into a temp dir renamed to ``out`` at the end.

    ``clip`` (frames, height, width) overrides the one stored with the weights or study.
    ``form`` (``forms.Form``, default fp32 NCDHW): the precision and layout model.pt2 runs
    in, behind a float32 interface (``forms.InForm``), e.g. this machine's calibrated
    inference form; checked against fp32 eager within ``BF16_REL_TOL`` when not fp32.
    model.onnx stays fp32 (onnxruntime's CPU kernels are fp32).
    Raises VerificationError (and writes nothing) if an exported file disagrees with eager.
    """
    from .forms import FP32, InForm
    from .profile import count_fast

    form = (form or FP32).with_threads(None)

    formats = list(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"format {bad[0] if bad else ''!r} is not one of {', '.join(FORMATS)}")
    notes: list[str] = []
    stored = src.clip
    clip = clip or stored or DEFAULT_CLIP
    if stored is not None and clip != stored:
        notes.append(f"exporting for input {_clip_str(clip)}; the weights were made for {_clip_str(stored)}")
    out_dir = Path(out) if out is not None else default_out_dir(src)
    if out_dir.exists() and (not out_dir.is_dir() or
                             (any(out_dir.iterdir()) and not (out_dir / "model_card.json").is_file())):
        raise UserError(f"--out {out_dir} exists and is not an archlab export: choose a new or empty directory")
    cost = count_fast(src.genome, clip)  # also rejects a clip too small for the network, cheaply
    classes = src.classes or [f"class_{i}" for i in range(src.genome.classes)]
    if len(classes) != src.genome.classes:
        raise UserError(f"the checkpoint names {len(classes)} classes but the genome has cls={src.genome.classes}")
    model = build_model(src)

    created = [p for p in [out_dir.parent, *out_dir.parent.parents] if not p.exists()]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the export is an ordinary folder
        example = random_clips(clip, EXAMPLE_BATCH, seed=0)
        # What ships is the inference form: BatchNorm folded into the convs (builder.fuse_bn).
        # A .pt2 runs its graph as written, and the folded one was measured faster on CPU
        # (bench/export_latency.py); onnxruntime folds BN itself, so ONNX gets the same graph.
        # Verification below still compares against the unfused eager network.
        deployed = fuse_bn(model)
        runners: dict[str, Runner] = {}
        if "pt2" in formats:
            progress(f"exporting {FILE_NAMES['pt2']} (torch.export, BN folded, dynamic batch, example batch {EXAMPLE_BATCH})...")
            export_pt2(deployed if form == FP32 else InForm(copy.deepcopy(deployed), form).eval(), example,
                       tmp / FILE_NAMES["pt2"])
            runners["pt2"] = load_pt2(tmp / FILE_NAMES["pt2"])
        if "onnx" in formats:
            progress(f"exporting {FILE_NAMES['onnx']} (torch.onnx dynamo exporter, dynamic batch)...")
            export_onnx(deployed, example, tmp / FILE_NAMES["onnx"])
            runners["onnx"] = load_onnx(tmp / FILE_NAMES["onnx"])
        progress(f"verifying {' and '.join(runners)} against eager torch on fresh clips, "
                 f"batches {', '.join(map(str, VERIFY_BATCHES))}...")
        checks = verify(model, runners, clip, rel_tols={"pt2": REL_TOL if form.precision == "fp32" else BF16_REL_TOL})
        if not all(c.ok for c in checks):
            raise VerificationError(checks)
        files = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in sorted(tmp.iterdir())}
        card = model_card(src, clip, classes, cost.params, cost.macs, files, checks, tmp)
        card["form"] = {**form_card(form, formats),
                        "pt2_rel_tol": REL_TOL if form.precision == "fp32" else BF16_REL_TOL}
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
        (tmp / "MODEL_CARD.md").write_text(render_card(card))
        replaced = out_dir.exists()
        if replaced:
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / out_dir.name)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # deepest first: leave no empty export/ behind
            try:
                p.rmdir()
            except OSError:
                break
        raise
    return ExportResult(out_dir=out_dir, files=files, checks=checks, card=card, replaced=replaced, notes=notes)


# ---- the model card -----------------------------------------------------------------------

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in ("onnx", "onnxruntime", "onnxscript", "archlab"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def how_to_load(clip: Clip, classes: int) -> dict[str, str]:
    """Five lines each, runnable as they stand from the export directory."""
    shape = ", ".join(map(str, (2, 3, *clip)))
    torch_snippet = "\n".join([
        "import torch",
        f'model = torch.export.load("{FILE_NAMES["pt2"]}").module()',
        f"clip = torch.randn({shape})  # [B, 3, T, H, W] float32, normalised with mean/std",
        "with torch.no_grad():",
        f"    logits = model(clip)  # [B, {classes}]",
    ])
    ort_snippet = "\n".join([
        "import numpy as np, onnxruntime as ort",
        f'session = ort.InferenceSession("{FILE_NAMES["onnx"]}", providers=["CPUExecutionProvider"])',
        f"clip = np.random.randn({shape}).astype(np.float32)  # [B, 3, T, H, W], normalised",
        f'logits = session.run(["{OUTPUT_NAME}"], {{"{INPUT_NAME}": clip}})[0]  # [B, {classes}]',
        "print(logits.argmax(axis=1))",
    ])
    return {"torch": torch_snippet, "onnxruntime": ort_snippet}


def model_card(src: Source, clip: Clip, classes: list[str], params: int, macs: int,
               files: dict[str, dict[str, Any]], checks: list[Check], folder: Path) -> dict[str, Any]:
    """Everything a user of the files needs, as JSON (MODEL_CARD.md renders the same dict)."""
    t, h, w = clip
    onnx_info = None
    if FILE_NAMES["onnx"] in files:
        import onnx

        m = onnx.load(str(folder / FILE_NAMES["onnx"]), load_external_data=False)
        onnx_info = {"opset": next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None),
                     "input": INPUT_NAME, "output": OUTPUT_NAME}
    return {
        "card_version": 1,
        "genome": str(src.genome),
        "genome_id": src.genome.id,
        "input": {
            "name": INPUT_NAME, "layout": "[B, 3, T, H, W]", "dtype": "float32",
            "batch": "dynamic (>= 1)", "frames": t, "height": h, "width": w, "size": h if h == w else None,
            "channels": "RGB", "mean": src.mean, "std": src.std,
            "normalisation": ("(x / 255 - mean) / std per channel, x = uint8 RGB frames (as archlab's loader "
                              "feeds training)") if src.mean is not None
            else "not recorded (no training input spec came with the weights)",
        },
        "output": {"name": OUTPUT_NAME, "shape": f"[B, {len(classes)}]",
                   "meaning": "class logits (softmax for probabilities)"},
        "classes": classes,
        "params": params,
        "macs": macs,
        "gmacs": macs / 1e9,
        "macs_note": f"multiply-adds of conv and linear layers for one {_clip_str(clip)} clip",
        "weights": src.weights,
        "study": None if src.study_dir is None else {"name": src.study_name, "selection": src.selection},
        "trial": src.trial,
        "files": files,
        "verification": {
            "batches": list(VERIFY_BATCHES), "example_batch": EXAMPLE_BATCH, "rel_tol": REL_TOL,
            "rule": "max |exported - eager| <= rel_tol * max |eager| on fresh random clips",
            "exported_form": "inference form: BatchNorm folded into the convs it follows; eager is the unfolded network",
            "checks": [asdict(c) for c in checks],
        },
        "onnx": onnx_info,
        "versions": versions(),
        "how_to_load": {k: v for k, v in how_to_load(clip, len(classes)).items()
                        if (k == "torch" and FILE_NAMES["pt2"] in files) or (k == "onnxruntime" and onnx_info)},
    }


def form_card(form: Any, formats: Sequence[str]) -> dict[str, Any]:
    """Which form each file runs in, and what this machine's calibration measured (if it
    was calibrated: ``archlab calibrate``), for the card."""
    from . import calibrate

    out: dict[str, Any] = {"pt2": form.name if "pt2" in formats else None,
                           "onnx": "fp32/ncdhw" if "onnx" in formats else None,
                           "interface": "float32 [B, 3, T, H, W] in, float32 logits out, whatever the form",
                           "calibration": None}
    try:
        cal = calibrate.load("cpu") if calibrate.mode() != "off" else None
    except UserError:
        cal = None
    if cal is not None:
        out["calibration"] = {
            "cpu": cal.machine.get("cpu"), "torch": cal.machine.get("torch"), "created": cal.created,
            "chosen_inference": cal.inference, "measured_on": f"{cal.settings.get('infer_genome')} "
            f"1x{'x'.join(map(str, cal.settings.get('infer_clip', [])))}",
            "inference": [{"form": r.form, "median_ms": r.median_ms, "speedup_vs_fp32": r.speedup,
                           "max_rel_err": r.numerics, "ok": r.ok} for r in cal.rows if r.kind == "inference"]}
    return out


def render_card(card: dict[str, Any]) -> str:
    """MODEL_CARD.md: the JSON card for people."""
    inp = card["input"]
    lines = [
        f"# Model card: `{card['genome']}`",
        "",
        f"- genome id: `{card['genome_id']}`",
        f"- parameters: {card['params']:,}",
        f"- GMACs: {card['gmacs']:.4g} ({card['macs_note']})",
        f"- input `{inp['name']}`: float32 {inp['layout']}, batch {inp['batch']}, T={inp['frames']}, "
        f"H={inp['height']}, W={inp['width']}, RGB",
        f"- normalisation: " + (f"mean {inp['mean']}, std {inp['std']}: " if inp["mean"] is not None else "")
        + inp["normalisation"],
        f"- output `{card['output']['name']}`: {card['output']['shape']} {card['output']['meaning']}",
        f"- weights: {_weights_words(card['weights'])}",
    ]
    if card["study"]:
        lines.append(f"- study `{card['study']['name']}`, chosen as {card['study']['selection']}")
    classes = card["classes"]
    lines += ["", f"## Classes ({len(classes)})", "", ", ".join(f"{i}: {c}" for i, c in enumerate(classes))]
    if card["trial"]:
        lines += ["", "## Search metrics of its trial", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_md_cell(v)} |" for k, v in card["trial"].items()]
    fc = card.get("form")
    if fc:
        runs_in = ", ".join(f"{FILE_NAMES[k]} runs in `{fc[k]}`" for k in FORMATS if fc.get(k))
        lines += ["", "## Form", "", f"{runs_in} ({fc['interface']}); verified within "
                  f"{fc.get('pt2_rel_tol', REL_TOL):g} of the output scale."]
        cal = fc.get("calibration")
        if cal:
            lines += ["", f"Inference forms measured by `archlab calibrate` on {cal['cpu']} (torch {cal['torch']}, "
                      f"{cal['created']}, {cal['measured_on']}); chosen: "
                      + ", ".join(f"{f} at {t} thread(s)" for t, f in cal["chosen_inference"].items()) + ":", "",
                      "| form | median ms | vs fp32 | max rel err | ok |", "|---|---:|---:|---:|---|"]
            lines += [f"| {r['form']} | {r['median_ms']:.1f} | {r['speedup_vs_fp32']:.2f}x | {r['max_rel_err']:.1e} | "
                      f"{'yes' if r['ok'] else 'no'} |" for r in cal["inference"]]
    lines += ["", "## Files", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    lines += [f"| {n} | {f['bytes']:,} | `{f['sha256']}` |" for n, f in card["files"].items()]
    v = card["verification"]
    lines += ["", "## Verification", "",
              f"Exported files loaded back from disk vs eager PyTorch, fresh random clips; example batch "
              f"{v['example_batch']} (traced), pass if {v['rule']} (rel_tol {v['rel_tol']:g}).", "",
              "| format | batch | max abs err | max rel err | tolerance | ok |", "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {c['format']} | {c['batch']} | {c['max_abs_err']:.2e} | {c['max_rel_err']:.2e} | "
              f"{c['tol']:.2e} | {'yes' if c['ok'] else 'NO'} |" for c in v["checks"]]
    for k, title in (("torch", "PyTorch (no archlab needed)"), ("onnxruntime", "onnxruntime")):
        if k in card["how_to_load"]:
            lines += ["", f"## Load with {title}", "", "```python", card["how_to_load"][k], "```"]
    lines += ["", "## Versions", "", ", ".join(f"{k} {val}" for k, val in card["versions"].items() if val), ""]
    return "\n".join(lines)


def _weights_words(w: dict[str, Any]) -> str:
    if w["kind"] == "none":
        return "untrained: fresh initialisation (seed 0)"
    text = f"{'trial checkpoint' if w['kind'] == 'trial' else 'checkpoint'} `{w.get('path')}`"
    if w.get("epoch") is not None:
        text += f", epoch {w['epoch']}"
    return text


# ---- small helpers ------------------------------------------------------------------------

def _md_cell(v: Any) -> str:
    """A markdown table cell: genome strings contain '|', which would split the cell."""
    return str(v).replace("|", "\\|")


def _clip_str(clip: Clip) -> str:
    return "x".join(map(str, clip))


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def _json_value(v: Any) -> Any:
    """numpy/pandas scalars and NaN -> plain JSON values, recursively."""
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, torch.Tensor):
        return _json_value(v.tolist())
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
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError, ImportError):
        pass
    return str(v)
