"""The statistics of a fidelity measurement and the files they go into (summary.json's dict,
summary.md, fidelity.png), computed from finished runs only: a re-run that trains nothing
writes the same numbers.

Per genome: mean, std and 95% CI over proxy seeds, "bimodal" (a seed at chance while another
is well above it). Over genomes: seed-to-seed Kendall tau / Spearman rho (mean over seed
pairs), proxy-vs-reference tau / rho and top-quarter overlap, the same for each cheaper score
(val loss, training-speed score, synflow, params, MACs), and the fidelity targets
(docs/guide/fidelity.md) met or not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..measure import scores
from ..model.genome import Genome
from ..results import stats, tail
from ..training.recipe import ProxyRecipe
from .anchors import ANCHORS, BLIND
from .defaults import TARGETS


@dataclass
class Run:
    """One finished (genome, budget, seed) run: what result.json holds and the summary reads."""

    label: str
    genome: str
    budget: str  # "proxy" | "reference"
    seed: int
    status: str
    val_top1: float
    val_loss: float
    training_speed: float
    train_losses: list[float]
    val_top1s: list[float]
    train_time_s: float  # the seeds the plateau rule set aside included
    # The seeds the plateau rule tried (archlab.training.plateau), the kept one last; empty in
    # a run from before the rule (one seed, the run's).
    seeds_tried: list[int] = field(default_factory=list)


def summarize(
    genomes: list[tuple[str, Genome]],
    rows: list[dict[str, Any]],
    runs: list[Run],
    *,
    seeds: int,
    ref_seeds: int,
    proxy: ProxyRecipe,
    reference: ProxyRecipe,
) -> dict[str, Any]:
    """The statistics of the measurement (see the module docstring) of ``seeds`` proxy and
    ``ref_seeds`` reference runs per genome; plain JSON types."""
    chance = 1.0 / proxy.classes
    labels = [label for label, _ in genomes]
    by = {(r.label, r.budget, r.seed): r for r in runs}

    def series(budget: str, n: int, attr: str) -> list[list[float]]:  # [seed][genome]
        return [[getattr(by[(lab, budget, s)], attr) for lab in labels] for s in range(n)]

    proxy_acc = series("proxy", seeds, "val_top1")
    ref_acc = series("reference", ref_seeds, "val_top1")
    ref_loss = series("reference", ref_seeds, "val_loss")
    per_genome = []
    for gi, (label, g) in enumerate(genomes):
        accs = [proxy_acc[s][gi] for s in range(seeds)]
        iv = stats.interval(accs)
        refs = [ref_acc[s][gi] for s in range(ref_seeds)]
        per_genome.append(
            {
                "label": label,
                "genome": str(g),
                "proxy": accs,
                "mean": iv.mean,
                "std": iv.std,
                "ci95": iv.half,
                "bimodal": stats.is_bimodal(accs, chance, proxy.val_clips),
                "below_median": max(tail.below_median(accs)),
                "reference": refs,
                "ref_mean": sum(refs) / len(refs),
                "ref_loss": sum(ref_loss[s][gi] for s in range(ref_seeds)) / ref_seeds,
                "params": rows[gi]["params"],
                "gmacs": rows[gi]["gmacs"],
                "synflow": rows[gi]["synflow"],
            }
        )
    ref_mean = [p["ref_mean"] for p in per_genome]
    proxy_mean = [p["mean"] for p in per_genome]

    def mean_of(attr: str) -> list[float]:
        values = series("proxy", seeds, attr)
        return [sum(values[s][gi] for s in range(seeds)) / seeds for gi in range(len(labels))]

    candidates = {
        "val_top1": proxy_mean,
        "val_loss": mean_of("val_loss"),
        "training_speed": mean_of("training_speed"),
        "synflow": [p["synflow"] for p in per_genome],
        "params": [float(p["params"]) for p in per_genome],
        "gmacs": [p["gmacs"] for p in per_genome],
    }
    # Against the reference's val loss too: where the reference's accuracy saturates (many
    # genomes at 0.99+), its ranking is a few clips' luck, and its loss still orders them.
    ref_by_loss = [-p["ref_loss"] for p in per_genome]
    ranking = {}
    for name, values in candidates.items():
        v = [scores.rank_value(name, x) for x in values]
        ranking[name] = {
            "rho": stats.spearman_rho(v, ref_mean),
            "tau": stats.kendall_tau_b(v, ref_mean),
            "top_quarter": stats.top_overlap(v, ref_mean),
            "rho_vs_ref_loss": stats.spearman_rho(v, ref_by_loss),
        }
    stds = sorted(p["std"] for p in per_genome)
    median_std = stds[len(stds) // 2] if len(stds) % 2 else (stds[len(stds) // 2 - 1] + stds[len(stds) // 2]) / 2
    blind = [p["mean"] for p in per_genome if p["label"] in BLIND]
    seeing = [p["mean"] for p in per_genome if p["label"] in ANCHORS and p["label"] not in BLIND]
    summary = {
        "chance": chance,
        "n_genomes": len(labels),
        "seeds": seeds,
        "ref_seeds": ref_seeds,
        "proxy": proxy.as_dict(),
        "reference": reference.as_dict(),
        "per_genome": per_genome,
        "median_seed_std": median_std,
        "bimodal": [p["label"] for p in per_genome if p["bimodal"]],
        "seed_tau": stats.mean_over_seed_pairs(proxy_acc, stats.kendall_tau_b),
        "seed_rho": stats.mean_over_seed_pairs(proxy_acc, stats.spearman_rho),
        "proxy_vs_ref_tau": ranking["val_top1"]["tau"],
        "proxy_vs_ref_rho": ranking["val_top1"]["rho"],
        "top_quarter_overlap": ranking["val_top1"]["top_quarter"],
        "scores": ranking,
        "blind_anchor_max_gap": max((abs(m - chance) for m in blind), default=math.nan),
        "seeing_anchor_min_gain": min((m - chance for m in seeing), default=math.nan),
        # How far the reference itself can be trusted to rank: its seeds against each other
        # (nan with one reference seed) and the ceiling its val set's binomial noise puts on
        # any proxy-vs-reference rho (stats.rho_ceiling). Every seed is scored on the same
        # val clips (one data seed), so more seeds do not shrink that set's sampling noise.
        "ref_seed_tau": stats.mean_over_seed_pairs(ref_acc, stats.kendall_tau_b),
        "ref_seed_rho": stats.mean_over_seed_pairs(ref_acc, stats.spearman_rho),
        "ref_rho_ceiling": stats.rho_ceiling(ref_mean, reference.val_clips),
        # The proxy's agreement on the pairs the reference separates beyond its own noise
        # (stats.separated_pairs): the part of the ranking a reference can vouch for.
        "separated_pairs": _separated(
            stats.separated_pairs(proxy_mean, [p["reference"] for p in per_genome], reference.val_clips)
        ),
        "reference_top1_range": [min(ref_mean), max(ref_mean)],
        "reference_top1_saturated": sum(m >= 0.98 for m in ref_mean),
        "proxy_train_s": sum(r.train_time_s for r in runs if r.budget == "proxy"),
        "reference_train_s": sum(r.train_time_s for r in runs if r.budget == "reference"),
    }
    proxy_runs = [r for r in runs if r.budget == "proxy"]
    summary["tail"] = tail.seed_tail(
        {p["label"]: p["proxy"] for p in per_genome},
        [tail.takeoff_epoch(r.train_losses, proxy.classes) for r in proxy_runs],
    )
    summary["tail"]["restarted_plateau"] = sum(len(r.seeds_tried) > 1 for r in proxy_runs)
    summary["targets"] = targets_met(summary)
    return summary


def targets_met(s: dict[str, Any]) -> dict[str, bool | None]:
    """Each target of ``defaults.TARGETS`` (a line of docs/guide/fidelity.md), met or not;
    None where the measurement has no figure for it (no anchors, a single genome pair)."""
    t = TARGETS
    share = s["tail"]["tail_share"]
    figures = {
        "2D anchors": s["blind_anchor_max_gap"],
        "every P3D anchor": s["seeing_anchor_min_gain"],
        "seed-to-seed tau": s["seed_tau"],
        "proxy-vs-reference rho": s["proxy_vs_ref_rho"],
    }
    met = {
        f"median seed std <= {t['median_seed_std']:g}": s["median_seed_std"] <= t["median_seed_std"],
        "no bimodal genome": not s["bimodal"],
        f"seed-to-seed tau >= {t['seed_tau']:g}": s["seed_tau"] >= t["seed_tau"],
        f"proxy-vs-reference rho >= {t['proxy_vs_ref_rho']:g}": s["proxy_vs_ref_rho"] >= t["proxy_vs_ref_rho"],
        f"2D anchors within {t['blind_anchor_max_gap']:g} of chance": s["blind_anchor_max_gap"]
        <= t["blind_anchor_max_gap"],
        f"every P3D anchor >= chance + {t['seeing_anchor_min_gain']:g}": s["seeing_anchor_min_gain"]
        >= t["seeing_anchor_min_gain"],
        f"at most {t['tail_share']:.0%} of runs > {tail.TAIL_GAP:g} below their genome's median": share is not None
        and share <= t["tail_share"],
    }
    unmeasured = [k for k, v in figures.items() if v is None or (isinstance(v, float) and math.isnan(v))]
    return {k: None if any(k.startswith(u) for u in unmeasured) else v for k, v in met.items()}


def tail_line(t: dict[str, Any]) -> str:
    """The summary's line on the tail of the seed distribution (``results.tail.seed_tail``)."""
    takeoff = ", ".join(f"{e}: {n}" for e, n in t["takeoff"].items()) or "none"
    restarted = t.get("restarted_plateau")
    return (
        f"- tail: {t['tail_runs']} of {t['runs']} proxy runs ({_f(t['tail_share'], 3)}) more than "
        f"{tail.TAIL_GAP:g} below their genome's median; take-off epoch (training loss < "
        f"{tail.TAKEOFF:g} x ln(classes)) {takeoff}"
        + (f"; {restarted} run(s) restarted by the plateau rule" if restarted is not None else "")
    )


