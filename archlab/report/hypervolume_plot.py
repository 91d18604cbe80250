"""The report's hypervolume plot: the front's hypervolume after each trial and over wall time,
the baselines' beside the search's (conventions: ``figures.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .figures import C_BASE, C_FRONT, _figure, _save


def _time_unit(seconds: float) -> tuple[float, str]:
    """Seconds per unit and its name for a wall-time axis: seconds up to 5 minutes, then minutes,
    then hours past 5 hours."""
    if seconds <= 300:
        return 1.0, "s"
    return (60.0, "min") if seconds <= 5 * 3600 else (3600.0, "h")


def _hv_steps(ax: Any, x: np.ndarray, v: np.ndarray, color: str, label: str, marker: str) -> None:
    """A hypervolume history as a step line, a dot where a trial grew the front."""
    ax.plot(x, v, drawstyle="steps-post", color=color, lw=1.8, label=label)
    up = np.flatnonzero(np.diff(np.concatenate([[0.0], v])) > 0)
    ax.scatter(x[up], v[up], s=22, color=color, marker=marker, zorder=3)


def hypervolume_figure(
    curve: pd.DataFrame,
    hv: dict[str, Any],
    title: str,
    *,
    time_curve: pd.DataFrame | None = None,
    baselines: pd.DataFrame | None = None,
    baselines_time: pd.DataFrame | None = None,
) -> Any | None:
    """Hypervolume after each search trial (left) and against wall-clock time (right, when the
    study has trial times: ``numbers.hypervolume_time_curve``), as step lines from the study's
    one reference point (front.yaml); the baselines' own curves (``baselines``,
    ``baselines_time``) in orange beside the search's, so a reader sees what the hand-made
    points reach for the same number of trials and the same time. The trial axis counts
    trials, so its ticks are whole trial numbers (never 0.5); the time curve starts at (0, 0),
    the first trial's start. None without a curve or a reference point."""
    from matplotlib.ticker import MaxNLocator

    if curve.empty or "reference_point" not in hv:
        return None
    timed = time_curve is not None and not time_curve.empty
    fig = _figure(12.5 if timed else 7.5, 4.2, layout="constrained")
    axes = fig.subplots(1, 2 if timed else 1, squeeze=False, sharey=True)[0]
    objs = hv["objectives"]
    ref = ", ".join(f"{o}={r:.4g}" for o, r in zip(objs, hv["reference_point"]))
    has_base = baselines is not None and not baselines.empty

    ax = axes[0]
    _hv_steps(
        ax,
        curve["number"].to_numpy(),
        curve["hypervolume"].to_numpy(float),
        C_FRONT,
        f"search ({len(curve)} trials)",
        "o",
    )
    if has_base:
        _hv_steps(
            ax,
            baselines["number"].to_numpy(),
            baselines["hypervolume"].to_numpy(float),
            C_BASE,
            f"baselines ({len(baselines)})",
            "D",
        )
    ax.scatter([], [], s=22, color="#333333", label="a trial that grew the front")
    ax.set_xlabel(
        "trial number (in order; baselines numbered on their own)"
        if has_base
        else "trial number (search trials, in order)"
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"hypervolume ({objs[0]} × {objs[1]})")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")

    if timed:
        ax = axes[1]
        curves = [(time_curve, C_FRONT, "search", "o")]
        if baselines_time is not None and not baselines_time.empty:
            curves.append((baselines_time, C_BASE, "baselines", "D"))
        scale, unit = _time_unit(max(float(c["elapsed_s"].max()) for c, *_ in curves))
        for c, color, label, marker in curves:
            x = np.concatenate([[0.0], c["elapsed_s"].to_numpy(float) / scale])
            v = np.concatenate([[0.0], c["hypervolume"].to_numpy(float)])
            _hv_steps(ax, x, v, color, f"{label} ({c['elapsed_s'].max() / scale:.3g} {unit})", marker)
        ax.set_xlabel(f"wall time since the first trial started ({unit}; trials complete out of order)")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    base_text = f", baselines {hv['baselines_hypervolume']:.4g}" if "baselines_hypervolume" in hv else ""
    fig.suptitle(f"{title}\nfinal {hv.get('hypervolume', 0):.4g}{base_text}, reference point {ref}", fontsize=10)
    return fig


def plot_hypervolume(curve: pd.DataFrame, hv: dict[str, Any], path: Path, title: str, **curves: Any) -> Path | None:
    fig = hypervolume_figure(curve, hv, title, **curves)
    return None if fig is None else _save(fig, path)
