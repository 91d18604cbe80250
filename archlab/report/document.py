"""``archlab report``: what a study found, as a document with plots.

Reads the study the way every other command does (``results.load_results``: Optuna storage
-> one table) and writes ``STUDY_DIR/report/``: PNG plots (``figures``) and ``report.md`` or
``report.html`` (summary, front table, baselines, failures, the images). Trials are named by
the id users type everywhere (``trial`` column: 7, or b0 for a baseline).

Markdown tables are fixed-width text in code blocks, not pipe tables: genome strings contain
``|``, and a reader copies them from the report into ``archlab export --genome`` exactly.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Callable

import pandas as pd

from ..results.numbers import hypervolume_curve, hypervolume_time_curve, num, preset_names, study_hypervolume
from ..results.reader import load_results
from ..results.record import FINISHED
from ..results.tail import plateau_line
from ..util.errors import UserError, shorten
from ..util.files import atomic_write
from ..util.tables import text_table
from .figures import plot_tradeoff
from .hypervolume_plot import plot_hypervolume
from .mix_plot import plot_mix

FORMATS = ("md", "html")


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
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 6px;"
        "text-align:left}td{font-family:monospace;white-space:pre}img{max-width:100%}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _trial_rows(df: pd.DataFrame) -> list[list[str]]:
    rows = []
    for _, r in df.iterrows():
        rows.append(
            [
                r["trial"],
                num(r["val_top1"], ".3f"),
                num(r["val_top5"], ".3f"),
                num(r["latency_ms"], ".2f"),
                num(r["gmacs"], ".4f"),
                f"{int(r['params']):,}" if pd.notna(r["params"]) else "-",
                str(int(r["epochs"] or 0)),
                r["status"],
                r["label"] or "",
                r["genome"],
            ]
        )
    return rows


TRIAL_HEADER = ["trial", "val_top1", "val_top5", "latency ms", "GMACs", "params", "epochs", "status", "label", "genome"]
CI_HEADER = ["trial", "seeds", "top-1 mean", "std", "95% CI", "distinguishable", "genome"]
FRONT_KIND = {
    "confirmed": "Confirmed front: every point was retrained with {n} more seed(s) after the budget "
    "(--confirm-seeds) and the front is computed on the means over all its seeds.",
    "provisional": "Provisional front: computed on each trial's own seeds (--seeds); the confirm step is off "
    "(--confirm-seeds 0), has not run or was interrupted, so a lucky seed can be on it.",
}


def _ci_rows(front: pd.DataFrame) -> list[list[str]]:
    rows = []
    for _, r in front.iterrows():
        n = int(r["n_seeds"]) if pd.notna(r.get("n_seeds")) else 0
        ci = (
            f"[{r['top1_ci95_low']:.3f}, {r['top1_ci95_high']:.3f}]"
            if pd.notna(r.get("top1_ci95_low"))
            else "- (one seed)"
        )
        near = r.get("indistinct_from")
        dist = (
            "-"
            if near is None or (isinstance(near, float) and pd.isna(near))
            else ("yes" if near == "" else "no: overlaps " + ", ".join(near.split()))
        )
        rows.append(
            [r["trial"], str(n), num(r.get("top1_mean"), ".3f"), num(r.get("top1_std"), ".3f"), ci, dist, r["genome"]]
        )
    return rows


def _describe(r: pd.Series, what: str) -> str:
    who = f"baseline {r['label']} ({r['trial']})" if r["baseline"] else f"trial {r['trial']}"
    return f"{what} ({who}, `{r['genome']}`)"


def _duration(seconds: float) -> str:
    s = int(round(float(seconds)))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def build_report(study_dir: str | Path, fmt: str = "md", echo: Callable[[str], None] | None = None) -> Path:
    """Write STUDY_DIR/report/ (plots + report.md or report.html); returns the document's path."""
    if fmt not in FORMATS:
        raise UserError(f"--format {shorten(fmt)}: use {' or '.join(FORMATS)}")
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
        images.append(
            (
                plot_tradeoff(
                    df,
                    x,
                    out / f"accuracy_vs_{what.lower()}.png",
                    f"{name}: accuracy vs {what}"
                    + (
                        f" of the target at {'x'.join(map(str, info.target_clip))}"
                        if info.target_clip
                        else " (proxies)"
                    ),
                    presets,
                    objectives=objs,
                    directions=dirs,
                ),
                f"accuracy vs {what}",
            )
        )
    curves: dict[str, pd.DataFrame] = {}
    curve = pd.DataFrame()
    if "reference_point" in hv:  # every curve from front.yaml's one reference point
        ref = hv["reference_point"]
        curve = hypervolume_curve(df, objs, dirs, ref)
        curves["time_curve"] = hypervolume_time_curve(df, objs, dirs, ref)
        if df["baseline"].astype(bool).any():
            curves["baselines"] = hypervolume_curve(df, objs, dirs, ref, baseline=True)
            curves["baselines_time"] = hypervolume_time_curve(df, objs, dirs, ref, baseline=True)
    images.append(
        (
            plot_hypervolume(
                curve, hv, out / "hypervolume.png", f"{name}: hypervolume after each trial and over wall time", **curves
            ),
            "hypervolume vs trials and wall time",
        )
    )
    images.append(
        (
            plot_mix(
                df,
                out / "block_mix.png",
                f"{name}: what the mix does (accuracy vs fraction of each block type)",
                objectives=objs,
                directions=dirs,
            ),
            "accuracy vs block-type fractions",
        )
    )

    st = search["status"]
    blocks: list[Block] = [("h1", f"Study {name}")]
    s = info.settings
    recipe = s["recipe"] if isinstance(s.get("recipe"), dict) else s
    clip = "x".join(map(str, info.clip)) if info.clip else "?"
    blocks.append(
        (
            "p",
            f"space `{s.get('space', '?')}` · data `{s.get('data', '?')}` {clip} · "
            f"{recipe.get('epochs', '?')} proxy epochs · sampler {s.get('sampler', '?')} · objectives "
            + ", ".join(f"{o} ({d})" for o, d in zip(objs, dirs)),
        )
    )
    blocks.append(("p", info.units()))
    summary = [
        f"search trials: {len(search)} — finished {int(st.isin(FINISHED).sum())} "
        f"(ok {int((st == 'ok').sum())}, stopped early {int((st == 'stopped').sum())}), "
        f"failed {int((st == 'failed').sum())}, rejected {int((st == 'rejected').sum())}, "
        f"repeats not retrained {int((st == 'repeat').sum())}, "
        f"running {int((st == 'running').sum())}",
        f"baselines: {int(df['baseline'].astype(bool).sum())}",
    ]
    summary.append(plateau_line(search))
    if "drafts" in search.columns and search["drafts"].notna().any():
        drafts = search["drafts"].dropna()
        summary.append(
            f"proposals redrawn until they met the limits known before training: {int((drafts > 1).sum())} of "
            f"{len(drafts)}, {int((drafts - 1).sum())} over-limit drafts discarded (never trials)"
        )
    if "hypervolume" in hv:
        ref = ", ".join(f"{o} = {r:.4g}" for o, r in zip(objs, hv["reference_point"]))
        summary.append(
            f"hypervolume {hv['hypervolume']:.4g} (reference point {ref}); "
            f"{hv['front_size']} search trial(s) on the front"
        )
        timed = curves.get("time_curve", pd.DataFrame())
        if len(timed):
            summary.append(
                f"search wall time {_duration(timed['elapsed_s'].max())} from the first trial's start to "
                "the last trial's end"
            )
        if "baselines_hypervolume" in hv:
            bt = curves.get("baselines_time", pd.DataFrame())
            took = f", in {_duration(bt['elapsed_s'].max())}" if len(bt) else ""
            summary.append(
                f"baselines' own hypervolume {hv['baselines_hypervolume']:.4g} from the same reference "
                f"point ({int(df['baseline'].astype(bool).sum())} baseline(s){took})"
            )
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
    kind = str(df["front"].iloc[0]) if "front" in df.columns else "provisional"
    blocks.append(("h2", f"Pareto front, {kind} ({objs[0]} {dirs[0]}, {objs[1]} {dirs[1]})"))
    blocks.append(("p", FRONT_KIND[kind].format(n=int(s.get("confirm_seeds") or 0))))
    blocks.append(("table", TRIAL_HEADER, _trial_rows(front)) if len(front) else ("p", "(empty)"))
    if len(front):
        blocks.append(
            (
                "p",
                "Each front point's accuracy over all its seeds (its own and its confirm runs'), with "
                "the 95% t-interval of the mean; points whose intervals overlap are not "
                "distinguishable on accuracy by these seeds.",
            )
        )
        blocks.append(("table", CI_HEADER, _ci_rows(front)))
    base = df[df["baseline"].astype(bool)]
    if len(base):
        blocks += [("h2", "Baselines"), ("table", TRIAL_HEADER, _trial_rows(base))]
    failed = df[df["status"].isin(["failed", "rejected"])]
    blocks.append(("h2", f"Failures ({len(failed)})"))
    if len(failed):
        blocks.append(
            (
                "table",
                ["trial", "status", "reason", "genome"],
                [[r["trial"], r["status"], r["reason"] or "-", r["genome"] or "-"] for _, r in failed.iterrows()],
            )
        )
    else:
        blocks.append(("p", "none"))
    blocks.append(("h2", "Plots"))
    for path, alt in images:
        if path is not None:
            blocks.append(("img", path.name, alt))
    missing = [alt for path, alt in images if path is None]
    if missing:
        blocks.append(("p", f"not drawn (no finished trial with the values they need): {', '.join(missing)}"))

    doc = atomic_write(out / f"report.{fmt}", _md(blocks) if fmt == "md" else _html(blocks, f"Study {name}"))
    if echo is not None:
        echo(f"wrote {doc} and {sum(p is not None for p, _ in images)} plot(s) in {out}/")
    return doc
