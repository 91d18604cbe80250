"""The report's block-mix plot: accuracy against the fraction of each block type, one panel
per type (conventions: ``figures.py``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..model.genome import LETTERS
from .figures import (
    C_BASE,
    C_TRIAL,
    _chance_line,
    _draw_front,
    _draw_refuted,
    _figure,
    _front_label,
    _save,
    _scatter,
    _stopped_legend,
    plotted,
)


def mix_figure(df: pd.DataFrame, title: str, *, objectives: Sequence[str], directions: Sequence[str]) -> Any | None:
    """'What the mix does': accuracy (each trial's mean over all its seeds) against the
    fraction of each block type that occurs, one small panel per type; the table's front (with
    its 95% intervals), refuted trials, baselines, stopped trials and chance marked as in the
    trade-off plots. No front is computed on these axes: a fraction is not an objective."""
    done = plotted(df, objectives, directions)
    done = done[np.isfinite(done["val_top1"])]
    letters = [k for k in LETTERS if f"frac_{k}" in done and pd.to_numeric(done[f"frac_{k}"]).fillna(0).gt(0).any()]
    if done.empty or not letters:
        return None
    cols = min(3, len(letters))
    rows = math.ceil(len(letters) / cols)
    fig = _figure(3.4 * cols, 2.9 * rows + 0.5, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    on_front, is_base, gone = done["on_front"], done["baseline"], done["refuted"]
    rest, base = ~on_front & ~is_base & ~gone, is_base & ~on_front
    front_label = _front_label(done, objectives, int(on_front.sum()))
    for i, letter in enumerate(letters):
        ax = axes[i // cols][i % cols]
        frac = pd.to_numeric(done[f"frac_{letter}"]).fillna(0.0)
        if rest.any():
            _scatter(
                ax,
                frac[rest],
                done.loc[rest, "val_top1"],
                done[rest],
                s=22,
                color=C_TRIAL,
                lw=0.5,
                label="other trials",
                zorder=3,
                gid="trials",
            )
        if base.any():
            _scatter(
                ax,
                frac[base],
                done.loc[base, "val_top1"],
                done[base],
                s=34,
                color=C_BASE,
                marker="D",
                edgecolor="black",
                lw=0.5,
                label="baselines",
                zorder=3,
                gid="baselines",
            )
        _draw_refuted(ax, frac[gone], done[gone], size=34)
        _draw_front(ax, frac[on_front], done[on_front], size=34, label=front_label)
        if i == 0:
            _stopped_legend(ax, done)
        _chance_line(ax, df, label=i == 0)
        desc = LETTERS[letter].description.split(":")[0]
        ax.set_title(f"{letter}  ({desc})", fontsize=9)
        ax.set_xlim(-0.05, 1.05)
        ax.set_xlabel(f"fraction of {letter} blocks", fontsize=8)
        ax.tick_params(labelsize=7.5)
        ax.grid(alpha=0.3)
        if i % cols == 0:
            ax.set_ylabel("val top-1 (mean over seeds)", fontsize=8)
    for j in range(len(letters), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat[1 : len(letters)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.suptitle(title, fontsize=10.5)
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncol=min(4, len(labels)))
    return fig


def plot_mix(
    df: pd.DataFrame, path: Path, title: str, *, objectives: Sequence[str], directions: Sequence[str]
) -> Path | None:
    fig = mix_figure(df, title, objectives=objectives, directions=directions)
    return None if fig is None else _save(fig, path)
