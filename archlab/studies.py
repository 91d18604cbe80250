"""Studies: YAML files in ``studies/`` that reproduce an experiment and write its table.

A search answers "what is good in this space"; a study answers a fixed question ("does the
A->B->C mix beat each pure P3D block?", "does NSGA-II beat random search?") the same way on
every run, so its answer can be checked, re-run and compared. One file holds two kinds of
entries, either or both:

``train``
    named genomes (genome strings or preset names), each trained with ONE proxy recipe over
    one or more seeds; per genome: val top-1 (mean and std over seeds), params, GMACs,
    latency. Each (genome, seed) trains into ``train/<label>/seed<k>/`` of the study's
    output; a run that finished (``result.yaml``) is never retrained, and a run cut off
    mid-way continues from its last epoch (``train.train`` resumes its checkpoint). A run that
    ended in nan/oom/error is recorded as such, not retried: delete its directory to retry.
``search``
    named searches, each a set of ``SearchConfig`` overrides, run as ordinary studies of
    ``archlab search`` under ``searches/<label>/`` (a re-run continues them). Their fronts
    are compared on ONE reference point computed over every search's finished trials: a
    hypervolume is only comparable to another measured from the same point.

The file format (every key is checked; an error names the file and the key)::

    description: one line                          (required)
    train:                                         (optional)
      genomes: {LABEL: GENOME_OR_PRESET, ...}      (required; classes are set to the data's)
      seeds: [0, 1]          epochs: 5      batch: 8      optimizer: adamw     lr: 0.002
      zero_init: false       frames: 8      size: 32      train_clips: 1200    val_clips: 300
      classes: 6 (synthetic classes: 2..8; every genome gets this many outputs)
      latency_runs: 10       threads: null  (torch threads; null = torch's default)
    search:                                        (optional)
      common: {SearchConfig field: value, ...}     (applied to every search)
      searches: {LABEL: {SearchConfig field: value, ...}, ...}   (required)
    quick:                                         (optional: what --quick changes)
      train: {train key: value, ...}               (not genomes)
      search: {SearchConfig field: value, ...}     (applied to every search, last)

``--quick`` shrinks a study to a smoke run of about a minute: ``QUICK_TRAIN`` and
``QUICK_SEARCH`` below, then the file's own ``quick:`` section on top. A quick run writes to
``<out>-quick`` so that it never mixes with (or blocks) the full run's results.

Output (default ``runs/studies/<name>/``): ``<name>.yaml`` (a copy of the file that ran),
``summary.csv`` (one row per entry, both kinds), ``summary.md``, ``profiles.json`` (the
latency cache, so a re-run prints the same table), ``train/``, ``searches/``.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
import time
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import yaml

from . import named
from .errors import UserError, shorten
from .genome import Genome, GenomeError
from .results import write_atomic

TOP_KEYS = ("name", "description", "train", "search", "quick")
TRAIN_DEFAULTS: dict[str, Any] = {
    "seeds": [0], "epochs": 5, "batch": 8, "optimizer": "adamw", "lr": 0.002, "zero_init": False,
    "frames": 8, "size": 32, "train_clips": 1200, "val_clips": 300, "classes": 6, "latency_runs": 10,
    "threads": None,
}
TRAIN_KEYS = ("genomes", *TRAIN_DEFAULTS)
SEARCH_KEYS = ("common", "searches")
QUICK_KEYS = ("train", "search")
# Set by the study itself: each search lives in the study's output under its label.
SEARCH_FIXED = ("name", "out")
# --quick, before the file's own quick: section. Sized so that every shipped study smoke-runs
# in about a minute on 2 CPU cores (the searches pay for Ray's start, 4-5 s, once).
QUICK_TRAIN: dict[str, Any] = {"epochs": 1, "train_clips": 64, "val_clips": 32}  # and the first seed only
QUICK_SEARCH: dict[str, Any] = {"trials": 2, "epochs": 1, "grace_epochs": 1, "latency_runs": 2,
                                "data_opts": {"n_clips": 64}}
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")  # labels are directory names
# What a finished train run's numbers depend on: a run directory trained under other
# settings is refused instead of silently reused.
RUN_SETTINGS = ("genome", "seed", "epochs", "batch", "optimizer", "lr", "zero_init", "frames", "size",
                "train_clips", "val_clips", "classes")
# Search settings that may differ between the file and a stored search without changing its
# results: where it runs, how many at once, W&B, and a larger trial budget (the search
# continues); objectives are compared apart (study.yaml stores them resolved).
SEARCH_FREE = ("name", "out", "trials", "address", "concurrency", "wandb", "objectives")
RUN_SETTINGS_FILE = "run.yaml"
RESULT_FILE = "result.yaml"
TRAIN_COLUMNS = ["kind", "label", "genome", "seeds", "val_top1_mean", "val_top1_std", "val_top1_per_seed",
                 "params", "gmacs", "latency_ms", "epochs", "train_s", "status"]
SEARCH_COLUMNS = ["kind", "label", "space", "sampler", "objectives", "trials", "finished", "failed",
                  "front_size", "best_val_top1", "hypervolume", "hv_reference", "busy_s", "status"]


def studies_dir() -> Path:
    """Where named studies live: $ARCHLAB_STUDIES if set, else the repository's studies/."""
    return named.folder("ARCHLAB_STUDIES", "studies")


