"""``archlab dashboard``: optuna-dashboard on the study's storage, on 127.0.0.1 by default.

The storage is opened through ``results.open_storage`` (read-only open, checked), so a
damaged optuna.db is one line and exit 2 before anything listens. optuna-dashboard's API
can write (notes, trial states): the CLI warns on a non-loopback ``--host``.
"""

from __future__ import annotations

import socketserver
import sys
from pathlib import Path
from typing import Any, Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..results.reader import load_results
from ..results.study import load_study_info, open_storage
from ..util.errors import UserError


def serve_dashboard(
    study_dir: str | Path, host: str = "127.0.0.1", port: int = 8080, echo: Callable[[str], None] = print
) -> None:
    """Serve optuna-dashboard for the study's storage until Ctrl-C (KeyboardInterrupt reaches
    the caller). Port 0 picks a free port; the URL printed is the real one."""
    info = load_study_info(study_dir)
    storage = open_storage(info)  # a damaged optuna.db is one line here, not a traceback per request
    if storage is None:
        raise UserError(f"{info.dir}: no Optuna storage (optuna.db) yet: run `archlab search` first")
    load_results(info.dir)  # reads every trial once: a page damaged past the header fails here too
    try:
        from optuna_dashboard import wsgi
    except ImportError as e:
        raise UserError(f"optuna-dashboard cannot be imported ({e}): pip install optuna-dashboard") from None

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    class Threaded(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    app = wsgi(storage)
    try:
        server = make_server(host, port, app, server_class=Threaded, handler_class=Quiet)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}): pass another --port") from None
    url = f"http://{host}:{server.server_port}/dashboard"
    echo(f"optuna-dashboard for study {info.name!r} ({info.storage_url}) at {url}  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        print("dashboard stopped", file=sys.stderr)
