"""``archlab import-weights``: a weight file a user brings -> an archlab checkpoint.

Sources: the official P3D's Caffe weights (``--caffemodel``), a 2D ImageNet ResNet inflated
into any genome of its skeleton (``--imagenet``), and the released video weights of torchvision
and pytorchvideo for the presets that reproduce them (``--torchvision``, ``--pytorchvideo``).
The checkpoint is what the trainer writes ({"model": state_dict, "genome": ..., "input": ...}),
read with ``torch.load(weights_only=True)`` by ``archlab export --weights PATH``,
``archlab train --init PATH`` and ``archlab search --init``. Conventions: docs/guide/weights.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..util.errors import UserError, shorten

# Networks whose official caffemodel layout archlab knows (names checked against the released
# deploy prototxt; tests/test_p3d_official.py).
CAFFE = ("p3d199",)


def cmd_import_weights(args: argparse.Namespace) -> int:
    import torch

    from ..model.presets import DEFAULT_INPUT
    from ..util.files import atomic_write

    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory: give a file name, e.g. {out / 'model.pt'}")
    if args.classes is not None and not args.imagenet:
        raise UserError("--classes goes with --imagenet: a released file's class count is the file's")
    if args.caffemodel:
        genome, sd, source, note = _caffe(args)
    elif args.imagenet:
        genome, sd, source, note = _imagenet(args)
    else:
        genome, sd, source, note = _zoo(args)
    ckpt: dict = {"model": sd, "genome": str(genome), "source": source}
    if args.genome.strip() in DEFAULT_INPUT:  # a preset's clip; a genome's is the user's to say at export
        frames, h, w = DEFAULT_INPUT[args.genome.strip()]
        ckpt["input"] = {"frames": frames, "size": h, "height": h, "width": w}
    atomic_write(out, lambda f: torch.save(ckpt, f))  # written whole or not at all
    n = sum(t.numel() for k, t in sd.items() if not k.endswith("num_batches_tracked"))
    print(f"{n:,} parameters from {source['file']} -> {out} (genome '{genome}'){note}")
    return 0


def _caffe(args: argparse.Namespace) -> tuple:
    from ..model.caffe import import_p3d
    from ..model.presets import get

    if args.genome not in CAFFE:
        raise UserError(
            f"--caffemodel: import-weights knows the Caffe layout of {', '.join(CAFFE)}, not {shorten(args.genome)}"
        )
    genome, sd = import_p3d(get(args.genome), args.caffemodel)
    return genome, sd, {"kind": "caffemodel", "file": str(args.caffemodel), "preset": args.genome}, ""


def _imagenet(args: argparse.Namespace) -> tuple:
    from ..model.inflate import inflate_imagenet
    from ..model.presets import resolve
    from ..model.state_files import read_state_dict

    genome = resolve(args.genome, args.classes)
    sd2d = read_state_dict(args.imagenet, "a 2D ResNet state dict")
    net, fc_copied = inflate_imagenet(genome, sd2d, str(args.imagenet))
    note = "" if fc_copied else f"; fc freshly initialised ({genome.classes} classes, not the file's)"
    return genome, net.state_dict(), {"kind": "imagenet", "file": str(args.imagenet)}, note


def _zoo(args: argparse.Namespace) -> tuple:
    from ..model.presets import ZOO, get
    from ..model.state_files import read_state_dict
    from ..model.zoo import import_zoo

    source = "torchvision" if args.torchvision else "pytorchvideo"
    path = args.torchvision or args.pytorchvideo
    if args.genome not in ZOO[source]:
        raise UserError(f"--{source} imports the presets {', '.join(ZOO[source])}, not {shorten(args.genome)}")
    sd = read_state_dict(path, f"{source}'s {args.genome} state dict")
    genome, out = import_zoo(get(args.genome), source, sd, str(path))
    return genome, out, {"kind": source, "file": str(path), "preset": args.genome}, ""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..model.presets import ZOO  # no torch: the parser is built before any command runs

    p = sub.add_parser(
        "import-weights",
        help="read released or ImageNet weights into an archlab checkpoint",
        description="Read a weight file into an archlab checkpoint (for export --weights, train --init, "
        "search --init). Sources: --caffemodel (official P3D), --imagenet (a 2D ResNet inflated into a "
        "genome of its skeleton), --torchvision, --pytorchvideo (the presets of their video zoos). "
        "Conventions: docs/guide/weights.md.",
    )
    p.add_argument("genome", metavar="GENOME", help="the preset the file holds, or (--imagenet) a genome or preset")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--caffemodel", metavar="FILE", help=f"the official P3D's binary .caffemodel ({', '.join(CAFFE)})")
    src.add_argument(
        "--imagenet",
        metavar="FILE",
        help="a 2D ResNet-50/101/152 state dict (torchvision's or timm's key names), inflated into GENOME",
    )
    src.add_argument(
        "--torchvision", metavar="FILE", help=f"torchvision's video weights ({', '.join(ZOO['torchvision'])})"
    )
    src.add_argument(
        "--pytorchvideo", metavar="FILE", help=f"pytorchvideo's hub weights ({', '.join(ZOO['pytorchvideo'])})"
    )
    p.add_argument("--classes", type=int, help="--imagenet: the genome's class count (default: the genome's)")
    p.add_argument("--out", required=True, metavar="PATH", help="checkpoint to write (e.g. model.pt)")
    p.set_defaults(func=cmd_import_weights)
