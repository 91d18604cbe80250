"""Which W&B mode a search logs in, and where W&B's files go while it runs."""

from __future__ import annotations

import contextlib
import netrc
import os
import tempfile
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

from ..util.errors import UserError, shorten

MODES = ("auto", "online", "offline", "off")
PROJECT = "archlab"


def has_credentials() -> bool:
    """True when W&B could log in without asking: WANDB_API_KEY, or a netrc entry for the W&B
    host (``wandb login`` writes one)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(mode: str) -> str:
    """'auto' -> 'online' with credentials, else 'offline' (or what WANDB_MODE says). Returns
    one of online, offline, off."""
    if mode not in MODES:
        raise UserError(f"--wandb {shorten(mode)}: use {', '.join(MODES)}")
    if mode != "auto":
        return mode
    env = (os.environ.get("WANDB_MODE") or "").lower()
    if env in ("disabled", "off", "dryrun", "offline"):
        return "off" if env in ("disabled", "off") else "offline"
    return "online" if has_credentials() else "offline"


@contextlib.contextmanager
def wandb_env(study_dir: Path, mode: str) -> Iterator[None]:
    """While W&B runs code, point its directories (and the temp dir of this process and of the
    wandb-core service it starts) into ``<study>/wandb``, then restore the environment: the rest
    of the driver (Ray) keeps its own temp dir. Online, the user's own config and caches stay
    where they are (they may hold a server URL or an entity)."""
    root = study_dir / "wandb"
    wanted = {"WANDB_DIR": study_dir, "TMPDIR": root / "tmp"}
    if mode == "offline":
        wanted.update(
            WANDB_CACHE_DIR=root / "cache",
            WANDB_DATA_DIR=root / "data",
            WANDB_CONFIG_DIR=root / "config",
            WANDB_ARTIFACT_DIR=root / "artifacts",
        )
    for p in wanted.values():
        Path(p).mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in wanted}
    saved_tempdir = tempfile.tempdir
    os.environ.update({k: str(v) for k, v in wanted.items()})
    tempfile.tempdir = str(root / "tmp")
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
