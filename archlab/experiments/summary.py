"""An experiment's summary: one CSV row per entry (train and search rows share kind and label)
and a markdown page with one table per kind."""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from typing import Any

from ..results.tail import TAIL_GAP, TAKEOFF, seed_tail
from ..util.tables import md_table
from .spec import Experiment

TRAIN_COLUMNS = [
    "kind",
    "label",
    "genome",
    "seeds",
    "val_top1_mean",
    "val_top1_std",
    "val_top1_ci95",
    "val_top1_per_seed",
    "below_median",
    "restarted_plateau",
    "takeoff_epochs",
    "vs",
    "diff",
    "diff_ci95",
    "verdict",
    "params",
    "gmacs",
    "latency_ms",
    "epochs",
    "train_s",
    "status",
]
SEARCH_COLUMNS = [
    "kind",
    "label",
    "space",
    "sampler",
    "scheduler",
    "objectives",
    "trials",
    "finished",
    "stopped",
    "failed",
    "front_size",
    "best_val_top1",
    "hypervolume",
    "hv_as_searched",
    "hv_reference",
    "wall_s",
    "hv_at_equal_time",
    "equal_time_s",
    "busy_s",
    "status",
]
# Searches labelled NAME-s<k> are search seeds of one configuration NAME: the summary gives
# their hypervolume's mean and spread (one seed per configuration is an anecdote).
SEED_SUFFIX = re.compile(r"-s\d+$")

CYCLE_COLUMNS = [
    "kind",
    "label",
    "search",
    "front_points",
    "variants",
    "dominated",
    "front_better",
    "front_worse",
    "hv_front",
    "hv_all_variants",
    "answer",
]
FIDELITY_COLUMNS = [
    "kind",
    "label",
    "space",
    "genomes",
    "seeds",
    "ref_seeds",
    "median_seed_std",
    "bimodal",
    "seed_tau",
    "proxy_vs_ref_rho",
    "proxy_vs_ref_tau",
    "top_quarter_overlap",
    "best_score",
    "targets_met",
    "targets",
    "wall_s",
]


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return v


