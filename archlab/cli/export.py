"""`archlab export`: one network as .pt2 + ONNX + a model card, verified."""

from __future__ import annotations

import argparse
import sys

from ..util.outdir import writable_folder
from .common import fmt_int, table
from .forms import add_export_form_arg, checked_form, resolve_export_form

EXPORT_DESCRIPTION = """\
Export one network as model.pt2 (torch.export, runs without archlab), model.onnx (onnxruntime)
and a model card, after checking both against eager PyTorch (nothing is written if they differ).

What of a study's trial: its target, the network the study's costs are of, at the target
clip and with the study's classes: untrained unless --weights gives the checkpoint of its
retrain (archlab train STUDY --rank N --out DIR). --proxy: the reduced network the trial
trained, with its best.pt. (A study from before targets: the trained network, as before.)
Only trials trained to the full budget (status ok) compete; baselines only with --trial.

Which trial:
  with --max-latency / --max-gmacs: among the trials within the limits, the non-dominated ones
    ranked by val_top1, best first: rank 1 is the most accurate trial within the budget.
  without limits: rank 1 is the knee point of the front (closest to the utopia point with each
    objective scaled to [0, 1] over the front); rank k is the knee of the front that remains
    after removing ranks 1..k-1 (from the balanced middle towards the extremes; ties: the
    earlier row of results.csv).
  --trial N skips the rule (the trial number the report and search print; bN for baseline N)."""


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import FORMATS, VerificationError, export, resolve_source
    from ..measure.profile import parse_clip

    # the options first (--out, --input, --form), then the study or genome, then the
    # calibrated form (may measure this machine, ~3 min), then the export
    if args.out is not None:
        writable_folder("--out", args.out)
    clip = parse_clip(args.input) if args.input else None
    form = checked_form(args.form)
    src = resolve_source(
        args.study_dir,
        args.genome,
        rank=args.rank,
        trial=args.trial,
        weights=args.weights,
        max_latency=args.max_latency,
        max_gmacs=args.max_gmacs,
        proxy=args.proxy,
    )
    form = resolve_export_form(form)
    if src.trial is not None:
        print(f"trial   {src.trial['trial']}  ({src.selection})")
    print(f"genome  {src.genome}\nid      {src.genome.id}")
    formats = FORMATS if args.format == "all" else (args.format,)
    try:
        res = export(src, args.out, formats, clip, progress=lambda m: print(m, file=sys.stderr, flush=True), form=form)
    except VerificationError as e:  # the exporter's fault, not the user's: exit 1, with the numbers
        print(f"archlab export: error: verification failed, nothing written: {e}", file=sys.stderr)
        return 1
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    rows = [
        [
            c.format,
            str(c.batch),
            f"{c.max_abs_err:.2e}",
            f"{c.max_rel_err:.2e}",
            f"{c.tol:.2e}",
            "ok" if c.ok else "FAILED",
        ]
        for c in res.checks
    ]
    print(table(rows, ["format", "batch", "max abs err", "max rel err", "tolerance", "verdict"]))
    rows = [[name, fmt_int(f["bytes"]), f["sha256"]] for name, f in res.files.items()]
    print(table(rows, ["file", "bytes", "sha256"], right={1}))
    print(f"{'replaced' if res.replaced else 'wrote'} {res.out_dir}/ (model card: MODEL_CARD.md, model_card.json)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a study's best trial or a genome: .pt2 + ONNX + model card",
        description=EXPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("study_dir", nargs="?", metavar="STUDY_DIR", help="a study directory (holds results.csv)")
    p.add_argument("--genome", metavar="GENOME|PRESET", help="export this genome instead of a study's trial")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--rank", type=int, help="the k-th trial by the rule above (default 1)")
    which.add_argument("--trial", metavar="N", help="this trial: its number (bN: baseline N), as the report prints it")
    p.add_argument(
        "--weights",
        metavar="trial|none|PATH",
        help="none: fresh initialisation (default for a study's target and for --genome); trial: the trial's "
        "best.pt (default with --proxy); PATH: this checkpoint (a retrain's best.pt)",
    )
    p.add_argument(
        "--proxy",
        action="store_true",
        help="export the trial's proxy (the reduced network it trained, with its best.pt) instead of the study's "
        "target",
    )
    p.add_argument("--format", choices=["pt2", "onnx", "all"], default="all", help="what to write (default all)")
    p.add_argument(
        "--input",
        help="clip FRAMESxHEIGHTxWIDTH (default: the checkpoint's, else the study's, "
        "else the preset's, else 16x160x160); batch stays dynamic",
    )
    p.add_argument("--out", metavar="DIR", help="default STUDY_DIR/export/<genome_id>/ or ./export/<genome_id>/")
    p.add_argument("--max-latency", type=float, metavar="MS", help="rank among trials with latency_ms <= MS")
    p.add_argument("--max-gmacs", type=float, metavar="G", help="rank among trials with gmacs <= G")
    add_export_form_arg(p)
    p.set_defaults(func=cmd_export)
