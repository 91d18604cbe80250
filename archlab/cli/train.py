"""`archlab train`: one genome under the proxy recipe (the search's, by default)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..training.recipe import ProxyRecipe
from ..util.errors import UserError, shorten
from ..util.outdir import writable_folder
from .common import DEVICES, genome_arg
from .forms import CALIBRATED, add_train_form_arg, checked_train_form, resolve_train_form


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..data import get_dataset
    from ..model.genome import scale_widths
    from ..training.plateau import train_settled
    from ..training.trainer import TrainConfig
    from ..util.device import resolve_device

    # every option first, in one place: --out (before 10 s of building a dataset), the recipe,
    # the form, the device, the genome, the data root; then the calibrated form (which may
    # measure this machine, ~3 min), then the datasets
    writable_folder("--out", args.out)
    point = _study_point(args)  # (genome, recipe, data) of a study's front point, or None
    base, data = (point[1], point[2]) if point else (None, {})
    recipe = ProxyRecipe.from_args(args, base=base)
    form = checked_train_form(args)  # a bad name fails before the device is looked at
    device = resolve_device(args.device)
    g = point[0] if point else genome_arg(args.genome, None)
    if args.width != 1.0:
        if args.init:
            raise UserError(
                f"--width {args.width:g} with --init: the checkpoint holds full-width weights; drop --width"
            )
        g = scale_widths(g, args.width)
    init = _init_weights(args.init, g) if args.init else None
    args.data = args.data or data.get("data") or "synthetic"
    args.data_root = args.data_root or data.get("data_root")
    _check_data_root(args.data, args.data_root)
    cfg = TrainConfig(
        recipe=recipe,
        workers=args.workers,
        device=args.device,
        compile=args.compile,
        channels_last=None if args.channels_last == "auto" else args.channels_last == "on",
        max_steps_per_epoch=args.max_steps,
        form=None if form == CALIBRATED else form,
    )
    if form is not None:
        cfg = replace(cfg, form=resolve_train_form(form, device))
    opts = dict(data.get("data_opts") or {})
    train_set = get_dataset(args.data, "train", root=args.data_root, **recipe.dataset_opts(args.data, "train"), **opts)
    val_set = get_dataset(args.data, "val", root=args.data_root, **recipe.dataset_opts(args.data, "val"), **opts)
    g = g.with_(classes=len(train_set.classes))
    print(
        f"genome  {g}\nid      {g.id}\ndata    {args.data}: {len(train_set)} train / {len(val_set)} val clips, "
        f"{len(train_set.classes)} classes, {'x'.join(map(str, recipe.clip))}\nrecipe  {_recipe_line(recipe)}\n"
        f"out     {args.out}",
        flush=True,
    )
    if init is not None:
        print(f"init    {args.init}", flush=True)
    result = train_settled(g, train_set, val_set, cfg, out_dir=args.out, progress=True, init=init)
    if len(result.seeds_tried) > 1:
        print(
            f"plateau rule: seeds tried {', '.join(map(str, result.seeds_tried))}; "
            f"seed {result.seeds_tried[-1]} trained to the end"
        )
    if result.status != "ok":
        print(f"archlab train: training stopped ({result.status}): {result.reason}", file=sys.stderr)
        return 1
    last = result.history[-1]
    print(
        f"best val top1 {result.best_top1:.3f} at epoch {result.best_epoch}  ·  last: top1 {last.val_top1:.3f} "
        f"top5 {last.val_top5:.3f} loss {last.val_loss:.3f}  ·  {result.train_time_s:.1f} s training  ·  "
        f"weights {args.out}/best.pt"
    )
    return 0


def _init_weights(path: str, genome: Any) -> dict[str, Any]:
    """The state dict of an --init checkpoint made for ``genome`` (its class count aside)."""
    from ..model.genome import GenomeError, parse
    from ..model.state_files import read_archlab_checkpoint

    ck = read_archlab_checkpoint(path)
    try:
        theirs = parse(ck["genome"])
    except GenomeError as e:
        raise UserError(f"--init {path} names an invalid genome: {e}") from None
    if theirs.with_(classes=genome.classes) != genome:
        raise UserError(f"--init {path} holds genome '{theirs}', not '{genome}'")
    return ck["model"]


def _study_point(args: argparse.Namespace) -> tuple[Any, ProxyRecipe, dict[str, Any]] | None:
    """A study's point to retrain, when GENOME is a study directory: the target genome of its
    rank-k point (the rule of `archlab export`) or of --trial, the study's recipe at the target's
    clip, and the study's data. None for a genome or a preset."""
    from dataclasses import replace
    from pathlib import Path

    d = Path(args.genome)
    if not (d / "study.yaml").is_file():
        if args.rank is not None or args.trial is not None:
            raise UserError("--rank and --trial choose a point of a study: give a STUDY_DIR (it holds study.yaml)")
        return None
    from ..export.select import select_trial
    from ..model.genome import parse
    from ..results.reader import find_trial, load_results

    df, info = load_results(d)
    if args.trial is not None:
        label, how = find_trial(df, args.trial), "given with --trial"
    else:
        label, how = select_trial(df, info.objectives, info.directions, args.rank or 1, None, None)
    row = df.loc[label]
    recipe = ProxyRecipe.from_dict(info.settings.get("recipe") or {})
    frames, height, width = info.cost_clip or recipe.clip
    if height != width:
        raise UserError(f"the study's target clip {frames}x{height}x{width} is not square: give --size and --frames")
    what = "target" if info.target_clip else "network (a study from before targets)"
    print(f"study   {d}: trial {row['trial']} ({how}), its {what} at {frames}x{height}x{width}", flush=True)
    data = {k: info.settings.get(k) for k in ("data", "data_root", "data_opts")}
    return parse(str(row["genome"])), replace(recipe, frames=frames, size=height), data