# ---- the study, as loaded and checked ------------------------------------------------------

@dataclass
class TrainSpec:
    """Genomes trained with one recipe; ``genomes`` keep the file's order (the table's)."""

    genomes: dict[str, Genome]
    seeds: list[int]
    epochs: int
    batch: int
    optimizer: str
    lr: float
    zero_init: bool
    frames: int
    size: int
    train_clips: int
    val_clips: int
    classes: int
    latency_runs: int
    threads: int | None

    @property
    def clip(self) -> tuple[int, int, int]:
        return (self.frames, self.size, self.size)


@dataclass
class Study:
    name: str
    description: str
    path: Path
    quick: bool
    train: TrainSpec | None
    searches: dict[str, Any] = field(default_factory=dict)  # label -> SearchConfig (name/out unset)

    def kinds(self) -> str:
        parts = []
        if self.train is not None:
            parts.append(f"train: {len(self.train.genomes)} genomes x {len(self.train.seeds)} seed(s), "
                         f"{self.train.epochs} epoch(s)")
        if self.searches:
            trials = sorted({c.trials for c in self.searches.values()})
            parts.append(f"search: {len(self.searches)} searches x {'/'.join(map(str, trials))} trials")
        return "; ".join(parts)


def load_study(name_or_path: str | Path, quick: bool = False) -> Study:
    """A study by name (``studies/NAME.yaml``) or by path to a ``.yaml`` file, checked
    completely (genomes parse and fit the clip, spaces load) without running anything."""
    return _from_file(named.resolve(str(name_or_path), studies_dir(), "study", "studies"), quick)


def list_studies() -> list[Study]:
    """Every study in studies/, by name."""
    return [load_study(p) for p in sorted(studies_dir().glob("*.yaml"))]


def _from_file(path: Path, quick: bool) -> Study:
    where = path.name
    data = _mapping(where, "", named.read(path), TOP_KEYS)
    name, desc = named.name_and_description(path, data)
    if "train" not in data and "search" not in data:
        raise UserError(f"{where}: give a 'train' section, a 'search' section or both")
    # The quick section is checked on every load, so that --quick cannot fail on a file that loads.
    q = _mapping(where, "quick", data.get("quick") or {}, QUICK_KEYS)
    q_train = _mapping(where, "quick.train", q.get("train") or {}, tuple(TRAIN_DEFAULTS))
    q_search = _mapping(where, "quick.search", q.get("search") or {}, _search_fields())
    _check_types(where, "quick.search", q_search, typing.get_type_hints(_search_config()))
    train = None
    searches: dict[str, Any] = {}
    for use_quick in ((True,) if quick else (True, False)):  # the last pass is the one kept
        if "train" in data:
            train = _train_spec(where, data["train"], q_train if use_quick else None)
        if "search" in data:
            searches = _searches(where, path.parent, data["search"], q_search if use_quick else None)
    return Study(name=name, description=desc, path=path, quick=quick, train=train, searches=searches)


