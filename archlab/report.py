"""`archlab report` and `archlab dashboard`: what a study found, as plots and a document.

Reads the study the same way every other command does (``results.load_results``: Optuna
storage -> one table) and writes ``STUDY_DIR/report/``: PNG plots (accuracy against latency
and GMACs with the front drawn as a step line and the baselines marked, hypervolume after each
trial, accuracy against the fraction of each block type) and ``report.md`` or ``report.html``
(front table, summary, failures, the images).

Plots use matplotlib's object API with the Agg canvas (no pyplot state, no display needed).
Markdown tables are fixed-width text in code blocks, not pipe tables: genome strings contain
``|``, and a reader copies them from the report into ``archlab export --genome`` exactly.
"""

from __future__ import annotations

import html
import math
import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from . import pareto
from .errors import UserError
from .genome import LETTERS, GenomeError, parse
from .results import FINISHED
from .tables import text_table

FORMATS = ("md", "html")
AXIS_LABELS = {"val_top1": "val top-1 accuracy", "latency_ms": "latency (ms per clip, batch 1)",
               "gmacs": "GMACs per clip", "params": "parameters"}
# Colours that stay apart for colour-blind readers (Okabe-Ito).
C_TRIAL, C_FRONT, C_BASE = "#999999", "#0072B2", "#E69F00"


# ---- numbers ---------------------------------------------------------------------------------

def hypervolume_curve(df: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str],
                      ref: Sequence[float]) -> pd.DataFrame:
    """Hypervolume of the search trials (not the baselines) after each trial, in trial-number
    order: columns number, hypervolume. Failed, rejected and running trials are steps where it
    stays flat (their objective values do not count, even when a failed trial has some)."""
    search = df[~df["baseline"].astype(bool)].sort_values("number")
    pts = search[list(objectives)].apply(pd.to_numeric, errors="coerce")
    pts.loc[~search["status"].isin(FINISHED)] = np.nan
    hv = pareto.hypervolume_history(pts, objectives, directions, ref) if len(pts) else []
    return pd.DataFrame({"number": search["number"].astype(int).to_numpy(), "hypervolume": hv})


def study_hypervolume(df: pd.DataFrame, settings: dict[str, Any], objectives: list[str],
                      directions: list[str]) -> dict[str, Any]:
    """The same numbers as front.yaml (results.write_tables), computed from the table at hand."""
    search = df[~df["baseline"].astype(bool) & df["status"].isin(FINISHED)]
    out: dict[str, Any] = {"objectives": objectives, "directions": directions}
    if len(search):
        ref = settings.get("reference_point") or pareto.reference_point(search, objectives, directions)
        out["reference_point"] = [float(x) for x in ref]
        out["hypervolume"] = pareto.hypervolume(search, objectives, directions, ref)
        out["front_size"] = int(pareto.non_dominated(search, objectives, directions).sum())
    return out


def preset_names(genomes: Sequence[str]) -> dict[str, str]:
    """genome string -> preset name, for the genomes that are a named model (any class count)."""
    from .presets import PRESETS

    known = {}
    for name, text in PRESETS.items():
        known[str(parse(text).with_(classes=1))] = name
    out = {}
    for g in genomes:
        try:
            key = str(parse(g).with_(classes=1))
        except GenomeError:
            continue
        if key in known:
            out[g] = known[key]
    return out


# ---- text helpers ----------------------------------------------------------------------------

def short_genome(genome: str, width: int = 30, lines: int = 2) -> str:
    """A genome string that fits a plot label: the class count dropped (the same for every
    trial), wrapped at spaces, the rest cut with an ellipsis."""
    text = re.sub(r"\s+cls=\d+", "", genome or "?").strip()
    parts = textwrap.wrap(text, width=width, break_long_words=True, break_on_hyphens=False)
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][: width - 1] + "…"
    return "\n".join(parts)


def _num(v: Any, fmt: str) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "-"
    return format(x, fmt) if math.isfinite(x) else "-"


# ---- plots -----------------------------------------------------------------------------------

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
    return "base" if r["baseline"] else f"#{int(r['number'])}"


