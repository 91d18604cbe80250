"""The confirmed front (archlab.results.confirmed, issue 13 item 4) on hand-made studies: a lucky
seed refuted by its confirm runs leaves the front, the point it dominated gets confirmed in
turn, and only then is the front 'confirmed'; CIs and overlaps against hand-computed values."""

import math

import pandas as pd
import pytest
import yaml

from archlab.results import confirmed
from archlab.results.reader import load_confirm_rows, load_results
from archlab.results.record import TrialRecord
from archlab.testing.study import write_study

G = {0: "A|2 sw=8 w=8,16 cls=6", 1: "B|2 sw=8 w=8,16 cls=6", 2: "C|2 sw=8 w=8,16 cls=6", 3: "AB|2 sw=8 w=8,16 cls=6"}
# trial: (latency ms, its one seed's val_top1). Trial 1 is the lucky seed: 0.80 at 3 ms
# dominates trial 3 (0.60 at 4 ms) on the provisional front.
TRIALS = {0: (2.0, 0.40), 1: (3.0, 0.80), 2: (5.0, 0.90), 3: (4.0, 0.60)}
CONFIRM_A = {0: (0.42, 0.38), 1: (0.10, 0.15), 2: (0.88, 0.92)}  # the first round: the provisional front's points
CONFIRM_B = {3: (0.58, 0.62)}  # the second: trial 3, uncovered when trial 1 fell


def trial(n: int) -> TrialRecord:
    lat, top1 = TRIALS[n]
    return TrialRecord(
        status="ok",
        genome=G[n],
        val_top1=top1,
        latency_ms=lat,
        gmacs=0.01,
        params=100,
        epochs=2,
        seeds=[0],
        seed_top1=[top1],
    )


def confirm_runs(rounds) -> list[TrialRecord]:
    return [
        TrialRecord(
            status="ok",
            genome=G[n],
            val_top1=v,
            latency_ms=TRIALS[n][0] * 1.05,
            gmacs=0.01,
            params=100,
            epochs=2,
            seeds=[seed],
            seed_top1=[v],
            confirm_of=n,
        )
        for r in rounds
        for n, vs in r.items()
        for seed, v in zip((1, 2), vs)
    ]


def study(tmp_path, name, rounds):
    d = write_study(
        tmp_path / name, [trial(n) for n in range(4)], confirm=confirm_runs(rounds), frames=4, size=32, confirm_seeds=2
    )
    df, info = load_results(d)
    rows = load_confirm_rows(d)
    return d, df, rows, info


def plan(df, rows, info):
    return confirmed.plan(df, rows, info.objectives, info.directions, extra=2, base_seed=0)


def front(df) -> set[int]:
    return set(df[df.on_front].number)


