"""Search vs the paper's hand-made block orders (issue 13 item 6): does a search's confirmed
front dominate the A->B->C cycle, pure A, B, C and 2D on the same skeletons at the same budget?

A ``cycle:`` section names one search of the experiment. After that search (and its confirm step)
each point of its front gives its skeleton (depths, widths, strides, stem, temporal pools and
its trailing 2D stages) to every variant, which replaces only the block letters; each variant
trains with the search's recipe over the same seeds as a confirmed point (the search's seed,
then one per own and confirm seed). All latencies, the front points' too, are measured again
here in one process, 5 shuffled passes one genome at a time, each the fastest pass
(``archlab.results.remeasure``, cached in ``cycle/latencies_remeasured.json``), so that no point gains
from a quieter moment. The answer:

* per front point and variant on its skeleton: Welch's 95% interval of front - variant on
  val top-1 and the verdict (above / below / not distinguishable);
* every point (front and variants) on the seeds' means: dominated by the front or not;
* hypervolume of the front, of each variant's points and of all variants together, from ONE
  reference point over every point.

The pure part (``compare``) takes plain rows, so its rules are tested without training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..model.genome import Genome, parse
from ..model.reduction import Reduction
from ..util.errors import UserError, shorten

#: variant label -> the letter cycle its 3D blocks follow (presets.p3d_letters)
VARIANTS: dict[str, str] = {"A->B->C": "ABC", "pure-A": "A", "pure-B": "B", "pure-C": "C", "2D": "2"}


@dataclass(frozen=True, kw_only=True)
class CycleSpec:
    """What a ``cycle:`` section asks: which search's front, which variants, how many runs at once."""

    search: str
    variants: tuple[str, ...] = tuple(VARIANTS)
    workers: int = 1

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise UserError(f"variants {shorten(list(self.variants))}: use some of {', '.join(VARIANTS)}")
        if self.workers < 1:
            raise UserError(f"workers must be at least 1 (got {self.workers})")


def variant(g: Genome, name: str) -> Genome:
    """``g``'s skeleton with the letters of variant ``name``: the same depths, widths, strides,
    stem and temporal pools; its trailing all-2D stages stay 2D (the searched skeleton has
    them, so the variant does too)."""
    from ..model.presets import p3d_letters

    depths = tuple(s.depth for s in g.stages)
    trailing = 0
    for s in reversed(g.stages):
        if set(s.letters) != {"2"}:
            break
        trailing += 1
    letters = p3d_letters(depths, cycle=VARIANTS[name], n_2d_stages=min(trailing, len(depths))).split("|")
    stages = tuple(
        s.__class__(letters=letters_of_stage, width=s.width, stride=s.stride, temporal=s.temporal)
        for s, letters_of_stage in zip(g.stages, letters)
    )
    return g.with_(stages=stages)


