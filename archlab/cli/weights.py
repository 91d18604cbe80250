"""``archlab import-weights``: the official P3D's released Caffe weights -> an archlab checkpoint.

The checkpoint is what the trainer writes ({"model": state_dict, "genome": ..., "input": ...}),
read with ``torch.load(weights_only=True)`` by ``archlab export --weights PATH``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..util.errors import UserError, shorten

# Networks whose official caffemodel layout archlab knows (names checked against the released
# deploy prototxt; tests/test_p3d_official.py).
IMPORTABLE = ("p3d199",)


def cmd_import_weights(args: argparse.Namespace) -> int:
    import torch

    from ..model.caffe import import_p3d
    from ..model.presets import DEFAULT_INPUT, get
    from ..util.files import atomic_write

    if args.preset not in IMPORTABLE:
        raise UserError(f"import-weights knows the Caffe layout of {', '.join(IMPORTABLE)}, not {shorten(args.preset)}")
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory: give a file name, e.g. {out / 'model.pt'}")
    genome, sd = import_p3d(get(args.preset), args.caffemodel)
    frames, h, w = DEFAULT_INPUT[args.preset]
    ckpt = {
        "model": sd,
        "genome": str(genome),
        "input": {"frames": frames, "size": h, "height": h, "width": w},
        "source": {"caffemodel": str(args.caffemodel), "preset": args.preset},
    }
    atomic_write(out, lambda f: torch.save(ckpt, f))  # written whole or not at all
    n = sum(t.numel() for k, t in sd.items() if not k.endswith("num_batches_tracked"))
    print(f"{args.preset}: {n:,} parameters from {args.caffemodel} -> {out} (genome '{genome}')")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-weights", help="read the official P3D caffemodel into an archlab checkpoint")
    p.add_argument("preset", help=f"the network the file holds ({', '.join(IMPORTABLE)})")
    p.add_argument("--caffemodel", required=True, metavar="FILE", help="the released binary .caffemodel")
    p.add_argument("--out", required=True, metavar="PATH", help="checkpoint to write (e.g. model.pt)")
    p.set_defaults(func=cmd_import_weights)
