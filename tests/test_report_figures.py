"""The report's plots draw the report table's front (pareto.csv) and nothing else as a front.

A planted study (optuna.db through archlab.testing.study) with a confirmed front of two
points, a lucky seed its confirm seeds refuted, a trial ASHA stopped early that is cheaper
than both front points, a dominated trial and a baseline. Each plot's front is read back from
the matplotlib artists the figure functions draw (gid ``front``: the markers, ``front-ci``:
the error bars, ``front-line``: the staircase) and compared, number by number, with pareto.csv.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from archlab.report import build_report, mix_figure, tradeoff_figure
from archlab.report.figures import REFUTED, refuted
from archlab.results import pareto
from archlab.results.reader import load_results
from archlab.results.record import TrialRecord
from archlab.testing.study import write_study

G = "sw=8 w=8,16 cls=6"
# trial: (genome, status, latency ms, GMACs, its own seed's val_top1, its confirm seeds' val_top1)
TRIALS = [
    ("AB|C2", "ok", 2.0, 0.020, 0.40, (0.42, 0.38)),  # 0 front: mean 0.40
    ("BB|B2", "ok", 3.0, 0.015, 0.80, (0.10, 0.15)),  # 1 a lucky seed: mean 0.35 < trial 0's 0.40 at 2 ms: refuted
    ("CC|C2", "ok", 5.0, 0.030, 0.90, (0.88, 0.92)),  # 2 front: mean 0.90
    ("22|22", "stopped", 1.0, 0.005, 0.30, ()),  # 3 stopped at epoch 1: cheaper than both front points, never on it
    ("AA|22", "ok", 6.0, 0.010, 0.50, ()),  # 4 dominated by 2 on latency; the cheapest full-budget trial in GMACs
]
BASELINE = ("pure A", "AA|A2", 6.5, 0.021, 0.45)  # dominated by 2
# The 95% t-interval of three seeds with std 0.02 (trials 0 and 2): t(0.975, 2) * 0.02 / sqrt(3).
HALF_WIDTH = 4.303 * 0.02 / math.sqrt(3)


def _record(genome: str, status: str, lat: float, gmacs: float, top1: float, seed: int = 0, **kw) -> TrialRecord:
    return TrialRecord(
        status=status,
        genome=f"{genome} {G}",
        val_top1=top1,
        latency_ms=lat,
        gmacs=gmacs,
        params=1000,
        epochs=1 if status == "stopped" else 4,
        seeds=[seed],
        seed_top1=[top1],
        **kw,
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    trials = [_record(g, status, lat, gm, top1) for g, status, lat, gm, top1, _ in TRIALS]
    confirm = [
        _record(g, "ok", lat, gm, v, seed=seed, confirm_of=n)
        for n, (g, _, lat, gm, _, vs) in enumerate(TRIALS)
        for seed, v in zip((1, 2), vs)
    ]
    label, g, lat, gm, top1 = BASELINE
    base = [_record(g, "ok", lat, gm, top1, label=label)]
    d = write_study(
        tmp_path_factory.mktemp("figures") / "planted",
        trials,
        base,
        confirm=confirm,
        space="interleave",
        epochs=4,
        trials=len(TRIALS),
        confirm_seeds=2,
        wandb="off",
    )
    df, info = load_results(d)
    front = pd.read_csv(d / "pareto.csv", dtype={"trial": str})
    return d, df, info, front


def _front_points(ax) -> np.ndarray:
    """(x, y) of every marker drawn as the front, sorted."""
    pts = [tuple(map(float, p)) for c in ax.collections if c.get_gid() == "front" for p in c.get_offsets()]
    return np.array(sorted(pts))


def _bars(ax) -> np.ndarray:
    """(x, centre, half-width) of every error bar drawn on the front, sorted."""
    segs = [s for c in ax.collections if c.get_gid() == "front-ci" for s in c.get_segments()]
    return np.array(sorted((s[0][0], (s[0][1] + s[1][1]) / 2, abs(s[1][1] - s[0][1]) / 2) for s in segs))


def _expected(front: pd.DataFrame, xs: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """pareto.csv's points at ``xs`` (seed means) and their bars (mean, CI half-width)."""
    pts = np.array(sorted(zip(xs, front["top1_mean"])))
    half = (front["top1_ci95_high"] - front["top1_ci95_low"]) / 2
    return pts, np.array(sorted(zip(xs, front["top1_mean"], half)))


def _offsets(ax, gid: str) -> list[tuple[float, float]]:
    return [tuple(map(float, p)) for c in ax.collections if c.get_gid() == gid for p in c.get_offsets()]


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _assert_draws_the_tables_front(ax, front: pd.DataFrame, x: str, refuted_at: tuple[float, float]) -> None:
    """The front markers and their bars are pareto.csv's (x, seed mean, CI); the refuted trial
    is marked at its mean; the legend names one front, the table's."""
    pts, bars = _expected(front, front[x])
    np.testing.assert_allclose(_front_points(ax), pts)
    np.testing.assert_allclose(_bars(ax), bars)
    assert _offsets(ax, "refuted") == [pytest.approx(refuted_at)]
    legend = _legend(ax)
    assert [t for t in legend if "Pareto front" in t] == ["Pareto front, confirmed, accuracy vs latency (2)"]
    assert f"{REFUTED} (1)" in legend


