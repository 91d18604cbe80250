"""search_vs_cycle (issue 13 item 6): the hand-made variants keep the front point's skeleton,
and the comparison's verdicts, dominance and hypervolumes on planted numbers worked by hand."""

import math

import pytest

from archlab.experiments.cycle import VARIANTS, CycleSpec, answer, compare, variant
from archlab.model.genome import parse
from archlab.util.errors import UserError


def test_a_variant_changes_only_the_letters_and_keeps_the_trailing_2d_stages():
    g = parse("BC|ABC|A|22 sw=16 w=16,32,64,128 t=-,p,p,p drop=0.0")
    abc = variant(g, "A->B->C")
    assert abc.letters == "AB|CAB|C|22"  # the global cycle over the 3D blocks; the 2D stage stays
    assert variant(g, "pure-B").letters == "BB|BBB|B|22"
    assert variant(g, "2D").letters == "22|222|2|22"
    for name in VARIANTS:
        v = variant(g, name)
        assert [(s.depth, s.width, s.stride, s.temporal) for s in v.stages] == [
            (s.depth, s.width, s.stride, s.temporal) for s in g.stages
        ]
        assert (v.stem, v.stem_width, v.dropout, v.classes) == (g.stem, g.stem_width, g.dropout, g.classes)
    no2d = parse("A|B|C|A sw=8 w=8,16,32,64 drop=0.0")
    assert variant(no2d, "pure-C").letters == "C|C|C|C"  # a skeleton without 2D stages gets none


def test_compare_on_planted_points():
    # Two front points; on t1's skeleton the cycle is clearly worse (and slower: dominated),
    # on t2's the pure-C variant is as good (CIs overlap) and a little faster (not dominated).
    front = [
        {"label": "t1", "seeds_top1": [0.90, 0.92, 0.94], "latency_ms": 2.0},
        {"label": "t2", "seeds_top1": [0.95, 0.96, 0.97], "latency_ms": 4.0},
    ]
    variants = [
        {"label": "t1-ABC", "of": "t1", "variant": "A->B->C", "seeds_top1": [0.70, 0.72, 0.74], "latency_ms": 2.1},
        {"label": "t2-C", "of": "t2", "variant": "pure-C", "seeds_top1": [0.94, 0.97, 0.96], "latency_ms": 3.9},
    ]
    r = compare(front, variants)
    a, b = r["pairs"]
    # t1 - t1-ABC: 0.92 - 0.72 = 0.20; both std 0.02, n 3: se = 0.02*sqrt(2/3), df 4 -> t 2.776
    assert a["diff"] == pytest.approx(0.20) and a["diff_ci95"] == pytest.approx(2.776 * 0.02 * math.sqrt(2 / 3))
    assert a["verdict"] == "above" and a["dominated"]
    assert b["diff"] == pytest.approx(0.96 - 0.9566666, abs=1e-6) and b["verdict"] == "not distinguishable"
    assert not b["dominated"]
    assert (r["dominated"], r["variants"], r["front_better"], r["front_worse"]) == (1, 2, 1, 0)
    # one reference point over all four points: worst accuracy 0.72 and worst latency 4.0,
    # pushed out by pareto.reference_point's margin; the front's HV is below front + variants
    hv = r["hypervolume"]
    assert set(hv) == {"front", "A->B->C", "pure-C", "all variants", "front + variants"}
    assert hv["front + variants"] > hv["front"] > hv["A->B->C"] > 0
    assert hv["all variants"] >= max(hv["A->B->C"], hv["pure-C"])
    text = answer(r)
    assert (
        text.startswith("The confirmed front dominates 1 of the other 2 hand-made points")
        and "above the variant's at 95% in 1, below in 0" in text
    )
    assert "adding the variants to the front raises it" in text


def test_cycle_spec_checks_its_values():
    with pytest.raises(UserError, match="variants"):
        CycleSpec(search="s", variants=("pure-D",))
    with pytest.raises(UserError, match="workers"):
        CycleSpec(search="s", workers=0)


def test_a_variant_that_is_the_front_point_itself_is_named_not_counted():
    """The interleave space's cycle phase 0 IS the paper's A->B->C cycle: such a front point's
    variant is the same genome, so it is neither a win, a loss nor a dominated point."""
    front = [{"label": "t5", "genome": "A|BC|ABC|AB", "seeds_top1": [0.91, 0.95, 0.95], "latency_ms": 1.6}]
    variants = [
        {
            "label": "t5-ABC",
            "of": "t5",
            "variant": "A->B->C",
            "genome": "A|BC|ABC|AB",
            "seeds_top1": [0.91, 0.95, 0.95],
            "latency_ms": 1.7,
        },
        {
            "label": "t5-A",
            "of": "t5",
            "variant": "pure-A",
            "genome": "A|AA|AAA|AA",
            "seeds_top1": [0.86, 0.89, 0.91],
            "latency_ms": 1.7,
        },
    ]
    r = compare(front, variants)
    same, a = r["pairs"]
    assert same["verdict"] == "the same genome" and not same["dominated"]
    assert a["verdict"] == "not distinguishable" and a["dominated"]
    assert (r["variants"], r["dominated"], r["same"]) == (1, 1, ["t5 is A->B->C"])
    assert answer(r).startswith(
        "1 front point(s) are themselves a hand-made order (t5 is A->B->C). "
        "The confirmed front dominates 1 of the other 1"
    )
