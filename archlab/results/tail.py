"""The tail of the seed distribution: what a median seed std hides.

A few seeds of a genome sit on the training-loss plateau at ln(classes) long after the others
took off and end far below them. The median std over genomes does not move for one such run
in twenty; a search that trains one seed per proposal loses the genome each time. So the
summaries report, besides the spread:

* per genome, how far its worst seed lies below the genome's median (``below_median``);
* over all runs, the share that lies more than ``TAIL_GAP`` below its genome's median (the
  target: ``archlab.fidelity.defaults.TARGETS``);
* the take-off epoch of each run: the first epoch whose mean training loss is below
  ``TAKEOFF`` x ln(classes) (None: it never left the plateau);
* for a search, how many proposals the plateau rule restarted (``archlab.training.plateau``).

Plain Python and pandas only: fidelity, experiments and the report all read it.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any, Mapping, Sequence

TAIL_GAP = 0.2  # a run this far below its genome's median val top-1 is in the tail
TAKEOFF = 0.95  # a run took off in the first epoch whose training loss is below this x ln(classes)


def takeoff_epoch(train_losses: Sequence[float], classes: int) -> int | None:
    """The first epoch (1-based) whose training loss is below ``TAKEOFF`` x ln(classes);
    None if no epoch is."""
    bound = TAKEOFF * math.log(classes)
    return next((i + 1 for i, v in enumerate(train_losses) if float(v) < bound), None)


def takeoff_counts(epochs: Sequence[int | None]) -> dict[str, int]:
    """How many runs took off in each epoch, in epoch order; ``"never"`` last."""
    counts = Counter(epochs)
    out = {str(e): counts[e] for e in sorted(e for e in counts if e is not None)}
    if counts[None]:
        out["never"] = counts[None]
    return out


def below_median(values: Sequence[float]) -> list[float]:
    """Each value's distance below the median of ``values`` (0 for a value at or above it)."""
    if not values:
        return []
    med = statistics.median(values)
    return [max(0.0, med - float(v)) for v in values]


def seed_tail(groups: Mapping[str, Sequence[float]], takeoffs: Sequence[int | None] = ()) -> dict[str, Any]:
    """The tail of a table of runs: ``groups`` maps each genome to its seeds' val top-1,
    ``takeoffs`` the take-off epochs of the runs (any order). Per genome its median, its worst
    seed and how far that lies below the median; overall the runs more than ``TAIL_GAP``
    below their genome's median, their share, and the take-off counts."""
    per_genome = []
    tail = runs = 0
    for label, values in groups.items():
        gaps = below_median(values)
        if not values:
            continue
        runs += len(values)
        tail += sum(g > TAIL_GAP for g in gaps)
        per_genome.append(
            {
                "label": label,
                "seeds": len(values),
                "median": statistics.median(values),
                "worst": min(values),
                "below_median": max(gaps),
            }
        )
    return {
        "per_genome": per_genome,
        "runs": runs,
        "tail_runs": tail,
        "tail_share": tail / runs if runs else None,
        "takeoff": takeoff_counts(list(takeoffs)),
    }


def plateau_counts(rows: Any) -> tuple[int, int]:
    """(proposals the plateau rule restarted, seeds it set aside) in a results table; (0, 0)
    for a study from before the rule (no ``restarted_plateau`` column)."""
    if "restarted_plateau" not in rows:
        return 0, 0
    n = [int(v) for v in rows["restarted_plateau"] if v is not None and not _missing(v)]
    return sum(v > 0 for v in n), sum(n)


def plateau_line(rows: Any) -> str:
    """The report's line on the search's own tail."""
    proposals, seeds = plateau_counts(rows)
    return (
        f"restarted on the loss plateau (plateau rule): {proposals} proposal(s), {seeds} seed(s) set aside "
        "before any rung or the sampler saw them"
    )


def _missing(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)