def compare(front: Sequence[dict[str, Any]], variants: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The answer from plain rows. A row: ``label``, ``seeds_top1`` (a list), ``latency_ms``;
    a variant row also ``variant`` and ``of`` (the front point's label whose skeleton it has).
    Returns the per-pair verdicts, which points the front dominates, and the hypervolumes."""
    import pandas as pd

    from ..results import pareto
    from ..results.stats import difference, interval
    from ..results.stats import verdict as stats_verdict

    objectives, directions = ["val_top1", "latency_ms"], ["max", "min"]

    def frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "label": [r["label"] for r in rows],
                "val_top1": [interval(r["seeds_top1"]).mean for r in rows],
                "latency_ms": [float(r["latency_ms"]) for r in rows],
            }
        )

    f, v = frame(front), frame(variants)
    ref = pareto.reference_point(pd.concat([f, v], ignore_index=True), objectives, directions)

    dominated = pareto.dominated_by(v, f, objectives, directions)
    by_label = {r["label"]: r for r in front}
    pairs = []
    for r, is_dominated in zip(variants, dominated):
        d = difference(by_label[r["of"]]["seeds_top1"], r["seeds_top1"])
        same = r.get("genome") is not None and r.get("genome") == by_label[r["of"]].get("genome")
        verdict = "the same genome" if same else stats_verdict(d)
        pairs.append(
            {
                "of": r["of"],
                "variant": r["variant"],
                "label": r["label"],
                "diff": d.mean,
                "diff_ci95": d.half,
                "verdict": verdict,
                "same": same,
                "dominated": not same and is_dominated,
            }
        )
    hv = {"front": pareto.hypervolume(f, objectives, directions, ref)}
    names = list(dict.fromkeys(r["variant"] for r in variants))
    for name in names:
        hv[name] = pareto.hypervolume(v[[r["variant"] == name for r in variants]], objectives, directions, ref)
    hv["all variants"] = pareto.hypervolume(v, objectives, directions, ref) if len(v) else 0.0
    hv["front + variants"] = pareto.hypervolume(pd.concat([f, v], ignore_index=True), objectives, directions, ref)
    return {
        "reference_point": ref,
        "pairs": pairs,
        "hypervolume": hv,
        "dominated": sum(p["dominated"] for p in pairs),
        "variants": sum(not p["same"] for p in pairs),
        "same": [f"{p['of']} is {p['variant']}" for p in pairs if p["same"]],
        "front_better": sum(p["verdict"] == "above" for p in pairs),
        "front_worse": sum(p["verdict"] == "below" for p in pairs),
    }


def answer(result: dict[str, Any]) -> str:
    """The one sentence the README asks for, from ``compare``'s result."""
    hv = result["hypervolume"]
    best = max((k for k in hv if k not in ("front", "all variants", "front + variants")), key=hv.get, default=None)
    if best is None:
        return "no variant trained."
    n, better, worse = result["variants"], result["front_better"], result["front_worse"]
    text = (
        f"{len(result['same'])} front point(s) are themselves a hand-made order ({', '.join(result['same'])}). "
        if result.get("same")
        else ""
    )
    text += (
        f"The confirmed front dominates {result['dominated']} of the other {n} hand-made points on the seeds' "
        f"means; on its own skeletons its accuracy is above the variant's at 95% in {better}, below in {worse} "
        f"and not distinguishable in the other {n - better - worse}; hypervolume {hv['front']:.4g} for the front "
        f"against {hv[best]:.4g} for the best variant ({best}) and {hv['all variants']:.4g} for all variants "
        "together"
    )
    if hv["front"] < hv["front + variants"] - 1e-12:
        text += f", and adding the variants to the front raises it to {hv['front + variants']:.4g}"
    return text + "."


def run_cycle(
    spec: CycleSpec,
    search_cfg: Any,
    out_dir: Path,
    echo: Callable[[str], None],
    *,
    train: Callable[..., tuple[list[dict], int, int]],
) -> dict[str, Any]:
    """Train the variants on the front's skeletons (reusing finished runs) with ``train`` (the
    experiment's own trainer of a train section, passed in by ``run``: data flows one way),
    re-measure every latency, and return the summary row (kind ``cycle``) with its markdown."""
    from ..measure.forms import FP32
    from ..results.reader import load_results
    from ..results.remeasure import CACHE_FILE, ROUNDS, key, measure
    from .spec import TrainSpec

    df, info = load_results(search_cfg.study_dir())
    front = df[df["on_front"] & ~df["baseline"].astype(bool)].sort_values("latency_ms")
    if front.empty:
        raise UserError(f"cycle: search {shorten(spec.search)} has no finished front point to take skeletons from")
    n_seeds = search_cfg.seeds + search_cfg.confirm_seeds
    seeds = list(range(search_cfg.recipe.seed, search_cfg.recipe.seed + n_seeds))
    reduction = Reduction(width=info.proxy_width)  # the search's: each variant trains as its proxy
    targets: dict[str, Genome] = {}  # variant run label -> the variant of the front point's target
    genomes: dict[str, Genome] = {}  # variant run label -> the proxy that trains
    of: dict[str, tuple[str, str]] = {}  # variant run label -> (front label, variant)
    front_rows = []
    for _, r in front.iterrows():
        point = f"t{int(r['number'])}"
        g = parse(str(r["genome"]))
        front_rows.append({"label": point, "genome": g, "row": r})
        for name in spec.variants:
            label = f"{point}-{name.replace('->', '').replace('pure-', '')}"
            targets[label] = variant(g, name)
            genomes[label] = reduction.proxy_of(targets[label])
            of[label] = (point, name)
    echo(
        f"[cycle] {len(front_rows)} front point(s) of search {spec.search} x {len(spec.variants)} variant(s) x "
        f"{len(seeds)} seed(s) = {len(genomes) * len(seeds)} runs"
    )
    tspec = TrainSpec(
        genomes=genomes,
        recipe=search_cfg.recipe,
        seeds=seeds,
        latency_runs=search_cfg.latency_runs,
        threads=1,
        workers=spec.workers,
    )
    rows, _, _ = train(tspec, out_dir / "cycle", lambda line: echo(f"[cycle] {line}"))

    # Every point's latency, the front's and the variants', measured again here in the same
    # minutes: shuffled passes, one genome at a time, the fastest pass (archlab.results.remeasure), at
    # the search's cost clip (its target's), fp32 on 1 thread as the variants trained.
    clip = info.cost_clip
    how = (FP32.with_threads(1), "torch", "cpu", int(search_cfg.latency_runs))
    every = [str(p["genome"]) for p in front_rows] + [str(targets[r["label"]]) for r in rows]
    lat = measure(
        {key(g, clip, how): (g, clip, how) for g in every},
        out_dir / "cycle" / CACHE_FILE,
        lambda line: echo(f"[cycle] {line}"),
        ROUNDS,
    )

    def ms(genome: Any) -> float:
        return float(lat[key(str(genome), clip, how)]["median_ms"])

    own = _front_seed_values(df, front, info)
    front_in = [
        {"label": p["label"], "seeds_top1": own[p["label"]], "latency_ms": ms(p["genome"]), "genome": str(p["genome"])}
        for p in front_rows
    ]
    variants_in = [
        {
            "label": r["label"],
            "seeds_top1": list(r["val_top1_values"]),
            "latency_ms": ms(targets[r["label"]]),
            "of": of[r["label"]][0],
            "variant": of[r["label"]][1],
            "genome": str(targets[r["label"]]),
        }
        for r in rows
        if r["val_top1_values"]
    ]
    result = compare(front_in, variants_in)
    return {
        "kind": "cycle",
        "label": "cycle",
        "search": spec.search,
        "front_points": len(front_in),
        "variants": result["variants"],
        "dominated": result["dominated"],
        "front_better": result["front_better"],
        "front_worse": result["front_worse"],
        "hv_front": result["hypervolume"]["front"],
        "hv_all_variants": result["hypervolume"]["all variants"],
        "answer": answer(result),
        "markdown": markdown(spec, front_in, variants_in, rows, result),
    }


def _front_seed_values(df: Any, front: Any, info: Any) -> dict[str, list[float]]:
    """Each front point's val top-1 per seed: its own seeds' and its confirm runs' (the values
    behind the confirmed mean)."""
    from ..results import confirmed
    from ..results.reader import load_confirm_rows

    extra = confirmed.confirm_values(load_confirm_rows(info.dir))
    return {
        f"t{int(r['number'])}": confirmed.own_values(r) + extra.get(int(r["number"]), []) for _, r in front.iterrows()
    }


def markdown(spec: CycleSpec, front: list[dict], variants: list[dict], rows: list[dict], result: dict) -> str:
    from ..results.stats import interval
    from ..util.tables import md_table

    def ci(values: list[float]) -> str:
        iv = interval(values)
        return f"{iv.mean:.3f}" + ("" if math.isnan(iv.half) else f" [{iv.low:.3f}, {iv.high:.3f}]")

    genome = {r["label"]: r["genome"] for r in rows}
    body = []
    for p in front:
        body.append([p["label"], "(front)", ci(p["seeds_top1"]), f"{p['latency_ms']:.2f}", "", ""])
        for v, pair in zip(variants, result["pairs"]):
            if v["of"] != p["label"]:
                continue
            half = "" if math.isnan(pair["diff_ci95"]) else f" ± {pair['diff_ci95']:.3f}"
            body.append(
                [
                    v["label"],
                    v["variant"],
                    ci(v["seeds_top1"]),
                    f"{v['latency_ms']:.2f}",
                    f"{pair['diff']:+.3f}{half}: {pair['verdict']}",
                    "yes" if pair["dominated"] else "no",
                ]
            )
    hv = result["hypervolume"]
    ref = result["reference_point"]
    return "\n".join(
        [
            f"## Search vs the hand-made block orders (search {spec.search})",
            "",
            "Every point: val top-1 mean [95% t-interval] over the same seeds; latency measured again here for all of them (fastest of 5 shuffled passes).",
            "",
            md_table(
                [
                    "point",
                    "variant",
                    "val top-1",
                    "latency ms",
                    "front - variant (Welch 95%)",
                    "dominated by the front",
                ],
                body,
            ),
            "",
            md_table(["points", "hypervolume"], [[k, f"{v:.4g}"] for k, v in hv.items()]),
            "",
            f"Reference point: val_top1={ref[0]:.6g}, latency_ms={ref[1]:.6g} (over every point above).",
            "",
            "Genomes: " + "; ".join(f"{k} `{v}`" for k, v in genome.items()),
            "",
            "**Answer:** " + answer(result),
            "",
        ]
    )