def test_a_lucky_seed_refuted_by_its_confirm_seeds_leaves_the_front(tmp_path):
    # Provisional: one seed each, the lucky trial 1 on the front, trial 3 under it.
    d, df, rows, info = study(tmp_path, "p", [])
    assert front(df) == {0, 1, 2} and set(df.front) == {"provisional"}
    assert plan(df, rows, info) == [(n, G[n], s) for n in (0, 1, 2) for s in (1, 2)]
    assert pd.read_csv(d / "pareto.csv").front.unique().tolist() == ["provisional"]

    # Round 1 confirms 0, 1, 2: trial 1's mean (0.80 + 0.10 + 0.15) / 3 = 0.35 < trial 0's 0.40
    # at 2 ms, so it is dominated; trial 3 (0.60 at 4 ms) is uncovered and must be confirmed.
    d, df, rows, info = study(tmp_path, "a", [CONFIRM_A])
    one = df.set_index("number")
    assert one.at[1, "top1_mean"] == pytest.approx(0.35) and one.at[1, "n_seeds"] == 3
    assert one.at[1, "val_top1"] == 0.80  # the trial's own record is kept as it was
    assert front(df) == {0, 2, 3}
    assert plan(df, rows, info) == [(3, G[3], 1), (3, G[3], 2)]
    assert set(df.front) == {"provisional"}  # a front point (3) still lacks its confirm seeds

    # Round 2 confirms trial 3: nothing left to run, the front is confirmed.
    d, df, rows, info = study(tmp_path, "b", [CONFIRM_A, CONFIRM_B])
    assert front(df) == {0, 2, 3} and plan(df, rows, info) == []
    p = pd.read_csv(d / "pareto.csv")
    assert sorted(p.number) == [0, 2, 3] and set(p.front) == {"confirmed"}
    assert yaml.safe_load((d / "front.yaml").read_text())["front"] == "confirmed"
    # 95% t-interval, by hand: trial 2's seeds 0.90 / 0.88 / 0.92: mean 0.90, std 0.02,
    # half-width t(0.975, 2) * 0.02 / sqrt(3) = 4.303 * 0.011547 = 0.049687
    two = p.set_index("number").loc[2]
    assert (two.top1_mean, two.top1_std) == pytest.approx((0.90, 0.02))
    assert (two.top1_ci95_low, two.top1_ci95_high) == pytest.approx((0.90 - 0.049687, 0.90 + 0.049687), abs=1e-5)
    # the three CIs ([0.350, 0.450], [0.550, 0.650], [0.850, 0.950]) do not overlap
    assert p.distinguishable.tolist() == [True, True, True]
    assert df[df.on_front].indistinct_from.tolist() == ["", "", ""]
    # the hypervolume is computed on the means: trial 1's lucky 0.80 no longer counts
    hv = yaml.safe_load((d / "front.yaml").read_text())
    ref = hv["reference_point"]  # [0, 1.1 x the worst latency]
    pts = sorted([(2.0, 0.40), (4.0, 0.60), (5.0, 0.90)])
    expected = sum((ref[1] - lat) * (acc - prev) for (lat, acc), prev in zip(pts, [0.0, 0.40, 0.60]))
    assert hv["hypervolume"] == pytest.approx(expected)


def test_a_trial_with_k_seeds_gets_its_confirm_seeds_after_its_own(tmp_path):
    rec = TrialRecord(
        status="ok",
        genome=G[0],
        val_top1=0.6,
        latency_ms=2.0,
        gmacs=0.01,
        params=100,
        epochs=2,
        seeds=[4, 5],
        seed_top1=[0.5, 0.7],
        val_top1_std=math.sqrt(0.02),
    )
    d = write_study(tmp_path / "k", [rec], frames=4, size=32, seed=4, seeds=2, confirm_seeds=1)
    settings = yaml.safe_load((d / "study.yaml").read_text())  # what the search stores (studydir.write_settings)
    assert (settings["seeds"], settings["confirm_seeds"], settings["recipe"]["seed"]) == (2, 1, 4)
    df, info = load_results(d)
    assert confirmed.plan(df, [], info.objectives, info.directions, extra=1, base_seed=4) == [(0, G[0], 6)]
    r = df.iloc[0]
    assert r.n_seeds == 2 and r.top1_mean == pytest.approx(0.6)
    assert r.top1_ci95_high - r.top1_mean == pytest.approx(12.706 * math.sqrt(0.02) / math.sqrt(2))


def test_the_confirm_step_off_keeps_a_provisional_front_and_a_one_seed_point_has_no_ci(tmp_path):
    d = write_study(tmp_path / "off", [trial(0), trial(2)], frames=4, size=32, confirm_seeds=0)
    df, info = load_results(d)
    assert set(df.front) == {"provisional"} and front(df) == {0, 1}  # numbered 0, 1 in the study
    assert df.top1_ci95_low.isna().all() and df.indistinct_from.isna().all() and df.distinguishable.isna().all()
    assert confirmed.plan(df, [], info.objectives, info.directions, extra=0, base_seed=0) == []


def test_overlapping_cis_are_marked_not_distinguishable():
    f = pd.DataFrame(
        {
            "trial": ["0", "1", "2", "3"],
            "top1_ci95_low": [0.30, 0.45, 0.70, None],
            "top1_ci95_high": [0.50, 0.60, 0.80, None],
        }
    )
    assert confirmed.overlaps(f).tolist() == ["1", "0", "", None]


