"""Running an experiment: each (genome, seed) trained into its own directory and reused once
finished, each search an ordinary ``archlab search`` study continued on a re-run, then the
summary. A directory trained under settings the file no longer gives is refused (one line)
before anything runs, never silently reused."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from ..model.genome import Genome
from ..training.recipe import ProxyRecipe
from ..util import yaml_loader as loader
from ..util.errors import UserError, shorten
from ..util.files import atomic_write
from ..util.processes import run_jobs
from .spec import Experiment, TrainSpec
from .summary import summary_csv, summary_markdown

# Search settings that may differ between the file and a stored search without changing its
# results: where it runs, how many at once, W&B, and a larger trial budget (the search
# continues); objectives are compared apart (study.yaml stores them resolved).
SEARCH_FREE = ("name", "out", "trials", "address", "concurrency", "wandb", "objectives")
RUN_SETTINGS_FILE = "run.yaml"
RESULT_FILE = "result.yaml"


@dataclass
class ExperimentResult:
    out_dir: Path
    rows: list[dict[str, Any]]  # one per entry: TRAIN_COLUMNS or SEARCH_COLUMNS
    markdown: str
    trained: int  # train runs that trained now (not reused)
    reused: int
    interrupted: bool
    wall_s: float


def default_out(experiment: Experiment) -> Path:
    return Path("runs") / "experiments" / (experiment.name + ("-quick" if experiment.quick else ""))


def run_experiment(
    experiment: Experiment, out: str | Path | None = None, echo: Callable[[str], None] = print
) -> ExperimentResult:
    """Run (or continue) every entry of ``experiment``, then write summary.csv and summary.md.
    Finished train runs and finished search trials are reused; what changed in the file
    since they ran is refused with a UserError (delete that directory or use another out)."""
    t0 = time.perf_counter()
    out_dir = Path(out) if out is not None else default_out(experiment)
    _check_out_dir(experiment, out_dir)  # before anything runs: a changed file fails at once
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / experiment.path.name, experiment.path.read_text())  # the file that ran, beside its results
    echo(
        f"experiment {experiment.name}{' (quick)' if experiment.quick else ''}: {experiment.kinds()}  ·  output {out_dir}"
    )
    rows: list[dict[str, Any]] = []
    trained = reused = 0
    interrupted = False
    hv_note = ""
    if experiment.train is not None:
        train_rows, trained, reused = _run_train(experiment.train, out_dir, echo)
        rows += train_rows
    if experiment.fidelity is not None:
        rows.append(_run_fidelity(experiment.fidelity, out_dir, echo))
    if experiment.searches:
        from ..search import shutdown

        try:
            search_rows, interrupted, hv_note = _run_searches(experiment.searches, out_dir, echo)
        finally:
            shutdown()
        rows += search_rows
        if experiment.cycle is not None and not interrupted:
            from .cycle import run_cycle

            rows.append(
                run_cycle(
                    experiment.cycle,
                    _search_configs(experiment.searches, out_dir)[experiment.cycle.search],
                    out_dir,
                    echo,
                    train=_run_train,
                )
            )
    md = summary_markdown(experiment, rows, hv_note)
    atomic_write(out_dir / "summary.csv", summary_csv(rows))
    atomic_write(out_dir / "summary.md", md)
    return ExperimentResult(
        out_dir=out_dir,
        rows=rows,
        markdown=md,
        trained=trained,
        reused=reused,
        interrupted=interrupted,
        wall_s=time.perf_counter() - t0,
    )


class _Data:
    """The train and val sets, made on first use: a re-run that reuses every run never
    spends the seconds generating them."""

    def __init__(self, spec: TrainSpec):
        self.spec = spec
        self.sets: tuple[Any, Any] | None = None

    def get(self) -> tuple[Any, Any]:
        if self.sets is None:
            from ..data import get_dataset

            r = self.spec.recipe
            self.sets = (
                get_dataset("synthetic", "train", **r.dataset_opts("synthetic", "train")),
                get_dataset("synthetic", "val", **r.dataset_opts("synthetic", "val")),
            )
        return self.sets


def _run_settings(spec: TrainSpec, genome: Genome, seed: int) -> dict[str, Any]:
    """What a run's numbers depend on: the genome and the run's whole recipe (its seed too)."""
    return {"genome": str(genome), **spec.run_recipe(seed).as_dict()}


def _read(path: Path) -> dict[str, Any]:
    """run.yaml / result.yaml of a run directory; a broken one is one line, not a traceback."""
    data = loader.load(loader.read_text(path), str(path))
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a mapping: delete that run's directory to train it again")
    return data


def _run_dir(out_dir: Path, label: str, seed: int) -> Path:
    return out_dir / "train" / label / f"seed{seed}"


def _check_run_dir(spec: TrainSpec, genome: Genome, seed: int, run_dir: Path) -> None:
    """A run directory trained under other settings is refused, not silently reused."""
    stored_file = run_dir / RUN_SETTINGS_FILE
    if not stored_file.exists():
        return
    stored = _read(stored_file)
    stored = {**ProxyRecipe.stored_defaults(stored), **stored}  # older archlab: what it trained with
    settings = _run_settings(spec, genome, seed)
    for k, v in settings.items():
        # a recipe key the file lacks was not settable when it was written (older archlab):
        # it trained with that key's default, which is the recipe's default today
        if (k in stored or k in ("genome", "seed")) and stored.get(k) != v:
            raise UserError(
                f"{run_dir} was trained with {k}={shorten(stored.get(k))}, the experiment now says {shorten(v)}: "
                "delete that directory or give another --out"
            )


def _check_out_dir(experiment: Experiment, out_dir: Path) -> None:
    """Every finished or started run in ``out_dir`` must match the experiment as it is now."""
    if experiment.train is not None:
        for label, genome in experiment.train.genomes.items():
            for seed in experiment.train.seeds:
                _check_run_dir(experiment.train, genome, seed, _run_dir(out_dir, label, seed))
    for label, cfg in _search_configs(experiment.searches, out_dir).items():
        _check_stored_search(label, cfg)
    if experiment.fidelity is not None:
        from ..fidelity.runner import check_stored

        check_stored(replace(experiment.fidelity, out=str(out_dir / "fidelity")))


def _train_one(spec: TrainSpec, genome: Genome, seed: int, run_dir: Path, data: _Data) -> tuple[dict, bool]:
    """One (genome, seed): its result, and whether it was reused (not trained now)."""
    from ..results.tail import takeoff_epoch
    from ..training.plateau import train_settled
    from ..training.trainer import TrainConfig

    result_file = run_dir / RESULT_FILE
    if result_file.exists():
        return _read(result_file), True
    atomic_write(run_dir / RUN_SETTINGS_FILE, yaml.safe_dump(_run_settings(spec, genome, seed), sort_keys=False))
    train_set, val_set = data.get()
    cfg = TrainConfig(recipe=spec.run_recipe(seed), device="cpu")
    r = train_settled(genome, train_set, val_set, cfg, out_dir=run_dir)
    res = {
        "status": r.status,
        "reason": r.reason,
        "val_top1": r.history[-1].val_top1 if r.history else None,  # the last epoch's: no pick on val
        "best_top1": r.best_top1,
        "best_epoch": r.best_epoch,
        "epochs": len(r.history),
        "train_time_s": r.train_time_s,
        "seeds_tried": r.seeds_tried,
        "takeoff_epoch": takeoff_epoch([m.train_loss for m in r.history], spec.recipe.classes),
    }
    atomic_write(result_file, yaml.safe_dump(res, sort_keys=False))
    return res, False


_DATA: dict[str, _Data] = {}  # per process: the clips of one recipe at a time (each worker builds its own once)


def _train_job(spec: TrainSpec, label: str, genome: Genome, seed: int, run_dir: Path) -> tuple[dict, bool]:
    """One (genome, seed) in whichever process trains it (a worker sets its torch threads)."""
    import torch

    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    r = spec.recipe
    key = repr((r.dataset_opts("synthetic", "train"), r.dataset_opts("synthetic", "val")))
    if key not in _DATA:
        _DATA.clear()
        _DATA[key] = _Data(spec)
    data = _DATA[key]
    return _train_one(spec, genome, seed, run_dir, data)


def _run_train(spec: TrainSpec, out_dir: Path, echo: Callable[[str], None]) -> tuple[list[dict], int, int]:
    import torch

    from ..measure import profile

    cache = profile.ProfileCache(out_dir / "profiles.json")
    jobs = [(label, genome, seed) for label, genome in spec.genomes.items() for seed in spec.seeds]
    total = len(jobs)
    results: dict[tuple[str, int], dict] = {}
    trained = reused = 0
    threads = torch.get_num_threads()

    def report(label: str, seed: int, res: dict, was_reused: bool) -> None:
        nonlocal trained, reused
        results[(label, seed)] = res
        reused += was_reused
        trained += not was_reused
        how = "reused" if was_reused else f"{res['train_time_s']:.0f} s"
        status = "" if res["status"] == "ok" else f"  {res['status']}: {res['reason']}"
        top1 = f"{res['val_top1']:.3f}" if res["val_top1"] is not None else "-"
        echo(f"[train {len(results):>3}/{total}] {label} seed {seed}: top1 {top1}  ep {res['epochs']}  ({how}){status}")

    try:
        if spec.workers > 1:
            echo(f"[train] {total} runs, {spec.workers} at a time")
        run_jobs(
            _train_job,
            [(spec, label, genome, seed, _run_dir(out_dir, label, seed)) for label, genome, seed in jobs],
            workers=spec.workers,
            on_result=lambda i, r: report(jobs[i][0], jobs[i][2], *r),
        )
        if spec.threads is not None:
            torch.set_num_threads(spec.threads)  # the latency of the rows below: the runs' threads
        rows = [
            _train_row(spec, label, genome, [results[(label, s)] for s in spec.seeds], cache)
            for label, genome in spec.genomes.items()
        ]
    finally:
        torch.set_num_threads(threads)
        _DATA.clear()  # the clips are not needed after the runs
    if spec.compare is not None:
        _add_differences(rows, spec.compare)
    return rows, trained, reused


def _seed_values(row: dict[str, Any]) -> list[float]:
    """The row's val top-1 per finished seed, unrounded (the table's text has 4 decimals)."""
    return list(row["val_top1_values"])


def _add_differences(rows: list[dict[str, Any]], compare: str) -> None:
    """Each row's mean val top-1 minus ``compare``'s, with Welch's 95% interval, and the
    verdict it allows: above / below (the interval excludes 0) or "not distinguishable"."""
    from ..results.stats import difference, verdict

    base = _seed_values(next(r for r in rows if r["label"] == compare))
    for r in rows:
        if r["label"] == compare:
            continue
        mine = _seed_values(r)
        if not mine or not base:
            continue
        d = difference(mine, base)
        r["vs"], r["diff"], r["diff_ci95"] = compare, d.mean, d.half
        r["verdict"] = verdict(d, undecided="undecided (one seed)")


def _takeoff_text(result: dict[str, Any]) -> str:
    if "takeoff_epoch" not in result:
        return "?"
    return "-" if result["takeoff_epoch"] is None else str(result["takeoff_epoch"])


def _train_row(spec: TrainSpec, label: str, genome: Genome, results: list[dict], cache: Any) -> dict[str, Any]:
    from ..measure import profile

    c = profile.cost(genome, spec.clip, method="fast", cache=cache)
    lat = profile.latency(genome, spec.clip, device="cpu", batch=1, runs=spec.latency_runs, cache=cache)
    ok = [r for r in results if r["status"] == "ok" and r["val_top1"] is not None]
    top1 = [r["val_top1"] for r in ok]
    from ..results.stats import interval
    from ..results.tail import below_median

    ci = interval(top1).half if top1 else math.nan
    failed = [r for r in results if r["status"] != "ok"]
    status = (
        "ok" if not failed else f"{len(failed)} of {len(results)} failed: {failed[0]['status']}: {failed[0]['reason']}"
    )
    return {
        "kind": "train",
        "label": label,
        "genome": str(genome),
        "seeds": " ".join(map(str, spec.seeds)),
        "val_top1_mean": statistics.fmean(top1) if top1 else None,
        "val_top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
        "val_top1_ci95": ci if math.isfinite(ci) else None,  # t-interval half-width over the seeds
        "val_top1_values": top1,  # unrounded, for the differences (not a CSV column)
        "val_top1_per_seed": " ".join(f"{r['val_top1']:.4f}" if r["val_top1"] is not None else "-" for r in results),
        # the tail (results.tail): the worst seed's distance below the median, the runs the
        # plateau rule restarted, each run's take-off epoch (- never; ? a run from before)
        "below_median": max(below_median(top1)) if top1 else None,
        "restarted_plateau": sum(len(r.get("seeds_tried") or []) > 1 for r in results),
        "takeoff_epochs": " ".join(_takeoff_text(r) for r in results),
        "params": c.params,
        "gmacs": c.gmacs,
        "latency_ms": lat.median_ms,
        "epochs": min(r["epochs"] for r in results),
        "train_s": statistics.fmean(r["train_time_s"] for r in results),
        "status": status,
    }


def _run_fidelity(cfg: Any, out_dir: Path, echo: Callable[[str], None]) -> dict[str, Any]:
    """The experiment's `archlab fidelity` measurement, in <out>/fidelity/ (a re-run reuses every
    finished run); its summary row (the full tables: <out>/fidelity/summary.md)."""
    from ..fidelity.runner import run_fidelity
    from ..fidelity.summary import render_markdown

    cfg = replace(cfg, out=str(out_dir / "fidelity"))
    echo(
        f"[fidelity] space {Path(cfg.space).stem}: {cfg.genomes} sampled + {len(cfg.anchors)} anchors, "
        f"{cfg.seeds} proxy seeds ({cfg.proxy.epochs} epochs), {cfg.ref_seeds} reference ({cfg.ref().epochs} epochs), "
        f"{cfg.workers} at a time"
    )
    s = run_fidelity(cfg, log=lambda line: echo(f"[fidelity] {line}"))
    rho = {k: v["rho"] for k, v in s["scores"].items() if math.isfinite(v["rho"])}
    best = max(rho, key=rho.get) if rho else ""  # the score that ranks most like the reference
    return {
        "kind": "fidelity",
        "label": "fidelity",
        "space": Path(cfg.space).stem,
        "genomes": s["n_genomes"],
        "seeds": s["seeds"],
        "ref_seeds": s["ref_seeds"],
        "median_seed_std": s["median_seed_std"],
        "bimodal": " ".join(s["bimodal"]),
        "seed_tau": s["seed_tau"],
        "proxy_vs_ref_rho": s["proxy_vs_ref_rho"],
        "proxy_vs_ref_tau": s["proxy_vs_ref_tau"],
        "top_quarter_overlap": s["top_quarter_overlap"],
        "best_score": best,
        "targets_met": sum(v is True for v in s["targets"].values()),
        "targets": sum(v is not None for v in s["targets"].values()),  # those it has a figure for
        "wall_s": s["wall_s"],
        "markdown": render_markdown(s).replace("# Proxy fidelity", "## Proxy fidelity", 1),
    }


def _search_configs(searches: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Each search is an ordinary study of `archlab search` in <out>/searches/<label>/."""
    return {label: replace(cfg, name=label, out=str(out_dir / "searches")) for label, cfg in searches.items()}


