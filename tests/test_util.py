"""The shared utilities: files (atomic_write, FileLock), tables, versions, device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from archlab.util.errors import UserError
from archlab.util.files import PARTIAL, FileLock, atomic_write
from archlab.util.tables import md_cell, md_table, text_table

# ---- files ---------------------------------------------------------------------------------


def test_atomic_write_text_bytes_and_writer(tmp_path):
    p = atomic_write(tmp_path / "sub" / "a.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n" and oct(p.stat().st_mode & 0o777) == "0o644"
    atomic_write(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    atomic_write(p, lambda f: f.write(b"from a writer"), fsync=True)
    assert p.read_bytes() == b"from a writer"
    assert os.listdir(p.parent) == ["a.txt"]


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    p = tmp_path / "ckpt.pt"
    p.write_bytes(b"old")

    def half(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(p, half)
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["ckpt.pt"]


def test_atomic_write_with_torch_save(tmp_path):
    import torch

    p = tmp_path / "w.pt"
    atomic_write(p, lambda f: torch.save({"x": torch.arange(3)}, f))
    assert torch.load(p, weights_only=True)["x"].tolist() == [0, 1, 2]


def test_a_killed_writer_leaves_only_a_partial_file(tmp_path):
    """SIGKILL in the middle of a write: the destination keeps its old content, and the
    leftover carries PARTIAL in its name (what cleaners glob for)."""
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    code = textwrap.dedent(f"""
        import os, signal
        from archlab.util.files import atomic_write
        def w(f):
            f.write(b"x" * 1000)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_write({str(target)!r}, w)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == -9
    assert target.read_bytes() == b"old"
    (left,) = [p for p in tmp_path.iterdir() if p != target]
    assert PARTIAL in left.name and list(tmp_path.glob(f"*{PARTIAL}*")) == [left]


def test_file_lock_is_exclusive_across_processes_and_names_the_holder(tmp_path):
    lock = tmp_path / "study" / ".lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, time
        from archlab.util.files import FileLock
        with FileLock({str(lock)!r}, busy="x"):
            print("locked", flush=True)
            time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=rf"^study in use \(pid {holder.pid}\)$"):
            with FileLock(lock, busy="study in use (pid {pid})"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with FileLock(lock, busy="x") as held:  # the kernel dropped the dead holder's lock
        assert lock.read_text() == str(os.getpid()) and held.fd is not None
    assert held.fd is None


def test_file_lock_validates_before_creating_anything(tmp_path):
    with pytest.raises(ValueError):
        FileLock(tmp_path / "d" / ".lock", busy="")
    assert not (tmp_path / "d").exists()


# ---- tables --------------------------------------------------------------------------------


def test_text_table_aligns_and_has_no_trailing_spaces():
    out = text_table(["genome", "acc", "ms"], [["AB|C2", 0.5, 12.25], ["A|2 sw=8", 0.75, 3.0]])
    assert out.splitlines() == [
        "genome     acc     ms",
        "--------  ----  -----",
        "AB|C2      0.5  12.25",
        "A|2 sw=8  0.75    3.0",
    ]
    left = text_table(["a", "b"], [["x", "long value"], ["yy", "z"]], right=())
    assert left.splitlines() == ["a   b", "--  ----------", "x   long value", "yy  z"]


def test_md_table_escapes_pipes_so_a_genome_stays_in_its_cell():
    out = md_table(["genome", "acc"], [["AB|CABC|A|22 sw=16", 0.5], ["two\nlines", 1]], right=[1])
    lines = out.splitlines()
    assert lines[1] == "|---|---:|"
    assert lines[2] == r"| AB\|CABC\|A\|22 sw=16 | 0.5 |"
    assert lines[3] == "| two lines | 1 |"
    # every row splits into exactly the header's cells on unescaped pipes
    import re

    assert {len(re.split(r"(?<!\\)\|", line)) for line in lines} == {4}
    assert md_cell("a\\|b") == "a\\\\\\|b"


def test_tables_reject_a_ragged_row():
    with pytest.raises(ValueError, match="row 0 has 1 cells, the header 2"):
        text_table(["a", "b"], [["only one"]])


# ---- versions and device -------------------------------------------------------------------


def test_versions_read_metadata_without_importing():
    code = (
        "import sys; from archlab.util.versions import versions, SEARCH; v = versions(SEARCH + ('no-such-dist-x',)); "
        "print(v['ray'], v['optuna'], v['no-such-dist-x'], 'ray' in sys.modules, 'optuna' in sys.modules, "
        "'torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import optuna
    import ray

    assert r.stdout.split() == [ray.__version__, optuna.__version__, "None", "False", "False", "False"]
    import torch

    from archlab import __version__
    from archlab.util.versions import machine, versions

    v = versions()
    assert v["archlab"] == __version__ and v["torch"] == torch.__version__
    m = machine()
    assert m["logical_cpus"] == os.cpu_count() and m["torch_threads"] == torch.get_num_threads() and m["cpu"]


def test_resolve_device():
    import torch

    from archlab.util.device import device_label, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" Auto ") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:x", "cuda:1:2", "", "x" * 5000):
        with pytest.raises(UserError, match="use auto, cpu, cuda or cuda:N") as e:
            resolve_device(bad)
        assert len(str(e.value)) < 160  # a 5,000-character value is cut (errors.shorten)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda:0")
    else:
        with pytest.raises(UserError, match="torch sees"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    assert device_label(torch.device("cpu")) == f"cpu x{torch.get_num_threads()} threads"


def test_count_progress_prints_at_most_every_interval_and_always_at_the_end(monkeypatch):
    from archlab.util import progress as progress_mod

    clock = [100.0]
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: clock[0])
    lines: list[str] = []
    p = progress_mod.CountProgress(label="parts", echo=lines.append, every=10.0)
    for done, t in ((1, 101.0), (2, 109.9), (3, 110.0), (4, 115.0), (5, 116.0)):
        clock[0] = t
        p(done, 5, "x")
    assert lines == ["  parts 3/5 (60%), 0.2 min", "  parts 5/5 (100%), 0.3 min"]
    with pytest.raises(ValueError, match="every"):
        progress_mod.CountProgress(label="x", echo=print, every=-1)