# Where a label may go relative to its point: offset in points, horizontal and vertical alignment.
_SPOTS = {"UL": ((-6, 5), "right", "bottom"), "UR": ((6, 5), "left", "bottom"), "LR": ((7, -5), "left", "top"),
          "LL": ((-7, -5), "right", "top"), "U": ((0, 9), "center", "bottom"), "D": ((0, -9), "center", "top")}


def _place_labels(ax: Any, labels: Sequence[tuple[float, float, str, dict, Sequence[str]]], xs: np.ndarray,
                  ys: np.ndarray, line: np.ndarray | None = None, avoid: Sequence[Any] = ()) -> None:
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
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, ha=ha, va=va, zorder=6,
                              **style)
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


def plot_tradeoff(df: pd.DataFrame, x: str, path: Path, title: str, presets: dict[str, str]) -> Path | None:
    """val_top1 against ``x`` for the finished trials: the front for these two axes (over search
    trials and baselines alike, as results.mark_front) drawn as a step line, baselines as
    diamonds labelled with their label and genome, named models labelled with their name."""
    done = df[df["status"].isin(FINISHED)].copy()
    done[x] = pd.to_numeric(done[x], errors="coerce")
    done["val_top1"] = pd.to_numeric(done["val_top1"], errors="coerce")
    pts = done[np.isfinite(done[x]) & np.isfinite(done["val_top1"])]
    if pts.empty:
        return None
    front_mask = pareto.non_dominated(pts, ["val_top1", x], ["max", "min"])
    front = pts[front_mask].sort_values(x)
    base = pts[pts["baseline"].astype(bool)]
    rest = pts[~front_mask & ~pts["baseline"].astype(bool)]

    fig = _figure(8.5, 5.6)
    ax = fig.add_subplot()
    if len(rest):
        ax.scatter(rest[x], rest["val_top1"], s=30, color=C_TRIAL, alpha=0.8, label=f"other trials ({len(rest)})",
                   zorder=2)
    xs, ys = list(front[x]) + [pts[x].max()], list(front["val_top1"])
    ys.append(ys[-1])
    ax.plot(xs, ys, drawstyle="steps-post", color=C_FRONT, lw=1.6, alpha=0.9, zorder=3)
    steps = np.array([(px, py) for i, (px, py) in enumerate(zip(xs, ys))
                      for px, py in ([(px, ys[i - 1]), (px, py)] if i else [(px, py)])], dtype=float)
    front_search = front[~front["baseline"].astype(bool)]
    n_base_front = len(front) - len(front_search)
    ax.scatter(front_search[x], front_search["val_top1"], s=60, color=C_FRONT, edgecolor="black", lw=0.6,
               label=f"Pareto front ({len(front)}{f', {n_base_front} baseline' if n_base_front else ''})", zorder=4)
    if len(base):
        ax.scatter(base[x], base["val_top1"], s=80, marker="D", color=C_BASE, edgecolor="black", lw=0.7,
                   label=f"baselines ({len(base)})", zorder=5)
    hidden = int((~df["status"].isin(FINISHED)).sum())
    if hidden:
        ax.text(0.99, 0.01, f"{hidden} failed/rejected/running trial(s) not shown", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7.5, color="#555555")
    lo, hi = pts[x].min(), pts[x].max()
    ax.margins(y=0.12)
    if lo > 0 and hi / lo > 30:
        ax.set_xscale("log")
        ax.set_xlim(lo / (hi / lo) ** (0.1 if len(front) > 12 else 0.3), hi * (hi / lo) ** 0.08)
    else:
        span = (hi - lo) or max(abs(hi), 1.0)
        ax.set_xlim(lo - (0.1 if len(front) > 12 else 0.3) * span, hi + 0.12 * span)  # room for front labels
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(AXIS_LABELS["val_top1"])
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=8, loc="best", framealpha=0.9)

    # Labels: up-left of a front point first (no trial can lie there: it would dominate the
    # point). A crowded front gets trial numbers only; the report's table has the genomes.
    labels: list[tuple[float, float, str, dict, Sequence[str]]] = []
    front_style = dict(fontsize=7.5, color=C_FRONT)
    for _, r in front_search.iterrows():
        text = _trial_label(r) if len(front_search) > 12 else f"{_trial_label(r)} {short_genome(r['genome'], 24, 1)}"
        labels.append((r[x], r["val_top1"], text, front_style, ("UL", "U", "LL", "UR", "LR", "D")))
    base_style = dict(fontsize=7, color="#8a5a00",
                      bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=C_BASE, lw=0.5, alpha=0.9))
    for _, r in base.iterrows():
        name = r["label"] or presets.get(r["genome"], "baseline")
        labels.append((r[x], r["val_top1"], f"{name}\n{short_genome(r['genome'], 26, 2)}", base_style,
                       ("LR", "UR", "LL", "UL", "D", "U")))
    for _, r in pts[~pts["baseline"].astype(bool)].iterrows():
        if r["genome"] in presets:
            labels.append((r[x], r["val_top1"], presets[r["genome"]], dict(fontsize=7.5, fontweight="bold"),
                           ("LR", "UR", "LL", "UL", "D", "U")))
    _place_labels(ax, labels, pts[x].to_numpy(float), pts["val_top1"].to_numpy(float), line=steps, avoid=[legend])
    return _save(fig, path)