def _check_stored_search(label: str, cfg: Any) -> None:
    """A search directory that already holds a study must have been run with the settings
    the file gives now (search.prepare_study would silently keep the stored ones)."""
    from ..results.study import load_study_info, parse_objectives

    d = cfg.study_dir()
    if not (d / "study.yaml").exists():
        return
    stored = load_study_info(d).settings
    objectives = parse_objectives(cfg.objectives)[0]
    if list(stored.get("objectives", [])) != objectives:
        raise UserError(
            f"search {shorten(label)} in {d} was run with objectives {stored.get('objectives')}, the experiment now "
            f"says {objectives}: delete that directory or give another --out"
        )
    now = {k: v for k, v in asdict(cfg).items() if k != "recipe"} | cfg.recipe.as_dict()
    # study.yaml nests the recipe (older ones wrote its keys flat beside the search's own)
    stored = {**stored, **(stored.get("recipe") or {})}
    stored = {**ProxyRecipe.stored_defaults(stored), **stored}  # older archlab: what it trained with
    for k, v in now.items():
        if k in SEARCH_FREE or k not in stored:
            continue
        if k in ("target_input", "proxy_width") and v is None:  # the space's, resolved when the search began
            continue
        if stored[k] != v:
            raise UserError(
                f"search {shorten(label)} in {d} was run with {k}={shorten(stored[k])}, the experiment now says {shorten(v)}: "
                "delete that directory or give another --out"
            )
    if int(stored.get("trials", 0)) > cfg.trials:
        raise UserError(
            f"search {shorten(label)} in {d} was run with trials={stored['trials']}, the experiment now says "
            f"{cfg.trials}: a search can grow, not shrink; delete that directory or give another --out"
        )


