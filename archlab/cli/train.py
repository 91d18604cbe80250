"""`archlab train`: one genome under the proxy recipe (the search's, by default)."""

from __future__ import annotations

import argparse
import sys

from ..util.outdir import writable_folder
from ..training.recipe import ProxyRecipe
from .common import genome_arg
from .forms import add_train_form_arg, train_form


def cmd_train(args: argparse.Namespace) -> int:
    from ..data import get_dataset
    from ..model.genome import scale_widths
    from ..training.trainer import TrainConfig, train

    writable_folder("--out", args.out)  # before 10 s of building a dataset
    recipe = ProxyRecipe.from_args(args)
    cfg = TrainConfig(recipe=recipe, workers=args.workers, device=args.device, compile=args.compile,
                      channels_last=None if args.channels_last == "auto" else args.channels_last == "on",
                      max_steps_per_epoch=args.max_steps, form=train_form(args))
    g = genome_arg(args.genome, None)
    if args.width != 1.0:
        g = scale_widths(g, args.width)
    train_set = get_dataset(args.data, "train", root=args.data_root, **recipe.dataset_opts(args.data, "train"))
    val_set = get_dataset(args.data, "val", root=args.data_root, **recipe.dataset_opts(args.data, "val"))
    g = g.with_(classes=len(train_set.classes))
    print(f"genome  {g}\nid      {g.id}\ndata    {args.data}: {len(train_set)} train / {len(val_set)} val clips, "
          f"{len(train_set.classes)} classes, {'x'.join(map(str, recipe.clip))}\nrecipe  {_recipe_line(recipe)}\n"
          f"out     {args.out}", flush=True)
    result = train(g, train_set, val_set, cfg, out_dir=args.out, progress=True)
    if result.status != "ok":
        print(f"archlab train: training stopped ({result.status}): {result.reason}", file=sys.stderr)
        return 1
    last = result.history[-1]
    print(f"best val top1 {result.best_top1:.3f} at epoch {result.best_epoch}  ·  last: top1 {last.val_top1:.3f} "
          f"top5 {last.val_top5:.3f} loss {last.val_loss:.3f}  ·  {result.train_time_s:.1f} s training  ·  "
          f"weights {args.out}/best.pt")
    return 0


def _recipe_line(r: ProxyRecipe) -> str:
    return (f"{r.optimizer} lr {r.lr:g}, batch {r.batch}, {r.epochs} epochs, "
            f"{'zero-init' if r.zero_init else 'plain init'}, seed {r.seed}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one genome on a dataset (progress bar, checkpoints, metrics.csv)")
    p.add_argument("genome", metavar="GENOME|PRESET", help="a preset name or a genome string")
    p.add_argument("--data", default="synthetic", choices=["synthetic", "ucf101", "folder"],
                   help="dataset (default synthetic: built in, no download)")
    p.add_argument("--data-root", help="dataset root for ucf101/folder")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of every stage and the stem (default 1.0)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (first epoch pays 15-30 s)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="channels_last_3d memory format (auto: on for CUDA, off for CPU, as measured)")
    add_train_form_arg(p)
    p.add_argument("--workers", type=int, default=0, help="data loader processes (default 0)")
    p.add_argument("--max-steps", type=int, help="at most this many steps per epoch")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="writes checkpoint.pt, best.pt, metrics.csv; a DIR with a checkpoint resumes")
    ProxyRecipe.add_arguments(p)  # the search's recipe by default: a winner retrains as it was searched
    p.set_defaults(func=cmd_train)
