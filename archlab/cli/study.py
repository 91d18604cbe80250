"""`archlab study run|list`: the fixed comparisons of studies/*.yaml."""

from __future__ import annotations

import argparse
import sys

from ..util.outdir import writable_folder
from .common import Parser, table


def cmd_study_run(args: argparse.Namespace) -> int:
    from ..studies import load_study, run_study

    if args.out is not None:
        writable_folder("--out", args.out)
    study = load_study(args.study, quick=args.quick)
    res = run_study(study, out=args.out, echo=lambda line: print(line, flush=True))
    print()
    print(res.markdown.rstrip())
    runs = f"{res.trained} train run(s) trained, {res.reused} reused, " if study.train is not None else ""
    print(f"\n{runs}{res.wall_s:.0f} s  ·  {res.out_dir}/summary.csv, summary.md")
    if res.interrupted:
        print("study INTERRUPTED: run the same command again to continue it", file=sys.stderr)
        return 130
    return 0


def cmd_study_list(args: argparse.Namespace) -> int:
    from ..studies import list_studies

    rows = [[s.name, s.kinds(), s.description] for s in list_studies()]
    print(table(rows, ["study", "entries", "description"], right=set()))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run a study (studies/*.yaml): fixed comparisons that reproduce an experiment")
    study_sub = p.add_subparsers(dest="study_command", metavar="STUDY_COMMAND", parser_class=Parser)
    study_sub.required = True
    p = study_sub.add_parser("run", help="run (or continue) a study and write summary.csv + summary.md")
    p.add_argument("study", metavar="FILE_OR_NAME", help="a study name (see `archlab study list`) or a YAML path")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/studies/NAME, "
                   "runs/studies/NAME-quick with --quick); re-running continues it")
    p.add_argument("--quick", action="store_true", help="a smoke run of about a minute: 1 epoch, 1 seed, "
                   "2 trials per search, few clips (the file's quick: section)")
    p.set_defaults(func=cmd_study_run)
    p = study_sub.add_parser("list", help="the studies in studies/ with what they run")
    p.set_defaults(func=cmd_study_list)
