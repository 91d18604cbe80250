"""The report's trade-off plots and what every plot of the report shares (the canvas, the
colours, how the front, refuted points, stopped trials and chance are drawn); the hypervolume
plot is in ``hypervolume_plot.py``, the block-mix plot in ``mix_plot.py``. Plots are drawn with
matplotlib's object API on the Agg canvas (no pyplot state, no display needed). Each
``*_figure`` function returns the Figure (tests inspect what is drawn); ``plot_*`` saves it as
a PNG.

Every plot draws the report table's front (the ``on_front`` marking of the results reader,
pareto.csv's rows: confirmed when the study is, else provisional) and nothing else as a front;
accuracy is each trial's mean over all its seeds (``confirmed.accuracy_view``, what that front
is computed on), and a front point's 95% interval of that mean is a vertical bar.

Conventions every plot keeps: the front in blue, other trials grey, baselines orange
diamonds, trials the confirm seeds pushed off the front vermilion crosses (Okabe-Ito colours,
apart for colour-blind readers); trials ASHA stopped early hollow, never on a front; chance
accuracy (1 / classes) a dashed line. The artists of the front carry gid ``front`` (markers),
``front-ci`` (the bars) and ``front-line`` (the staircase), refuted points ``refuted``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..model.genome import GenomeError, parse
from ..results import confirmed
from ..results.numbers import short_genome
from ..results.record import FINISHED, FRONT

AXIS_LABELS = {
    "val_top1": "val top-1 accuracy",
    "latency_ms": "latency (ms per clip, batch 1)",
    "gmacs": "GMACs per clip",
    "params": "parameters",
}
AXIS_NAMES = {"val_top1": "accuracy", "latency_ms": "latency", "gmacs": "GMACs", "params": "params"}
# Colours that stay apart for colour-blind readers (Okabe-Ito).
C_TRIAL, C_FRONT, C_BASE, C_CHANCE, C_REFUTED = "#999999", "#0072B2", "#E69F00", "#555555", "#D55E00"
REFUTED = "refuted by confirm seeds"


def _figure(w: float, h: float, layout: str | None = None) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, bbox_inches="tight", pad_inches=0.15, facecolor="white")
    return path


def _trial_label(r: pd.Series) -> str:
    """A point's label: the trial id users type (``archlab export --trial``), '#' for search trials."""
    return str(r["trial"]) if r["baseline"] else f"#{r['trial']}"


def chance_accuracy(df: pd.DataFrame) -> float | None:
    """1 / classes, the top-1 accuracy of guessing: read from the trials' genomes (``cls=``,
    the same for every trial of a study); None if no genome parses or they disagree."""
    classes = set()
    for text in df["genome"]:
        try:
            classes.add(parse(text).classes)
        except GenomeError:
            continue
    return 1.0 / classes.pop() if len(classes) == 1 else None


def _chance_line(ax: Any, df: pd.DataFrame, label: bool = True) -> None:
    chance = chance_accuracy(df)
    if chance is None:
        return
    ax.axhline(
        chance,
        color=C_CHANCE,
        ls="--",
        lw=1.0,
        zorder=1,
        label=f"chance (1/{round(1 / chance)} = {chance:.3f})" if label else None,
    )
    lo, hi = ax.get_ylim()
    if chance < lo + 0.02 * (hi - lo):  # keep the line inside, with a little room below it
        ax.set_ylim(chance - 0.05 * (hi - chance), hi)


def _scatter(
    ax: Any, xs: pd.Series, ys: pd.Series, rows: pd.DataFrame, *, color: str, edgecolor: str | None = None, **kw: Any
) -> None:
    """Full-budget trials filled, trials ASHA stopped early hollow (edge in their colour): a
    stopped trial's accuracy is that of fewer epochs, not comparable as it stands."""
    stopped = (rows["status"] == "stopped").to_numpy()
    label = kw.pop("label", None)
    if (~stopped).any():
        ax.scatter(xs[~stopped], ys[~stopped], color=color, edgecolor=edgecolor or "none", label=label, **kw)
        label = None
    if stopped.any():
        kw["lw"] = max(1.2, kw.get("lw", 0))
        ax.scatter(xs[stopped], ys[stopped], facecolors="none", edgecolors=color, label=label, **kw)


def _stopped_legend(ax: Any, rows: pd.DataFrame) -> None:
    """One legend entry saying what hollow means (drawn off-axes: no point of its own)."""
    n = int((rows["status"] == "stopped").sum())
    if n:
        ax.scatter(
            [], [], s=40, facecolors="none", edgecolors=C_TRIAL, lw=1.2, label=f"hollow: stopped early by ASHA ({n})"
        )