def _check_data_root(data: str, root: str | None) -> None:
    """What ``data.get_dataset`` refuses, before the genome is built or a form calibrated."""
    from pathlib import Path

    if data == "synthetic":
        if root is not None:
            raise UserError("--data-root: the synthetic dataset is generated in memory and takes no root")
        return
    if not root:
        raise UserError(f"the {data} dataset needs a data root (--data-root PATH)")
    if not Path(root).is_dir():
        raise UserError(f"--data-root {shorten(root, plain=True)}: no such folder")


def _recipe_line(r: ProxyRecipe) -> str:
    return (
        f"{r.optimizer} lr {r.lr:g}, batch {r.batch}, {r.epochs} epochs, "
        f"{'zero-init' if r.zero_init else 'plain init'}, seed {r.seed}"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one genome on a dataset (progress bar, checkpoints, metrics.csv)")
    p.add_argument(
        "genome",
        metavar="GENOME|PRESET|STUDY_DIR",
        help="a preset name, a genome string, or a study directory: its front point's target (--rank, --trial), "
        "trained at the target clip with the study's recipe and data unless options say otherwise",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--rank", type=int, help="with a STUDY_DIR: the k-th point by export's rule (default 1)")
    which.add_argument("--trial", metavar="N", help="with a STUDY_DIR: this trial (bN: baseline N)")
    p.add_argument(
        "--data",
        default=None,
        choices=["synthetic", "ucf101", "folder"],
        help="dataset (default synthetic: built in, no download; with a STUDY_DIR the study's)",
    )
    p.add_argument("--data-root", help="dataset root for ucf101/folder")
    p.add_argument(
        "--width", type=float, default=1.0, help="width multiplier of every stage and the stem (default 1.0)"
    )
    p.add_argument(
        "--device", default="auto", help=f"{DEVICES} (default auto: a CUDA GPU if torch sees one, else the CPU)"
    )
    p.add_argument(
        "--init",
        metavar="PATH",
        help="start from this archlab checkpoint (archlab import-weights; its genome, any class count)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the model (first epoch pays 15-30 s)")
    p.add_argument(
        "--channels-last",
        choices=["auto", "on", "off"],
        default="auto",
        help="channels_last_3d memory format (auto: on for CUDA, off for CPU, as measured)",
    )
    add_train_form_arg(p)
    p.add_argument("--workers", type=int, default=0, help="data loader processes (default 0)")
    p.add_argument("--max-steps", type=int, help="at most this many steps per epoch")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="writes checkpoint.pt, best.pt, metrics.csv; a DIR with a checkpoint resumes",
    )
    ProxyRecipe.add_arguments(p)  # the search's recipe by default: a winner retrains as it was searched
    p.set_defaults(func=cmd_train)
