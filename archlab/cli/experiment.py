"""`archlab experiment run|list`: the fixed comparisons of experiments/*.yaml.

"Study" is Optuna's word for a search and its directory (``archlab report STUDY_DIR``); the
YAML files that reproduce an experiment are experiments. ``archlab study run|list``, their
name before, still works for one release, with a note."""

from __future__ import annotations

import argparse
import sys

from ..util.outdir import writable_folder
from .common import NOTES, Parser, deprecation_note, table


def cmd_experiment_run(args: argparse.Namespace) -> int:
    from ..experiments import load_experiment, run_experiment

    if args.out is not None:
        writable_folder("--out", args.out)
    experiment = load_experiment(args.experiment, quick=args.quick)
    res = run_experiment(experiment, out=args.out, echo=lambda line: print(line, flush=True))
    print()
    print(res.markdown.rstrip())
    runs = f"{res.trained} train run(s) trained, {res.reused} reused, " if experiment.train is not None else ""
    print(f"\n{runs}{res.wall_s:.0f} s  ·  {res.out_dir}/summary.csv, summary.md")
    if res.interrupted:
        print("experiment INTERRUPTED: run the same command again to continue it", file=sys.stderr)
        return 130
    return 0


def cmd_experiment_list(args: argparse.Namespace) -> int:
    from ..experiments import list_experiments

    rows = [[e.name, e.kinds(), e.description] for e in list_experiments()]
    print(table(rows, ["experiment", "entries", "description"], right=set()))
    return 0


OLD_NAME = "study"  # `archlab study` until the next release


def add_parser(sub: argparse._SubParsersAction) -> None:
    _add(
        sub,
        "experiment",
        help="run an experiment (experiments/*.yaml): a fixed comparison that answers one "
        "question the same way on every run",
    )
    old = _add(sub, OLD_NAME, help="the old name of `archlab experiment` (kept for one release)")
    old.set_defaults(**{NOTES: [deprecation_note(f"archlab {OLD_NAME}", "archlab experiment")]})


def _add(sub: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    top = sub.add_parser(name, help=help)
    commands = top.add_subparsers(dest="experiment_command", metavar="EXPERIMENT_COMMAND", parser_class=Parser)
    commands.required = True
    p = commands.add_parser("run", help="run (or continue) an experiment and write summary.csv + summary.md")
    p.add_argument(
        "experiment", metavar="FILE_OR_NAME", help="an experiment name (see `archlab experiment list`) or a YAML path"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default runs/experiments/NAME, "
        "runs/experiments/NAME-quick with --quick); re-running continues it",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of about a minute: 1 epoch, 1 seed, "
        "2 trials per search, few clips (the file's quick: section)",
    )
    p.set_defaults(func=cmd_experiment_run)
    p = commands.add_parser(
        "list",
        help="the experiments a name finds ($ARCHLAB_EXPERIMENTS, ./experiments/, "
        "the package's own) with what they run",
    )
    p.set_defaults(func=cmd_experiment_list)
    return top