def _run_searches(searches: dict[str, Any], out_dir: Path, echo: Callable[[str], None]) -> tuple[list[dict], bool, str]:
    """Run (or continue) each search, then compare their fronts from one reference point."""
    import pandas as pd

    from ..results import pareto
    from ..results.reader import finished, load_results
    from ..search import search

    configs = _search_configs(searches, out_dir)
    interrupted = False
    for label, cfg in configs.items():
        echo(
            f"[search {label}] space {cfg.space}, sampler {cfg.sampler}, {cfg.trials} trials x {cfg.recipe.epochs} epochs"
        )
        try:
            outcome = search(cfg, resume=False, echo=lambda line, label=label: echo(f"[search {label}] {line}"))
        except UserError as e:
            raise UserError(f"search {shorten(label)}: {e}") from None
        if outcome.interrupted:
            interrupted = True
            break

    tables: dict[str, Any] = {}
    settings: dict[str, dict[str, Any]] = {}
    objectives = directions = None
    for label, cfg in configs.items():
        if not (cfg.study_dir() / "study.yaml").exists():
            continue  # not started (an interrupt came first)
        df, info = load_results(cfg.study_dir())
        tables[label] = df[~df["baseline"]]
        settings[label] = info.settings
        objectives, directions = info.objectives, info.directions
    rows: list[dict[str, Any]] = []
    if not tables:
        return rows, interrupted, ""
    from ..results.confirmed import accuracy_view
    from ..results.numbers import hypervolume_time_curve
    from ..results.record import FRONT
    from ..results.remeasure import AS_SEARCHED, remeasure

    remeasured = "latency_ms" in objectives
    if remeasured:
        from ..search import shutdown

        tables = remeasure(
            tables,
            settings,
            {label: configs[label].recipe.clip for label in tables},
            out_dir / "searches",
            echo,
            before=shutdown,
        )
    every = pd.concat([finished(t) for t in tables.values()], ignore_index=True)
    ref = pareto.reference_point(every, objectives, directions)
    ref_text = ", ".join(f"{o}={r:.6g}" for o, r in zip(objectives, ref))
    curves = {label: hypervolume_time_curve(df, objectives, directions, ref) for label, df in tables.items()}
    spans = [float(c["elapsed_s"].iloc[-1]) for c in curves.values() if len(c)]
    equal_s = min(spans) if spans else None  # the shortest search's wall time: every search has run that long
    for label, df in tables.items():
        cfg = configs[label]
        done = finished(df)
        # what a front counts: full-budget trials (never one stopped at a rung), on their seed means
        full = accuracy_view(df[df["status"].isin(FRONT)])
        as_searched = full.assign(latency_ms=full[AS_SEARCHED]) if remeasured else full
        curve = curves[label]
        in_time = curve[curve["elapsed_s"] <= equal_s] if equal_s is not None and len(curve) else curve.iloc[:0]
        rows.append(
            {
                "kind": "search",
                "label": label,
                "space": Path(cfg.space).stem if cfg.space.endswith(".yaml") else cfg.space,
                "sampler": cfg.sampler,
                "scheduler": cfg.scheduler,
                "objectives": ",".join(objectives),
                "trials": cfg.trials,
                "finished": len(done),
                "failed": int(df["status"].isin(["failed"]).sum()),
                "stopped": len(done) - len(full),
                "front_size": int(pareto.non_dominated(full, objectives, directions).sum()) if len(full) else 0,
                "best_val_top1": float(full["val_top1"].max()) if len(full) else None,
                "hypervolume": pareto.hypervolume(full, objectives, directions, ref) if len(full) else 0.0,
                "hv_as_searched": (pareto.hypervolume(as_searched, objectives, directions, ref) if len(full) else 0.0)
                if remeasured
                else None,
                "hv_reference": ref_text,
                "wall_s": float(curve["elapsed_s"].iloc[-1]) if len(curve) else None,
                "hv_at_equal_time": float(in_time["hypervolume"].iloc[-1]) if len(in_time) else 0.0,
                "equal_time_s": equal_s,
                "busy_s": float(pd.to_numeric(df["trial_time_s"], errors="coerce").fillna(0).sum()),
                "status": "ok" if len(done) >= cfg.trials else f"{len(done)} of {cfg.trials} trials finished",
            }
        )
    note = (
        f"Hypervolume of each search's full-budget trials ({objectives[0]} {directions[0]}, {objectives[1]} "
        f"{directions[1]}; a trial stopped at a rung never counts) from ONE reference point over all searches' "
        f"trials: {ref_text}. "
        + (
            "Latencies measured again after the searches, one genome at a time in one process (each trial "
            "measured its own beside another trial's training: the noise would rank the searches); "
            "'HV as searched' uses the trials' own. "
            if remeasured
            else ""
        )
        + (
            f"At equal wall time: of the trials each search had completed {equal_s:.0f} s after its first "
            "trial started (the shortest search's wall time)."
            if equal_s is not None
            else ""
        )
    )
    return rows, interrupted, note
