"""Command-line interface: argument parsing and printing only.

Every command is a ``cmd_*`` function that calls into the package and prints. Mistakes a
user can make raise ``UserError``; ``main`` prints them as one line on stderr and returns 2.
Nothing imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .errors import UserError


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _table(rows: list[list[str]], header: list[str], right: set[int] | None = None) -> str:
    """A plain fixed-width table (no dependency, pastes into any terminal or issue)."""
    right = right if right is not None else set(range(1, len(header)))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


# ---- build / profile / presets -----------------------------------------------------------

def _genome_arg(text: str, classes: int | None):
    from .presets import resolve

    return resolve(text, classes)


def _clip_arg(args: argparse.Namespace, genome_text: str):
    from .presets import DEFAULT_INPUT
    from .profile import parse_clip

    if args.input:
        return parse_clip(args.input)
    return DEFAULT_INPUT.get(genome_text.strip(), (16, 160, 160))


def _cost_table(genome, clip, method: str) -> str:
    from .profile import cost

    c = cost(genome, clip, method=method)
    rows = [[s.name, s.letters, "x".join(map(str, s.out_shape)), _fmt_int(s.params), f"{s.macs / 1e9:.3f}"]
            for s in c.stages]
    rows.append(["total", "", "", _fmt_int(c.params), f"{c.gmacs:.3f}"])
    out = _table(rows, ["part", "blocks", "output CxTxHxW", "params", "GMACs"], right={3, 4})
    skipped = ", ".join(op.removeprefix("aten::") for op in c.uncounted)
    return out + f"\nMACs = multiply-adds of conv and linear layers; not counted: {skipped}."


def cmd_build(args: argparse.Namespace) -> int:
    g = _genome_arg(args.genome, args.classes)
    clip = _clip_arg(args, args.genome)
    print(f"genome  {g}\nid      {g.id}\ninput   3x{'x'.join(map(str, clip))}")
    print(_cost_table(g, clip, args.counter))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from .profile import latency, resolve_device

    resolve_device(args.device)  # fail before printing anything
    g = _genome_arg(args.genome, args.classes)
    clip = _clip_arg(args, args.genome)
    print(f"genome  {g}\nid      {g.id}\ninput   {args.batch}x3x{'x'.join(map(str, clip))}")
    print(_cost_table(g, clip, args.counter))
    print(f"measuring latency on {args.device} ({args.runs} runs after warm-up)...", file=sys.stderr)
    lat = latency(g, clip, device=args.device, batch=args.batch, runs=args.runs)
    print(f"latency {lat.median_ms:.1f} ms (median of {lat.runs})  ·  {lat.clips_per_s:.2f} clips/s  ·  "
          f"peak memory {lat.peak_mem_mb:.0f} MiB  ·  {lat.device}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .presets import DEFAULT_INPUT, DESCRIPTIONS, PRESETS, get
    from .profile import cost

    rows = []
    for name in PRESETS:
        g = get(name, args.classes)
        clip = DEFAULT_INPUT[name]
        c = cost(g, clip)
        rows.append([name, _fmt_int(c.params), f"{c.gmacs:.2f}", "x".join(map(str, clip)), str(g), DESCRIPTIONS[name]])
    print(_table(rows, ["preset", "params", "GMACs", "input", "genome", "what"], right={1, 2}))
    return 0


# ---- parser ------------------------------------------------------------------------------

def _add_genome_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("genome", help="a preset name (see `archlab presets`) or a genome string, e.g. 'ABC|ABCA|BCABCA|222'")
    p.add_argument("--input", help="clip FRAMESxHEIGHTxWIDTH (default: the preset's own, else 16x160x160)")
    p.add_argument("--classes", type=int, help="number of output classes (default: the genome's)")
    p.add_argument("--counter", choices=["fast", "fvcore"], default="fvcore",
                   help="MAC counter: fvcore (reference) or fast (meta-device hooks, same numbers)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is ONE line on stderr (exit 2), like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archlab", description="Search, profile, train and export video networks "
                     "built from Pseudo-3D ResNet block mixes.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("build", help="show a network's per-stage shapes, params and GMACs")
    _add_genome_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("profile", help="build + measured latency, clips/s and memory")
    _add_genome_args(p)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch", type=int, default=1, help="clips per forward (default 1)")
    p.add_argument("--runs", type=int, default=10, help="timed runs after warm-up (default 10)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("presets", help="list the named models with params and GMACs")
    p.add_argument("--classes", type=int, help="number of output classes (default 400)")
    p.set_defaults(func=cmd_presets)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"archlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"archlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