def plot_hypervolume(curve: pd.DataFrame, hv: dict[str, Any], path: Path, title: str) -> Path | None:
    if curve.empty or "reference_point" not in hv:
        return None
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    n, v = curve["number"].to_numpy(), curve["hypervolume"].to_numpy()
    ax.plot(n, v, drawstyle="steps-post", color=C_FRONT, lw=1.8)
    up = np.flatnonzero(np.diff(np.concatenate([[0.0], v])) > 0)
    ax.scatter(n[up], v[up], s=22, color=C_FRONT, zorder=3, label="trial that grew the front")
    objs = hv["objectives"]
    ref = ", ".join(f"{o}={r:.4g}" for o, r in zip(objs, hv["reference_point"]))
    ax.set_xlabel("trial number (search trials, in order)")
    ax.set_ylabel(f"hypervolume ({objs[0]} × {objs[1]})")
    ax.set_title(f"{title}\nfinal {hv.get('hypervolume', 0):.4g}, reference point {ref}", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_mix(df: pd.DataFrame, path: Path, title: str) -> Path | None:
    """'What the mix does': accuracy against the fraction of each block type that occurs, one
    small panel per type, front trials and baselines marked as in the trade-off plots."""
    done = df[df["status"].isin(FINISHED)].copy()
    done["val_top1"] = pd.to_numeric(done["val_top1"], errors="coerce")
    done = done[np.isfinite(done["val_top1"])]
    letters = [l for l in LETTERS if f"frac_{l}" in done and pd.to_numeric(done[f"frac_{l}"]).fillna(0).gt(0).any()]
    if done.empty or not letters:
        return None
    cols = min(3, len(letters))
    rows = math.ceil(len(letters) / cols)
    fig = _figure(3.4 * cols, 2.9 * rows + 0.5, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    on_front = done["on_front"].astype(bool)
    is_base = done["baseline"].astype(bool)
    for i, l in enumerate(letters):
        ax = axes[i // cols][i % cols]
        frac = pd.to_numeric(done[f"frac_{l}"]).fillna(0.0)
        groups = ((~on_front & ~is_base, C_TRIAL, "o", 22, "trials"), (on_front & ~is_base, C_FRONT, "o", 34, "front"),
                  (is_base, C_BASE, "D", 34, "baselines"))
        for mask, color, marker, size, label in groups:
            if mask.any():
                ax.scatter(frac[mask], done.loc[mask, "val_top1"], s=size, color=color, marker=marker,
                           edgecolor="black" if label != "trials" else "none", lw=0.5, label=label, zorder=3)
        desc = LETTERS[l].description.split(":")[0]
        ax.set_title(f"{l}  ({desc})", fontsize=9)
        ax.set_xlim(-0.05, 1.05)
        ax.set_xlabel(f"fraction of {l} blocks", fontsize=8)
        ax.tick_params(labelsize=7.5)
        ax.grid(alpha=0.3)
        if i % cols == 0:
            ax.set_ylabel("val top-1", fontsize=8)
    for j in range(len(letters), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat[1:len(letters)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.suptitle(title, fontsize=10.5)
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncol=len(labels))
    return _save(fig, path)


# ---- the document ------------------------------------------------------------------------

Block = tuple  # ("h1"|"h2"|"p", text) | ("table", header, rows) | ("img", file, alt) | ("list", items)


def _md(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out.append(f"# {b[1]}")
        elif kind == "h2":
            out.append(f"## {b[1]}")
        elif kind == "p":
            out.append(b[1])
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in b[1]))
        elif kind == "table":
            out.append("```text\n" + text_table(b[1], b[2], right=()) + "\n```")
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})")
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    """`code` spans of the markdown text -> <code>, everything escaped."""
    parts = text.split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def _html(blocks: list[Block], title: str) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            body.append(f'<p><img src="{html.escape(b[1])}" alt="{html.escape(b[2])}"></p>')
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 6px;"
             "text-align:left}td{font-family:monospace;white-space:pre}img{max-width:100%}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _trial_rows(df: pd.DataFrame) -> list[list[str]]:
    rows = []
    for _, r in df.iterrows():
        rows.append([_trial_label(r), _num(r["val_top1"], ".3f"), _num(r["val_top5"], ".3f"),
                     _num(r["latency_ms"], ".2f"), _num(r["gmacs"], ".4f"),
                     f"{int(r['params']):,}" if pd.notna(r["params"]) else "-", str(int(r["epochs"] or 0)),
                     r["status"], r["label"] or "", r["genome"]])
    return rows


TRIAL_HEADER = ["trial", "val_top1", "val_top5", "latency ms", "GMACs", "params", "epochs", "status", "label", "genome"]


def _describe(r: pd.Series, what: str) -> str:
    who = f"baseline {r['label']}" if r["baseline"] else f"trial #{int(r['number'])}"
    return f"{what} ({who}, `{r['genome']}`)"


def build_report(study_dir: str | Path, fmt: str = "md", echo: Callable[[str], None] | None = None) -> Path:
    """Write STUDY_DIR/report/ (plots + report.md or report.html); returns the document's path."""
    from .results import load_results

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use {' or '.join(FORMATS)}")
    df, info = load_results(study_dir)
    if df.empty:
        raise UserError(f"{info.dir}: the study has no trials yet (run `archlab search --name {info.name}` first)")
    objs, dirs = info.objectives, info.directions
    out = info.dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):  # plots that no longer apply (e.g. no finished trial) must not linger
        old.unlink()
    hv = study_hypervolume(df, info.settings, objs, dirs)
    presets = preset_names(list(df["genome"]))
    done = df[df["status"].isin(FINISHED)]
    search = df[~df["baseline"].astype(bool)]
    name = info.name

    images: list[tuple[Path | None, str]] = []
    for x, what in (("latency_ms", "latency"), ("gmacs", "GMACs")):
        images.append((plot_tradeoff(df, x, out / f"accuracy_vs_{what.lower()}.png",
                                     f"{name}: accuracy vs {what}", presets), f"accuracy vs {what}"))
    curve = hypervolume_curve(df, objs, dirs, hv["reference_point"]) if "reference_point" in hv else pd.DataFrame()
    images.append((plot_hypervolume(curve, hv, out / "hypervolume.png", f"{name}: hypervolume after each trial"),
                   "hypervolume vs trials"))
    images.append((plot_mix(df, out / "block_mix.png", f"{name}: what the mix does (accuracy vs fraction of each "
                                                        "block type)"), "accuracy vs block-type fractions"))

    st = search["status"]
    blocks: list[Block] = [("h1", f"Study {name}")]
    s = info.settings
    blocks.append(("p", f"space `{s.get('space', '?')}` · data `{s.get('data', '?')}` "
                        f"{s.get('frames', '?')}x{s.get('size', '?')}x{s.get('size', '?')} · "
                        f"{s.get('epochs', '?')} proxy epochs · sampler {s.get('sampler', '?')} · objectives "
                        + ", ".join(f"{o} ({d})" for o, d in zip(objs, dirs))))
    summary = [f"search trials: {len(search)} — finished {int(st.isin(FINISHED).sum())} "
               f"(ok {int((st == 'ok').sum())}, stopped early {int((st == 'stopped').sum())}), "
               f"failed {int((st == 'failed').sum())}, rejected {int((st == 'rejected').sum())}, "
               f"repeats not retrained {int((st == 'repeat').sum())}, "
               f"running {int((st == 'running').sum())}",
               f"baselines: {int(df['baseline'].astype(bool).sum())}"]
    if "hypervolume" in hv:
        ref = ", ".join(f"{o} = {r:.4g}" for o, r in zip(objs, hv["reference_point"]))
        summary.append(f"hypervolume {hv['hypervolume']:.4g} (reference point {ref}); "
                       f"{hv['front_size']} search trial(s) on the front")
    else:
        summary.append("hypervolume: - (no search trial finished)")
    acc = done[pd.to_numeric(done["val_top1"], errors="coerce").notna()]
    if len(acc):
        best = acc.loc[pd.to_numeric(acc["val_top1"]).idxmax()]
        summary.append(_describe(best, f"best accuracy: val_top1 {best['val_top1']:.3f}"))
    lat = done[pd.to_numeric(done["latency_ms"], errors="coerce").notna()]
    if len(lat):
        fast = lat.loc[pd.to_numeric(lat["latency_ms"]).idxmin()]
        summary.append(_describe(fast, f"fastest: {fast['latency_ms']:.2f} ms at val_top1 {fast['val_top1']:.3f}"))
    if done.empty:
        summary.append("no trial finished: there is no front to show yet")
    blocks += [("h2", "Summary"), ("list", summary)]

    front = df[df["on_front"].astype(bool)].sort_values(objs[1])
    blocks.append(("h2", f"Pareto front ({objs[0]} {dirs[0]}, {objs[1]} {dirs[1]})"))
    blocks.append(("table", TRIAL_HEADER, _trial_rows(front)) if len(front) else ("p", "(empty)"))
    base = df[df["baseline"].astype(bool)]
    if len(base):
        blocks += [("h2", "Baselines"), ("table", TRIAL_HEADER, _trial_rows(base))]
    failed = df[df["status"].isin(["failed", "rejected"])]
    blocks.append(("h2", f"Failures ({len(failed)})"))
    if len(failed):
        blocks.append(("table", ["trial", "status", "reason", "genome"],
                       [[_trial_label(r), r["status"], r["reason"] or "-", r["genome"] or "-"]
                        for _, r in failed.iterrows()]))
    else:
        blocks.append(("p", "none"))
    blocks.append(("h2", "Plots"))
    for path, alt in images:
        if path is not None:
            blocks.append(("img", path.name, alt))
    missing = [alt for path, alt in images if path is None]
    if missing:
        blocks.append(("p", f"not drawn (no finished trial with the values they need): {', '.join(missing)}"))

    doc = out / f"report.{fmt}"
    tmp = out / f".report.{fmt}.tmp"  # a reader never sees half a report
    tmp.write_text(_md(blocks) if fmt == "md" else _html(blocks, f"Study {name}"), encoding="utf-8")
    tmp.replace(doc)
    if echo is not None:
        echo(f"wrote {doc} and {sum(p is not None for p, _ in images)} plot(s) in {out}/")
    return doc


