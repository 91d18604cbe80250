"""`archlab report` and `archlab dashboard`: read a study, never write its results."""

from __future__ import annotations

import argparse
import sys


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import build_report

    build_report(args.study_dir, args.format, echo=print)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ..report import serve_dashboard

    try:
        serve_dashboard(args.study_dir, host=args.host, port=args.port, echo=lambda line: print(line, flush=True))
    except KeyboardInterrupt:  # Ctrl-C is how a user stops it: not an error
        pass
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="plots and a report (front, failures, hypervolume) of a study")
    p.add_argument("study_dir", metavar="STUDY_DIR", help="a study directory (holds study.yaml and optuna.db)")
    p.add_argument("--format", choices=["md", "html"], default="md", help="report.md (default) or report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("dashboard", help="serve optuna-dashboard for a study (until Ctrl-C)")
    p.add_argument("study_dir", metavar="STUDY_DIR", help="a study directory (holds study.yaml and optuna.db)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.set_defaults(func=cmd_dashboard)
