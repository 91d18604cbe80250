"""How a latency predictor's figures compare with end-to-end measurements: the share within a
tolerance, the median and 90th percentile of the absolute relative error, the signed mean.
The latency table's check, ``archlab latency-table --check`` and the search's
predicted-against-measured line all report these figures."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

from ..util.errors import UserError

TOLERANCE = 0.10  # the error report's "within": |predicted / measured - 1| <= 10%


@dataclass(frozen=True)
class Errors:
    """How predictions compare with measurements: relative errors ``predicted / measured - 1``,
    the share within ``tolerance``, and the median and 90th percentile of the absolute error."""

    n: int
    within: float  # share of genomes with |error| <= tolerance
    median_abs: float
    p90_abs: float
    mean: float  # signed: > 0 means the prediction overestimates on average
    tolerance: float
    errors: tuple[float, ...]


def prediction_errors(predicted: Sequence[float], measured: Sequence[float], tolerance: float = TOLERANCE) -> Errors:
    """The error figures of predictions against measurements (same order, same length)."""
    if len(predicted) != len(measured) or not predicted:
        raise UserError("prediction_errors needs as many predictions as measurements, at least one")
    if any(not (m > 0) for m in measured):
        raise UserError("prediction_errors needs positive measured latencies")
    errs = [p / m - 1 for p, m in zip(predicted, measured)]
    abs_errs = sorted(abs(e) for e in errs)
    p90 = abs_errs[min(len(abs_errs) - 1, math.ceil(0.9 * len(abs_errs)) - 1)]
    return Errors(
        n=len(errs),
        within=sum(a <= tolerance + 1e-12 for a in abs_errs) / len(errs),
        median_abs=float(statistics.median(abs_errs)),
        p90_abs=float(p90),
        mean=float(statistics.fmean(errs)),
        tolerance=tolerance,
        errors=tuple(errs),
    )
