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

A run killed half-way resumes from its last epoch (the trainer's checkpoint); a finished one is
never trained again. Both budgets are the lab's one ``ProxyRecipe`` (``archlab.training.recipe``; the
reference is ``proxy.with_(epochs=..., train_clips=...)``), so what is measured is exactly what
the search, ``archlab train`` and experiments train. Two settings are the measurement's own, not
the recipe's: ``data_seed`` (which synthetic clips) and ``fresh_clips`` (new training clips
every epoch, a lever measured here that no other command uses yet). The statistics and the
files they go into are ``archlab.fidelity.summary``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..measure import scores
from ..model.genome import Genome
from ..training.recipe import ProxyRecipe
from ..util.errors import UserError, shorten
from ..util.files import atomic_write
from ..util.processes import run_jobs
from .anchors import ANCHORS, anchor_genomes, anchor_names
from .defaults import DEFAULTS
from .summary import Run, plot, render_markdown, summarize


@dataclass(frozen=True, kw_only=True)
class FidelityConfig:
    """What one fidelity measurement trains. Keyword-only, validated when built (a bad value
    is one line before anything is written). The recipes validated themselves."""

    out: str
    space: str = DEFAULTS["space"]
    genomes: int = DEFAULTS["genomes"]
    anchors: tuple[str, ...] = anchor_names(DEFAULTS["anchors"])
    seeds: int = DEFAULTS["seeds"]  # run k trains proxy.with_(seed=k)
    ref_seeds: int = DEFAULTS["ref_seeds"]
    proxy: ProxyRecipe = field(default_factory=ProxyRecipe)
    reference: ProxyRecipe | None = None  # None: ``reference_of(proxy)``
    # The measurement's own data settings (both budgets): the synthetic set's seed, and new
    # training clips every epoch (SyntheticMotion(fresh_per_epoch=True)).
    data_seed: int = DEFAULTS["data_seed"]
    fresh_clips: bool = DEFAULTS["fresh_clips"]
    sample_seed: int = DEFAULTS["sample_seed"]
    tse_epochs: int = DEFAULTS["tse_epochs"]
    max_gmacs: float | None = DEFAULTS["max_gmacs"]
    threads: int = DEFAULTS["threads"]
    # Runs trained at once, each in its own process with ``threads`` torch threads: the runs
    # are independent, and one process per core is ~2x one process on 2 cores (a 1-thread
    # proxy keeps a core busy; threads within one small proxy scale far worse).
    workers: int = 1
    # The numeric form both budgets train in (archlab.measure.forms name, e.g. "bf16-autocast/cl3d");
    # None = the trainer's CPU default (fp32). The question it answers: do bf16 proxies rank
    # like fp32 ones?
    form: str | None = None
    # A less-reduced reference (EcoNAS's question: does the reduction keep the ranking?): the
    # reference trains each genome's target at ``reference_width`` times its widths (None: the
    # proxy's own width) on ``reference_input`` clips ("FxHxW", None: the proxy's clip).
    reference_width: float | None = None
    reference_input: str | None = None

    def __post_init__(self) -> None:
        for name in ("proxy",) + (("reference",) if self.reference is not None else ()):
            if not isinstance(getattr(self, name), ProxyRecipe):
                raise TypeError(f"FidelityConfig.{name} must be a ProxyRecipe")
        if self.genomes < 0:
            raise UserError(f"--genomes must be at least 0 (got {self.genomes})")
        if self.seeds < 2:
            raise UserError(f"--seeds must be at least 2: seed noise needs 2 proxy seeds (got {self.seeds})")
        if self.ref_seeds < 1:
            raise UserError(f"--ref-seeds must be at least 1 (got {self.ref_seeds})")
        if self.tse_epochs < 1:
            raise UserError(f"--tse-epochs must be at least 1 (got {self.tse_epochs})")
        if self.threads < 1:
            raise UserError(f"--threads must be at least 1 (got {self.threads})")
        if self.workers < 1:
            raise UserError(f"--workers must be at least 1 (got {self.workers})")
        if self.form is not None:
            from ..measure.forms import Form

            Form.parse(self.form)  # one line for a bad name
        if self.data_seed < 0:
            raise UserError(f"--data-seed must be at least 0 (got {self.data_seed})")
        unknown = [a for a in self.anchors if a not in ANCHORS]
        if unknown:
            raise UserError(f"anchor {shorten(unknown[0])} is not one of {', '.join(ANCHORS)}")
        if self.genomes + len(self.anchors) < 2:
            raise UserError("a ranking needs at least 2 genomes (sampled + anchors)")
        if self.reference_width is not None:
            w = self.reference_width
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or not 0 < w <= 1:
                raise UserError(f"--reference-width must be a number in (0, 1] (got {shorten(w)})")
        if self.reference_input is not None:
            from ..util.clips import parse_clip

            try:
                _, h, w_ = parse_clip(self.reference_input)
            except UserError as e:
                raise UserError(f"--reference-input: {e}") from None
            if h != w_:
                raise UserError(f"--reference-input {self.reference_input}: clips are square (height = width)")
        if self.ref().classes != self.proxy.classes:
            raise UserError("the proxy and reference recipes must have the same classes")
        from ..data.synthetic import MAX_CLASSES  # the clips are built later, after files are written

        if self.proxy.classes > MAX_CLASSES:
            raise UserError(
                f"--classes must be at most {MAX_CLASSES} for the synthetic clips (got {self.proxy.classes})"
            )

    def ref(self) -> ProxyRecipe:
        """The reference budget's recipe, on ``reference_input`` clips where given."""
        recipe = self.reference if self.reference is not None else reference_of(self.proxy)
        if self.reference_input is None:
            return recipe
        from ..util.clips import parse_clip

        frames, size, _ = parse_clip(self.reference_input)
        return recipe.with_(frames=frames, size=size)

    def reference_genome(self, proxy: Genome, proxy_width: float) -> Genome:
        """The network the reference trains for ``proxy`` (a proxy of a target reduced by
        ``proxy_width``): the target at ``reference_width``, i.e. the proxy's widths times
        ``reference_width / proxy_width``; the proxy itself without a reference width."""
        if self.reference_width is None or self.reference_width == proxy_width:
            return proxy
        from ..model.genome import scale_widths

        return scale_widths(proxy, self.reference_width / proxy_width)

    def datasets(self, recipe: ProxyRecipe) -> tuple[Any, Any]:
        """The synthetic train and val sets of one budget's recipe."""
        from ..data.synthetic import SyntheticMotion

        train = SyntheticMotion(
            "train", **recipe.dataset_opts("synthetic", "train"), seed=self.data_seed, fresh_per_epoch=self.fresh_clips
        )
        val = SyntheticMotion("val", **recipe.dataset_opts("synthetic", "val"), seed=self.data_seed)
        return train, val


