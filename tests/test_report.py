"""`archlab report` / `archlab dashboard` on a real study directory built without a search:
study.yaml from the search's settings writer, optuna.db from trial records
(archlab.testing.study), as the search leaves them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.collections import LineCollection

from archlab.cli import main
from archlab.report import (
    build_report,
    chance_accuracy,
    hypervolume_curve,
    hypervolume_figure,
    hypervolume_time_curve,
    mix_figure,
    short_genome,
    study_hypervolume,
    tradeoff_figure,
)
from archlab.results.reader import hypervolume_summary, load_results, row, table
from archlab.results.record import TrialRecord
from archlab.results.writers import write_tables
from archlab.testing.study import write_study
from archlab.util.errors import UserError

G = "sw=8 w=8,16 cls=6"
# (genome, status, val_top1, latency_ms, gmacs, params, reason)
SEARCH = [
    (f"AB|C2 {G}", "ok", 0.50, 10.0, 0.020, 41_000, ""),  # 0 front
    (f"AA|22 {G}", "ok", 0.40, 6.0, 0.012, 30_000, ""),  # 1 front
    (f"CC|C2 {G}", "ok", 0.45, 12.0, 0.022, 43_000, ""),  # 2 dominated by 0
    (f"BB|B2 {G}", "ok", 0.62, 20.0, 0.030, 45_000, ""),  # 3 front
    (f"22|22 {G}", "ok", 0.30, 4.0, 0.008, 25_000, ""),  # 4 front
    (f"RR|R2 {G}", "failed", 0.10, 9.5, 0.018, 40_000, "RuntimeError: loss is NaN at epoch 2"),  # 5
    (f"33|33 {G}", "rejected", None, None, 1.2, 900_000, "GMACs 1.2 > limit 1"),  # 6
    (f"A3|R2 {G}", "stopped", 0.35, 9.0, 0.02, 39_000, ""),  # 7 dominated by 1
    ("ABC|ABCA|BCABCA|222 cls=6", "ok", 0.58, 80.0, 5.1, 23_000_000, ""),  # 8 the p3d63 preset, dominated by 3
]
BASELINES = [
    ("pure A", f"AA|A2 {G}", 0.48, 11.0, 0.021, 42_000),  # dominated by 0
    ("pure B", f"BB|22 {G}", 0.55, 15.0, 0.026, 44_000),  # on the front (between 0 and 3)
]
FRONT = [SEARCH[i][0] for i in (4, 1, 0, 3)] + [BASELINES[1][1]]
NOT_FRONT = [SEARCH[i][0] for i in (2, 5, 6, 7, 8)] + [BASELINES[0][1]]


def _record(n: int, genome: str, status: str, acc, lat, gmacs, params, reason="", label="") -> TrialRecord:
    return TrialRecord(
        status=status,
        reason=reason,
        ray_trial_id=f"rt{n:05d}" + ("b" if label else ""),
        genome=genome,
        genome_id=f"id{n:02d}{len(genome)}",
        label=label,
        val_top1=acc,
        val_top5=None if acc is None else min(1.0, acc + 0.3),
        latency_ms=lat,
        gmacs=gmacs,
        params=params,
        epochs=0 if status == "rejected" else (2 if status == "stopped" else 4),
        checkpoint=f"ray/t{n}/work",
        train_time_s=12.5,
        trial_time_s=14.0,
    )


def make_study(root: Path, name: str = "mixdemo", search=SEARCH, baselines=BASELINES) -> Path:
    return write_study(
        root / name,
        [_record(n, *row) for n, row in enumerate(search)],
        [_record(n, g, "ok", acc, lat, gm, p, label=label) for n, (label, g, acc, lat, gm, p) in enumerate(baselines)],
        tables=False,
        space="interleave",
        epochs=4,
        trials=max(1, len(search)),
        wandb="off",
    )


@pytest.fixture(scope="module")
def _study_template(tmp_path_factory) -> Path:
    return make_study(tmp_path_factory.mktemp("template"))


@pytest.fixture()
def study(_study_template: Path, tmp_path: Path) -> Path:
    """A fresh copy per test (writing optuna.db trial by trial takes seconds)."""
    return Path(shutil.copytree(_study_template, tmp_path / _study_template.name))


def _assert_png(path: Path, min_bytes: int = 15_000) -> None:
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert len(data) > min_bytes, (path, len(data))
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    assert float(img[..., :3].var()) > 1e-3, f"{path} looks blank"


def test_fixture_is_what_the_results_module_reads(study: Path):
    df, info = load_results(study)
    assert len(df) == len(SEARCH) + len(BASELINES)
    assert sorted(df.loc[df["on_front"], "genome"]) == sorted(FRONT)
    assert df.loc[df["number"].eq(5) & ~df["baseline"], "status"].item() == "failed"


def test_report_md_has_front_failures_and_plots(study: Path):
    doc = build_report(study, "md")
    assert doc == study / "report" / "report.md"
    text = doc.read_text()
    front_block = text.split("## Pareto front")[1].split("## ")[0]
    for g in FRONT:
        assert g in front_block, g
    for g in NOT_FRONT:
        assert g not in front_block, g
    # rows sorted by latency, the fastest first; numbers as logged
    assert front_block.index(SEARCH[4][0]) < front_block.index(SEARCH[1][0]) < front_block.index(SEARCH[3][0])
    line = next(text_line for text_line in front_block.splitlines() if text_line.endswith(SEARCH[3][0]))
    assert line.split()[:4] == ["3", "0.620", "0.920", "20.00"]
    line = next(text_line for text_line in front_block.splitlines() if text_line.endswith(BASELINES[1][1]))
    assert line.split()[:2] == ["b1", "0.550"]  # a baseline by the id `archlab export --trial` takes
    failures = text.split("## Failures (2)")[1].split("## ")[0]
    assert "RuntimeError: loss is NaN at epoch 2" in failures and "GMACs 1.2 > limit 1" in failures
    assert "rejected" in failures and "failed" in failures
    summary = text.split("## Summary")[1].split("## ")[0]
    assert (
        "search trials: 9 — finished 7 (ok 6, stopped early 1), failed 1, rejected 1, repeats not retrained 0, running 0"
        in summary
    )
    # hypervolume of the search front w.r.t. the reference point (acc 0, latency 1.1 x 80 ms)
    ref_lat = 80.0 * 1.1
    pts = sorted([(4.0, 0.30), (6.0, 0.40), (10.0, 0.50), (20.0, 0.62), (80.0, 0.58)])
    hv, best = 0.0, 0.0
    for lat, acc in pts:
        if acc > best:
            hv += (ref_lat - lat) * (acc - best)
            best = acc
    assert f"hypervolume {hv:.4g}" in summary
    assert "best accuracy: val_top1 0.620 (trial 3, `BB|B2 sw=8 w=8,16 cls=6`)" in summary
    assert "fastest: 4.00 ms at val_top1 0.300 (trial 4, `22|22 sw=8 w=8,16 cls=6`)" in summary
    pngs = sorted(p.name for p in (study / "report").glob("*.png"))
    assert pngs == ["accuracy_vs_gmacs.png", "accuracy_vs_latency.png", "block_mix.png", "hypervolume.png"]
    for name in pngs:
        assert f"]({name})" in text
        _assert_png(study / "report" / name)


def test_hypervolume_curve_counts_only_finished_search_trials(study: Path):
    df, info = load_results(study)
    curve = hypervolume_curve(df, info.objectives, info.directions, [0.0, 88.0])
    assert list(curve["number"]) == list(range(9))
    v = list(curve["hypervolume"])
    assert v[0] == pytest.approx(0.5 * 78.0)
    assert v[4] == v[5] == v[6] == v[7]  # failed (with values), rejected and a dominated trial add nothing
    assert v[3] > v[2] and v[-1] == v[-2]  # p3d63 is dominated
    assert all(b >= a for a, b in zip(v, v[1:]))


def test_html_report(study: Path):
    doc = build_report(study, "html")
    text = doc.read_text()
    assert doc.name == "report.html" and text.startswith("<!DOCTYPE html>")
    assert "<td>BB|B2 sw=8 w=8,16 cls=6</td>" in text and 'src="accuracy_vs_latency.png"' in text
    assert "RuntimeError: loss is NaN at epoch 2" in text


def test_cli_report_and_errors(study: Path, tmp_path: Path, capsys):
    assert main(["report", str(study)]) == 0
    assert (study / "report" / "report.md").exists()
    assert "report.md" in capsys.readouterr().out
    empty = tmp_path / "not-a-study"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a study directory" in err
    with pytest.raises(SystemExit) as e:
        main(["report", str(study), "--format", "pdf"])
    assert e.value.code == 2


def test_empty_study_is_a_user_error(tmp_path: Path, capsys):
    d = make_study(tmp_path, "empty", search=[], baselines=[])
    with pytest.raises(UserError, match="no trials yet"):
        build_report(d)
    assert main(["report", str(d)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_no_finished_trial(tmp_path: Path):
    d = make_study(tmp_path, "allfail", search=[SEARCH[5], SEARCH[6]], baselines=[])
    text = build_report(d).read_text()
    assert "no trial finished" in text and "GMACs 1.2 > limit 1" in text
    assert "hypervolume: - (no search trial finished)" in text
    assert not list((d / "report").glob("*.png"))


def test_one_trial_without_baselines(tmp_path: Path):
    d = make_study(tmp_path, "one", search=[SEARCH[0]], baselines=[])
    text = build_report(d).read_text()
    front = text.split("## Pareto front")[1].split("## ")[0]
    assert SEARCH[0][0] in front and "Baselines" not in text
    assert "## Failures (0)" in text
    for p in (d / "report").glob("*.png"):
        _assert_png(p, 8_000)
    assert len(list((d / "report").glob("*.png"))) == 4


def test_short_genome_fits_labels():
    long = "ABC|ABCA|BCABCABCABCABCABCABCABCABC|222 stem=3d/none fam=basic t=-,c,c,c cls=400"
    s = short_genome(long, 24, 2)
    assert "cls=" not in s and len(s.splitlines()) == 2 and all(len(text_line) <= 24 for text_line in s.splitlines())
    assert s.endswith("…")
    assert short_genome("AB|C2 sw=8 cls=6") == "AB|C2 sw=8"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_study(study: Path):
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "archlab", "dashboard", str(study), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline, names, last = time.monotonic() + 30, None, None
        while time.monotonic() < deadline and names is None:
            if proc.poll() is not None:
                pytest.fail(f"dashboard exited: {proc.stderr.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    names = [s["study_name"] for s in json.load(r)["study_summaries"]]
            except OSError as e:
                last = e
                time.sleep(0.3)
        assert names is not None, f"no answer in 30 s: {last}"
        assert "mixdemo" in names and "mixdemo:baselines" in names
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in out


def test_dashboard_errors(tmp_path: Path, capsys):
    assert main(["dashboard", str(tmp_path)]) == 2
    assert "not a study directory" in capsys.readouterr().err


# ---- a damaged optuna.db: one line, exit 2, from every reader ---------------------------------


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda b: b[: len(b) // 2], "cannot be read as an Optuna storage (database disk image is malformed)"),
        (lambda b: b[:100], "cannot be read as an Optuna storage"),
        (lambda b: b"", "is empty (0 bytes)"),
        (lambda b: b"\x00" * 4096, "is not an SQLite database"),
    ],
)
def test_damaged_storage_is_one_line_from_report_and_dashboard(study: Path, capsys, damage, needle):
    db = study / "optuna.db"
    db.write_bytes(damage(db.read_bytes()))
    before = db.read_bytes()
    for argv in (["report", str(study)], ["dashboard", str(study), "--port", "0"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err and str(db) in err, (argv, err)
        assert "Traceback" not in err and "sqlalchemy" not in err
    with pytest.raises(UserError, match="corrupt|empty|not an SQLite"):
        load_results(study)
    assert db.read_bytes() == before and not (study / "report").exists()  # nothing written


# ---- what the plots draw -------------------------------------------------------------------------


def _table(study: Path):
    df, info = load_results(study)
    return df, info


def test_tradeoff_plot_marks_chance_and_draws_stopped_trials_hollow(study: Path):
    df, info = _table(study)
    assert chance_accuracy(df) == pytest.approx(1 / 6)
    fig = tradeoff_figure(df, "latency_ms", "t", {}, objectives=info.objectives, directions=info.directions)
    ax = fig.axes[0]
    chance = [artist for artist in ax.lines if str(artist.get_label()).startswith("chance")]
    assert len(chance) == 1 and list(chance[0].get_ydata()) == pytest.approx([1 / 6, 1 / 6])
    assert chance[0].get_label() == "chance (1/6 = 0.167)" and ax.get_ylim()[0] < 1 / 6
    stopped = df[df["status"] == "stopped"]
    assert len(stopped) == 1
    hollow, filled = [], []
    for coll in ax.collections:
        if isinstance(coll, LineCollection):  # error bars, not points
            continue
        fc = coll.get_facecolors()
        pts = [tuple(p) for p in coll.get_offsets()]
        if not pts:
            continue
        (hollow if len(fc) == 0 or np.all(fc[:, 3] == 0) else filled).extend(pts)
    assert hollow == [(stopped["latency_ms"].item(), stopped["val_top1"].item())]
    done = df[df["status"] == "ok"]
    assert sorted(filled) == sorted(zip(done["latency_ms"], done["val_top1"]))  # every full-budget trial, filled
    assert any("stopped early by ASHA (1)" in t.get_text() for t in ax.get_legend().get_texts())


def test_mix_plot_marks_chance_and_stopped_trials(study: Path):
    df, info = _table(study)
    fig = mix_figure(df, "t", objectives=info.objectives, directions=info.directions)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert panels and all(any(artist.get_ydata()[0] == pytest.approx(1 / 6) for artist in ax.lines) for ax in panels)
    for ax in panels:
        hollow = [
            p
            for c in ax.collections
            if len(c.get_offsets())
            and not isinstance(c, LineCollection)
            and (len(c.get_facecolors()) == 0 or np.all(c.get_facecolors()[:, 3] == 0))
            for p in c.get_offsets()
        ]
        assert [round(float(y), 3) for _, y in hollow] == [0.35]  # trial 7, stopped


def test_every_plot_draws_the_tables_front_baselines_included(study: Path):
    """The front each plot draws (its artists with gid 'front') is the table's, the baseline on
    it included; the step line only where the x axis is an objective (latency here)."""
    df, info = _table(study)
    front = df[df["on_front"]]
    assert sorted(front["trial"]) == ["0", "1", "3", "4", "b1"]
    for x in ("latency_ms", "gmacs"):
        ax = tradeoff_figure(df, x, "t", {}, objectives=info.objectives, directions=info.directions).axes[0]
        drawn = sorted(tuple(map(float, p)) for c in ax.collections if c.get_gid() == "front" for p in c.get_offsets())
        assert drawn == sorted(zip(front[x], front["val_top1"])), x
        line = [ln for ln in ax.lines if ln.get_gid() == "front-line"]
        assert len(line) == (1 if x == "latency_ms" else 0), x
    fig = mix_figure(df, "t", objectives=info.objectives, directions=info.directions)
    for ax in (a for a in fig.axes if a.get_visible()):
        ys = sorted(float(p[1]) for c in ax.collections if c.get_gid() == "front" for p in c.get_offsets())
        assert ys == sorted(front["val_top1"])


def test_hypervolume_plot_has_whole_trial_numbers_as_ticks(study: Path):
    df, info = _table(study)
    few = df[df["number"] < 3].copy()  # three trials: matplotlib alone would tick 0, 0.25, 0.5 ...
    hv = study_hypervolume(few, info.settings, info.objectives, info.directions)
    curve = hypervolume_curve(few, info.objectives, info.directions, hv["reference_point"])
    fig = hypervolume_figure(curve, hv, "t")
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


# ---- hypervolume history against trials and wall time ---------------------------------------------

T0 = datetime(2026, 12, 1, 9, 0, 0)
# (status, val_top1, latency_ms, started s, completed s or None): two trials at a time, finishing
# out of number order; reference point (acc 0, latency 20 ms).
TIMED = [
    ("ok", 0.5, 10.0, 0.0, 100.0),  # 0: alone 0.5 x 10 = 5
    ("ok", 0.4, 5.0, 0.0, 60.0),  # 1: finishes first, 0.4 x 15 = 6; with 0: 6 + 0.1 x 10 = 7
    ("rejected", None, None, 100.0, 100.5),  # 2: no objective values
    ("stopped", 0.9, 1.0, 61.0, 130.0),  # 3: stopped at a rung, would dominate all: counts for nothing
    ("ok", 0.8, 8.0, 101.0, 250.0),  # 4: 0.4 x 15 + 0.4 x 12 = 10.8 (0 is dominated)
    ("running", 0.7, 2.0, 131.0, None),
]  # 5: not completed: not on the time axis
TIMED_BASE = [
    ("ok", 0.6, 12.0, 300.0, 400.0),  # b0: 0.6 x 8 = 4.8
    ("ok", 0.3, 25.0, 300.0, 350.0),
]  # b1: beyond the reference latency, adds nothing
REF = [0.0, 20.0]


def _timed_records(rows, label=""):
    recs, times = [], []
    for n, (status, acc, lat, start, end) in enumerate(rows):
        recs.append(
            TrialRecord(
                status=status,
                genome=f"AB|C2 {G}",
                label=label,
                val_top1=acc,
                latency_ms=lat,
                gmacs=0.01,
                params=1000,
                epochs=4,
            )
        )
        times.append((T0 + timedelta(seconds=start), None if end is None else T0 + timedelta(seconds=end)))
    return recs, times


def _timed_table():
    search, st = _timed_records(TIMED)
    base, bt = _timed_records(TIMED_BASE, "pure A")
    rows = [row(n, r, False, started=s, completed=c) for n, (r, (s, c)) in enumerate(zip(search, st))]
    rows += [row(n, r, True, started=s, completed=c) for n, (r, (s, c)) in enumerate(zip(base, bt))]
    return table(rows, ["val_top1", "latency_ms"], ["max", "min"])


def test_hypervolume_history_per_trial_and_per_elapsed_second():
    df = _timed_table()
    objs, dirs = ["val_top1", "latency_ms"], ["max", "min"]
    per_trial = hypervolume_curve(df, objs, dirs, REF)
    assert list(per_trial["number"]) == [0, 1, 2, 3, 4, 5]
    assert list(per_trial["hypervolume"]) == pytest.approx([5.0, 7.0, 7.0, 7.0, 10.8, 10.8])
    timed = hypervolume_time_curve(df, objs, dirs, REF)
    assert list(timed["number"]) == [1, 0, 2, 3, 4]  # completion order; the running trial 5 is absent
    assert list(timed["elapsed_s"]) == pytest.approx([60.0, 100.0, 100.5, 130.0, 250.0])
    assert list(timed["hypervolume"]) == pytest.approx([6.0, 7.0, 7.0, 7.0, 10.8])
    # the baselines on their own, from the same reference point, their clock from their own first start
    base = hypervolume_curve(df, objs, dirs, REF, baseline=True)
    assert list(base["number"]) == [0, 1] and list(base["hypervolume"]) == pytest.approx([4.8, 4.8])
    base_t = hypervolume_time_curve(df, objs, dirs, REF, baseline=True)
    assert list(base_t["number"]) == [1, 0] and list(base_t["elapsed_s"]) == pytest.approx([50.0, 100.0])
    assert list(base_t["hypervolume"]) == pytest.approx([0.0, 4.8])
    hv = hypervolume_summary(df, objs, dirs, REF)
    assert hv["hypervolume"] == pytest.approx(10.8) and hv["baselines_hypervolume"] == pytest.approx(4.8)
    # a table without times (a test's rows, an old CSV) has no time curve, and says so by being empty
    untimed = table([row(0, _timed_records(TIMED[:1])[0][0], False)], objs, dirs)
    assert hypervolume_time_curve(untimed, objs, dirs, REF).empty


def test_hypervolume_plot_draws_both_axes_for_search_and_baselines(tmp_path: Path):
    """Through a real optuna.db: Optuna's trial times are read back, the report draws the curves
    above from front.yaml's one reference point, and front.yaml holds the baselines' hypervolume."""
    search, st = _timed_records(TIMED)
    base, bt = _timed_records(TIMED_BASE, "pure A")
    d = write_study(
        tmp_path / "timed",
        search,
        base,
        times=st,
        baseline_times=bt,
        space="interleave",
        epochs=4,
        trials=6,
        wandb="off",
        tables=False,
    )
    settings = yaml.safe_load((d / "study.yaml").read_text())
    (d / "study.yaml").write_text(yaml.safe_dump({**settings, "reference_point": REF}))  # a fixed point, as a user sets
    write_tables(d)
    df, info = load_results(d)
    assert df.loc[~df["baseline"], "completed"].tolist()[:2] == [
        (T0 + timedelta(seconds=100)).isoformat(),
        (T0 + timedelta(seconds=60)).isoformat(),
    ]
    front = yaml.safe_load((d / "front.yaml").read_text())
    assert front["reference_point"] == REF
    assert front["hypervolume"] == pytest.approx(10.8) and front["baselines_hypervolume"] == pytest.approx(4.8)
    hv = study_hypervolume(df, info.settings, info.objectives, info.directions)
    fig = hypervolume_figure(
        hypervolume_curve(df, info.objectives, info.directions, REF),
        hv,
        "t",
        time_curve=hypervolume_time_curve(df, info.objectives, info.directions, REF),
        baselines=hypervolume_curve(df, info.objectives, info.directions, REF, baseline=True),
        baselines_time=hypervolume_time_curve(df, info.objectives, info.directions, REF, baseline=True),
    )
    by_trial, by_time = fig.axes[:2]
    lines = {artist.get_label().split(" (")[0]: artist for artist in by_time.lines}
    assert list(lines["search"].get_xdata()) == pytest.approx([0.0, 60.0, 100.0, 100.5, 130.0, 250.0])  # seconds
    assert list(lines["search"].get_ydata()) == pytest.approx([0.0, 6.0, 7.0, 7.0, 7.0, 10.8])
    assert list(lines["baselines"].get_xdata()) == pytest.approx([0.0, 50.0, 100.0])
    assert list(lines["baselines"].get_ydata()) == pytest.approx([0.0, 0.0, 4.8])
    trial_lines = {artist.get_label().split(" (")[0]: artist for artist in by_trial.lines}
    assert list(trial_lines["search"].get_ydata()) == pytest.approx([5.0, 7.0, 7.0, 7.0, 10.8, 10.8])
    assert list(trial_lines["baselines"].get_ydata()) == pytest.approx([4.8, 4.8])
    text = build_report(d).read_text()
    summary = text.split("## Summary")[1].split("## ")[0]
    assert "search wall time 4 min 10 s" in summary
    assert "baselines' own hypervolume 4.8 from the same reference point (2 baseline(s), in 1 min 40 s)" in summary
    _assert_png(d / "report" / "hypervolume.png")