def _separated(sp: stats.SeparatedPairs) -> dict[str, Any]:
    return {
        "pairs": sp.pairs,
        "of": sp.of,
        "agree": sp.agree,
        "concordance": sp.concordance,
        "seed_noise": sp.seed_noise,
    }


def _f(x: float, d: int = 3) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def _separated_line(sp: dict[str, Any]) -> str:
    noise = (
        "its val set's binomial noise and its seeds' spread"
        if sp["seed_noise"]
        else "its val set's binomial noise alone (a lower bound: --ref-seeds 2 or more adds its seeds' spread)"
    )
    return (
        f"- on the {sp['pairs']} of {sp['of']} genome pairs the reference separates (a difference over 2 "
        f"standard errors of {noise}) the proxy agrees on {sp['agree']:g}: concordance {_f(sp['concordance'])}"
    )


def render_markdown(s: dict[str, Any]) -> str:
    lines = [
        f"# Proxy fidelity ({s['n_genomes']} genomes, {s['seeds']} proxy seeds, "
        f"{s['ref_seeds']} reference seeds; chance {s['chance']:.3f})",
        "",
        *([f"Reference: {s['reference_network']}", ""] if s.get("reference_network") else []),
        "| genome | proxy per seed | mean | std | 95% CI | worst below median | bimodal | reference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in s["per_genome"]:
        lines.append(
            f"| {p['label']} `{p['genome'].split(' ')[0]}` | {' '.join(_f(a, 2) for a in p['proxy'])} | "
            f"{_f(p['mean'])} | {_f(p['std'])} | ±{_f(p['ci95'])} | {_f(p.get('below_median'))} | "
            f"{'yes' if p['bimodal'] else ''} | {_f(p['ref_mean'])} |"
        )
    lines += [
        "",
        f"- median per-genome seed std: {_f(s['median_seed_std'])}",
        *([tail_line(s["tail"])] if "tail" in s else []),
        f"- bimodal genomes: {', '.join(s['bimodal']) or 'none'}",
        f"- seed-to-seed Kendall tau {_f(s['seed_tau'])}, Spearman rho {_f(s['seed_rho'])} (mean over seed pairs)",
        f"- proxy vs reference: tau {_f(s['proxy_vs_ref_tau'])}, rho {_f(s['proxy_vs_ref_rho'])}, "
        f"top-quarter overlap {_f(s['top_quarter_overlap'], 2)}",
        f"- blind (2D) anchors: at most {_f(s['blind_anchor_max_gap'])} from chance; "
        f"the other anchors at least chance + {_f(s['seeing_anchor_min_gain'])}",
        f"- the reference's own noise: its seeds agree at Spearman rho {_f(s['ref_seed_rho'])} "
        f"(needs --ref-seeds 2 or more); its val set's binomial noise alone caps any proxy-vs-reference "
        f"rho at about {_f(s['ref_rho_ceiling'])}",
        _separated_line(s["separated_pairs"]),
        f"- reference val top-1 from {_f(s['reference_top1_range'][0])} to {_f(s['reference_top1_range'][1])}; "
        f"{s['reference_top1_saturated']} of {s['n_genomes']} genomes at 0.98 or more (saturated: their order "
        "is a few val clips)",
        f"- training time: proxy {s['proxy_train_s']:.0f} s, reference {s['reference_train_s']:.0f} s"
        + (
            f"; wall time {s['wall_s_all_calls']:.0f} s over every call (this one {s['wall_s']:.0f} s)"
            if "wall_s_all_calls" in s
            else ""
        ),
        "",
        "| score | rho vs reference top-1 | tau | top-quarter overlap | rho vs reference val loss |",
        "|---|---|---|---|---|",
    ]
    for name, r in s["scores"].items():
        lines.append(
            f"| {name} | {_f(r['rho'])} | {_f(r['tau'])} | {_f(r['top_quarter'], 2)} | {_f(r['rho_vs_ref_loss'])} |"
        )
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {k} | {'n/a' if v is None else 'yes' if v else 'NO'} |" for k, v in s["targets"].items()]
    return "\n".join(lines) + "\n"


def plot(s: dict[str, Any], path: Path) -> None:
    """Proxy mean +- 95% CI (y) against the reference mean (x), anchors labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for p in s["per_genome"]:
        anchor = p["label"] in ANCHORS
        ci = 0.0 if math.isnan(p["ci95"]) else p["ci95"]
        ax.errorbar(
            p["ref_mean"],
            p["mean"],
            yerr=ci,
            fmt="s" if anchor else "o",
            capsize=3,
            color="tab:red" if anchor else "tab:blue",
            alpha=0.8,
        )
        if anchor:
            ax.annotate(p["label"], (p["ref_mean"], p["mean"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.axhline(s["chance"], color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"reference val top-1 ({s['reference']['epochs']} epochs, {s['reference']['train_clips']} clips)")
    ax.set_ylabel(f"proxy val top-1, mean ± 95% CI ({s['seeds']} seeds)")
    ax.set_title(f"proxy vs reference: rho {_f(s['proxy_vs_ref_rho'], 2)}, seed tau {_f(s['seed_tau'], 2)}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def against(mine: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """How one measurement's proxy ranking agrees with another's (e.g. bf16 against fp32):
    Kendall tau-b and Spearman rho between the per-genome proxy means over the genomes
    both measured (matched by genome string), and each one's median seed std. The two
    references are ranked against each other too (``ref_tau``, ``ref_rho``): a reference that
    does not agree with itself in another form or seed cannot be the truth a proxy is held to."""
    theirs = {p["genome"]: p for p in other["per_genome"]}
    common = [p for p in mine["per_genome"] if p["genome"] in theirs]
    if len(common) < 2:
        raise ValueError(f"only {len(common)} genome(s) in common: a ranking needs 2")
    a = [p["mean"] for p in common]
    b = [theirs[p["genome"]]["mean"] for p in common]
    out = {
        "genomes": len(common),
        "tau": stats.kendall_tau_b(a, b),
        "rho": stats.spearman_rho(a, b),
        "median_seed_std": mine["median_seed_std"],
        "other_median_seed_std": other["median_seed_std"],
        "mean_abs_diff": sum(abs(x - y) for x, y in zip(a, b)) / len(a),
        "per_genome": [{"label": p["label"], "mean": x, "other_mean": y} for p, x, y in zip(common, a, b)],
    }
    if all("ref_mean" in p and "ref_mean" in theirs[p["genome"]] for p in common):
        ra = [p["ref_mean"] for p in common]
        rb = [theirs[p["genome"]]["ref_mean"] for p in common]
        out.update(ref_tau=stats.kendall_tau_b(ra, rb), ref_rho=stats.spearman_rho(ra, rb))
        for row, x, y in zip(out["per_genome"], ra, rb):
            row.update(ref_mean=x, other_ref_mean=y)
    return out
