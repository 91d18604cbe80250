"""Benchmark 5: the default ``archlab search --space interleave`` (``--quick``: 4 tiny
trials) in a temporary study: wall time, Ray start-up, and the overhead fraction, the share
of the trial slots' time (concurrency x wall) not spent training a proxy."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..results.reader import load_results
from ..search import SearchConfig, search, shutdown
from .common import publish

QUICK_SPACE = """description: two one-block stages (the search benchmark's --quick space)
kind: free
depths: [[1], [1]]
widths: [0.0625]
letters: [A, B, C, "2"]
fields: "stem=2d/s"
"""


def search_overhead(df: Any, wall_s: float, slots: int) -> dict[str, float]:
    """Where a search's time went, from its results table. ``slots`` trials run at once, so
    the search had ``slots * wall_s`` slot-seconds; what no trial trained in is overhead
    (Ray and driver start-up, trial start-up, data generation, latency measurement, slots
    idle while the last trials finish, writing tables)."""
    train_s = float(df["train_time_s"].fillna(0).sum())
    trial_s = float(df["trial_time_s"].fillna(0).sum())
    capacity = slots * wall_s
    return {
        "wall_s": wall_s,
        "slots": slots,
        "train_s": train_s,
        "trial_s": trial_s,
        "overhead": 1 - train_s / capacity,
        "overhead_outside_trials": 1 - trial_s / capacity,
    }


def run_search(quick: bool = False, out_dir: str | Path | None = None) -> dict[str, Any]:
    """The default search (or 4 tiny trials) in a temporary directory, timed end to end."""
    with tempfile.TemporaryDirectory(prefix="archlab-bench-search-") as tmp:
        # confirm_seeds=0: this measures the search's own overhead (its confirm runs are no trials
        # of the search study, so they would count as overhead); the confirm step's cost is in
        # docs/notebook/confirm-step.md.
        cfg = SearchConfig(out=tmp, name="bench", wandb="off", confirm_seeds=0)
        if quick:
            space = Path(tmp) / "quick.yaml"
            space.write_text(QUICK_SPACE)
            cfg = SearchConfig.from_settings(
                dict(
                    space=str(space),
                    out=tmp,
                    name="bench",
                    wandb="off",
                    frames=4,
                    trials=4,
                    epochs=2,
                    grace_epochs=1,
                    data_opts={"n_clips": 64},
                    latency_runs=2,
                    confirm_seeds=0,
                )
            )
        print(
            f"searching {cfg.space} ({cfg.trials} trials of {cfg.recipe.epochs} epochs, "
            f"{'x'.join(map(str, cfg.recipe.clip))}) in {tmp} ...",
            flush=True,
        )
        try:
            out = search(cfg, echo=lambda line: print("  " + line, flush=True))
        finally:
            shutdown()
        df, _ = load_results(out.study_dir)
    slots = out.concurrency
    o = search_overhead(df, out.wall_s, slots)
    o.update(
        ray_start_s=out.ray_start_s,
        trials=cfg.trials,
        finished=out.finished,
        rejected=out.rejected,
        repeated=out.repeated,
    )
    header = ["wall s", "Ray start s", "slots", "trial s", "training s", "overhead", "outside trials"]
    body = [
        [
            f"{o['wall_s']:.0f}",
            f"{o['ray_start_s']:.1f}",
            slots,
            f"{o['trial_s']:.0f}",
            f"{o['train_s']:.0f}",
            f"{o['overhead']:.1%}",
            f"{o['overhead_outside_trials']:.1%}",
        ]
    ]
    note = (
        f"{'quick: 4 tiny trials' if quick else 'the default run: archlab search --space interleave'}; "
        f"{out.finished} finished, {out.rejected} rejected, {out.repeated} repeats reused. overhead = 1 - (sum of training time) / "
        f"(slots x wall); 'outside trials' counts a trial's data generation and latency measurement as "
        f"trial time."
    )
    publish("search", {**o, "quick": quick}, header, body, note, out_dir, right=range(1, len(header)))
    return o