def test_the_planted_study_has_a_confirmed_front_of_two_points(planted):
    d, df, info, front = planted
    assert list(front["trial"]) == ["0", "2"] and set(front["front"]) == {"confirmed"}
    assert list(front["n_seeds"]) == [3, 3] and list(front["top1_mean"]) == pytest.approx([0.40, 0.90])
    assert list(front["top1_ci95_high"] - front["top1_mean"]) == pytest.approx([HALF_WIDTH] * 2, abs=1e-5)
    one = df.set_index("trial")
    assert one.at["1", "top1_mean"] == pytest.approx(0.35) and one.at["1", "val_top1"] == 0.80
    assert one.at["3", "status"] == "stopped" and one.at["3", "latency_ms"] < front["latency_ms"].min()
    assert list(df.loc[refuted(df, info.objectives, info.directions), "trial"]) == ["1"]
    text = build_report(d).read_text()
    assert sorted(p.name for p in (d / "report").glob("*.png")) == [
        "accuracy_vs_gmacs.png",
        "accuracy_vs_latency.png",
        "block_mix.png",
        "hypervolume.png",
    ]
    assert "Pareto front, confirmed" in text


def test_accuracy_vs_latency_draws_the_confirmed_front_as_its_staircase(planted):
    _, df, info, front = planted
    ax = tradeoff_figure(df, "latency_ms", "t", {}, objectives=info.objectives, directions=info.directions).axes[0]
    _assert_draws_the_tables_front(ax, front, "latency_ms", refuted_at=(3.0, 0.35))
    np.testing.assert_allclose(_front_points(ax), [(2.0, 0.40), (5.0, 0.90)])  # the seed means
    np.testing.assert_allclose(_bars(ax)[:, 2], [HALF_WIDTH] * 2, atol=1e-5)
    (line,) = [ln for ln in ax.lines if ln.get_gid() == "front-line"]
    # through the front points only, then on to the largest latency drawn (the baseline's 6.5 ms)
    assert list(line.get_xdata()) == pytest.approx([2.0, 5.0, 6.5])
    assert list(line.get_ydata()) == pytest.approx([0.40, 0.90, 0.90])
    # the stopped trial (1 ms, 0.30) is drawn hollow, off the front; the lucky seed at its mean
    hollow = [
        p
        for c in ax.collections
        if c.get_gid() == "trials" and np.all(c.get_facecolors()[:, 3] == 0)
        for p in map(tuple, c.get_offsets())
    ]
    assert hollow == [(1.0, 0.30)]


def test_accuracy_vs_gmacs_highlights_the_tables_front_and_draws_no_staircase(planted):
    _, df, info, front = planted
    assert info.objectives == ["val_top1", "latency_ms"]  # GMACs is not an objective of this study
    # a front computed on GMACs would be trials 2 and 4, not the table's 0 and 2
    ok = df[(df["status"] == "ok") & ~df["baseline"]].assign(val_top1=lambda t: t["top1_mean"].fillna(t["val_top1"]))
    assert sorted(ok.loc[pareto.non_dominated(ok, ["val_top1", "gmacs"], ["max", "min"]), "trial"]) == ["2", "4"]
    ax = tradeoff_figure(df, "gmacs", "t", {}, objectives=info.objectives, directions=info.directions).axes[0]
    _assert_draws_the_tables_front(ax, front, "gmacs", refuted_at=(0.015, 0.35))
    np.testing.assert_allclose(_front_points(ax), [(0.020, 0.40), (0.030, 0.90)])
    assert not [ln for ln in ax.lines if ln.get_gid() == "front-line"]


def test_block_mix_panels_draw_the_tables_front_with_its_intervals(planted):
    _, df, info, front = planted
    fig = mix_figure(df, "t", objectives=info.objectives, directions=info.directions)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title().split()[0] for ax in panels] == ["A", "B", "C", "2"]
    for ax in panels:
        letter = ax.get_title().split()[0]
        pts, bars = _expected(front, front[f"frac_{letter}"])
        np.testing.assert_allclose(_front_points(ax), pts, err_msg=letter)
        np.testing.assert_allclose(_bars(ax), bars, err_msg=letter)
        frac_1 = float(df.loc[df["trial"] == "1", f"frac_{letter}"].fillna(0).item())
        assert _offsets(ax, "refuted") == [pytest.approx((frac_1, 0.35))], letter
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [t for t in labels if "Pareto front" in t] == ["Pareto front, confirmed, accuracy vs latency (2)"]
    assert f"{REFUTED} (1)" in labels


def test_the_hypervolume_curve_ends_at_the_tables_hypervolume(planted):
    """The curve is computed on the seed means too: its last value is front.yaml's
    hypervolume, and the refuted seed (trial 1, 0.80 on its own seed) adds nothing."""
    import yaml

    from archlab.results.numbers import hypervolume_curve

    d, df, info, front = planted
    hv = yaml.safe_load((d / "front.yaml").read_text())
    curve = hypervolume_curve(df, info.objectives, info.directions, hv["reference_point"])
    assert list(curve["number"]) == [0, 1, 2, 3, 4]
    assert curve["hypervolume"].iloc[-1] == pytest.approx(hv["hypervolume"])
    assert curve["hypervolume"].iloc[1] == pytest.approx(curve["hypervolume"].iloc[0])  # trial 1: mean 0.35, dominated
