"""Reliability: kill a search's driver and its trial workers at random points, over several
cycles, then let it finish with ``--resume``; count what the kills cost (issue 15 item 2).

A benchmark, not a test: the kill points are random (seeded), the run takes minutes. Counts:

* complete: trials trained to their end (``ok``/``stopped``), of the budget (goal: all);
* trained twice: a finished trial whose result was replaced by a later run, or one genome
  trained in two trials (a repeat is reused, never trained: not counted) (goal 0);
* lost: a trial that had finished and is gone, or is not finished at the end, or ended
  ``failed`` because of a kill (goal 0);
* discarded: a trial whose checkpoint holds more epochs than its record (computed, then
  thrown away: what ``Tuner.restore(resume_errored=True)`` did) (goal 0).
It also prints how many epochs were trained again after kills (work a kill cost).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import publish

SPACE = """description: the reliability benchmark's space (2 stages, 1 block each)
kind: free
depths: [[1], [1]]
widths: [0.0625]
letters: [A, B, C, "2"]
fields: "stem=2d/s"
"""


def _finished(db: Path) -> dict[int, str]:
    try:
        with sqlite3.connect(db) as c:
            return dict(c.execute("select number, datetime_complete from trials where state in ('COMPLETE', 'PRUNED')"))
    except sqlite3.Error:
        return {}


def _workers(study: Path) -> list[int]:
    pids = []
    for note in study.glob("trials/*/worker.pid"):
        try:
            pids.append(int(note.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def run_reliability(quick: bool = False, out_dir: str | Path | None = None, *, cycles: int | None = None,
                    trials: int | None = None, seed: int = 0) -> dict[str, Any]:
    import optuna
    import torch

    rng = random.Random(seed)
    cycles = cycles if cycles is not None else (2 if quick else 8)
    trials = trials if trials is not None else (3 if quick else 10)
    epochs = 4
    work = Path(tempfile.mkdtemp(prefix="archlab-rel-"))
    (work / "space.yaml").write_text(SPACE)
    study = work / "runs" / "rel"
    db = study / "optuna.db"
    argv = [sys.executable, "-m", "archlab", "search", "--space", str(work / "space.yaml"), "--name", "rel",
            "--out", str(work / "runs"), "--frames", "4", "--size", "32", "--trials", str(trials), "--epochs",
            str(epochs), "--batch", "8", "--train-clips", "160", "--val-clips", "48", "--wandb", "off",
            "--seed", str(seed), "--sampler", "random", "--grace-epochs", str(epochs)]
    seen: dict[int, str] = {}  # trial number -> its first completion time
    replaced, vanished = set(), set()
    events = []
    t_start = time.perf_counter()
    for cycle in range(cycles):
        if len(_finished(db)) >= trials:
            events.append(f"cycle {cycle + 1}: the search was complete, no more kills")
            break
        proc = subprocess.Popen(argv + (["--resume"] if db.exists() else []), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        what = []
        t0 = time.perf_counter()
        if rng.random() < 0.5:  # a worker first, at a random point of a trial
            time.sleep(rng.uniform(12, 30))
            pids = _workers(study)
            if pids and proc.poll() is None:
                pid = rng.choice(pids)
                try:
                    os.kill(pid, signal.SIGKILL)
                    what.append(f"worker {pid} at {time.perf_counter() - t0:.0f} s")
                except OSError:
                    pass
        time.sleep(rng.uniform(8, 30))
        if proc.poll() is None:
            _kill_group(proc)
            what.append(f"the driver's group at {time.perf_counter() - t0:.0f} s")
        else:
            what.append("no driver kill (the search had ended)")
        events.append(f"cycle {cycle + 1}: killed " + ", ".join(what))
        now = _finished(db)
        for n, t in now.items():
            if n in seen and seen[n] != t:
                replaced.add(n)
            seen.setdefault(n, t)
        vanished |= set(seen) - set(now)
        print(events[-1], f"· {len(now)} finished so far", flush=True)
    final = subprocess.run(argv + ["--resume"], capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t_start
    now = _finished(db)
    replaced |= {n for n, t in now.items() if n in seen and seen[n] != t}
    vanished |= set(seen) - set(now)

    st = optuna.load_study(study_name="rel", storage=f"sqlite:///{db}")
    trained = [t for t in st.trials if t.user_attrs.get("status") in ("ok", "stopped")]
    by_params: dict[tuple, int] = {}
    for t in trained:
        key = tuple(sorted(t.params.items()))
        by_params[key] = by_params.get(key, 0) + 1
    twice = len(replaced) + sum(c - 1 for c in by_params.values())
    killed_failed = [t.number for t in st.trials if t.user_attrs.get("status") == "failed"]
    unfinished = [t.number for t in st.trials if t.state == optuna.trial.TrialState.RUNNING]
    lost = len(vanished) + max(0, trials - len(trained))  # failed by a kill, or never finished
    discarded, restarted = 0, 0
    for t in st.trials:
        ck = study / "trials" / f"{t.number:04d}" / "checkpoint.pt"
        if ck.exists():
            hist = torch.load(ck, map_location="cpu", weights_only=True)["history"]
            if len(hist) > int(t.user_attrs.get("epochs") or 0):
                discarded += 1
        restarted += bool(t.user_attrs.get("restarted"))
    header = ["cycles", "budget", "complete", "trained twice", "lost", "discarded", "failed", "unfinished",
              "restarted (corrupt ckpt)", "final resume rc", "wall s"]
    row = [cycles, trials, len(trained), twice, lost, discarded, len(killed_failed), len(unfinished), restarted,
           final.returncode, round(wall)]
    note = ("Kills (seed %d): " % seed) + "; ".join(events) + \
        f". Goal: complete = budget, 0 trained twice, 0 lost, 0 discarded. Study kept in {study}."
    publish("reliability", {"row": dict(zip(header, row)), "events": events, "study": str(study)}, header, [row], note,
            out_dir)
    return dict(zip(header, row))