def reference_of(
    proxy: ProxyRecipe, epochs_x: float = DEFAULTS["ref_epochs_x"], clips_x: float = DEFAULTS["ref_clips_x"]
) -> ProxyRecipe:
    """The default reference: ``epochs_x`` times the epochs on ``clips_x`` times the clips
    (and a val set twice as large: its binomial error would otherwise blur the reference).
    The multipliers may be fractions (a 14-epoch proxy's 21-epoch reference is 1.5x): the
    products are rounded to whole epochs and clips. The recipe checks them against its limits."""
    if not (math.isfinite(epochs_x) and math.isfinite(clips_x) and epochs_x >= 1 and clips_x >= 1):
        raise UserError(
            f"the reference multipliers must be at least 1 (got epochs x {epochs_x:g}, clips x {clips_x:g})"
        )
    return proxy.with_(
        epochs=int(round(proxy.epochs * epochs_x)),
        train_clips=int(round(proxy.train_clips * clips_x)),
        val_clips=proxy.val_clips * 2,
    )


# ---- the genomes -------------------------------------------------------------------------


def sample_stratified(
    space_name: str, n: int, clip: tuple[int, int, int], seed: int, max_gmacs: float | None = None, pool: int = 20
) -> list[Genome]:
    """``n`` distinct proxies of the space's genomes (a space of targets is reduced by its
    ``proxy:`` width: fidelity measures what a search trains), one from each of ``n``
    equal-count GMAC strata of a pool of ``pool * n`` constrained random draws: the sample
    spans cheap to costly instead of clustering where the space is densest."""
    from ..measure.profile import cost
    from ..model.reduction import Reduction
    from ..spaces import load_space

    if n == 0:
        return []
    space = load_space(space_name, max_gmacs=max_gmacs, classes=None)
    reduction = Reduction(width=space.proxy_width)
    rng = random.Random(seed)
    seen: dict[str, Genome] = {}
    for _ in range(pool * n):
        g = reduction.proxy_of(space.sample(rng))
        seen.setdefault(g.id, g)
    if len(seen) < n:
        raise UserError(
            f"space {shorten(space_name)}: only {len(seen)} distinct genomes in {pool * n} draws, {n} asked for"
        )
    ordered = sorted(seen.values(), key=lambda g: (cost(g, clip).macs, g.id))
    picks = []
    for k in range(n):
        lo, hi = len(ordered) * k // n, len(ordered) * (k + 1) // n
        picks.append(ordered[rng.randrange(lo, hi)])
    return picks


# ---- one run -----------------------------------------------------------------------------


