"""The tail metrics (archlab.results.tail) on a small table worked out by hand, and where they
surface: the fidelity summary's tail target, the experiments' train rows, the report's line."""

import math

import pandas as pd
import pytest

from archlab.experiments.summary import train_tail_line
from archlab.fidelity.defaults import TARGETS
from archlab.fidelity.summary import targets_met
from archlab.results.tail import below_median, plateau_counts, plateau_line, seed_tail, takeoff_counts, takeoff_epoch

# Genome a: median of 0.50 / 0.79 / 0.80 / 0.82 is 0.795; its 0.50 seed is 0.295 below it (the
# tail). Genome b: median 0.71, its worst seed 0.01 below. Genome c: one seed, nothing below.
TABLE = {"a": [0.80, 0.82, 0.50, 0.79], "b": [0.70, 0.72], "c": [0.40]}


def test_the_tail_of_a_known_table():
    t = seed_tail(TABLE, [3, 4, None, 3, 2, 3, 1])
    by = {p["label"]: p for p in t["per_genome"]}
    assert by["a"]["median"] == pytest.approx(0.795) and by["a"]["below_median"] == pytest.approx(0.295)
    assert by["a"]["worst"] == 0.50 and by["a"]["seeds"] == 4
    assert by["b"]["median"] == pytest.approx(0.71) and by["b"]["below_median"] == pytest.approx(0.01)
    assert by["c"]["below_median"] == 0.0
    assert (t["runs"], t["tail_runs"]) == (7, 1) and t["tail_share"] == pytest.approx(1 / 7)
    assert t["takeoff"] == {"1": 1, "2": 1, "3": 3, "4": 1, "never": 1}
    assert below_median([0.8, 0.5, 0.6]) == pytest.approx([0.0, 0.1, 0.0])
    assert seed_tail({})["tail_share"] is None


def test_the_take_off_epoch_is_the_first_below_095_ln_classes():
    bound = 0.95 * math.log(6)  # 1.7022
    assert takeoff_epoch([1.82, 1.80, 1.71, 1.70, 1.2], 6) == 4
    assert takeoff_epoch([1.82, bound, bound - 1e-9], 6) == 3
    assert takeoff_epoch([1.82, 1.80, 1.79], 6) is None
    assert takeoff_counts([None, 2, 2]) == {"2": 2, "never": 1}


def test_the_tail_target_is_one_percent_and_met_only_below_it():
    assert TARGETS["tail_share"] == 0.01
    s = {
        "median_seed_std": 0.02,
        "bimodal": [],
        "seed_tau": 0.8,
        "proxy_vs_ref_rho": 0.85,
        "blind_anchor_max_gap": 0.01,
        "seeing_anchor_min_gain": 0.6,
        "tail": {"tail_share": 1 / 7},
    }
    key = "at most 1% of runs > 0.2 below their genome's median"
    assert targets_met(s)[key] is False
    s["tail"]["tail_share"] = 1 / 100
    assert targets_met(s)[key] is True and all(targets_met(s).values())


def test_a_search_counts_the_proposals_the_plateau_rule_restarted():
    rows = pd.DataFrame({"restarted_plateau": [0, 2, 1, None, 0]})
    assert plateau_counts(rows) == (2, 3)
    assert "2 proposal(s), 3 seed(s) set aside" in plateau_line(rows)
    assert plateau_counts(pd.DataFrame({"status": ["ok"]})) == (0, 0)  # a study from before the rule


def test_an_experiments_train_section_states_its_tail():
    train = [
        {"label": "a", "val_top1_values": TABLE["a"], "takeoff_epochs": "3 4 - 3", "restarted_plateau": 1},
        {"label": "b", "val_top1_per_seed": "0.7000 0.7200", "takeoff_epochs": "2 ?", "restarted_plateau": 0},
    ]
    line = train_tail_line(train)
    assert line.startswith("Tail: 1 of 6 runs (0.167) more than 0.2 below their genome's median")
    assert "2: 1, 3: 2, 4: 1, never: 1" in line and "1 run(s) restarted by the plateau rule" in line