def _mapping(where: str, key: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    at = f"key '{key}'" if key else "the file"
    if not isinstance(value, dict):
        raise UserError(f"{where}: {at}: expected a mapping ({', '.join(allowed)})")
    for k in value:
        if k not in allowed:
            inside = f" in '{key}'" if key else ""
            raise UserError(f"{where}: unknown key {shorten(k)}{inside} (keys: {', '.join(allowed)})")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _train_spec(where: str, value: Any, quick: dict[str, Any] | None) -> TrainSpec:
    from .data.synthetic import MAX_CLASSES
    from .presets import resolve
    from .profile import count_fast

    data = _mapping(where, "train", value, TRAIN_KEYS)
    opts = {**TRAIN_DEFAULTS, **{k: v for k, v in data.items() if k != "genomes"}}
    if quick is not None:
        seeds = opts["seeds"]
        opts.update(QUICK_TRAIN, seeds=seeds[:1] if isinstance(seeds, list) else seeds)
        opts.update(quick)

    def bad(key: str, what: str) -> UserError:
        return UserError(f"{where}: key 'train.{key}': {shorten(opts[key])} {what}")

    seeds = opts["seeds"] if isinstance(opts["seeds"], list) else [opts["seeds"]]
    if not seeds or not all(_is_int(s) and s >= 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise bad("seeds", "must be distinct non-negative integers, e.g. [0, 1]")
    for key in ("epochs", "batch", "frames", "size", "train_clips", "val_clips", "latency_runs"):
        if not _is_int(opts[key]) or opts[key] < 1:
            raise bad(key, "must be a positive integer")
    if opts["threads"] is not None and (not _is_int(opts["threads"]) or opts["threads"] < 1):
        raise bad("threads", "must be a positive integer or null")
    if not _is_int(opts["classes"]) or not 2 <= opts["classes"] <= MAX_CLASSES:
        raise bad("classes", f"must be an integer in 2..{MAX_CLASSES} (the synthetic benchmark's classes)")
    if opts["optimizer"] not in ("adamw", "sgd"):
        raise bad("optimizer", "must be adamw or sgd")
    if isinstance(opts["lr"], bool) or not isinstance(opts["lr"], (int, float)) or not opts["lr"] > 0:
        raise bad("lr", "must be a positive number")
    if not isinstance(opts["zero_init"], bool):
        raise bad("zero_init", "must be true or false")
    if opts["frames"] < 4 or opts["size"] < 16:
        raise UserError(f"{where}: key 'train.frames'/'train.size': the synthetic clips need at least 4 frames "
                        f"of 16x16 pixels, got {opts['frames']}x{opts['size']}x{opts['size']}")

    entries = data.get("genomes")
    if not isinstance(entries, dict) or not entries:
        raise UserError(f"{where}: key 'train.genomes' is required: a mapping LABEL: GENOME_OR_PRESET")
    clip = (opts["frames"], opts["size"], opts["size"])
    genomes: dict[str, Genome] = {}
    for label, text in entries.items():
        key = f"train.genomes.{label}"
        if not isinstance(label, str) or not LABEL.match(label):
            raise UserError(f"{where}: key {shorten(key)}: a label is a directory name (letters, digits, _ . + -)")
        if not isinstance(text, str):
            raise UserError(f"{where}: key {shorten(key)}: {shorten(text)} is not a genome string or a preset name")
        try:
            g = resolve(text, classes=opts["classes"])
            count_fast(g, clip)  # the clip must be large enough for the network
        except GenomeError as e:
            raise UserError(f"{where}: key {shorten(key)}: {e}") from None
        except UserError as e:
            raise UserError(f"{where}: key {shorten(key)} at clip {'x'.join(map(str, clip))}: {e}") from None
        genomes[label] = g
    return TrainSpec(genomes=genomes, seeds=list(seeds), lr=float(opts["lr"]),
                     **{k: opts[k] for k in TRAIN_DEFAULTS if k not in ("seeds", "lr")})


def _search_config() -> type:
    from .search import SearchConfig  # imports no ray: that happens when a search runs

    return SearchConfig


def _search_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(_search_config()) if f.name not in SEARCH_FIXED)


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    return isinstance(value, origin or hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return {"str": "text", "int": "an integer", "float": "a number", "bool": "true or false"}.get(
        getattr(typing.get_origin(hint) or hint, "__name__", str(hint)), "a mapping")


def _check_types(where: str, key: str, values: dict[str, Any], hints: dict[str, Any]) -> None:
    for k, v in values.items():
        if not _type_ok(v, hints[k]):
            raise UserError(f"{where}: key '{key}.{k}': {shorten(v)} is not {_type_name(hints[k])}")


def _searches(where: str, base: Path, value: Any, quick: dict[str, Any] | None) -> dict[str, Any]:
    """label -> SearchConfig: SearchConfig defaults < common < the search's own < quick."""
    from .results import parse_objectives
    from .search import SearchConfig
    from .spaces import load_space

    allowed = _search_fields()
    hints = typing.get_type_hints(SearchConfig)
    data = _mapping(where, "search", value, SEARCH_KEYS)
    common = _mapping(where, "search.common", data.get("common") or {}, allowed)
    entries = data.get("searches")
    if not isinstance(entries, dict) or not entries:
        raise UserError(f"{where}: key 'search.searches' is required: a mapping LABEL: {{SearchConfig overrides}}")
    out: dict[str, Any] = {}
    objectives = None
    for label, own in entries.items():
        key = f"search.searches.{label}"
        if not isinstance(label, str) or not LABEL.match(label):
            raise UserError(f"{where}: key {shorten(key)}: a label is a directory name (letters, digits, _ . + -)")
        own = _mapping(where, key, own or {}, allowed)
        settings = {**common, **own}
        _check_types(where, key, settings, hints)
        if quick is not None:
            data_opts = dict(settings.get("data_opts") or {})
            if settings.get("data", "synthetic") == "synthetic":  # n_clips is the synthetic set's option
                data_opts.update(QUICK_SEARCH["data_opts"])
            settings.update({**QUICK_SEARCH, **quick})
            settings["data_opts"] = {**data_opts, **(quick.get("data_opts") or {})}
        space = settings.get("space", SearchConfig.space)
        if space.endswith((".yaml", ".yml")) or "/" in space:  # a file beside the study, for Ray workers: absolute
            settings["space"] = space = str((base / space).resolve())
        try:
            load_space(space)
            objs = parse_objectives(settings.get("objectives", SearchConfig.objectives))
        except UserError as e:
            raise UserError(f"{where}: key {shorten(key)}: {e}") from None
        if settings.get("sampler", SearchConfig.sampler) not in ("nsga2", "tpe", "random"):
            raise UserError(f"{where}: key '{key}.sampler': use nsga2, tpe or random")
        for k in ("trials", "epochs", "grace_epochs", "frames", "size", "batch", "latency_runs"):
            if k in settings and settings[k] < 1:
                raise UserError(f"{where}: key '{key}.{k}': {shorten(settings[k])} must be at least 1")
        if objectives is not None and objs != objectives:
            raise UserError(f"{where}: key '{key}.objectives': every search must have the same objectives "
                            "(their fronts are compared on one reference point)")
        objectives = objs
        out[label] = SearchConfig(**settings)
    return out


# ---- running -------------------------------------------------------------------------------

@dataclass
class StudyResult:
    out_dir: Path
    rows: list[dict[str, Any]]  # one per entry: TRAIN_COLUMNS or SEARCH_COLUMNS
    markdown: str
    trained: int  # train runs that trained now (not reused)
    reused: int
    interrupted: bool
    wall_s: float


def default_out(study: Study) -> Path:
    return Path("runs") / "studies" / (study.name + ("-quick" if study.quick else ""))


def run_study(study: Study, out: str | Path | None = None, echo: Callable[[str], None] = print) -> StudyResult:
    """Run (or continue) every entry of ``study``, then write summary.csv and summary.md.
    Finished train runs and finished search trials are reused; what changed in the file
    since they ran is refused with a UserError (delete that directory or use another out)."""
    t0 = time.perf_counter()
    out_dir = Path(out) if out is not None else default_out(study)
    _check_out_dir(study, out_dir)  # before anything runs: a changed file fails at once
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / study.path.name, study.path.read_text())  # the file that ran, beside its results
    echo(f"study {study.name}{' (quick)' if study.quick else ''}: {study.kinds()}  ·  output {out_dir}")
    rows: list[dict[str, Any]] = []
    trained = reused = 0
    interrupted = False
    hv_note = ""
    if study.train is not None:
        train_rows, trained, reused = _run_train(study.train, out_dir, echo)
        rows += train_rows
    if study.searches:
        from .search import shutdown

        try:
            search_rows, interrupted, hv_note = _run_searches(study.searches, out_dir, echo)
        finally:
            shutdown()
        rows += search_rows
    md = summary_markdown(study, rows, hv_note)
    write_atomic(out_dir / "summary.csv", summary_csv(rows))
    write_atomic(out_dir / "summary.md", md)
    return StudyResult(out_dir=out_dir, rows=rows, markdown=md, trained=trained, reused=reused,
                       interrupted=interrupted, wall_s=time.perf_counter() - t0)


class _Data:
    """The train and val sets, made on first use: a re-run that reuses every run never
    spends the seconds generating them."""

    def __init__(self, spec: TrainSpec):
        self.spec = spec
        self.sets: tuple[Any, Any] | None = None

    def get(self) -> tuple[Any, Any]:
        if self.sets is None:
            from .data import get_dataset

            s = self.spec
            self.sets = (get_dataset("synthetic", "train", frames=s.frames, size=s.size, n_clips=s.train_clips,
                                     num_classes=s.classes),
                         get_dataset("synthetic", "val", frames=s.frames, size=s.size, n_clips=s.val_clips,
                                     num_classes=s.classes))
        return self.sets


def _run_settings(spec: TrainSpec, genome: Genome, seed: int) -> dict[str, Any]:
    s = {k: getattr(spec, k) for k in RUN_SETTINGS if k not in ("genome", "seed")}
    return {"genome": str(genome), "seed": seed, **s}


def _run_dir(out_dir: Path, label: str, seed: int) -> Path:
    return out_dir / "train" / label / f"seed{seed}"


def _check_run_dir(spec: TrainSpec, genome: Genome, seed: int, run_dir: Path) -> None:
    """A run directory trained under other settings is refused, not silently reused."""
    stored_file = run_dir / RUN_SETTINGS_FILE
    if not stored_file.exists():
        return
    stored = yaml.safe_load(stored_file.read_text()) or {}
    settings = _run_settings(spec, genome, seed)
    for k in RUN_SETTINGS:
        if stored.get(k) != settings[k]:
            raise UserError(f"{run_dir} was trained with {k}={shorten(stored.get(k))}, the study now says {shorten(settings[k])}: "
                            "delete that directory or give another --out")


def _check_out_dir(study: Study, out_dir: Path) -> None:
    """Every finished or started run in ``out_dir`` must match the study as it is now."""
    if study.train is not None:
        for label, genome in study.train.genomes.items():
            for seed in study.train.seeds:
                _check_run_dir(study.train, genome, seed, _run_dir(out_dir, label, seed))
    for label, cfg in _search_configs(study.searches, out_dir).items():
        _check_stored_search(label, cfg)


def _train_one(spec: TrainSpec, genome: Genome, seed: int, run_dir: Path, data: _Data) -> tuple[dict, bool]:
    """One (genome, seed): its result, and whether it was reused (not trained now)."""
    from .train import TrainConfig, train

    result_file = run_dir / RESULT_FILE
    if result_file.exists():
        return yaml.safe_load(result_file.read_text()), True
    write_atomic(run_dir / RUN_SETTINGS_FILE, yaml.safe_dump(_run_settings(spec, genome, seed), sort_keys=False))
    train_set, val_set = data.get()
    cfg = TrainConfig(epochs=spec.epochs, batch_size=spec.batch, optimizer=spec.optimizer, lr=spec.lr, seed=seed,
                      zero_init_last_bn=spec.zero_init, device="cpu")
    r = train(genome, train_set, val_set, cfg, out_dir=run_dir)
    res = {"status": r.status, "reason": r.reason,
           "val_top1": r.history[-1].val_top1 if r.history else None,  # the last epoch's: no pick on val
           "best_top1": r.best_top1, "best_epoch": r.best_epoch, "epochs": len(r.history),
           "train_time_s": r.train_time_s}
    write_atomic(result_file, yaml.safe_dump(res, sort_keys=False))
    return res, False


def _run_train(spec: TrainSpec, out_dir: Path, echo: Callable[[str], None]) -> tuple[list[dict], int, int]:
    import torch

    from . import profile

    data = _Data(spec)
    cache = profile.ProfileCache(out_dir / "profiles.json")
    total = len(spec.genomes) * len(spec.seeds)
    done = trained = reused = 0
    rows = []
    threads = torch.get_num_threads()
    if spec.threads is not None:
        torch.set_num_threads(spec.threads)
    try:
        for label, genome in spec.genomes.items():
            results = []
            for seed in spec.seeds:
                res, was_reused = _train_one(spec, genome, seed, _run_dir(out_dir, label, seed), data)
                done += 1
                reused += was_reused
                trained += not was_reused
                how = "reused" if was_reused else f"{res['train_time_s']:.0f} s"
                status = "" if res["status"] == "ok" else f"  {res['status']}: {res['reason']}"
                top1 = f"{res['val_top1']:.3f}" if res["val_top1"] is not None else "-"
                echo(f"[train {done:>3}/{total}] {label} seed {seed}: top1 {top1}  ep {res['epochs']}  "
                     f"({how}){status}")
                results.append(res)
            rows.append(_train_row(spec, label, genome, results, cache))
    finally:
        torch.set_num_threads(threads)
    return rows, trained, reused


def _train_row(spec: TrainSpec, label: str, genome: Genome, results: list[dict], cache: Any) -> dict[str, Any]:
    from . import profile

    c = profile.cost(genome, spec.clip, method="fast", cache=cache)
    lat = profile.latency(genome, spec.clip, device="cpu", batch=1, runs=spec.latency_runs, cache=cache)
    ok = [r for r in results if r["status"] == "ok" and r["val_top1"] is not None]
    top1 = [r["val_top1"] for r in ok]
    failed = [r for r in results if r["status"] != "ok"]
    status = "ok" if not failed else f"{len(failed)} of {len(results)} failed: {failed[0]['status']}: {failed[0]['reason']}"
    return {
        "kind": "train", "label": label, "genome": str(genome), "seeds": " ".join(map(str, spec.seeds)),
        "val_top1_mean": statistics.fmean(top1) if top1 else None,
        "val_top1_std": statistics.stdev(top1) if len(top1) > 1 else None,
        "val_top1_per_seed": " ".join(f"{r['val_top1']:.4f}" if r["val_top1"] is not None else "-" for r in results),
        "params": c.params, "gmacs": c.gmacs, "latency_ms": lat.median_ms,
        "epochs": min(r["epochs"] for r in results),
        "train_s": statistics.fmean(r["train_time_s"] for r in results), "status": status,
    }


def _search_configs(searches: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Each search is an ordinary study of `archlab search` in <out>/searches/<label>/."""
    from dataclasses import replace

    return {label: replace(cfg, name=label, out=str(out_dir / "searches")) for label, cfg in searches.items()}


def _check_stored_search(label: str, cfg: Any) -> None:
    """A search directory that already holds a study must have been run with the settings
    the file gives now (search.prepare_study would silently keep the stored ones)."""
    from .results import load_study_info, parse_objectives

    d = cfg.study_dir()
    if not (d / "study.yaml").exists():
        return
    stored = load_study_info(d).settings
    objectives = parse_objectives(cfg.objectives)[0]
    if list(stored.get("objectives", [])) != objectives:
        raise UserError(f"search {shorten(label)} in {d} was run with objectives {stored.get('objectives')}, the study now "
                        f"says {objectives}: delete that directory or give another --out")
    for k, v in asdict(cfg).items():
        if k in SEARCH_FREE or k not in stored:
            continue
        if stored[k] != v:
            raise UserError(f"search {shorten(label)} in {d} was run with {k}={shorten(stored[k])}, the study now says {shorten(v)}: "
                            "delete that directory or give another --out")
    if int(stored.get("trials", 0)) > cfg.trials:
        raise UserError(f"search {shorten(label)} in {d} was run with trials={stored['trials']}, the study now says "
                        f"{cfg.trials}: a search can grow, not shrink; delete that directory or give another --out")


def _run_searches(searches: dict[str, Any], out_dir: Path, echo: Callable[[str], None]
                  ) -> tuple[list[dict], bool, str]:
    """Run (or continue) each search, then compare their fronts from one reference point."""
    import pandas as pd

    from . import pareto
    from .results import finished, load_results
    from .search import search

    configs = _search_configs(searches, out_dir)
    interrupted = False
    for label, cfg in configs.items():
        echo(f"[search {label}] space {cfg.space}, sampler {cfg.sampler}, {cfg.trials} trials x {cfg.epochs} epochs")
        try:
            outcome = search(cfg, resume=False, echo=lambda line, label=label: echo(f"[search {label}] {line}"))
        except UserError as e:
            raise UserError(f"search {shorten(label)}: {e}") from None
        if outcome.interrupted:
            interrupted = True
            break

    tables: dict[str, Any] = {}
    objectives = directions = None
    for label, cfg in configs.items():
        if not (cfg.study_dir() / "study.yaml").exists():
            continue  # not started (an interrupt came first)
        df, info = load_results(cfg.study_dir())
        tables[label] = df[~df["baseline"]]
        objectives, directions = info.objectives, info.directions
    rows: list[dict[str, Any]] = []
    if not tables:
        return rows, interrupted, ""
    every = pd.concat([finished(t) for t in tables.values()], ignore_index=True)
    ref = pareto.reference_point(every, objectives, directions)
    ref_text = ", ".join(f"{o}={r:.6g}" for o, r in zip(objectives, ref))
    for label, df in tables.items():
        cfg = configs[label]
        done = finished(df)
        rows.append({
            "kind": "search", "label": label, "space": Path(cfg.space).stem if cfg.space.endswith(".yaml") else cfg.space,
            "sampler": cfg.sampler, "objectives": ",".join(objectives), "trials": cfg.trials,
            "finished": len(done), "failed": int(df["status"].isin(["failed"]).sum()),
            "front_size": int(pareto.non_dominated(done, objectives, directions).sum()) if len(done) else 0,
            "best_val_top1": float(done["val_top1"].max()) if len(done) else None,
            "hypervolume": pareto.hypervolume(done, objectives, directions, ref) if len(done) else 0.0,
            "hv_reference": ref_text,
            "busy_s": float(pd.to_numeric(df["trial_time_s"], errors="coerce").fillna(0).sum()),
            "status": "ok" if len(done) >= cfg.trials else f"{len(done)} of {cfg.trials} trials finished",
        })
    note = (f"Hypervolume of each search's finished trials ({objectives[0]} {directions[0]}, {objectives[1]} "
            f"{directions[1]}) from ONE reference point over all searches' trials: {ref_text}.")
    return rows, interrupted, note


# ---- the summary -----------------------------------------------------------------------------

def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return v


def summary_csv(rows: list[dict[str, Any]]) -> str:
    """One row per entry; train and search rows share the kind and label columns."""
    columns = list(TRAIN_COLUMNS) if any(r["kind"] == "train" for r in rows) else []
    if any(r["kind"] == "search" for r in rows):
        columns += [c for c in SEARCH_COLUMNS if c not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns or ["kind", "label"], restval="", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(v) for k, v in r.items()})
    return buf.getvalue()


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
    return "\n".join(lines)


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def summary_markdown(study: Study, rows: list[dict[str, Any]], hv_note: str = "") -> str:
    parts = [f"# Study {study.name}{' (quick)' if study.quick else ''}", "", study.description, ""]
    train = [r for r in rows if r["kind"] == "train"]
    if train and study.train is not None:
        t = study.train
        parts += [f"Train: each genome {t.epochs} epoch(s), {t.optimizer} lr {t.lr:g}, batch {t.batch}, "
                  f"zero-init {'on' if t.zero_init else 'off'}; synthetic {t.frames}x{t.size}x{t.size}, "
                  f"{t.train_clips} train / {t.val_clips} val clips, {t.classes} classes (chance "
                  f"{1 / t.classes:.3f}); seeds {', '.join(map(str, t.seeds))}. val top-1 is the last epoch's.", ""]
        body = [[r["label"], _f(r["val_top1_mean"], ".3f") + (f" ± {r['val_top1_std']:.3f}"
                                                             if r["val_top1_std"] is not None else ""),
                 r["val_top1_per_seed"], f"{r['params']:,}", f"{r['gmacs']:.4f}", f"{r['latency_ms']:.2f}",
                 str(r["epochs"]), r["status"], f"`{r['genome']}`"] for r in train]
        parts += [_md_table(["genome", "val top-1 (mean ± std)", "per seed", "params", "GMACs", "latency ms",
                             "epochs", "status", "genome string"], body), "",
                  "MACs = multiply-adds of conv and linear layers; latency = median on CPU, batch 1, "
                  f"BatchNorm folded, {t.threads or 'default'} torch thread(s).", ""]
    search = [r for r in rows if r["kind"] == "search"]
    if search:
        body = [[r["label"], r["space"], r["sampler"], f"{r['finished']} / {r['trials']}", str(r["failed"]),
                 str(r["front_size"]), _f(r["best_val_top1"], ".3f"), _f(r["hypervolume"], ".4g"), r["status"]]
                for r in search]
        parts += [_md_table(["search", "space", "sampler", "finished", "failed", "front", "best val top-1",
                             "hypervolume", "status"], body), "", hv_note, ""]
    return "\n".join(parts)