def _run_dir(out: Path, budget: str, genome: Genome, seed: int) -> Path:
    return out / "runs" / budget / genome.id / f"seed{seed}"


def train_one(
    out: Path,
    label: str,
    genome: Genome,
    budget: str,
    recipe: ProxyRecipe,
    seed: int,
    tse_epochs: int,
    data: Callable[[], tuple[Any, Any]],
    form: str | None = None,
) -> tuple[Run, bool]:
    """Train (or reuse) one (genome, seed, budget) run under ``recipe.with_(seed=seed)``;
    returns (run, reused)."""
    from ..training.plateau import train_settled
    from ..training.trainer import TrainConfig

    d = _run_dir(out, budget, genome, seed)
    done = d / "result.json"
    if done.exists():
        try:
            return Run(**json.loads(done.read_text())), True
        except (ValueError, TypeError) as e:
            raise UserError(f"{done} is corrupt ({e}): delete it to train that run again") from e
    train_set, val_set = data()
    g = genome.with_(classes=len(train_set.classes))
    result = train_settled(
        g, train_set, val_set, TrainConfig(recipe=recipe.with_(seed=seed), device="cpu", form=form), out_dir=d
    )
    h = result.history
    losses = [m.train_loss for m in h]
    run = Run(
        label=label,
        genome=str(genome),
        budget=budget,
        seed=seed,
        status=result.status,
        val_top1=h[-1].val_top1 if h else 0.0,
        val_loss=h[-1].val_loss if h else math.inf,
        training_speed=scores.training_speed(losses, tse_epochs) if losses else math.inf,
        train_losses=losses,
        val_top1s=[m.val_top1 for m in h],
        train_time_s=result.train_time_s,
        seeds_tried=result.seeds_tried,
    )
    if result.status != "ok":
        # a failed run is a measurement too (it counts at its last accuracy), but say so
        print(f"  {label} {budget} seed {seed}: {result.status}: {result.reason}", file=sys.stderr, flush=True)
    _write_json(done, asdict(run))
    return run, False


_DATASETS: dict[str, tuple[Any, Any]] = {}  # per process: one budget's clips at a time


def _job(
    cfg: "FidelityConfig", label: str, genome: Genome, budget: str, recipe: ProxyRecipe, seed: int
) -> tuple[Run, bool, float]:
    """One run, in whichever process trains it: builds (and keeps) the budget's clips there,
    so a worker makes each budget's synthetic set once."""
    import torch

    torch.set_num_threads(cfg.threads)

    # keyed by everything the clips depend on: one process may run several measurements
    key = repr(
        (
            recipe.dataset_opts("synthetic", "train"),
            recipe.dataset_opts("synthetic", "val"),
            cfg.data_seed,
            cfg.fresh_clips,
        )
    )

    def get() -> tuple[Any, Any]:
        if key not in _DATASETS:
            _DATASETS.clear()
            _DATASETS[key] = cfg.datasets(recipe)
        return _DATASETS[key]

    t0 = time.perf_counter()
    run, reused = train_one(Path(cfg.out), label, genome, budget, recipe, seed, cfg.tse_epochs, get, cfg.form)
    return run, reused, time.perf_counter() - t0


