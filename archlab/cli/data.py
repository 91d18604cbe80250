"""`archlab data prepare`: decode a dataset once into a frame cache."""

from __future__ import annotations

import argparse
import os
import sys

from ..util.errors import UserError
from .common import Parser, fmt_int


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from ..data.prepare import PREPARERS
    from ..data.video import parse_size

    opts: dict = {}
    if args.dataset == "ucf101":
        classes = args.classes
        opts = {"split": args.split, "classes": int(classes) if classes and classes.isdigit() else classes}
    elif args.split is not None or args.classes is not None:
        raise UserError("--split and --classes apply to ucf101 only")

    def started(todo: int, done: int, need: int, free: int) -> None:
        print(
            f"{todo} videos to decode, {done} already in the cache; about {need / 1e9:.1f} GB to write "
            f"({free / 1e9:.0f} GB free)",
            file=sys.stderr,
        )

    s = PREPARERS[args.dataset](
        args.root,
        args.cache,
        size=parse_size(args.size) if args.size else None,
        workers=args.workers,
        on_start=started,
        **opts,
    )
    print(
        f"cache {s.cache}: {s.total} videos; {s.decoded} decoded now ({fmt_int(s.frames)} frames, "
        f"{s.bytes_written / 1e6:,.1f} MB, {s.seconds:.1f} s), {s.already_done} already cached, "
        f"{len(s.corrupt)} skipped as corrupt or missing"
    )
    for key, reason in sorted(s.corrupt.items()):
        print(f"  skipped {key}: {reason}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare datasets (decode videos once into a frame cache)")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=Parser)
    data_sub.required = True
    p = data_sub.add_parser(
        "prepare", help="decode a dataset's videos once into a memory-mappable cache (resumable: re-run to continue)"
    )
    p.add_argument(
        "dataset",
        choices=["ucf101", "folder"],
        help="ucf101 (ROOT/UCF-101 + ROOT/ucfTrainTestlist) or folder (ROOT/<class>/<video>)",
    )
    p.add_argument("--root", required=True, help="the dataset folder")
    p.add_argument("--cache", required=True, help="the cache folder to write (or to resume)")
    p.add_argument(
        "--size",
        help="frame size HEIGHTxWIDTH, or a short side (default 128x171 for ucf101, short side 128 for folder)",
    )
    p.add_argument(
        "--split",
        type=int,
        choices=[1, 2, 3],
        help="ucf101: only this official split's videos (default: all three, i.e. every video)",
    )
    p.add_argument("--classes", help="ucf101: the first K classes, or comma-separated class names")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="decoding processes (default: one per CPU core)"
    )
    p.set_defaults(func=cmd_data_prepare)