def test_the_report_says_which_front_and_shows_each_point_with_its_ci(tmp_path):
    from archlab.report import build_report

    d, *_ = study(tmp_path, "b", [CONFIRM_A, CONFIRM_B])
    text = build_report(d).read_text()
    assert "## Pareto front, confirmed" in text and "retrained with 2 more seed(s)" in text
    rows = [line.split() for line in text.splitlines()]
    assert ["2", "3", "0.900", "0.020", "[0.850,", "0.950]", "yes", "C|2", "sw=8", "w=8,16", "cls=6"] in rows
    # two points of two seeds each whose intervals overlap: marked not distinguishable
    recs = [
        TrialRecord(
            status="ok",
            genome=G[n],
            val_top1=sum(v) / 2,
            latency_ms=lat,
            gmacs=0.01,
            params=100,
            epochs=2,
            seeds=[0, 1],
            seed_top1=list(v),
        )
        for n, lat, v in ((0, 2.0, (0.40, 0.50)), (1, 3.0, (0.45, 0.55)))
    ]
    d = write_study(tmp_path / "o", recs, frames=4, size=32, seeds=2, confirm_seeds=0)
    text = build_report(d).read_text()
    assert "## Pareto front, provisional" in text
    rows = [line.split() for line in text.splitlines()]
    # t(0.975, 1) = 12.706: 0.45 +- 12.706 * 0.0707 / sqrt(2) = 0.45 +- 0.635
    assert any(r[:9] == ["0", "2", "0.450", "0.071", "[-0.185,", "1.085]", "no:", "overlaps", "1"] for r in rows)


def test_a_killed_confirm_step_reruns_only_the_runs_that_did_not_end(tmp_path):
    """A confirm run that ended (ok or failed) is never planned again; one a killed driver
    left RUNNING is (continued under its number: search.confirm.ConfirmRuns), and so is one an
    older study closed as interrupted."""
    runs = [
        TrialRecord(status="ok", genome=G[0], val_top1=0.41, latency_ms=2.0, seeds=[1], confirm_of=0),
        TrialRecord(status="running", genome=G[0], seeds=[2], confirm_of=0),
        TrialRecord(status="failed", reason="nan: non-finite loss", genome=G[1], seeds=[1], confirm_of=1),
        TrialRecord(status="interrupted", reason="the driver stopped", genome=G[1], seeds=[2], confirm_of=1),
    ]
    d = write_study(tmp_path / "k", [trial(n) for n in range(4)], confirm=runs, frames=4, size=32, confirm_seeds=2)
    df, info = load_results(d)
    todo = confirmed.plan(df, load_confirm_rows(d), info.objectives, info.directions, extra=2, base_seed=0)
    assert todo == [(0, G[0], 2), (1, G[1], 2), (2, G[2], 1), (2, G[2], 2)]
    assert df.set_index("number").at[1, "n_seeds"] == 1  # a failed confirm run adds no value


def test_export_ranks_on_the_confirmed_means(tmp_path):
    from archlab.export import select_trial

    d, df, rows, info = study(tmp_path, "b", [CONFIRM_A, CONFIRM_B])
    # within 3.5 ms: trial 0 (mean 0.40) and trial 1 (its own seed 0.80, mean 0.35 with its confirm seeds)
    label, rule = select_trial(df, info.objectives, info.directions, rank=1, max_latency=3.5)
    assert df.loc[label, "number"] == 0 and "best val_top1" in rule


def test_a_study_yaml_from_before_the_confirm_step_reads_with_the_search_default(tmp_path):
    """A resumed old study runs the confirm step with SearchConfig's default, so the reader
    must take the same one: its front is confirmed once those runs exist, not 'provisional' forever."""
    from archlab.results.reader import confirm_settings
    from archlab.results.study import load_study_info
    from archlab.search import SearchConfig

    d = write_study(tmp_path / "old", [trial(0)], frames=4, size=32)
    f = d / "study.yaml"
    settings = yaml.safe_load(f.read_text())
    del settings["confirm_seeds"]
    f.write_text(yaml.safe_dump(settings))
    assert (
        confirm_settings(load_study_info(d))["confirm_seeds"] == confirmed.DEFAULT_SEEDS == SearchConfig().confirm_seeds
    )
