"""MO-ASHA's rung decisions against examples worked out by hand (see archlab/search/rungs.py)."""

import pytest

from archlab.search.rungs import CONTINUE, STOP, Rungs, crowding_distance, keep, priority_order
from archlab.util.errors import UserError

DIRS = ("max", "min")  # (val top-1 at the rung, latency ms)


def test_a_cheap_trial_on_the_front_continues_where_asha_on_accuracy_would_stop_it():
    r = Rungs(grace=1, max_t=5, eta=3, directions=DIRS)
    assert r.milestones == (1, 3)
    assert r.decide("t1", 1, (0.5, 10.0)) == CONTINUE  # first at the rung
    # (0.4, 12) is dominated by t1: behind 1 of 2 -> 1/2 > 1/3
    assert r.decide("t2", 1, (0.4, 12.0)) == STOP
    # (0.3, 2) has the lowest accuracy of the three (ASHA's cutoff, the 66.7th percentile
    # of 0.5 and 0.4, is 0.467: it would stop it), but nothing dominates it: front 0 with
    # t1, behind t1 only by arrival -> 1/3 <= 1/3
    assert r.decide("t3", 1, (0.3, 2.0)) == CONTINUE
    # (0.45, 11): dominated by t1, dominates t2 -> order t1, t3, t4, t2: 2/4 > 1/3
    assert r.decide("t4", 1, (0.45, 11.0)) == STOP
    assert r.rung_of("t3") == 1 and r.rung_of("t9") is None


def test_crowding_distance_breaks_ties_within_the_front():
    # All five on one front (accuracy falls as latency falls). By hand, in minimisation
    # form (-acc, ms): ends A and E are infinite; B = 0.11/0.7 + 2.1/9 = 0.390,
    # C = 0.30/0.7 + 5.0/9 = 0.984, D = 0.59/0.7 + 6.9/9 = 1.610.
    pts = {"A": (0.9, 10.0), "B": (0.8, 8.0), "C": (0.79, 7.9), "D": (0.5, 3.0), "E": (0.2, 1.0)}
    mins = [(-a, ms) for a, ms in pts.values()]
    import numpy as np

    d = crowding_distance(np.array(mins))
    assert d[0] == d[4] == float("inf")
    assert d[1:4] == pytest.approx([0.11 / 0.7 + 2.1 / 9, 0.30 / 0.7 + 5.0 / 9, 0.59 / 0.7 + 6.9 / 9])
    assert [list(pts)[i] for i in priority_order(list(pts.values()), DIRS)] == ["A", "E", "D", "C", "B"]
    others = [pts[k] for k in "ABE"]
    # eta 2: D (2 ahead of it: A and E) continues, 2/4 <= 1/2; C (3 ahead: A, E, D) stops
    assert keep([*others, pts["D"]], DIRS, eta=2)
    assert not keep([*others, pts["D"], pts["C"]], DIRS, eta=2)


def test_each_trial_is_judged_once_per_rung_and_at_the_highest_rung_it_passed():
    r = Rungs(grace=1, max_t=10, eta=3, directions=DIRS)
    assert r.milestones == (1, 3, 9)
    assert r.decide("a", 1, (0.9, 5.0)) == CONTINUE
    assert r.decide("a", 2, (0.1, 5.0)) == CONTINUE  # between rungs: nothing is judged
    assert r.decide("b", 1, (0.2, 9.0)) == STOP
    assert r.decide("a", 3, (0.9, 5.0)) == CONTINUE
    # a trial resumed at epoch 4 that never reported at 3 is judged at rung 3, not at 1
    assert r.decide("c", 4, (0.1, 6.0)) == STOP
    assert "c" in r.records[3] and "c" not in r.records[1]


def test_a_missing_accuracy_ranks_last():
    assert keep([(0.5, 5.0)], DIRS, 3)
    assert not keep([(0.5, 5.0), (0.4, 6.0), (float("nan"), 1.0)], DIRS, 3)


@pytest.mark.parametrize(
    "kw",
    [
        dict(grace=0, max_t=5, eta=2),
        dict(grace=3, max_t=2, eta=2),
        dict(grace=1, max_t=5, eta=1),
        dict(grace=1, max_t=5, eta=float("inf")),
    ],
)
def test_bad_settings_are_one_clear_error(kw):
    with pytest.raises(UserError, match="MO-ASHA"):
        Rungs(directions=DIRS, **kw)
