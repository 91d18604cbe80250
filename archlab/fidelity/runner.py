"""``archlab fidelity``: is a proxy's accuracy evidence or luck? Measured, not assumed.

For a set of genomes (N sampled from a space, stratified by GMACs, plus fixed anchors on one
skeleton) it trains k seeds at the proxy budget and some seeds at a reference budget (several
times the epochs and clips), then reports how the proxy's numbers agree with themselves
(seed noise, seed-to-seed rank correlation, bimodal genomes) and with the reference
(rank correlation, top-quarter overlap), and how each cheaper score (val loss, the
training-speed score, synflow, params, MACs) ranks against the reference.

Layout of ``out``::

    fidelity.json                 the settings; a re-run with other settings is refused
    genomes.csv                   label, genome, params, GMACs, synflow (before any training)
    runs/<budget>/<genome id>/seed<k>/   one training run (checkpoint.pt while it runs,
                                         result.json once finished: reused by a re-run)
    runs.csv                      one row per finished run
    summary.json, summary.md      per-genome mean/std/95% CI and the statistics
    fidelity.png                  proxy mean +- CI against the reference

A run killed half-way resumes from its last epoch (train.py's checkpoint); a finished one is
never trained again. The recipe is a separate plain object (``Recipe``) so the lab's one
proxy recipe can replace it without touching the measurement.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import UserError
from ..genome import Genome, parse
from . import scores, stats

#: The anchors' shared skeleton: p3d_table1's (stem without pools, no temporal pools, width
#: 0.125, depths 1,1,3,1 with the last stage 2D), so every block letter sees all 8 frames.
SKELETON = "stem=2d/none sw=8 w=8,16,32,64 t=-,-,-,- drop=0.0"
ANCHORS: dict[str, str] = {
    "2D": "2|2|222|2",
    "P3D-A": "A|A|AAA|2",
    "P3D-B": "B|B|BBB|2",
    "P3D-C": "C|C|CCC|2",
    "A->B->C": "A|B|CAB|2",
    "3D": "3|3|333|2",
    "(2+1)D": "R|R|RRR|2",
}
#: Anchors that cannot see the order of frames (tests/test_temporal_sanity.py): they must
#: stay at chance; every other anchor should be well above it.
BLIND = ("2D",)


@dataclass(frozen=True)
class Recipe:
    """How one budget trains a proxy, in plain fields named as ``archlab.recipe.ProxyRecipe``'s
    (so the lab's recipe can stand in), plus two of the fidelity study's own: ``data_seed``
    (the synthetic set's seed) and ``fresh_clips``.

    ``fresh_clips``: render new training clips every epoch (the synthetic set's
    ``fresh_per_epoch`` option) instead of showing the same ``train_clips`` again."""

    epochs: int = 5
    train_clips: int = 1200
    val_clips: int = 300
    batch: int = 8
    optimizer: str = "adamw"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup: float = 1.0
    zero_init: bool = False
    frames: int = 8
    size: int = 32
    classes: int = 6
    data_seed: int = 0
    fresh_clips: bool = False

    def check(self, where: str) -> None:
        for name in ("epochs", "train_clips", "val_clips", "batch", "frames", "size"):
            if getattr(self, name) < 1:
                raise UserError(f"{where}: {name}={getattr(self, name)} must be positive")
        if not self.lr > 0:
            raise UserError(f"{where}: lr={self.lr} must be positive")
        if self.optimizer not in ("sgd", "adamw"):
            raise UserError(f"{where}: optimizer {self.optimizer!r} must be sgd or adamw")

    def train_config(self, seed: int) -> Any:
        from ..train import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch, optimizer=self.optimizer, lr=self.lr,
                           momentum=self.momentum, weight_decay=self.weight_decay, label_smoothing=self.label_smoothing,
                           warmup_epochs=self.warmup, zero_init_last_bn=self.zero_init,
                           seed=seed, device="cpu")

    def datasets(self) -> tuple[Any, Any]:
        from ..data.synthetic import SyntheticMotion

        opts = dict(frames=self.frames, size=self.size, num_classes=self.classes, seed=self.data_seed)
        extra = {"fresh_per_epoch": True} if self.fresh_clips else {}
        train = SyntheticMotion("train", n_clips=self.train_clips, **opts, **extra)
        val = SyntheticMotion("val", n_clips=self.val_clips, **opts)
        return train, val

    @property
    def chance(self) -> float:
        return 1.0 / self.classes


@dataclass(frozen=True)
class FidelityConfig:
    """What one fidelity measurement trains. Keyword-only, checked by ``check``."""

    out: str
    space: str = "interleave"
    genomes: int = 10  # sampled from the space (stratified by GMACs), besides the anchors
    anchors: tuple[str, ...] = tuple(ANCHORS)
    seeds: int = 3  # proxy seeds per genome
    ref_seeds: int = 1  # reference seeds per genome
    proxy: Recipe = field(default_factory=Recipe)
    reference: Recipe | None = None  # None: ``reference_of(proxy)``
    sample_seed: int = 0
    tse_epochs: int = 2  # the training-speed score sums this many last epochs
    max_gmacs: float | None = None  # overrides the space's
    threads: int = 1

    def ref(self) -> Recipe:
        return self.reference if self.reference is not None else reference_of(self.proxy)

    def check(self) -> None:
        if self.genomes < 0:
            raise UserError(f"--genomes {self.genomes}: give zero or more genomes to sample")
        if self.seeds < 2:
            raise UserError(f"--seeds {self.seeds}: seed noise needs at least 2 proxy seeds")
        if self.ref_seeds < 1:
            raise UserError(f"--ref-seeds {self.ref_seeds}: give at least 1 reference seed")
        if self.tse_epochs < 1:
            raise UserError(f"--tse-epochs {self.tse_epochs} must be at least 1")
        if self.threads < 1:
            raise UserError(f"--threads {self.threads} must be at least 1")
        unknown = [a for a in self.anchors if a not in ANCHORS]
        if unknown:
            raise UserError(f"anchor {unknown[0]!r} is not one of {', '.join(ANCHORS)}")
        if self.genomes + len(self.anchors) < 2:
            raise UserError("a ranking needs at least 2 genomes (sampled + anchors)")
        self.proxy.check("proxy recipe")
        self.ref().check("reference recipe")
        if self.ref().classes != self.proxy.classes:
            raise UserError("the proxy and reference recipes must have the same classes")


def reference_of(proxy: Recipe, epochs_x: int = 3, clips_x: int = 2) -> Recipe:
    """The default reference: ``epochs_x`` times the epochs on ``clips_x`` times the clips
    (and a val set twice as large: its binomial error would otherwise blur the reference)."""
    return replace(proxy, epochs=proxy.epochs * epochs_x, train_clips=proxy.train_clips * clips_x,
                   val_clips=proxy.val_clips * 2)


# ---- the genomes -------------------------------------------------------------------------

def sample_stratified(space_name: str, n: int, clip: tuple[int, int, int], seed: int,
                      max_gmacs: float | None = None, pool: int = 20) -> list[Genome]:
    """``n`` distinct genomes of the space, one from each of ``n`` equal-count GMAC strata of
    a pool of ``pool * n`` constrained random draws: the sample spans cheap to costly
    instead of clustering where the space is densest."""
    from ..profile import cost
    from ..spaces import load_space

    if n == 0:
        return []
    space = load_space(space_name, max_gmacs=max_gmacs, classes=None)
    rng = random.Random(seed)
    seen: dict[str, Genome] = {}
    for _ in range(pool * n):
        g = space.sample(rng)
        seen.setdefault(g.id, g)
    if len(seen) < n:
        raise UserError(f"space {space_name}: only {len(seen)} distinct genomes in {pool * n} draws, "
                        f"{n} asked for")
    ordered = sorted(seen.values(), key=lambda g: (cost(g, clip).macs, g.id))
    picks = []
    for k in range(n):
        lo, hi = len(ordered) * k // n, len(ordered) * (k + 1) // n
        picks.append(ordered[rng.randrange(lo, hi)])
    return picks


def anchor_genomes(names: Sequence[str]) -> list[tuple[str, Genome]]:
    return [(name, parse(f"{ANCHORS[name]} {SKELETON}")) for name in names]


# ---- one run -----------------------------------------------------------------------------

@dataclass
class Run:
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
    train_time_s: float


def _run_dir(out: Path, budget: str, genome: Genome, seed: int) -> Path:
    return out / "runs" / budget / genome.id / f"seed{seed}"


def train_one(out: Path, label: str, genome: Genome, budget: str, recipe: Recipe, seed: int,
              tse_epochs: int, data: Callable[[], tuple[Any, Any]]) -> tuple[Run, bool]:
    """Train (or reuse) one (genome, seed, budget) run; returns (run, reused)."""
    from ..train import train

    d = _run_dir(out, budget, genome, seed)
    done = d / "result.json"
    if done.exists():
        try:
            return Run(**json.loads(done.read_text())), True
        except (ValueError, TypeError) as e:
            raise UserError(f"{done} is corrupt ({e}): delete it to train that run again") from e
    train_set, val_set = data()
    g = genome.with_(classes=len(train_set.classes))
    result = train(g, train_set, val_set, recipe.train_config(seed), out_dir=d)
    h = result.history
    losses = [m.train_loss for m in h]
    run = Run(label=label, genome=str(genome), budget=budget, seed=seed, status=result.status,
              val_top1=h[-1].val_top1 if h else 0.0, val_loss=h[-1].val_loss if h else math.inf,
              training_speed=scores.training_speed(losses, tse_epochs) if losses else math.inf,
              train_losses=losses, val_top1s=[m.val_top1 for m in h], train_time_s=result.train_time_s)
    if result.status != "ok":
        # a failed run is a measurement too (it counts at its last accuracy), but say so
        print(f"  {label} {budget} seed {seed}: {result.status}: {result.reason}", file=sys.stderr, flush=True)
    _write_json(done, asdict(run))
    return run, False


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


# ---- the measurement ---------------------------------------------------------------------

def _manifest(cfg: FidelityConfig, genomes: list[tuple[str, Genome]]) -> dict[str, Any]:
    return {"space": cfg.space, "seeds": cfg.seeds, "ref_seeds": cfg.ref_seeds, "sample_seed": cfg.sample_seed,
            "tse_epochs": cfg.tse_epochs, "proxy": asdict(cfg.proxy), "reference": asdict(cfg.ref()),
            "genomes": [[label, str(g)] for label, g in genomes]}


def run_fidelity(cfg: FidelityConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train what ``cfg`` asks for (reusing finished runs) and write the summary files;
    returns the summary (what summary.json holds)."""
    import torch

    cfg.check()
    out = Path(cfg.out)
    clip = (cfg.proxy.frames, cfg.proxy.size, cfg.proxy.size)
    from ..profile import cost

    sampled = sample_stratified(cfg.space, cfg.genomes, clip, cfg.sample_seed, cfg.max_gmacs)
    genomes = anchor_genomes(cfg.anchors) + [(f"s{i + 1}", g) for i, g in enumerate(sampled)]
    manifest = _manifest(cfg, genomes)
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / "fidelity.json"
    if mpath.exists():
        try:
            old = json.loads(mpath.read_text())
        except ValueError as e:
            raise UserError(f"{mpath} is corrupt ({e}): use another --out") from e
        if old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise UserError(f"{out} holds a fidelity run with other settings ({', '.join(diff)}): "
                            "use another --out")
    else:
        _write_json(mpath, manifest)

    torch.set_num_threads(cfg.threads)
    rows = []
    for label, g in genomes:
        c = cost(g.with_(classes=cfg.proxy.classes), clip)
        rows.append({"label": label, "genome": str(g), "id": g.id, "params": c.params, "gmacs": c.gmacs,
                     "synflow": scores.synflow_of(g.with_(classes=cfg.proxy.classes), clip)})
    _write_csv(out / "genomes.csv", rows)

    datasets: dict[str, tuple[Any, Any]] = {}

    def data_of(budget: str, recipe: Recipe) -> Callable[[], tuple[Any, Any]]:
        def get() -> tuple[Any, Any]:
            if budget not in datasets:
                datasets.clear()  # one budget's clips in memory at a time
                datasets[budget] = recipe.datasets()
            return datasets[budget]
        return get

    plan = [(budget, recipe, seed) for budget, recipe, n in (("proxy", cfg.proxy, cfg.seeds),
                                                             ("reference", cfg.ref(), cfg.ref_seeds))
            for seed in range(n)]
    total = len(plan) * len(genomes)
    runs: list[Run] = []
    k = 0
    t_all = time.perf_counter()
    for budget, recipe, seed in plan:
        get = data_of(budget, recipe)
        for label, g in genomes:
            k += 1
            t0 = time.perf_counter()
            run, reused = train_one(out, label, g, budget, recipe, seed, cfg.tse_epochs, get)
            runs.append(run)
            how = "reused" if reused else f"{time.perf_counter() - t0:.0f} s"
            log(f"[{k}/{total}] {budget} {label} seed {seed}: top1 {run.val_top1:.3f} "
                f"loss {run.val_loss:.3f} ({how})")
    _write_csv(out / "runs.csv", [{k: v for k, v in asdict(r).items() if not isinstance(v, list)} for r in runs])
    summary = summarize(genomes, rows, runs, cfg)
    summary["wall_s"] = time.perf_counter() - t_all
    _write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(render_markdown(summary))
    plot(summary, out / "fidelity.png")
    return summary


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def summarize(genomes: list[tuple[str, Genome]], rows: list[dict[str, Any]], runs: list[Run],
              cfg: FidelityConfig) -> dict[str, Any]:
    """The statistics of the measurement (see the module docstring); plain JSON types."""
    chance = cfg.proxy.chance
    labels = [label for label, _ in genomes]
    by = {(r.label, r.budget, r.seed): r for r in runs}

    def series(budget: str, n: int, attr: str) -> list[list[float]]:  # [seed][genome]
        return [[getattr(by[(lab, budget, s)], attr) for lab in labels] for s in range(n)]

    proxy_acc = series("proxy", cfg.seeds, "val_top1")
    ref_acc = series("reference", cfg.ref_seeds, "val_top1")
    per_genome = []
    for gi, (label, g) in enumerate(genomes):
        accs = [proxy_acc[s][gi] for s in range(cfg.seeds)]
        iv = stats.interval(accs)
        refs = [ref_acc[s][gi] for s in range(cfg.ref_seeds)]
        per_genome.append({
            "label": label, "genome": str(g), "proxy": accs, "mean": iv.mean, "std": iv.std, "ci95": iv.half,
            "bimodal": stats.is_bimodal(accs, chance, cfg.proxy.val_clips),
            "reference": refs, "ref_mean": sum(refs) / len(refs),
            "params": rows[gi]["params"], "gmacs": rows[gi]["gmacs"], "synflow": rows[gi]["synflow"],
        })
    ref_mean = [p["ref_mean"] for p in per_genome]
    proxy_mean = [p["mean"] for p in per_genome]

    def mean_of(attr: str) -> list[float]:
        values = series("proxy", cfg.seeds, attr)
        return [sum(values[s][gi] for s in range(cfg.seeds)) / cfg.seeds for gi in range(len(labels))]

    candidates = {
        "val_top1": proxy_mean,
        "val_loss": mean_of("val_loss"),
        "training_speed": mean_of("training_speed"),
        "synflow": [p["synflow"] for p in per_genome],
        "params": [float(p["params"]) for p in per_genome],
        "gmacs": [p["gmacs"] for p in per_genome],
    }
    ranking = {}
    for name, values in candidates.items():
        v = [scores.rank_value(name, x) for x in values]
        ranking[name] = {"rho": stats.spearman_rho(v, ref_mean), "tau": stats.kendall_tau_b(v, ref_mean),
                         "top_quarter": stats.top_overlap(v, ref_mean)}
    stds = sorted(p["std"] for p in per_genome)
    median_std = stds[len(stds) // 2] if len(stds) % 2 else (stds[len(stds) // 2 - 1] + stds[len(stds) // 2]) / 2
    blind = [p["mean"] for p in per_genome if p["label"] in BLIND]
    seeing = [p["mean"] for p in per_genome if p["label"] in ANCHORS and p["label"] not in BLIND]
    summary = {
        "chance": chance, "n_genomes": len(labels), "seeds": cfg.seeds, "ref_seeds": cfg.ref_seeds,
        "proxy": asdict(cfg.proxy), "reference": asdict(cfg.ref()),
        "per_genome": per_genome,
        "median_seed_std": median_std,
        "bimodal": [p["label"] for p in per_genome if p["bimodal"]],
        "seed_tau": stats.mean_over_seed_pairs(proxy_acc, stats.kendall_tau_b),
        "seed_rho": stats.mean_over_seed_pairs(proxy_acc, stats.spearman_rho),
        "proxy_vs_ref_tau": ranking["val_top1"]["tau"], "proxy_vs_ref_rho": ranking["val_top1"]["rho"],
        "top_quarter_overlap": ranking["val_top1"]["top_quarter"],
        "scores": ranking,
        "blind_anchor_max_gap": max((abs(m - chance) for m in blind), default=math.nan),
        "seeing_anchor_min_gain": min((m - chance for m in seeing), default=math.nan),
        "proxy_train_s": sum(r.train_time_s for r in runs if r.budget == "proxy"),
        "reference_train_s": sum(r.train_time_s for r in runs if r.budget == "reference"),
    }
    summary["targets"] = {
        "median seed std <= 0.03": median_std <= 0.03,
        "no bimodal genome": not summary["bimodal"],
        "seed-to-seed tau >= 0.7": summary["seed_tau"] >= 0.7,
        "proxy-vs-reference rho >= 0.8": summary["proxy_vs_ref_rho"] >= 0.8,
        "2D anchors within 0.05 of chance": summary["blind_anchor_max_gap"] <= 0.05,
        "every P3D anchor >= chance + 0.3": summary["seeing_anchor_min_gain"] >= 0.3,
    }
    return summary


def _f(x: float, d: int = 3) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def render_markdown(s: dict[str, Any]) -> str:
    lines = [f"# Proxy fidelity ({s['n_genomes']} genomes, {s['seeds']} proxy seeds, "
             f"{s['ref_seeds']} reference seeds; chance {s['chance']:.3f})", "",
             "| genome | proxy per seed | mean | std | 95% CI | bimodal | reference |",
             "|---|---|---|---|---|---|---|"]
    for p in s["per_genome"]:
        lines.append(f"| {p['label']} `{p['genome'].split(' ')[0]}` | {' '.join(_f(a, 2) for a in p['proxy'])} | "
                     f"{_f(p['mean'])} | {_f(p['std'])} | ±{_f(p['ci95'])} | {'yes' if p['bimodal'] else ''} | "
                     f"{_f(p['ref_mean'])} |")
    lines += ["", f"- median per-genome seed std: {_f(s['median_seed_std'])}",
              f"- bimodal genomes: {', '.join(s['bimodal']) or 'none'}",
              f"- seed-to-seed Kendall tau {_f(s['seed_tau'])}, Spearman rho {_f(s['seed_rho'])} "
              "(mean over seed pairs)",
              f"- proxy vs reference: tau {_f(s['proxy_vs_ref_tau'])}, rho {_f(s['proxy_vs_ref_rho'])}, "
              f"top-quarter overlap {_f(s['top_quarter_overlap'], 2)}",
              f"- blind (2D) anchors: at most {_f(s['blind_anchor_max_gap'])} from chance; "
              f"the other anchors at least chance + {_f(s['seeing_anchor_min_gain'])}",
              f"- training time: proxy {s['proxy_train_s']:.0f} s, reference {s['reference_train_s']:.0f} s",
              "", "| score | rho vs reference | tau | top-quarter overlap |", "|---|---|---|---|"]
    for name, r in s["scores"].items():
        lines.append(f"| {name} | {_f(r['rho'])} | {_f(r['tau'])} | {_f(r['top_quarter'], 2)} |")
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else 'NO'} |" for k, v in s["targets"].items()]
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
        ax.errorbar(p["ref_mean"], p["mean"], yerr=ci, fmt="s" if anchor else "o", capsize=3,
                    color="tab:red" if anchor else "tab:blue", alpha=0.8)
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
