"""The trial record: one status vocabulary and one normalising rule (issue 12, bug 5)."""

import math

import pandas as pd
import pytest

from archlab.results.record import (
    ATTRS,
    COUNTED,
    FINISHED,
    NOT_TRAINED,
    STATUSES,
    TOLD_FAIL,
    WORKER_DIED,
    Status,
    TrialRecord,
    final_status,
    status_from_optuna,
)


@pytest.mark.parametrize(
    "reported, error, expected",
    [
        (None, False, "ok"),
        (None, True, "failed"),
        ("ok", False, "ok"),
        ("running", False, "stopped"),  # the last report was an intermediate epoch
        ("running", True, "failed"),  # the worker died mid-run
        ("ok", True, "ok"),  # died after its final epoch was reported and saved: the result stands
        ("failed", True, "failed"),
        ("rejected", True, "rejected"),
        ("rejected", False, "rejected"),
        ("repeat", False, "repeat"),
        ("interrupted", False, "interrupted"),
    ],
)
def test_the_normalising_rule(reported, error, expected):
    assert final_status(reported, error) == Status(expected)


def test_a_worker_that_died_gets_a_reason_and_a_reported_reason_is_kept():
    r = TrialRecord.from_result({"status": "running", "val_top1": 0.4, "epochs": 2}, error=True)
    assert (r.status, r.reason, r.val_top1, r.epochs) == (Status.FAILED, WORKER_DIED, 0.4, 2)
    r = TrialRecord.from_result({"status": "failed", "reason": "nan: loss"}, error=False)
    assert (r.status, r.reason) == (Status.FAILED, "nan: loss")
    assert TrialRecord.from_result(None, error=True).reason == WORKER_DIED


def test_attrs_round_trip_without_non_finite_values():
    r = TrialRecord.from_result(
        {
            "status": "ok",
            "genome": "A|2",
            "val_top1": 0.5,
            "latency_ms": math.inf,
            "gmacs": math.nan,
            "params": 12,
            "epoch_time_s": 1.0,
        },
        error=False,
        ray_trial_id="abc_00001",
    )
    attrs = r.to_attrs()
    assert attrs == {
        "status": "ok",
        "reason": "",
        "ray_trial_id": "abc_00001",
        "genome": "A|2",
        "val_top1": 0.5,
        "params": 12,
    }
    assert set(attrs) <= set(ATTRS) and "epoch_time_s" not in attrs  # only the schema is stored
    assert TrialRecord.from_attrs(attrs) == r.with_(latency_ms=None, gmacs=None)
    assert type(attrs["status"]) is str  # JSON-storable


def test_optuna_state_wins_over_a_stale_status():
    assert status_from_optuna("ok", "RUNNING") is Status.RUNNING
    assert status_from_optuna(None, "FAIL") is Status.FAILED
    assert status_from_optuna(None, "COMPLETE") is Status.OK
    assert status_from_optuna("interrupted", "FAIL") is Status.INTERRUPTED


def test_every_status_is_in_exactly_one_budget_class():
    assert set(STATUSES) == {s.value for s in Status} and "interrupted" in STATUSES
    for s in STATUSES:
        assert (s in COUNTED) + (s in NOT_TRAINED) + (s == "running") == 1, s
    assert set(FINISHED) <= set(COUNTED) and not set(FINISHED) & set(TOLD_FAIL)


def test_the_words_match_strings_read_back_from_a_table():
    """pandas isin and sets use hashes: FINISHED must hold the stored words, not enum members."""
    df = pd.DataFrame({"status": ["ok", "stopped", "failed", "interrupted"]})
    assert df["status"].isin(FINISHED).tolist() == [True, True, False, False]
    assert f"{Status.INTERRUPTED}" == "interrupted" and Status("stopped") in {Status.STOPPED}


def test_a_trial_a_killed_driver_left_running_is_read_back_as_running_and_resumed_with_its_params(tmp_path):
    """The search's writer and the one reader (results) agree on a trial a killed driver left
    RUNNING: `running`, never on the front; the next run reattaches it (same number, same
    parameters) instead of closing it (issue 15 item 2: its epochs are in trials/NNNN/)."""
    import optuna

    from archlab import tracking
    from archlab.results import reader as results
    from archlab.search.optuna_trials import reattach, unfinished
    from archlab.testing.study import write_settings

    d = tmp_path / "st"
    write_settings(d, frames=4, size=32)
    study = optuna.create_study(
        study_name="st", storage=f"sqlite:///{d / 'optuna.db'}", directions=["maximize", "minimize"]
    )
    done = study.ask()
    for k, v in (
        TrialRecord(status=Status.OK, genome="A|2", val_top1=0.5, latency_ms=1.0, gmacs=0.001, params=10)
        .to_attrs()
        .items()
    ):
        done.set_user_attr(k, v)
    study.tell(done, [0.5, 1.0])
    left = study.ask()
    left.suggest_categorical("letter", ["A", "B", "C"])  # proposed and launched: then the driver died
    stored = left.params["letter"]
    df, _ = results.load_results(d)
    assert df["status"].tolist() == ["ok", "running"] and df["on_front"].tolist() == [True, False]
    assert set(df["status"]) <= set(results.STATUSES) and results.FINISHED == FINISHED
    assert getattr(tracking, "FINISHED", FINISHED) == FINISHED

    again = optuna.load_study(study_name="st", storage=f"sqlite:///{d / 'optuna.db'}")  # the next process
    (frozen,) = unfinished(again)
    trial = reattach(again, frozen)
    assert trial.number == 1 and trial.suggest_categorical("letter", ["A", "B", "C"]) == stored
    again.tell(trial, [0.4, 2.0])
    assert unfinished(again) == [] and len(again.trials) == 2
