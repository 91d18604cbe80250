"""W&B tracking, offline: the tracker driven with stand-in trials the way the search's Ray
callback drives it (no Ray cluster), the runs read back from their .wandb files with `wandb
leet inspect --json`, nothing written outside the study, and a resumed search that reuses its
run ids.

The logging runs in subprocesses whose HOME, TMPDIR and working directory are empty temp
folders, so the test can check that W&B wrote nothing outside the study."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from archlab.testing.study import write_settings
from archlab.util.errors import UserError

OBJ, DIRS = ["val_top1", "latency_ms"], ["max", "min"]
GA, GB, GC, GD, GE, GF = (
    "AB|C2 sw=8 w=8,16 cls=6",
    "BB|B2 sw=8 w=8,16 cls=6",
    "33|33 sw=8 w=8,16 cls=6",
    "RR|R2 sw=8 w=8,16 cls=6",
    "AA|A2 sw=8 w=8,16 cls=6",
    "A3|R2 sw=8 w=8,16 cls=6",
)


# ---- the scenario (runs in a subprocess: see _drive) ------------------------------------------


def _res(genome: str, gid: str, **kw):
    r = {
        "genome": genome,
        "genome_id": gid,
        "gmacs": 0.02,
        "params": 41_000,
        "label": "",
        "latency_ms": 10.0,
        "clips_per_s": 100.0,
        "reason": "",
        "val_top5": 0.8,
        "training_iteration": 1,
        "node_ip": "127.0.0.1",
        "config": {"ignored": True},
    }
    r.update(kw)
    return r


def _trial(trial_id: str, **config):
    return SimpleNamespace(trial_id=trial_id, config=config, last_result={})


def _rec(ray_id: str, genome: str, gid: str, status: str, acc, top5, lat, gmacs, params, epochs, reason="", label=""):
    from archlab.results.record import TrialRecord

    return TrialRecord(
        status=status,
        reason=reason,
        ray_trial_id=ray_id,
        genome=genome,
        genome_id=gid,
        label=label,
        val_top1=acc,
        val_top5=top5,
        latency_ms=lat,
        gmacs=gmacs,
        params=params,
        epochs=epochs,
    )


def _table(f_status: str, f_acc: float, f_epochs: int) -> pd.DataFrame:
    """What results.load_results gives the search at the end, built from trial records by the
    same table builder (results.row / results.table)."""
    from archlab.results.reader import row, table

    search = [
        _rec("aaa_00000", GA, "ga", "ok", 0.5, 0.8, 10.0, 0.02, 41_000, 2),
        _rec("bbb_00001", GB, "gb", "stopped", 0.6, 0.8, 8.0, 0.03, 45_000, 1),
        _rec("ccc_00002", GC, "gc", "rejected", 0.0, 0.0, float("nan"), 1.2, 900_000, 0, "GMACs 1.2 > limit 1"),
        _rec(
            "ddd_00003", GD, "gd", "failed", 0.2, 0.5, 9.5, 0.02, 40_000, 1, "the trial's worker died (see ray/ logs)"
        ),
        _rec("fff_00004", GF, "gf", f_status, f_acc, 0.7, 9.0, 0.02, 39_000, f_epochs),
    ]
    base = [_rec("base_00000", GE, "ge", "ok", 0.4, 0.7, 5.0, 0.01, 30_000, 2, label="pure A")]
    return table(
        [row(n, r, False) for n, r in enumerate(search)] + [row(n, r, True) for n, r in enumerate(base)], OBJ, DIRS
    )


def _hv(df: pd.DataFrame) -> dict:
    from archlab.report import study_hypervolume

    return study_hypervolume(df, {}, OBJ, DIRS)


def _drive(study: Path, phase: str) -> None:
    """Phase 'search': a search interrupted while trial 4 runs (finish_study is still called, as
    search.py does after Ctrl-C). Phase 'resume': trial 4 restarts from its checkpoint after
    epoch 1 and finishes. Phase 'again': the search is run once more with nothing left to do."""
    from archlab.tracking import make_tracker

    lines: list[str] = []
    tr = make_tracker("auto", study, lines.append)
    assert tr is not None, lines
    if phase == "same-second":
        _reopen_within_one_second(tr)
        print(json.dumps(lines))
        return
    if phase == "search":
        a = _trial("aaa_00000", _number=0)
        tr.trial_result(
            a,
            _res(
                GA,
                "ga",
                val_top1=0.3,
                epochs=1,
                status="running",
                train_loss=2.0,
                val_loss=1.9,
                epoch_time_s=1.0,
                train_time_s=1.0,
                trial_time_s=3.0,
            ),
        )
        tr.trial_result(
            a,
            _res(
                GA,
                "ga",
                val_top1=0.5,
                epochs=2,
                status="ok",
                train_loss=1.5,
                val_loss=1.4,
                epoch_time_s=1.1,
                train_time_s=2.1,
                trial_time_s=4.5,
            ),
        )
        tr.trial_complete(a)
        # replayed events for a finished trial (as after a restore) add nothing
        tr.trial_result(a, _res(GA, "ga", val_top1=0.5, epochs=2, status="ok"))
        tr.trial_complete(a)
        b = _trial("bbb_00001", _number=1)  # ASHA stops it after one epoch
        tr.trial_result(
            b, _res(GB, "gb", val_top1=0.6, latency_ms=8.0, gmacs=0.03, params=45_000, epochs=1, status="running")
        )
        tr.trial_complete(b)
        c = _trial("ccc_00002", _number=2)  # rejected before training: one final result
        tr.trial_result(
            c,
            _res(
                GC,
                "gc",
                gmacs=1.2,
                params=900_000,
                val_top1=0.0,
                epochs=0,
                status="rejected",
                reason="GMACs 1.2 > limit 1",
                latency_ms=float("inf"),
            ),
        )
        tr.trial_complete(c)
        d = _trial("ddd_00003", _number=3)  # its worker dies after one epoch
        tr.trial_result(d, _res(GD, "gd", val_top1=0.2, latency_ms=9.5, epochs=1, status="running"))
        tr.trial_complete(d, error=True)
        e = _trial("base_00000", genome=GE, _label="pure A")  # a baseline: no Optuna number in its config
        for ep, acc in ((1, 0.3), (2, 0.4)):
            tr.trial_result(
                e,
                _res(
                    GE,
                    "ge",
                    label="pure A",
                    val_top1=acc,
                    latency_ms=5.0,
                    gmacs=0.01,
                    params=30_000,
                    epochs=ep,
                    status="ok" if ep == 2 else "running",
                ),
            )
        tr.trial_complete(e)
        f = _trial("fff_00004", _number=4)
        tr.trial_result(f, _res(GF, "gf", val_top1=0.1, latency_ms=9.0, params=39_000, epochs=1, status="running"))
        df = _table("running", 0.1, 1)
    else:
        if phase == "resume":
            f = _trial("fff_00004", _number=4)
            f.last_result = _res(GF, "gf", val_top1=0.45, latency_ms=9.0, params=39_000, epochs=2, status="ok")
            tr.trial_result(f, f.last_result)
            tr.trial_complete(f)
        df = _table("ok", 0.45, 2)
    tr.finish_study(df, _hv(df))
    print(json.dumps(lines))


def _reopen_within_one_second(tr) -> None:
    """One run opened, finished and reopened (as finish_study does to correct on_front) with
    W&B's clock held in one second: wandb names the second run directory
    `offline-run-<same time>-<id>-1`, as it did in CI when the reopening came fast."""
    import wandb.sdk.wandb_init as wandb_init

    frozen = wandb_init.time.time()
    wandb_init.time = SimpleNamespace(
        **{k: getattr(wandb_init.time, k) for k in dir(wandb_init.time) if not k.startswith("__")}
    )
    wandb_init.time.time = lambda: frozen
    with tr._env():
        for on_front in (True, False):
            run = tr._init(rid_of("nas-same", "t0"), "ga-t0", "trial", {"genome": GA}, ["trial"])
            run.summary.update({"on_front": on_front})
            run.finish()


def _run_phase(tmp: Path, study: Path, phase: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k not in ("NETRC",)}
    env.update(
        HOME=str(tmp / "home"),
        TMPDIR=str(tmp / "tmp"),
        WANDB_MODE="offline",
        XDG_CONFIG_HOME=str(tmp / "home" / ".config"),
        XDG_CACHE_HOME=str(tmp / "home" / ".cache"),
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    r = subprocess.run(
        [sys.executable, __file__, str(study), phase],
        cwd=tmp / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- reading runs back -----------------------------------------------------------------------


@functools.cache
def inspect(run_dir: Path) -> dict:
    """A run directory's records (`wandb leet inspect --json`) folded into config, summary,
    history rows and exit code, the way W&B itself reads them back."""
    r = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out: dict = {"config": {}, "summary": {}, "history": [], "exit_code": None, "run": {}}
    for line in r.stdout.splitlines():
        rec = json.loads(line)
        kind = rec["type"]
        if kind == "run":
            out["run"] = rec["run"]
            out["config"].update(rec["run"].get("config", {}).get("update", {}))
        elif kind == "config":
            out["config"].update(rec["config"].get("update", {}))
        elif kind == "summary":
            out["summary"].update(rec["summary"].get("update", {}))
        elif kind == "history":
            out["history"].append(rec["history"]["item"])
        elif kind == "exit":
            out["exit_code"] = rec["exit"].get("exit_code", 0)
    return out


def _run_dirs(study: Path) -> dict[str, list[Path]]:
    """run id -> its run directories, oldest first (a resumed run has one per opening). The id
    comes from the run's own records, never from the folder name: wandb appends "-1" to the
    folder of a run reopened within the same second (STACK_NOTES)."""
    out: dict[str, list[Path]] = {}
    for d in sorted((study / "wandb").glob("offline-run-*"), key=lambda p: (inspect(p)["run"]["start_time"], p.name)):
        out.setdefault(inspect(d)["run"]["run_id"], []).append(d)
    return out


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def offline_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wb")
    for d in ("home", "tmp", "cwd"):
        (tmp / d).mkdir()
    study = tmp / "cwd" / "nas-demo"
    study.mkdir()
    write_settings(study, space="interleave", epochs=2)  # study.yaml as the search writes it
    echoes = {}
    echoes["search"] = _run_phase(tmp, study, "search")
    dirs_after_search = _run_dirs(study)
    echoes["resume"] = _run_phase(tmp, study, "resume")
    dirs_after_resume = _run_dirs(study)
    echoes["again"] = _run_phase(tmp, study, "again")
    return SimpleNamespace(
        tmp=tmp,
        study=study,
        echoes=echoes,
        after_search=dirs_after_search,
        after_resume=dirs_after_resume,
        final=_run_dirs(study),
    )


def rid_of(study: str, name: str) -> str:
    from archlab.tracking import run_prefix

    return f"{run_prefix(study)}-{name}"


def rid(name: str) -> str:
    return rid_of("nas-demo", name)


# ---- the tests -----------------------------------------------------------------------------


def test_run_ids_are_stable_and_not_duplicated(offline_study):
    ns = offline_study
    assert {k: len(v) for k, v in ns.after_search.items()} == {
        rid("t0"): 1,  # on the front throughout: trial 1 (0.6 at 8 ms) was stopped at a rung, never a front point
        rid("t1"): 1,
        rid("t2"): 1,
        rid("t3"): 1,
        rid("bbase_00000"): 1,
        rid("t4"): 1,
        rid("study"): 1,
    }
    after = {k: len(v) for k, v in ns.after_resume.items()}
    assert after[rid("t4")] == 2 and after[rid("study")] == 2  # trial 4 continued, the study re-summarised
    assert {k: v for k, v in after.items() if k not in (rid("t4"), rid("study"))} == {
        k: len(v) for k, v in ns.after_search.items() if k not in (rid("t4"), rid("study"))
    }
    assert {k: len(v) for k, v in ns.final.items()} == after  # nothing new to log: nothing written
    from archlab.tracking import registered_runs, trial_run_id

    assert trial_run_id("nas-demo", 0) == rid("t0") and trial_run_id("nas-demo", None, "base_00000") == rid(
        "bbase_00000"
    )
    reg = registered_runs(ns.study)
    assert sorted(reg) == sorted(k for k in ns.final if k != rid("study"))
    assert all(len(e["dirs"]) == len(ns.final[k]) for k, e in reg.items())
    assert "unchanged" in " ".join(ns.echoes["again"])


def test_trial_config_history_and_summary(offline_study):
    ns = offline_study
    (first,) = (inspect(d) for d in ns.final[rid("t0")])
    assert first["run"]["run_group"] == "nas-demo" and first["run"]["job_type"] == "trial"
    assert first["run"]["display_name"] == "ga-t0" and first["run"]["resume"] is True
    c = first["config"]
    assert {
        k: c[k]
        for k in (
            "genome",
            "genome_id",
            "stage1",
            "stage2",
            "depth",
            "width",
            "params",
            "gmacs",
            "label",
            "baseline",
            "trial_number",
            "study",
        )
    } == {
        "genome": GA,
        "genome_id": "ga",
        "stage1": "AB",
        "stage2": "C2",
        "depth": 4,
        "width": 8,
        "params": 41_000,
        "gmacs": 0.02,
        "label": "",
        "baseline": False,
        "trial_number": 0,
        "study": "nas-demo",
    }
    assert [c[f"n_{letter}"] for letter in "ABC23R"] == [1, 1, 1, 1, 0, 0]
    assert [c[f"frac_{letter}"] for letter in "ABC23R"] == [0.25, 0.25, 0.25, 0.25, 0, 0]
    hist = [(h["epochs"], h["val_top1"], h["train_loss"], h["val_loss"]) for h in first["history"]]
    assert hist == [(1, 0.3, 2.0, 1.9), (2, 0.5, 1.5, 1.4)]
    assert "node_ip" not in first["history"][0] and "config" not in first["history"][0]
    s = first["summary"]
    assert (s["status"], s["val_top1"], s["latency_ms"], s["epochs"], s["genome"], s["on_front"]) == (
        "ok",
        0.5,
        10,
        2,
        GA,
        True,
    )  # on the front of the trials finished so far, and at the end:
    # trial 1 (0.6 at 8 ms) would dominate it, but it was stopped at a rung (issue 13)
    assert first["exit_code"] == 0


def test_stopped_rejected_failed_and_baseline_runs(offline_study):
    ns = offline_study
    (b,) = (inspect(d) for d in ns.final[rid("t1")])
    assert b["summary"]["status"] == "stopped" and b["summary"]["on_front"] is False  # never on a front
    assert [h["epochs"] for h in b["history"]] == [1]
    (c,) = (inspect(d) for d in ns.final[rid("t2")])
    assert c["summary"]["status"] == "rejected" and c["summary"]["reason"] == "GMACs 1.2 > limit 1"
    assert c["summary"].get("latency_ms") is None and c["history"] == [] and c["summary"]["on_front"] is False
    assert c["config"]["gmacs"] == 1.2 and c["config"]["stage1"] == "33"
    (d,) = (inspect(x) for x in ns.final[rid("t3")])
    assert d["summary"]["status"] == "failed" and "worker died" in d["summary"]["reason"]
    assert d["exit_code"] == 1 and [h["val_top1"] for h in d["history"]] == [0.2]
    (e,) = (inspect(x) for x in ns.final[rid("bbase_00000")])
    assert e["run"]["job_type"] == "baseline" and e["config"]["label"] == "pure A" and e["config"]["baseline"] is True
    assert e["config"]["trial_id"] == "base_00000" and e["config"]["frac_A"] == 0.75
    assert [(h["epochs"], h["val_top1"]) for h in e["history"]] == [(1, 0.3), (2, 0.4)]
    assert e["summary"]["on_front"] is True and e["summary"]["label"] == "pure A"


def test_resumed_trial_continues_its_run(offline_study):
    f1, f2 = (inspect(d) for d in offline_study.final[rid("t4")])
    assert [h["epochs"] for h in f1["history"]] == [1]
    assert [(h["epochs"], h["val_top1"]) for h in f2["history"]] == [(2, 0.45)]  # epoch 1 not logged twice
    assert f2["run"]["run_id"] == rid("t4") and f2["summary"]["status"] == "ok"
    # 0.45 at 9 ms: not dominated by trial 0 (0.5 at 10 ms); trial 1, which would dominate it,
    # was stopped at a rung and is no front point
    assert f2["summary"]["on_front"] is True and f2["config"]["genome"] == GF


def test_study_run(offline_study):
    ns = offline_study
    from archlab.report import hypervolume_curve

    study_dirs = ns.final[rid("study")]
    s = inspect(study_dirs[-1])
    df = _table("ok", 0.45, 2)
    hv = _hv(df)
    assert s["run"]["job_type"] == "study" and s["run"]["run_group"] == "nas-demo"
    assert s["summary"]["hypervolume"] == pytest.approx(hv["hypervolume"])
    assert s["summary"]["front_size"] == 2 and s["summary"]["trials_finished"] == 4  # trials 0 and 4
    assert (s["summary"]["trials_failed"], s["summary"]["trials_rejected"], s["summary"]["best_val_top1"]) == (
        1,
        1,
        0.6,
    )
    assert s["config"]["objectives"] == OBJ and s["config"]["reference_point"] == pytest.approx(hv["reference_point"])
    assert s["config"]["space"] == "interleave"  # the study's settings
    curve = hypervolume_curve(df, OBJ, DIRS, hv["reference_point"])
    logged = [(h["trial"], h["hypervolume"]) for h in s["history"] if "hypervolume" in h]
    assert logged == [(int(n), pytest.approx(v)) for n, v in zip(curve["number"], curve["hypervolume"])]
    assert logged[0][1] == pytest.approx(0.5 * hv["reference_point"][1] - 0.5 * 10.0)
    assert "_wandb.visualize.pareto_front" in s["config"] and "_wandb.visualize.hypervolume_curve" in s["config"]
    tables = {
        p.name.split("_")[0]: json.loads(p.read_text())
        for p in (study_dirs[-1] / "files" / "media" / "table").glob("*.table.json")
    }
    trials = tables["trials"]
    on_front = {
        (r[trials["columns"].index("run_id")]) for r in trials["data"] if r[trials["columns"].index("on_front")]
    }
    assert on_front == {rid("t0"), rid("t4"), rid("bbase_00000")}  # never t1: stopped at a rung
    pareto = tables["pareto"]
    assert [r[pareto["columns"].index("genome")] for r in pareto["data"]] == [GE, GF, GA]  # by latency


def test_nothing_written_outside_the_study(offline_study):
    ns = offline_study
    assert _files(ns.tmp / "home") == []
    assert _files(ns.tmp / "tmp") == []
    assert _files(ns.tmp / "cwd") == [p for p in _files(ns.tmp / "cwd") if p.startswith("nas-demo")]
    assert sorted(os.listdir(ns.study)) == ["study.yaml", "wandb"]


def test_sync_command_is_printed_and_covers_every_run(offline_study):
    ns = offline_study
    wandb_dir = ns.study / "wandb"
    assert any(f"wandb sync {wandb_dir}" in line for line in ns.echoes["search"])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}, "HOME": str(ns.tmp / "home")}
    r = subprocess.run(
        [sys.executable, "-m", "wandb", "sync", "--dry-run", str(wandb_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    n = sum(len(v) for v in ns.final.values())
    assert f"Would sync {n} run(s)" in r.stdout + r.stderr


def test_study_without_finished_trials(tmp_path):
    """Every trial failed: the study run still says so, without a front or a hypervolume."""
    from archlab.tracking import make_tracker, study_run_id

    lines: list[str] = []
    cb = make_tracker("offline", tmp_path / "allfail", lines.append)
    df = _table("running", 0.1, 1)
    df = df[df["status"].isin(["failed", "rejected"])].reset_index(drop=True)
    df["on_front"] = False
    cb.finish_study(df, {"objectives": OBJ, "directions": DIRS})
    assert not any("failed (" in line for line in lines), lines
    (d,) = (tmp_path / "allfail" / "wandb").glob(f"offline-run-*-{study_run_id('allfail')}")
    s = inspect(d)["summary"]
    assert (s["trials_finished"], s["trials_failed"], s["trials_rejected"]) == (0, 1, 1)
    assert s.get("hypervolume") is None and s.get("best_val_top1") is None


def test_runs_reopened_within_one_second_keep_their_id(tmp_path):
    """Bug 0 of issue 12: a run reopened in the same second lands in `...-<id>-1`; the run id is
    read from the run's files, so both openings belong to the one run."""
    for d in ("home", "tmp", "cwd"):
        (tmp_path / d).mkdir()
    study = tmp_path / "cwd" / "nas-same"
    _run_phase(tmp_path, study, "same-second")
    names = sorted(p.name for p in (study / "wandb").glob("offline-run-*"))
    run_id = rid_of("nas-same", "t0")
    assert len(names) == 2 and names[1] == names[0] + "-1" and names[0].endswith(run_id), names
    dirs = _run_dirs(study)
    assert list(dirs) == [run_id] and [p.name for p in dirs[run_id]] == names
    assert [inspect(p)["summary"]["on_front"] for p in dirs[run_id]] == [True, False]