# ---- the dashboard ---------------------------------------------------------------------------

def serve_dashboard(study_dir: str | Path, host: str = "127.0.0.1", port: int = 8080,
                    echo: Callable[[str], None] = print) -> None:
    """Serve optuna-dashboard for the study's storage until Ctrl-C (KeyboardInterrupt reaches
    the caller). Port 0 picks a free port; the URL printed is the real one."""
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from .results import _quiet_optuna, load_study_info

    info = load_study_info(study_dir)
    if "://" not in (info.settings.get("storage") or "") and not (info.dir / (info.settings.get("storage")
                                                                            or "optuna.db")).exists():
        raise UserError(f"{info.dir}: no Optuna storage (optuna.db) yet: run `archlab search` first")
    _quiet_optuna()
    try:
        from optuna_dashboard import wsgi
    except ImportError as e:
        raise UserError(f"optuna-dashboard cannot be imported ({e}): pip install optuna-dashboard") from None

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    class Threaded(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    app = wsgi(info.storage_url)
    try:
        server = make_server(host, port, app, server_class=Threaded, handler_class=Quiet)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}): pass another --port") from None
    url = f"http://{host}:{server.server_port}/dashboard"
    echo(f"optuna-dashboard for study {info.name!r} ({info.storage_url}) at {url}  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        print("dashboard stopped", file=sys.stderr)
