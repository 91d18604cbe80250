"""Reliability: kill a search's driver and its trial workers at random points, over several
cycles, then let it finish with ``--resume``; count what the kills cost.

A benchmark, not a test: the kill points are random (seeded), the run takes minutes. Counts:

* complete: trials trained to their end (``ok``/``stopped``), of the budget (goal: all);
* trained twice: a finished trial whose result was replaced by a later run, or one genome
  trained in two trials (a repeat is reused, never trained: not counted) (goal 0);
* lost: a trial that had finished and is gone, or is not finished at the end, or ended
  ``failed`` because of a kill (goal 0);
* discarded: a trial whose checkpoint holds more epochs than its record (computed, then
  thrown away: what ``Tuner.restore(resume_errored=True)`` did) (goal 0).
Also shown: trials that trained again from scratch because a kill damaged their checkpoint,
and one genome trained twice at the same time (the search's rule: a repeat of a genome still
training trains again; not a kill's cost).
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


def _finished(db: Path) -> dict[int, str]:
    try:
        with sqlite3.connect(db) as c:
            # trained to the end (a rejected genome is COMPLETE in Optuna too: told, not failed)
            return dict(
                c.execute(
                    "select t.number, t.datetime_complete from trials t join studies s using (study_id) "
                    "join trial_user_attributes a on a.trial_id = t.trial_id where s.study_name = 'rel' and "
                    "a.key = 'status' and a.value_json in ('\"ok\"', '\"stopped\"') and t.state in ('COMPLETE', 'PRUNED')"
                )
            )
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


def run_reliability(
    quick: bool = False,
    out_dir: str | Path | None = None,
    *,
    cycles: int | None = None,
    trials: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    import optuna
    import torch

    rng = random.Random(seed)
    cycles = cycles if cycles is not None else (2 if quick else 10)
    trials = trials if trials is not None else (3 if quick else 10)
    epochs = 3
    work = Path(tempfile.mkdtemp(prefix="archlab-rel-"))
    study = work / "runs" / "rel"
    db = study / "optuna.db"
    # the default space and clip, a smaller budget: trials of ~20-40 s on 2 cores, so kills
    # land at every stage (Ray's start, a proposal, mid-epoch, between trials)
    argv = [
        sys.executable,
        "-m",
        "archlab",
        "search",
        "--space",
        "interleave",
        "--name",
        "rel",
        "--out",
        str(work / "runs"),
        "--trials",
        str(trials),
        "--epochs",
        str(epochs),
        "--train-clips",
        "320" if quick else "480",
        "--val-clips",
        "100",
        "--wandb",
        "off",
        "--seed",
        str(seed),
        "--grace-epochs",
        "1",
    ]
    seen: dict[int, str] = {}  # trial number -> its first completion time
    replaced, vanished = set(), set()
    events = []
    t_start = time.perf_counter()
    for cycle in range(cycles):
        if len(_finished(db)) >= trials:
            events.append(f"cycle {cycle + 1}: the search was complete, no more kills")
            break
        proc = subprocess.Popen(
            argv + (["--resume"] if db.exists() else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        what = []
        t0 = time.perf_counter()
        if rng.random() < 0.5:  # a worker first, at a random point of a trial
            deadline = time.perf_counter() + 120
            while not _workers(study) and proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.5)  # Ray's start and the first proposal take 10-30 s
            time.sleep(rng.uniform(0, 20))
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
    # One genome trained in two trials: a bug if the second started after the first had
    # finished (it should have been a repeat, its result reused); while the first still ran
    # it is the search's own rule (a repeat of a genome still training trains again).
    twice, concurrent = len(replaced), 0
    firsts: dict[tuple, Any] = {}
    for t in sorted(trained, key=lambda t: t.datetime_start):
        key = tuple(sorted(t.params.items()))
        if key not in firsts:
            firsts[key] = t
        elif firsts[key].datetime_complete is not None and t.datetime_start > firsts[key].datetime_complete:
            twice += 1
        else:
            concurrent += 1
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
    header = [
        "cycles",
        "kills",
        "budget",
        "complete",
        "trained twice",
        "lost",
        "discarded",
        "failed",
        "unfinished",
        "restarted (corrupt ckpt)",
        "same genome while running",
        "final resume rc",
        "wall s",
    ]
    kills = sum(e.count("killed worker") + e.count("the driver's group") for e in events)
    row = [
        cycles,
        kills,
        trials,
        len(trained),
        twice,
        lost,
        discarded,
        len(killed_failed),
        len(unfinished),
        restarted,
        concurrent,
        final.returncode,
        round(wall),
    ]
    note = (
        ("Kills (seed %d): " % seed)
        + "; ".join(events)
        + f". Goal: complete = budget, 0 trained twice, 0 lost, 0 discarded. Study kept in {study}."
    )
    publish(
        "reliability",
        {"row": dict(zip(header, row)), "events": events, "study": str(study)},
        header,
        [row],
        note,
        out_dir,
    )
    return dict(zip(header, row))