# ---- modes, without W&B runs ---------------------------------------------------------------------


def test_modes(monkeypatch, tmp_path):
    from archlab.tracking import has_credentials, make_tracker, resolve_mode

    for k in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert not has_credentials() and resolve_mode("auto") == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password 0123456789abcdef\n")
    assert has_credentials() and resolve_mode("auto") == "online"
    (tmp_path / "netrc").write_text("machine example.com login u password p\n")
    assert not has_credentials()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("auto") == "off" and resolve_mode("offline") == "offline"
    monkeypatch.delenv("WANDB_API_KEY")
    assert make_tracker("off", tmp_path / "s", print) is None
    with pytest.raises(UserError, match="no W&B credentials"):
        make_tracker("online", tmp_path / "s", print)
    with pytest.raises(UserError, match="--wandb 'bogus'"):
        make_tracker("bogus", tmp_path / "s", print)
    assert not (tmp_path / "s").exists()


def test_tracker_survives_pickling_like_ray_does(tmp_path):
    """Ray pickles the search's callbacks (search.wandb_callback.Tracking, holding the tracker) with
    the experiment, to resume it."""
    import ray.cloudpickle as cloudpickle
    from ray.tune import Callback

    from archlab.search.wandb_callback import Tracking
    from archlab.tracking import make_tracker

    cb = make_tracker("offline", tmp_path / "s", lambda line: None)
    assert isinstance(Tracking(tracker=cb), Callback)
    wrapped = cloudpickle.loads(cloudpickle.dumps(Tracking(tracker=cb)))
    assert wrapped.tracker.study_dir == cb.study_dir
    cb._runs["x"] = object()  # an open run is never pickled with the experiment
    back = cloudpickle.loads(cloudpickle.dumps(cb))
    assert back._runs == {} and back.study_dir == cb.study_dir and back.mode == "offline"


if __name__ == "__main__":
    _drive(Path(sys.argv[1]), sys.argv[2])