def refuted(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> pd.Series:
    """True for the search trials the confirm seeds pushed off the front: retrained with
    confirm seeds (``n_seeds`` counts more seeds than their own) and not on the front of the
    search trials on the means (``confirmed.search_front``). The confirm step retrains front
    points only, so each of them was on the front before its confirm runs. A trial kept off
    the table's front by a baseline alone is not refuted (the confirm step compares search
    trials; baselines are never retrained)."""
    out = pd.Series(False, index=df.index)
    if "n_seeds" not in df.columns or df.empty:
        return out
    seeds = pd.to_numeric(df["n_seeds"], errors="coerce").fillna(0).to_numpy()
    own = np.array([len(confirmed.own_values(r)) for _, r in df.iterrows()])
    retrained = (seeds > own) & df["status"].isin(FRONT).to_numpy() & ~df["baseline"].astype(bool).to_numpy()
    kept = df.index.isin(confirmed.search_front(df, objectives, directions).index)
    return pd.Series(retrained & ~kept, index=df.index)


def plotted(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> pd.DataFrame:
    """The finished trials (trained to the end or stopped early) as every plot draws them:
    ``val_top1`` each trial's mean over all its seeds where known (``confirmed.accuracy_view``;
    a stopped trial keeps the value of the epoch it reached), ``on_front`` the table's front
    (never a stopped trial), ``refuted`` (see ``refuted``), ``baseline`` a bool."""
    out = confirmed.accuracy_view(df[df["status"].isin(FINISHED)]).copy()
    out["val_top1"] = pd.to_numeric(out["val_top1"], errors="coerce")
    out["on_front"] = out["on_front"].astype(bool) & out["status"].isin(FRONT)
    out["refuted"] = refuted(df, objectives, directions).loc[out.index]
    out["baseline"] = out["baseline"].astype(bool)
    return out


def _front_label(pts: pd.DataFrame, objectives: Sequence[str], n: int) -> str:
    """The legend's words for the table's front of ``n`` points: which front (confirmed or
    provisional) and on which objectives."""
    kind = str(pts["front"].iloc[0]) if "front" in pts.columns and len(pts) else confirmed.PROVISIONAL
    n_base = int((pts["on_front"] & pts["baseline"]).sum())
    on = " vs ".join(AXIS_NAMES.get(o, o) for o in objectives)
    return f"Pareto front, {kind}, {on} ({n}{f', {n_base} baseline' if n_base else ''})"


def _draw_front(ax: Any, xs: pd.Series, front: pd.DataFrame, *, size: float, label: str) -> None:
    """The table's front at ``xs``: search trials blue, baselines on it orange diamonds edged
    in blue (gid ``front``), and each point's 95% interval of its mean accuracy as a vertical
    bar (gid ``front-ci``; a point with one seed has no interval and no bar)."""
    if front.empty:
        return
    base = front["baseline"].to_numpy(bool)
    ys = front["val_top1"]
    if (~base).any():
        ax.scatter(
            xs[~base], ys[~base], s=size, color=C_FRONT, edgecolor="black", lw=0.6, label=label, zorder=4, gid="front"
        )
        label = None
    if base.any():
        ax.scatter(
            xs[base],
            ys[base],
            s=size * 1.3,
            marker="D",
            color=C_BASE,
            edgecolor=C_FRONT,
            lw=1.8,
            label=label,
            zorder=5,
            gid="front",
        )
    if "top1_ci95_low" not in front.columns or "top1_ci95_high" not in front.columns:
        return
    lo = pd.to_numeric(front["top1_ci95_low"], errors="coerce").to_numpy(float)
    hi = pd.to_numeric(front["top1_ci95_high"], errors="coerce").to_numpy(float)
    has = np.isfinite(lo) & np.isfinite(hi)
    if has.any():
        y = ys.to_numpy(float)[has]
        bars = ax.errorbar(
            xs.to_numpy(float)[has],
            y,
            yerr=[y - lo[has], hi[has] - y],
            fmt="none",
            ecolor=C_FRONT,
            elinewidth=1.2,
            capsize=3,
            zorder=3.5,
            label="front: 95% CI of the mean over seeds",
        )
        for c in bars.lines[2]:
            c.set_gid("front-ci")


def _draw_refuted(ax: Any, xs: pd.Series, rows: pd.DataFrame, *, size: float) -> None:
    """Trials the confirm seeds pushed off the front, at their mean over all seeds (gid ``refuted``)."""
    if len(rows):
        ax.scatter(
            xs,
            rows["val_top1"],
            s=size,
            marker="X",
            color=C_REFUTED,
            edgecolor="black",
            lw=0.4,
            label=f"{REFUTED} ({len(rows)})",
            zorder=3,
            gid="refuted",
        )


# Where a label may go relative to its point: offset in points, horizontal and vertical alignment.
_SPOTS = {
    "UL": ((-6, 5), "right", "bottom"),
    "UR": ((6, 5), "left", "bottom"),
    "LR": ((7, -5), "left", "top"),
    "LL": ((-7, -5), "right", "top"),
    "U": ((0, 9), "center", "bottom"),
    "D": ((0, -9), "center", "top"),
}


def _place_labels(
    ax: Any,
    labels: Sequence[tuple[float, float, str, dict, Sequence[str]]],
    xs: np.ndarray,
    ys: np.ndarray,
    line: np.ndarray | None = None,
    avoid: Sequence[Any] = (),
) -> None:
    """Greedy label placement: each label takes the first of its candidate spots that overlaps no
    other point, no stretch of ``line`` (data-space vertices), no label placed before it and
    nothing in ``avoid`` (the legend), and stays inside the axes; when every spot collides, the
    one with the fewest collisions."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits before measuring
    inside = ax.get_window_extent(renderer)
    r = 5.0 * ax.figure.dpi / 72  # a marker's half-size in pixels
    centres = ax.transData.transform(np.column_stack([xs, ys]))
    points = [Bbox.from_extents(px - r, py - r, px + r, py + r) for px, py in centres]
    placed = [a.get_window_extent(renderer) for a in avoid if a is not None]
    if line is not None and len(line) > 1:  # the line as small boxes every few pixels
        v = ax.transData.transform(line)
        for a, b in zip(v[:-1], v[1:]):
            n = max(1, int(np.hypot(*(b - a)) // 4))
            for t in np.linspace(0.0, 1.0, n + 1):
                px, py = a + t * (b - a)
                placed.append(Bbox.from_extents(px - 1, py - 1, px + 1, py + 1))
    for x, y, text, style, spots in labels:
        own = ax.transData.transform((x, y))
        obstacles = placed + [b for b, c in zip(points, centres) if not np.allclose(c, own)]
        best: tuple[float, Any, Any] | None = None
        for k, spot in enumerate(spots):
            offset, ha, va = _SPOTS[spot]
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, ha=ha, va=va, zorder=6, **style)
            box = ann.get_window_extent(renderer)
            hits = sum(box.overlaps(o) for o in obstacles)
            outside = not (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1))
            cost = hits * 10 + outside * 5 + k * 0.01
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann, box)
            else:
                ann.remove()
            if cost < 1:  # a free spot: take it
                break
        assert best is not None
        placed.append(best[2])


def tradeoff_figure(
    df: pd.DataFrame,
    x: str,
    title: str,
    presets: dict[str, str],
    *,
    objectives: Sequence[str],
    directions: Sequence[str],
) -> Any | None:
    """Accuracy (each trial's mean over all its seeds) against ``x`` for the finished trials.

    The front drawn is the report table's (``on_front``: pareto.csv's rows), whatever ``x`` is:
    blue points with the 95% interval of their mean accuracy as vertical bars. When ``x`` is
    one of the study's ``objectives``, that front is the staircase of these two axes and a step
    line joins its points. When it is not (GMACs in a study of accuracy and latency), the same
    points are drawn, highlighted, with no line, and no front is computed on ``x``: it would be
    another set of trials than the table's, and a report has one front. The legend names the
    objectives the front is on ("Pareto front, confirmed, accuracy vs latency"), so it is not
    read as the front of this plot's axes.

    Trials ASHA stopped early are hollow and never on the front (their accuracy is that of
    fewer epochs); search trials the confirm seeds pushed off the front are vermilion crosses
    ("refuted by confirm seeds"); baselines are diamonds labelled with their label and genome,
    named models labelled with their name; a dashed line marks chance accuracy (1 / classes).
    None when no trial has both values."""
    done = plotted(df, objectives, directions)
    done[x] = pd.to_numeric(done[x], errors="coerce")
    pts = done[np.isfinite(done[x]) & np.isfinite(done["val_top1"])]
    if pts.empty:
        return None
    front = pts[pts["on_front"]].sort_values(x)
    base = pts[pts["baseline"] & ~pts["on_front"]]
    gone = pts[pts["refuted"]]
    rest = pts[~pts["on_front"] & ~pts["baseline"] & ~pts["refuted"]]

    fig = _figure(8.5, 5.6)
    ax = fig.add_subplot()
    _scatter(
        ax,
        rest[x],
        rest["val_top1"],
        rest,
        s=30,
        color=C_TRIAL,
        alpha=0.8,
        label=f"other trials ({len(rest)})",
        zorder=2,
        gid="trials",
    )
    _draw_refuted(ax, gone[x], gone, size=55)
    steps = None
    if x in objectives and len(front):
        xs, ys = list(front[x]) + [pts[x].max()], list(front["val_top1"])
        ys.append(ys[-1])
        ax.plot(xs, ys, drawstyle="steps-post", color=C_FRONT, lw=1.6, alpha=0.9, zorder=3, gid="front-line")
        steps = np.array(
            [
                (px, py)
                for i, (px, py) in enumerate(zip(xs, ys))
                for px, py in ([(px, ys[i - 1]), (px, py)] if i else [(px, py)])
            ],
            dtype=float,
        )
    _draw_front(ax, front[x], front, size=60, label=_front_label(done, objectives, len(front)))
    if len(base):
        some_on = bool((pts["baseline"] & pts["on_front"]).any())
        ax.scatter(
            base[x],
            base["val_top1"],
            s=80,
            marker="D",
            color=C_BASE,
            edgecolor="black",
            lw=0.7,
            label=f"baselines{' off the front' if some_on else ''} ({len(base)})",
            zorder=5,
            gid="baselines",
        )
    _stopped_legend(ax, pts)
    _chance_line(ax, df)
    notes = []
    missing = int(done["on_front"].sum()) - len(front)
    if missing:
        notes.append(f"{missing} front point(s) without {AXIS_NAMES.get(x, x)} not shown")
    hidden = int((~df["status"].isin(FINISHED)).sum())
    if hidden:
        notes.append(f"{hidden} failed/rejected/running trial(s) not shown")
    if notes:
        ax.text(
            0.99, 0.01, "\n".join(notes), transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5, color="#555555"
        )
    lo, hi = pts[x].min(), pts[x].max()
    ax.margins(y=0.12)
    if lo > 0 and hi / lo > 30:
        ax.set_xscale("log")
        ax.set_xlim(lo / (hi / lo) ** (0.1 if len(front) > 12 else 0.3), hi * (hi / lo) ** 0.08)
    else:
        span = (hi - lo) or max(abs(hi), 1.0)
        ax.set_xlim(lo - (0.1 if len(front) > 12 else 0.3) * span, hi + 0.12 * span)  # room for front labels
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS["val_top1"] + " (mean over seeds)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=8, loc="best", framealpha=0.9)

    # Labels: up-left of a front point first (no trial can lie there on the front's own axes:
    # it would dominate the point). A crowded front gets trial numbers only; the report's
    # table has the genomes.
    labels: list[tuple[float, float, str, dict, Sequence[str]]] = []
    front_search = front[~front["baseline"]]
    front_style = dict(fontsize=7.5, color=C_FRONT)
    for _, r in front_search.iterrows():
        text = _trial_label(r) if len(front_search) > 12 else f"{_trial_label(r)} {short_genome(r['genome'], 24, 1)}"
        labels.append((r[x], r["val_top1"], text, front_style, ("UL", "U", "LL", "UR", "LR", "D")))
    for _, r in gone.iterrows():
        labels.append(
            (
                r[x],
                r["val_top1"],
                _trial_label(r),
                dict(fontsize=7.5, color=C_REFUTED),
                ("LR", "UR", "LL", "UL", "D", "U"),
            )
        )
    base_style = dict(
        fontsize=7, color="#8a5a00", bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=C_BASE, lw=0.5, alpha=0.9)
    )
    for _, r in pts[pts["baseline"]].iterrows():
        name = r["label"] or presets.get(r["genome"], "baseline")
        labels.append(
            (
                r[x],
                r["val_top1"],
                f"{name}\n{short_genome(r['genome'], 26, 2)}",
                base_style,
                ("LR", "UR", "LL", "UL", "D", "U"),
            )
        )
    for _, r in pts[~pts["baseline"]].iterrows():
        if r["genome"] in presets:
            labels.append(
                (
                    r[x],
                    r["val_top1"],
                    presets[r["genome"]],
                    dict(fontsize=7.5, fontweight="bold"),
                    ("LR", "UR", "LL", "UL", "D", "U"),
                )
            )
    _place_labels(ax, labels, pts[x].to_numpy(float), pts["val_top1"].to_numpy(float), line=steps, avoid=[legend])
    return fig


def plot_tradeoff(
    df: pd.DataFrame,
    x: str,
    path: Path,
    title: str,
    presets: dict[str, str],
    *,
    objectives: Sequence[str],
    directions: Sequence[str],
) -> Path | None:
    fig = tradeoff_figure(df, x, title, presets, objectives=objectives, directions=directions)
    return None if fig is None else _save(fig, path)
