"""Writing files so that nothing is ever seen half-written, and one writer at a time.

Why one module: a study directory, a trainer's checkpoints, the profile cache, the W&B
registry and the video cache are all read by other processes while they are written (a
report during a search, a resumed search after a SIGKILL). Every one of them needs the same
two guarantees, so they come from here, not from five copies:

* ``atomic_write``: the data goes to a temporary file in the destination's directory (same
  file system, so ``os.replace`` is atomic), then is renamed over the destination. A reader
  sees the old file or the new one, never a part. Text, bytes, or anything a writer function
  puts into a binary file (``torch.save``, ``np.save``) go the same way.
* ``FileLock``: an exclusive ``flock`` on a lock file; the kernel drops it when the process
  dies, so a killed writer never leaves a directory locked. It holds the owner's pid, which
  the "in use" message names.

Temporary files are named ``.<name>.partial-XXXX`` (``PARTIAL``): a cleaner can find the
leftovers of a writer that was killed mid-write with ``glob(f"*{PARTIAL}*")``.

Only the standard library: results, reports and the genome side import this without torch.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

from .errors import UserError

PARTIAL = ".partial-"

Writer = Callable[[IO[bytes]], object]


def atomic_write(path: str | Path, data: str | bytes | Writer, *, fsync: bool = False, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    ``data`` is text (written as UTF-8), bytes, or a function that writes into the open binary
    file (``lambda f: torch.save(obj, f)``). ``fsync`` flushes the data to disk before the
    rename (for files that must survive a power cut, not only a killed process). The file gets
    ``mode`` (``mkstemp`` would leave it private to the user). On any error, including
    KeyboardInterrupt, the temporary file is removed and the destination is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{PARTIAL}")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, (bytes, bytearray, memoryview)):
                f.write(data)
            else:
                data(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


class FileLock:
    """An exclusive, non-blocking ``flock`` on ``path`` (created if needed), as a context manager.

    ``busy`` is the one-line message of the UserError raised when another process holds the
    lock; ``{pid}`` in it is replaced by the holder's pid (``?`` if unknown). Keyword-only and
    checked before the lock file is created.
    """

    def __init__(self, path: str | Path, *, busy: str):
        if not isinstance(busy, str) or not busy:
            raise ValueError("FileLock: busy must be a non-empty message")
        self.path = Path(path)
        self.busy = busy
        self.fd: int | None = None

    def __enter__(self) -> "FileLock":
        if self.fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FileLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(self.busy.replace("{pid}", other)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
