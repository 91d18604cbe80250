"""Pareto front, hypervolume and knee point on hand-checkable tables."""

import math

import pandas as pd
import pytest

from archlab.results import pareto
from archlab.util.errors import UserError

OBJ, DIR = ["val_top1", "latency_ms"], ["max", "min"]


def table():
    return pd.DataFrame(
        {
            "val_top1": [0.9, 0.8, 0.5, 0.85, 0.4, 0.9, math.nan],
            "latency_ms": [10.0, 5.0, 1.0, 12.0, 2.0, 10.0, 0.1],
        },
        index=list("abcdefg"),
    )


def test_non_dominated():
    mask = pareto.non_dominated(table(), OBJ, DIR)
    # d is dominated by a (slower, less accurate); e by c; f ties a (both kept); g has no accuracy.
    assert list(mask[mask].index) == ["a", "b", "c", "f"]


def test_hypervolume_by_hand():
    df = table().loc[["a", "b", "c"]]
    ref = [0.0, 20.0]
    # Minimisation of (-acc, lat): a=(-0.9,10) b=(-0.8,5) c=(-0.5,1), ref=(0,20).
    # Sweep sorted by -acc: a adds 0.9*10=9; b adds 0.8*(10-5)=4; c adds 0.5*(5-1)=2.
    assert pareto.hypervolume(df, OBJ, DIR, ref) == pytest.approx(15.0)
    # Dominated points add nothing.
    assert pareto.hypervolume(table(), OBJ, DIR, ref) == pytest.approx(15.0)
    hist = pareto.hypervolume_history(df, OBJ, DIR, ref)
    assert hist == pytest.approx([9.0, 13.0, 15.0])


def test_reference_point():
    assert pareto.reference_point(table(), OBJ, DIR) == pytest.approx([0.0, 13.2])


def test_knee_point_is_balanced():
    df = pd.DataFrame({"val_top1": [0.9, 0.88, 0.3], "latency_ms": [100.0, 10.0, 1.0]})
    assert pareto.knee_point(df, OBJ, DIR) == 1


def test_errors():
    with pytest.raises(UserError, match="not a column"):
        pareto.non_dominated(table(), ["acc"], ["max"])
    with pytest.raises(UserError, match="empty"):
        pareto.knee_point(table().iloc[[6]], OBJ, DIR)
