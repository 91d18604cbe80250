"""Export, verify, write the card: all into a temporary directory renamed into place.

Nothing is written unless the exported files reproduce the eager model (``verify``): every
requested format is saved into a temporary directory beside the destination, loaded back
from disk and checked; only then are the card and checksums written and the directory
renamed to its final name (an earlier export there is replaced whole).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..measure.forms import FP32, Form, InForm
from ..measure.graph_files import (
    FILE_NAMES,
    FORMATS,
    Clip,
    Runner,
    clip_str,
    export_onnx,
    export_pt2,
    load_onnx,
    load_pt2,
)
from ..measure.profile import count_fast
from ..model.builder import fuse_bn
from ..util.errors import UserError, shorten
from ..util.files import atomic_write
from .card import form_card, model_card, render_card, sha256
from .source import Source, build_model
from .verify import BF16_REL_TOL, EXAMPLE_BATCH, REL_TOL, VERIFY_BATCHES, Check, VerificationError, random_clips, verify

DEFAULT_CLIP: Clip = (16, 160, 160)  # a genome exported without a study, a checkpoint or --input


@dataclass
class ExportResult:
    out_dir: Path
    files: dict[str, dict[str, Any]]  # file name -> {"sha256", "bytes"}
    checks: list[Check]
    card: dict[str, Any]
    replaced: bool = False  # an earlier export in out_dir was replaced
    notes: list[str] = field(default_factory=list)


def default_out_dir(src: Source) -> Path:
    base = src.study_dir / "export" if src.study_dir is not None else Path("export")
    return base / src.genome.id


def export(
    src: Source,
    out: str | Path | None = None,
    formats: Sequence[str] = FORMATS,
    clip: Clip | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    form: Form | None = None,
) -> ExportResult:
    """Export, verify, write the card; all into a temp dir renamed to ``out`` at the end.

    ``clip`` (frames, height, width) overrides the one stored with the weights or study.
    ``form`` (``forms.Form``, default fp32 NCDHW): the precision and layout model.pt2 runs
    in, behind a float32 interface (``forms.InForm``), e.g. this machine's calibrated
    inference form; checked against fp32 eager within ``BF16_REL_TOL`` when not fp32.
    model.onnx stays fp32 (onnxruntime's CPU kernels are fp32).
    Raises VerificationError (and writes nothing) if an exported file disagrees with eager.
    """
    form = (form or FP32).with_threads(None)
    pt2_tol = REL_TOL if form.precision == "fp32" else BF16_REL_TOL
    formats = list(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"format {shorten(bad[0] if bad else '')} is not one of {', '.join(FORMATS)}")
    notes: list[str] = []
    stored = src.clip
    clip = clip or stored or DEFAULT_CLIP
    if stored is not None and clip != stored:
        notes.append(f"exporting for input {clip_str(clip)}; the weights were made for {clip_str(stored)}")
    out_dir = Path(out) if out is not None else default_out_dir(src)
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / "model_card.json").is_file())
    ):
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
            progress(
                f"exporting {FILE_NAMES['pt2']} (torch.export, BN folded, dynamic batch, example batch {EXAMPLE_BATCH})..."
            )
            export_pt2(
                deployed if form == FP32 else InForm(copy.deepcopy(deployed), form).eval(),
                example,
                tmp / FILE_NAMES["pt2"],
            )
            runners["pt2"] = load_pt2(tmp / FILE_NAMES["pt2"])
        if "onnx" in formats:
            progress(f"exporting {FILE_NAMES['onnx']} (torch.onnx dynamo exporter, dynamic batch)...")
            export_onnx(deployed, example, tmp / FILE_NAMES["onnx"])
            runners["onnx"] = load_onnx(tmp / FILE_NAMES["onnx"])
        progress(
            f"verifying {' and '.join(runners)} against eager torch on fresh clips, "
            f"batches {', '.join(map(str, VERIFY_BATCHES))}..."
        )
        checks = verify(model, runners, clip, rel_tols={"pt2": pt2_tol})
        if not all(c.ok for c in checks):
            raise VerificationError(checks)
        files = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in sorted(tmp.iterdir())}
        card = model_card(src, clip, classes, cost.params, cost.macs, files, checks, tmp)
        card["form"] = {**form_card(form, formats), "pt2_rel_tol": pt2_tol}
        atomic_write(tmp / "model_card.json", json.dumps(card, indent=2) + "\n")
        atomic_write(tmp / "MODEL_CARD.md", render_card(card))
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