def _earlier_wall_s(path: Path) -> float:
    """The wall time of the calls before this one (0 for the first, or an unreadable file)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0.0
    return float(old.get("wall_s_all_calls", old.get("wall_s", 0.0)))


def _write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [])
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, buf.getvalue())


# ---- the measurement ---------------------------------------------------------------------


def _manifest(cfg: FidelityConfig, genomes: list[tuple[str, Genome]]) -> dict[str, Any]:
    return {
        "space": cfg.space,
        "seeds": cfg.seeds,
        "ref_seeds": cfg.ref_seeds,
        "sample_seed": cfg.sample_seed,
        "tse_epochs": cfg.tse_epochs,
        "data_seed": cfg.data_seed,
        "fresh_clips": cfg.fresh_clips,
        "proxy": cfg.proxy.as_dict(),
        "reference": cfg.ref().as_dict(),
        "genomes": [[label, str(g)] for label, g in genomes],
        # only when set: a measurement from before forms were a setting stays comparable
        **({"form": cfg.form} if cfg.form is not None else {}),
        **({"reference_width": cfg.reference_width} if cfg.reference_width is not None else {}),
        **({"reference_input": cfg.reference_input} if cfg.reference_input is not None else {}),
    }


def check_stored(cfg: FidelityConfig) -> None:
    """Refuse, before anything trains, an ``out`` that holds a measurement with other settings.
    Cheap: the genome sample is not drawn (run_fidelity compares the sampled genomes too)."""
    mpath = Path(cfg.out) / "fidelity.json"
    if not mpath.exists():
        return
    try:
        old = json.loads(mpath.read_text())
    except ValueError as e:
        raise UserError(f"{mpath} is corrupt ({e}): use another --out") from e
    now = _manifest(cfg, [])
    diff = sorted(k for k in set(now) | set(old) if k != "genomes" and old.get(k) != now.get(k))
    labels = list(cfg.anchors) + [f"s{i + 1}" for i in range(cfg.genomes)]
    if [g[0] for g in old.get("genomes", [])] != labels:
        diff.append("genomes")
    if diff:
        raise UserError(f"{cfg.out} holds a fidelity run with other settings ({', '.join(diff)}): use another --out")


def run_fidelity(cfg: FidelityConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train what ``cfg`` asks for (reusing finished runs) and write the summary files;
    returns the summary (what summary.json holds)."""
    import torch

    out = Path(cfg.out)
    clip = cfg.proxy.clip
    from ..measure.profile import cost

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
            raise UserError(f"{out} holds a fidelity run with other settings ({', '.join(diff)}): use another --out")
    else:
        _write_json(mpath, manifest)

    torch.set_num_threads(cfg.threads)
    rows = []
    for label, g in genomes:
        c = cost(g.with_(classes=cfg.proxy.classes), clip)
        rows.append(
            {
                "label": label,
                "genome": str(g),
                "id": g.id,
                "params": c.params,
                "gmacs": c.gmacs,
                "synflow": scores.synflow_of(g.with_(classes=cfg.proxy.classes), clip),
            }
        )
    _write_csv(out / "genomes.csv", rows)

    plan = [
        (budget, recipe, seed)
        for budget, recipe, n in (("proxy", cfg.proxy, cfg.seeds), ("reference", cfg.ref(), cfg.ref_seeds))
        for seed in range(n)
    ]
    from ..spaces import load_space

    proxy_width = load_space(cfg.space).proxy_width
    as_trained = {"proxy": dict(genomes), "reference": {lb: cfg.reference_genome(g, proxy_width) for lb, g in genomes}}
    if cfg.reference_width is not None or cfg.reference_input is not None:
        log(
            f"reference: the targets at width x{cfg.reference_width or proxy_width:g} on "
            f"{'x'.join(map(str, cfg.ref().clip))} clips (the proxies: width x{proxy_width:g} on "
            f"{'x'.join(map(str, clip))})"
        )
    jobs = [
        (label, as_trained[budget][label], budget, recipe, seed)
        for budget, recipe, seed in plan
        for label, _ in genomes
    ]
    total = len(jobs)
    results: dict[int, Run] = {}
    t_all = time.perf_counter()

    def report(i: int, run: Run, reused: bool, took: float) -> None:
        results[i] = run
        _, _, budget, _, seed = jobs[i]
        how = "reused" if reused else f"{took:.0f} s"
        log(
            f"[{len(results)}/{total}] {budget} {run.label} seed {seed}: top1 {run.val_top1:.3f} "
            f"loss {run.val_loss:.3f} ({how})"
        )

    order = None
    if cfg.workers > 1:
        log(f"training {total} runs, {cfg.workers} at a time ({cfg.threads} thread(s) each)")
        # the long reference runs first: the last runs to finish are then short ones, and no
        # worker idles for a whole reference run at the end
        order = sorted(range(total), key=lambda i: jobs[i][2] != "reference")
    run_jobs(
        _job, [(cfg, *job) for job in jobs], workers=cfg.workers, order=order, on_result=lambda i, r: report(i, *r)
    )
    runs = [results[i] for i in range(total)]
    _DATASETS.clear()  # the clips are not needed any more in this process
    _write_csv(out / "runs.csv", [{k: v for k, v in asdict(r).items() if not isinstance(v, list)} for r in runs])
    summary = summarize(
        genomes, rows, runs, seeds=cfg.seeds, ref_seeds=cfg.ref_seeds, proxy=cfg.proxy, reference=cfg.ref()
    )
    if cfg.reference_width is not None or cfg.reference_input is not None:
        summary["reference_network"] = (
            f"the targets at width x{cfg.reference_width or proxy_width:g} on {'x'.join(map(str, cfg.ref().clip))} "
            f"clips, against proxies at width x{proxy_width:g} on {'x'.join(map(str, clip))} clips"
        )
    summary["wall_s"] = time.perf_counter() - t_all  # this call's
    # every call's, added up: a re-run that reuses every run takes seconds, and a measurement
    # killed and resumed took its calls' sum (pauses between calls not counted)
    summary["wall_s_all_calls"] = _earlier_wall_s(out / "summary.json") + summary["wall_s"]
    _write_json(out / "summary.json", summary)
    (out / "summary.md").write_text(render_markdown(summary))
    plot(summary, out / "fidelity.png")
    return summary
