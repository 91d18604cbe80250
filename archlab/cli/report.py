"""`archlab report` and `archlab dashboard`: read a study, never write its results."""

from __future__ import annotations

import argparse
import ipaddress
import sys


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import build_report

    build_report(args.study_dir, args.format, echo=print)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ..report import serve_dashboard

    if not is_loopback(args.host):
        print(
            f"archlab dashboard: warning: --host {args.host} serves the study to other machines; the dashboard "
            "has no login and its API can change the study (notes, trial states): use it only on a network "
            "you trust, or keep the default 127.0.0.1 and tunnel (ssh -L)",
            file=sys.stderr,
            flush=True,
        )
    try:
        serve_dashboard(args.study_dir, host=args.host, port=args.port, echo=lambda line: print(line, flush=True))
    except KeyboardInterrupt:  # Ctrl-C is how a user stops it: not an error
        pass
    return 0


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost; anything else (0.0.0.0, a name, an interface address)
    can be reached from other hosts."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
