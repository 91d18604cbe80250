"""Command-line interface: argument parsing and printing only, one module per command group.

``COMMANDS`` is the registry: each module exposes ``add_parser(subparsers)``, which adds its
sub-command(s) with ``func`` set to the function that runs them. A new command group is a new
module plus one entry here. Mistakes a user can make raise ``UserError``; ``main`` prints
them as one line on stderr and returns 2. Every parser is a ``common.Parser`` (no option
abbreviations); an old spelling kept for one release adds a note (``common.deprecated``) that
``main`` prints on stderr before the command runs. Nothing in the package imports this one.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import Sequence

from ..util.errors import UserError
from . import calibrate, data, experiment, export, fidelity, latency, model, report, search, spaces, train, weights
from .common import Parser, deprecation_notes

# The order of `archlab --help`: model commands, then the search and what reads its results.
COMMANDS: tuple[ModuleType, ...] = (
    model,
    weights,
    search,
    experiment,
    fidelity,
    export,
    data,
    report,
    train,
    spaces,
    calibrate,
    latency,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="archlab",
        description="Search, profile, train and export video networks built from Pseudo-3D ResNet block mixes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for note in deprecation_notes(args):
        print(f"archlab {args.command}: note: {note}", file=sys.stderr, flush=True)
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