def summary_csv(rows: list[dict[str, Any]]) -> str:
    """One row per entry; train and search rows share the kind and label columns."""
    columns = list(TRAIN_COLUMNS) if any(r["kind"] == "train" for r in rows) else []
    if any(r["kind"] == "search" for r in rows):
        columns += [c for c in SEARCH_COLUMNS if c not in columns]
    if any(r["kind"] == "fidelity" for r in rows):
        columns += [c for c in FIDELITY_COLUMNS if c not in columns]
    if any(r["kind"] == "cycle" for r in rows):
        columns += [c for c in CYCLE_COLUMNS if c not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(
        buf, fieldnames=columns or ["kind", "label"], restval="", lineterminator="\n", extrasaction="ignore"
    )  # a fidelity row's markdown goes to summary.md only
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(v) for k, v in r.items()})
    return buf.getvalue()


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def search_groups(search: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Search rows by configuration: the label without its ``-s<k>`` seed suffix."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in search:
        groups.setdefault(SEED_SUFFIX.sub("", r["label"]), []).append(r)
    return groups


def _mean(values: list[Any]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return statistics.fmean(v) if v else None


def _mean_std(values: list[Any]) -> str:
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return "-"
    return f"{statistics.fmean(v):.4g}" + (f" ± {statistics.stdev(v):.2g}" if len(v) > 1 else "")


def _diff(r: dict[str, Any]) -> str:
    if r.get("diff") is None:
        return "-"
    half = "" if r["diff_ci95"] is None or not math.isfinite(r["diff_ci95"]) else f" ± {r['diff_ci95']:.3f}"
    return f"{r['diff']:+.3f}{half}: {r['verdict']}"


def hv_difference(mine: list[dict[str, Any]], base: list[dict[str, Any]], key: str) -> str:
    """One configuration's mean ``key`` (a hypervolume) minus another's over their search seeds,
    Welch's 95% interval and the verdict it allows: which sampler or scheduler is better is
    only a finding when the interval excludes 0."""
    from ..results.stats import difference, verdict

    a = [r[key] for r in mine if r.get(key) is not None and math.isfinite(r[key])]
    b = [r[key] for r in base if r.get(key) is not None and math.isfinite(r[key])]
    if not a or not b:
        return "-"
    d = difference(a, b)
    if math.isnan(d.half):
        return f"{d.mean:+.4g}: undecided (one seed)"
    return f"{d.mean:+.4g} ± {d.half:.2g}: {verdict(d)}"


def train_tail_line(train: list[dict[str, Any]]) -> str:
    """The tail of a train section's seeds (``results.tail``): runs more than ``TAIL_GAP``
    below their genome's median, take-off epochs, runs the plateau rule restarted."""
    groups = {r["label"]: list(r.get("val_top1_values") or _per_seed(r)) for r in train}
    takeoffs = [
        None if e == "-" else int(e) for r in train for e in str(r.get("takeoff_epochs", "")).split() if e != "?"
    ]
    t = seed_tail(groups, takeoffs)
    takeoff = ", ".join(f"{e}: {n}" for e, n in t["takeoff"].items()) or "not recorded"
    share = "-" if t["tail_share"] is None else f"{t['tail_share']:.3f}"
    return (
        f"Tail: {t['tail_runs']} of {t['runs']} runs ({share}) more than {TAIL_GAP:g} below their genome's median; "
        f"take-off epoch (training loss < {TAKEOFF:g} x ln(classes)) {takeoff}; "
        f"{sum(int(r.get('restarted_plateau') or 0) for r in train)} run(s) restarted by the plateau rule."
    )


def _per_seed(row: dict[str, Any]) -> list[float]:
    """A CSV row's per-seed values (the text column; "-" for a failed seed)."""
    return [float(v) for v in str(row.get("val_top1_per_seed", "")).split() if v != "-"]


def summary_markdown(experiment: Experiment, rows: list[dict[str, Any]], hv_note: str = "") -> str:
    parts = [f"# Experiment {experiment.name}{' (quick)' if experiment.quick else ''}", "", experiment.description, ""]
    train = [r for r in rows if r["kind"] == "train"]
    if train and experiment.train is not None:
        t, r = experiment.train, experiment.train.recipe
        parts += [
            f"Train: each genome {r.epochs} epoch(s), {r.optimizer} lr {r.lr:g}, batch {r.batch}, "
            f"zero-init {'on' if r.zero_init else 'off'}; synthetic {r.frames}x{r.size}x{r.size}, "
            f"{r.train_clips} train / {r.val_clips} val clips, {r.classes} classes (chance "
            f"{1 / r.classes:.3f}); seeds {', '.join(map(str, t.seeds))}. val top-1 is the last epoch's.",
            "",
        ]
        vs = t.compare
        body = [
            [
                r["label"],
                _f(r["val_top1_mean"], ".3f")
                + (f" ± {r['val_top1_std']:.3f}" if r["val_top1_std"] is not None else ""),
                "-"
                if r.get("val_top1_ci95") is None
                else f"[{r['val_top1_mean'] - r['val_top1_ci95']:.3f}, {r['val_top1_mean'] + r['val_top1_ci95']:.3f}]",
                r["val_top1_per_seed"],
                _f(r.get("below_median"), ".3f"),
            ]
            + ([_diff(r) if r["label"] != vs else "(reference)"] if vs else [])
            + [
                f"{r['params']:,}",
                f"{r['gmacs']:.4f}",
                f"{r['latency_ms']:.2f}",
                str(r["epochs"]),
                r["status"],
                f"`{r['genome']}`",
            ]
            for r in train
        ]
        parts += [
            md_table(
                ["genome", "val top-1 (mean ± std)", "95% CI", "per seed", "worst below median"]
                + ([f"minus {vs} (Welch 95%)"] if vs else [])
                + ["params", "GMACs", "latency ms", "epochs", "status", "genome string"],
                body,
            ),
            "",
            "MACs = multiply-adds of conv and linear layers; latency = median on CPU, batch 1, "
            f"BatchNorm folded, {t.threads or 'default'} torch thread(s).",
            "",
            train_tail_line(train),
            "",
        ]
    search = [r for r in rows if r["kind"] == "search"]
    if search:
        body = [
            [
                r["label"],
                r["space"],
                r["sampler"],
                r.get("scheduler", ""),
                f"{r['finished']} / {r['trials']}",
                str(r.get("stopped", "-")),
                str(r["failed"]),
                str(r["front_size"]),
                _f(r["best_val_top1"], ".3f"),
                _f(r["hypervolume"], ".4g"),
                _f(r.get("hv_at_equal_time"), ".4g"),
                _f(r.get("hv_as_searched"), ".4g"),
                _f(r.get("wall_s"), ".0f"),
                r["status"],
            ]
            for r in search
        ]
        parts += [
            md_table(
                [
                    "search",
                    "space",
                    "sampler",
                    "scheduler",
                    "finished",
                    "stopped at a rung",
                    "failed",
                    "front",
                    "best val top-1",
                    "hypervolume",
                    "HV at equal time",
                    "HV as searched",
                    "wall s",
                    "status",
                ],
                body,
            ),
            "",
            hv_note,
            "",
        ]
        groups = search_groups(search)
        if any(len(g) > 1 for g in groups.values()):
            first = next(iter(groups))
            body = [
                [
                    name,
                    str(len(g)),
                    _mean_std([r["hypervolume"] for r in g]),
                    _mean_std([r.get("hv_at_equal_time") for r in g]),
                    _f(_mean([r.get("wall_s") for r in g]), ".0f"),
                ]
                + (
                    ["(reference)"] * 2
                    if name == first
                    else [hv_difference(g, groups[first], key) for key in ("hypervolume", "hv_at_equal_time")]
                )
                for name, g in groups.items()
            ]
            parts += [
                md_table(
                    [
                        "configuration",
                        "search seeds",
                        "hypervolume mean ± std",
                        "HV at equal time mean ± std",
                        "wall s (mean)",
                        f"HV minus {first} (Welch 95%)",
                        f"HV at equal time minus {first} (Welch 95%)",
                    ],
                    body,
                ),
                "",
                f"The first configuration listed ({first}) is the reference: a verdict needs the "
                "interval to exclude 0.",
                "",
            ]
    for r in rows:
        if r["kind"] == "cycle":
            parts += [r["markdown"]]
        if r["kind"] == "fidelity":
            parts += [
                r["markdown"],
                f"Wall time {r['wall_s']:.0f} s; every run: fidelity/runs.csv, the plot: fidelity/fidelity.png.",
                "",
            ]
    return "\n".join(parts)
