"""`archlab search`: Ray Tune runs the trials, Optuna proposes the genomes, ASHA stops weak
proxies early. The only module that imports ray.

One study = one directory (default ``runs/<name>/``):

    study.yaml     resolved settings (space, data, objectives, budget, seed, versions)
    optuna.db      Optuna storage: the single source of truth of what was tried. Study
                   ``<name>`` holds the proposals, ``<name>:baselines`` the reference points.
    ray/           Ray Tune's experiment (trial dirs, checkpoints), used to resume
    profiles.json  cached latency/MAC profiles by (genome id, input, batch, device)
    results.csv    one row per trial (derived from optuna.db), pareto.csv, front.yaml
    .lock          one writer at a time

Traps handled here (shared/STACK_NOTES.md): the objectives go to OptunaSearch only — a
metric on TuneConfig would silently make the study single-objective; ASHA prunes on
accuracy alone; after Ctrl-C ``Tuner.fit`` returns as if finished, so the driver counts
what really finished.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import math
import os
import platform
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import UserError
from .genome import Genome, parse
from .results import BASELINE_SUFFIX, FINISHED, load_study_info, parse_objectives, write_atomic, write_tables

FAILED_STATUSES = ("failed", "rejected")


@dataclass
class SearchConfig:
    """Everything that defines a study. Stored as study.yaml; a resumed study reuses it."""

    space: str = "interleave"
    name: str | None = None
    out: str = "runs"
    data: str = "synthetic"
    data_root: str | None = None
    data_opts: dict[str, Any] = field(default_factory=dict)  # passed to the dataset (e.g. n_clips, classes)
    frames: int = 8
    size: int = 32
    objectives: str = "acc,latency"
    trials: int = 12
    epochs: int = 5
    batch: int = 8
    # The proxy recipe, chosen by measurement on the synthetic benchmark (8x32x32, batch 8,
    # 5 epochs, 2-core CPU): with SGD (lr 0.025) or with zero-initialised residual branches,
    # 4-stage proxies stayed at chance (0.14-0.19, chance 0.167); AdamW at 2e-3 with plain
    # init took the same networks to 0.27-0.45. See README "Proxy recipe".
    optimizer: str = "adamw"
    lr: float = 0.002
    zero_init: bool = False
    sampler: str = "nsga2"
    concurrency: int | None = None  # None: as many as the CPUs/GPUs allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    seed: int = 0
    baselines: bool = False
    max_gmacs: float | None = None
    max_params: float | None = None
    storage: str | None = None  # an RDB URL for a shared database; default optuna.db in the study
    # ASHA: the fewest epochs a trial gets before it can be stopped. Proxies sit near chance
    # for their first 1-2 epochs, so stopping there is a coin toss; 3 of 5 lets them take off.
    grace_epochs: int = 3
    latency_runs: int = 5
    # Forms (forms.Form names) trials train and measure latency in; None = this machine's
    # calibrated choice (calibrate.training_form / inference_form), fixed in study.yaml when
    # the study is created so a resumed study keeps them. latency_runtime: torch | onnxruntime
    # | openvino (runtimes.py).
    train_form: str | None = None
    latency_form: str | None = None
    latency_runtime: str = "torch"
    workers: int = 0
    wandb: str = "auto"

    def study_dir(self) -> Path:
        return Path(self.out) / (self.name or f"{self.space}-{self.data}")


@dataclass
class SearchOutcome:
    study_dir: Path
    interrupted: bool
    finished: int
    failed: int
    rejected: int  # never trained: over a constraint, or interrupted before it started
    repeated: int  # never trained: an earlier trial's result reused
    wall_s: float
    ray_start_s: float
    hypervolume: float | None
    concurrency: int = 1  # trials that ran at once


# ---- the study directory and its lock ----------------------------------------------------

class StudyLock:
    """An exclusive flock on ``.lock``: the kernel drops it if the driver dies, so a killed
    search never leaves a study locked."""

    def __init__(self, study_dir: Path):
        self.path = study_dir / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "StudyLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise UserError(f"study {self.path.parent} is in use by another archlab search (pid {other}); "
                            "wait for it or use another --name") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


def _versions() -> dict[str, str]:
    import optuna
    import ray
    import torch

    from . import __version__
    return {"archlab": __version__, "python": platform.python_version(), "torch": str(torch.__version__),
            "ray": ray.__version__, "optuna": optuna.__version__}


def prepare_study(cfg: SearchConfig, resume: bool) -> tuple[SearchConfig, bool]:
    """Create or reopen the study directory. Returns the effective config (a resumed study
    keeps its stored settings; only --trials may grow) and whether this is a resume."""
    d = cfg.study_dir()
    stored = d / "study.yaml"
    if stored.exists():
        old = load_study_info(d).settings
        kept = {k: v for k, v in old.items() if k in SearchConfig.__dataclass_fields__}
        kept["out"] = cfg.out  # the study may have been moved
        kept["trials"] = max(int(old.get("trials", 0)), cfg.trials)
        kept["address"] = cfg.address
        kept["concurrency"] = cfg.concurrency
        return SearchConfig(**kept), True
    if resume:
        raise UserError(f"--resume: there is no study at {d} (no study.yaml)")
    return cfg, False


def write_settings(cfg: SearchConfig, objectives: list[str], directions: list[str]) -> None:
    d = cfg.study_dir()
    settings = asdict(cfg)
    settings["name"] = d.name
    settings["objectives"] = objectives
    settings["directions"] = directions
    settings["versions"] = _versions()
    write_atomic(d / "study.yaml", yaml.safe_dump(settings, sort_keys=False))


# ---- the trial -----------------------------------------------------------------------------

def _proxy_genome(space: Any, config: dict[str, Any], num_classes: int | None) -> Genome:
    if "genome" in config:  # a baseline: the genome is given, not proposed
        g = parse(config["genome"])
    else:
        g = space.from_params({k: v for k, v in config.items() if not k.startswith("_")})
    return g if num_classes is None else g.with_(classes=num_classes)


def _relative(path: str | Path, root: str) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


@functools.lru_cache(maxsize=2)
def _dataset(name: str, split: str, opts_json: str) -> Any:
    """A trial's dataset, kept by the worker process: Ray reuses a worker for the next trial
    (``reuse_actors``), which then skips generating or opening the data again (about 1 s of
    a 20-40 s proxy trial on the synthetic default)."""
    from .data import get_dataset

    return get_dataset(name, split, **json.loads(opts_json))


def run_trial(config: dict[str, Any]) -> None:
    """One Ray Tune trial: genome -> cheap costs -> constraint -> latency -> proxy training with a
    report per epoch. Failures are reported as a final result with status and reason, so the
    searcher records them (in Optuna) and the search goes on."""
    from ray import tune

    import torch

    from . import profile
    from .spaces import load_space
    from .train import TrainConfig, train

    s = config["_settings"]
    study_dir = s["study_dir"]
    threads = max(1, int(s["cpus_per_trial"]))
    torch.set_num_threads(threads)
    clip = (s["frames"], s["size"], s["size"])
    t_start = time.perf_counter()
    import ray

    # Every report carries the objectives and ASHA's metrics, even a failure's (Ray checks).
    base: dict[str, Any] = {"status": "running", "reason": "", "node": ray.get_runtime_context().get_node_id()[:12],
                            "val_top1": 0.0, "val_top5": 0.0, "epochs": 0, "gmacs": math.nan,
                            "params": 0, "latency_ms": math.inf}

    def final(status: str, reason: str, **metrics: Any) -> None:
        tune.report({**base, **metrics, "status": status, "reason": reason[:500],
                     "trial_time_s": time.perf_counter() - t_start})

    try:
        space = load_space(s["space"])
        data_opts = dict(frames=s["frames"], size=s["size"], root=s["data_root"], **s["data_opts"])
        train_set = _dataset(s["data"], "train", json.dumps(data_opts, sort_keys=True))
        val_set = _dataset(s["data"], "val", json.dumps(data_opts, sort_keys=True))
        genome = _proxy_genome(space, config, len(train_set.classes))
        cost = profile.cost(genome, clip)
        base.update(genome=str(genome), genome_id=genome.id, gmacs=cost.gmacs, params=cost.params,
                    val_top1=0.0, val_top5=0.0, epochs=0, label=config.get("_label", ""))
        device = "cuda" if torch.cuda.is_available() and s["gpus_per_trial"] > 0 else "cpu"
        cache = profile.ProfileCache(Path(study_dir) / "profiles" / f"{os.getpid()}.json")
        from .forms import Form

        lat_form = Form.parse(s["latency_form"]).with_threads(threads) if s.get("latency_form") else None
        lat = profile.latency(genome, clip, device=device, batch=1, runs=s["latency_runs"], cache=cache,
                              form=lat_form, runtime=s.get("latency_runtime") or "torch")
        base.update(latency_ms=lat.median_ms, clips_per_s=lat.clips_per_s, latency_form=lat.form,
                    latency_runtime=lat.runtime, train_form=s.get("train_form") or "")

        work = Path(tune.get_context().get_trial_dir()) / "work"
        ckpt = tune.get_checkpoint()
        if ckpt is not None:  # a restored trial continues from its last epoch
            ckpt.to_directory(str(work))
        cfg = TrainConfig(epochs=s["epochs"], batch_size=s["batch"], optimizer=s["optimizer"], lr=s["lr"],
                          zero_init_last_bn=s["zero_init"], seed=s["seed"], workers=s["workers"], device=device,
                          form=s.get("train_form"))

        train_time = [0.0]

        def on_epoch(m: Any) -> None:
            from ray.tune import Checkpoint

            done = m.epoch >= s["epochs"]
            train_time[0] += m.epoch_time_s
            metrics = {**base, "val_top1": m.val_top1, "val_top5": m.val_top5, "train_loss": m.train_loss,
                       "val_loss": m.val_loss, "epochs": m.epoch, "epoch_time_s": m.epoch_time_s,
                       "train_time_s": train_time[0], "trial_time_s": time.perf_counter() - t_start,
                       "status": "ok" if done else "running",
                       "checkpoint": _relative(work, study_dir)}
            tune.report(metrics, checkpoint=Checkpoint.from_directory(str(work)))

        result = train(genome, train_set, val_set, cfg, out_dir=work, on_epoch=on_epoch)
        if result.status != "ok":
            best = max((h.val_top1 for h in result.history), default=0.0)
            final("failed", f"{result.status}: {result.reason}", val_top1=best, epochs=len(result.history))
    except Exception as e:  # noqa: BLE001 - every failure is recorded, the search goes on
        if type(e).__name__ in ("StopIteration", "TuneError") or "ray" in type(e).__module__:
            raise
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        tb = traceback.format_exc()
        try:
            (Path(tune.get_context().get_trial_dir()) / "error.txt").write_text(tb)
        except OSError:
            pass
        final("failed", reason, latency_ms=base.get("latency_ms", math.inf))


# ---- the searchers: the one place that writes Optuna ----------------------------------------

class DefineByRun:
    """The space as Optuna's define-by-run function, plus the constraint check, run in the
    driver. A class (not a closure) because Ray pickles the searcher to resume it."""

    def __init__(self, space: str, max_gmacs: float | None, max_params: float | None, clip: tuple[int, int, int]):
        self.args = (space, max_gmacs, max_params)
        self.clip = clip
        self._space: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"args": self.args, "clip": self.clip, "_space": None}

    def __call__(self, trial: Any) -> dict[str, Any]:
        if self._space is None:
            from .spaces import load_space

            name, max_gmacs, max_params = self.args
            self._space = load_space(name, max_gmacs=max_gmacs, max_params=max_params)
        genome = self._space.suggest(trial)
        reason = self._space.violates(genome, self.clip)
        return {"_number": trial.number, "_rejected": reason or "", "_genome": str(genome)}


_ATTRS = ("genome", "genome_id", "label", "status", "reason", "val_top1", "val_top5", "latency_ms",
          "clips_per_s", "gmacs", "params", "epochs", "checkpoint", "train_time_s", "trial_time_s", "node",
          "train_form", "latency_form", "latency_runtime")


def _record(ot_trial: Any, trial_id: str, result: dict[str, Any] | None, error: bool) -> tuple[str, bool]:
    """Write the trial's outcome as user attributes (before Optuna is told: a finished trial
    cannot be changed). Returns (status, whether Optuna should count it as failed)."""
    result = dict(result or {})
    status = result.get("status", "failed" if error else "ok")
    if status == "running":  # the last report was an intermediate epoch: ASHA stopped it
        status = "stopped"
    if error and status not in FAILED_STATUSES:
        status, result["reason"] = "failed", result.get("reason") or "the trial's worker died (see ray/ logs)"
    result["status"] = status
    ot_trial.set_user_attr("ray_trial_id", trial_id)
    for k in _ATTRS:
        v = result.get(k)
        if v is None:
            continue
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        ot_trial.set_user_attr(k, v)
    return status, status in FAILED_STATUSES


MAX_REJECTIONS_IN_A_ROW = 1000
MAX_REPEATS_IN_A_ROW = 100  # a space smaller than the budget: stop instead of looping


def _optuna_search_class(echo: Callable[[str], None] = print) -> type:
    from ray.tune.search.optuna import OptunaSearch

    class RecordingOptunaSearch(OptunaSearch):
        """OptunaSearch that stores each trial's outcome in the study and tells Optuna FAIL for
        failed and rejected trials (so they never enter the front or the sampler's model).

        It also owns the budget: ``budget`` trials that TRAIN. A genome over a constraint is
        rejected here, in the driver, before Ray ever sees it: it is recorded in Optuna (status
        ``rejected``, with its GMACs and params) and the sampler is asked again. Launching it as
        a Ray trial instead cost about 4 s of a trial slot per rejection (measured on the
        default run), and a constraint must never eat the search's budget.

        A genome the study already trained to the end (NSGA-II's crossover proposes one again
        now and then: 1 of 12 on the default run) is not trained twice: the new trial records the
        earlier trial's result (status ``repeat``) and does not count towards the budget. Optuna
        is told FAIL, as for a rejection: told the copied values instead, the duplicates filled
        NSGA-II's population, its children became copies of the same parents, and a resumed
        16-genome search stopped as "exhausted" after 3 trained genomes. A repeat of a genome
        that is still training trains again (its result does not exist yet)."""

        budget: int = 0
        proposed: int = 0
        exhausted: bool = False  # every recent proposal was a genome already trained

        def suggest(self, trial_id: str) -> dict | None:
            from ray.tune.search import Searcher

            if self.exhausted or (trial_id not in self._ot_trials and self.proposed >= self.budget):
                return Searcher.FINISHED
            repeats = 0
            for _ in range(MAX_REJECTIONS_IN_A_ROW):
                config = super().suggest(trial_id)
                if not config:
                    break
                if config.get("_rejected"):
                    self._reject(trial_id, config)
                    continue
                earlier = self._trained_before(self._ot_trials[trial_id])
                if earlier is None:
                    break
                self._repeat(trial_id, earlier)
                repeats += 1
                if repeats >= MAX_REPEATS_IN_A_ROW:
                    self.exhausted = True
                    echo(f"[done]     the sampler proposed {repeats} trained genomes in a row: the space looks "
                         "exhausted, so the search ends here")
                    return Searcher.FINISHED
            else:
                raise UserError(f"{MAX_REJECTIONS_IN_A_ROW} proposals in a row broke the space's constraints or "
                                "repeated trained genomes: loosen --max-gmacs / --max-params or the space's limits")
            if config and trial_id not in self._counted:
                self._counted.add(trial_id)
                self.proposed += 1
            return config

        def _reject(self, trial_id: str, config: dict) -> None:
            import optuna

            from .profile import cost

            ot = self._ot_trials.pop(trial_id)
            genome = parse(config["_genome"])
            c = cost(genome, self._space.clip, method="fast")
            _record(ot, trial_id, {"genome": str(genome), "genome_id": genome.id, "gmacs": c.gmacs,
                                   "params": c.params, "status": "rejected", "reason": config["_rejected"],
                                   "epochs": 0}, False)
            self._ot_study.tell(ot, None, state=optuna.trial.TrialState.FAIL)
            echo(f"[rejected] #{ot.number} {genome}  -- {config['_rejected']} (not trained, not counted)")

        def _trained_before(self, ot: Any) -> Any:
            """The earliest trial of this study with the same parameters that trained to the end."""
            import optuna

            for t in self._ot_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
                if t.number != ot.number and t.params == ot.params and t.user_attrs.get("status") in FINISHED:
                    return t
            return None

        def _repeat(self, trial_id: str, earlier: Any) -> None:
            import optuna

            ot = self._ot_trials.pop(trial_id)
            for k, v in earlier.user_attrs.items():
                if k not in ("train_time_s", "trial_time_s", "node", "ray_trial_id"):  # it took no time here
                    ot.set_user_attr(k, v)
            ot.set_user_attr("ray_trial_id", trial_id)
            ot.set_user_attr("status", "repeat")
            ot.set_user_attr("reason", f"same genome as trial #{earlier.number}: its result reused, not retrained")
            self._ot_study.tell(ot, None, state=optuna.trial.TrialState.FAIL)
            echo(f"[repeat]   #{ot.number} {earlier.user_attrs.get('genome', '?')}  -- same genome as #{earlier.number}: "
                 "its result reused (not trained, not counted)")

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return super().on_trial_complete(trial_id, result, error)
            import optuna

            try:
                _, failed = _record(self._ot_trials[trial_id], trial_id, result, error)
            except optuna.exceptions.UpdateFinishedTrialError:
                # A resumed run re-reported a trial Optuna already holds as finished: keep it.
                self._completed_trials.add(trial_id)
                return None
            if failed:
                return super().on_trial_complete(trial_id, None, True)
            return super().on_trial_complete(trial_id, result, error)

    return RecordingOptunaSearch


def _fixed_search_class() -> type:
    from ray.tune.search import Searcher

    class FixedGenomes(Searcher):
        """Proposes a fixed list of genomes (the baselines) and records them in their own
        Optuna study beside the search's."""

        def __init__(self, genomes: list[tuple[str, str]], study: Any, metric: list[str], mode: list[str]):
            super().__init__(metric=None, mode=None)
            self.todo, self.study, self.ot_trials, self.objectives = list(genomes), study, {}, metric

        def suggest(self, trial_id: str) -> dict | None:
            if trial_id in self.ot_trials:
                return self.ot_trials[trial_id][1]
            if not self.todo:
                return Searcher.FINISHED
            label, genome = self.todo.pop(0)
            ot = self.study.ask()
            ot.set_user_attr("label", label)
            config = {"genome": genome, "_label": label}
            self.ot_trials[trial_id] = (ot, config)
            return config

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            import optuna

            ot, _ = self.ot_trials[trial_id]
            try:
                _, failed = _record(ot, trial_id, result, error)
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # already recorded before an interrupt

            values = None if failed or not result else [result.get(m) for m in self.objectives]
            state = optuna.trial.TrialState.FAIL if values is None else optuna.trial.TrialState.COMPLETE
            try:
                self.study.tell(ot, values, state=state)
            except Exception as e:  # noqa: BLE001 - already told (a restored run)
                logging.getLogger(__name__).debug("tell: %s", e)

    return FixedGenomes


def _sampler(name: str, seed: int, trials: int) -> Any:
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 3)))
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"--sampler {name!r}: use nsga2, tpe or random")


# ---- progress ------------------------------------------------------------------------------

def _progress_callback(echo: Callable[[str], None], total: int, label: str) -> Any:
    from ray.tune import Callback

    class Progress(Callback):
        """One concise line per finished trial, instead of Ray's table."""

        def __init__(self) -> None:
            self.done = 0
            self.last: dict[str, dict] = {}

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            self.last[trial.trial_id] = result

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._line(trial, self.last.get(trial.trial_id, trial.last_result or {}))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._line(trial, {"status": "failed", "reason": "the trial's worker died (see ray/ logs)"})

        def _line(self, trial: Any, r: dict) -> None:
            status = r.get("status", "?")
            status = "stopped" if status == "running" else status
            g = r.get("genome", "?")
            self.done += 1
            number = (trial.config or {}).get("_number")
            head = f"[{label} {self.done:>3}/{total}] " + (f"#{number:<3} " if number is not None else "") + f"{status:<8}"
            if status in FAILED_STATUSES:
                echo(f"{head} {g}  -- {r.get('reason', '')}")
                return
            echo(f"{head} acc {r.get('val_top1', 0):.3f}  lat {r.get('latency_ms', float('nan')):6.1f} ms  "
                 f"{r.get('gmacs', float('nan')):.3f} GMACs  ep {r.get('epochs', 0)}  {g}")

    return Progress()


# ---- the driver ------------------------------------------------------------------------------

def _init_ray(cfg: SearchConfig) -> float:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    t0 = time.perf_counter()
    if ray.is_initialized():
        return 0.0
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                                  configure_logging=True)
    try:
        if cfg.address:
            ray.init(address=cfg.address, **kwargs)
        else:
            import torch

            ray.init(num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(), **kwargs)
    except ConnectionError as e:
        raise UserError(f"--address {cfg.address}: cannot reach a Ray cluster there ({e})") from None
    return time.perf_counter() - t0


def _resources(cfg: SearchConfig) -> tuple[dict[str, float], int]:
    import ray

    res = ray.cluster_resources()
    cpus, gpus = res.get("CPU", 1.0), res.get("GPU", 0.0)
    if cfg.gpus_per_trial > gpus:
        raise UserError(f"--gpus-per-trial {cfg.gpus_per_trial}: the Ray cluster has {gpus:g} GPUs")
    if cfg.cpus_per_trial > cpus:
        raise UserError(f"--cpus-per-trial {cfg.cpus_per_trial}: the Ray cluster has {cpus:g} CPUs")
    fit = int(cpus // cfg.cpus_per_trial)
    if cfg.gpus_per_trial > 0:
        fit = min(fit, int(gpus // cfg.gpus_per_trial))
    concurrency = cfg.concurrency or max(1, fit)
    return {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial}, concurrency


def _close_orphans(study: Any, known: set[Any]) -> None:
    """A driver killed between asking Optuna for a trial and Ray saving its experiment leaves
    an Optuna trial RUNNING that Ray never heard of: nothing will ever finish it. Close it as
    'interrupted' (not counted against the budget, not in the front)."""
    import optuna

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.number in known:
            continue
        study._storage.set_trial_user_attr(t._trial_id, "status", "interrupted")
        study._storage.set_trial_user_attr(t._trial_id, "reason", "the driver stopped before the trial started")
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)


def _count(study: Any) -> tuple[int, int, int, int, int]:
    """(finished, failed, rejected or interrupted, repeats, running) trials in an Optuna study;
    only the first two were trained and count towards the budget."""
    import optuna

    fin = fail = rej = rep = run = 0
    for t in study.get_trials(deepcopy=False):
        st = t.user_attrs.get("status")
        if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING):
            run += 1
        elif st in ("rejected", "interrupted"):
            rej += 1
        elif st == "repeat":
            rep += 1
        elif t.state == optuna.trial.TrialState.FAIL:
            fail += 1
        else:
            fin += 1
    return fin, fail, rej, rep, run


def _tune(cfg: SearchConfig, study_dir: Path, name: str, searcher: Any, num_samples: int, settings: dict,
          concurrency: int, resources: dict, callbacks: list, scheduler: Any | None) -> Any:
    from ray import tune

    trainable = tune.with_resources(tune.with_parameters(_trial_entry, settings=settings), resources)
    path = study_dir.resolve() / "ray" / name
    if tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_errored=True,
                                   param_space={})
    else:
        tuner = tune.Tuner(
            trainable,
            # reuse_actors: a new trial runs in a finished trial's worker process instead of a
            # fresh one, saving the process start and imports (~2.5 s per trial, measured on
            # the default run, 12% of a short proxy trial).
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=num_samples,
                                        max_concurrent_trials=concurrency, reuse_actors=True),
            run_config=tune.RunConfig(name=name, storage_path=str(study_dir.resolve() / "ray"), verbose=0,
                                      callbacks=callbacks,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
    return tuner.fit()


def _trial_entry(config: dict[str, Any], settings: dict[str, Any]) -> None:
    run_trial({**config, "_settings": settings})


def baseline_genomes(g: Genome) -> list[tuple[str, str]]:
    """The paper's reference points on the skeleton of ``g`` (same depth per stage, widths,
    strides and stem): pure A, B, C, all-2D, and the global A->B->C interleave, each with a
    2D last stage as in the paper."""
    from .presets import p3d_letters

    depths = tuple(s.depth for s in g.stages)
    out = []
    for label, cycle in (("pure A", "A"), ("pure B", "B"), ("pure C", "C"), ("2D", "2"), ("A->B->C", "ABC")):
        letters = p3d_letters(depths, cycle=cycle, n_2d_stages=1 if len(depths) > 1 else 0).split("|")
        stages = tuple(s.__class__(letters=l, width=s.width, stride=s.stride, temporal=s.temporal)
                       for s, l in zip(g.stages, letters))
        out.append((label, str(g.with_(stages=stages, family="bottleneck"))))
    return out


def search(cfg: SearchConfig, resume: bool = False, echo: Callable[[str], None] = print) -> SearchOutcome:
    """Run (or continue) a study; returns what happened. Never loses a finished trial: every
    outcome is in optuna.db before the next trial starts, and tables are rewritten at the end
    even after an interrupt."""
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from .data import DATASETS
    from .spaces import load_space

    t_start = time.perf_counter()
    # Our define-by-run function counts MACs on a meta-device model (~1 s the first time).
    warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space`")
    objectives, directions = parse_objectives(cfg.objectives)
    _sampler(cfg.sampler, cfg.seed, cfg.trials)  # validate before touching anything
    if cfg.data not in DATASETS:
        raise UserError(f"--data {cfg.data!r}: use one of {', '.join(DATASETS)}")
    if cfg.data != "synthetic" and not cfg.data_root:
        raise UserError(f"--data {cfg.data} needs --data-root PATH")
    if cfg.trials < 1 or cfg.epochs < 1:
        raise UserError("--trials and --epochs must be at least 1")
    if cfg.grace_epochs < 1:
        raise UserError("--grace-epochs must be at least 1")
    if not cfg.lr > 0:
        raise UserError(f"--lr {cfg.lr}: must be positive")
    if cfg.optimizer not in ("adamw", "sgd"):
        raise UserError(f"--optimizer {cfg.optimizer!r}: use adamw or sgd")
    load_space(cfg.space, max_gmacs=cfg.max_gmacs, max_params=cfg.max_params)  # a bad space fails here
    cfg, resumed = prepare_study(cfg, resume)
    if not resumed:
        from .calibrate import search_forms

        cfg = search_forms(cfg)
    study_dir = cfg.study_dir()
    name = study_dir.name

    with StudyLock(study_dir):
        if not resumed:
            write_settings(cfg, objectives, directions)
        info = load_study_info(study_dir)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(info.storage_url)
        ray_start = _init_ray(cfg)
        resources, concurrency = _resources(cfg)
        settings = {k: getattr(cfg, k) for k in ("space", "data", "data_root", "data_opts", "frames", "size", "epochs", "batch", "optimizer", "lr", "zero_init",
                                                 "seed", "cpus_per_trial", "gpus_per_trial", "max_gmacs",
                                                 "max_params", "latency_runs", "workers", "train_form",
                                                 "latency_form", "latency_runtime")}
        settings["study_dir"] = str(study_dir.resolve())
        define = DefineByRun(cfg.space, cfg.max_gmacs, cfg.max_params, (cfg.frames, cfg.size, cfg.size))

        study = optuna.create_study(study_name=name, storage=storage, directions=[
            "maximize" if d == "max" else "minimize" for d in directions], load_if_exists=True)
        fin0, fail0, _, _, _ = _count(study)
        done_before = fin0 + fail0
        todo = cfg.trials - done_before
        echo(f"study {study_dir}  ·  space {cfg.space}  ·  data {cfg.data} {cfg.frames}x{cfg.size}x{cfg.size}  ·  "
             f"objectives {', '.join(f'{o} ({d})' for o, d in zip(objectives, directions))}")
        echo(f"{'resuming: ' + str(done_before) + ' trials already done, ' if resumed else ''}"
             f"{max(todo, 0)} trials to run, {concurrency} at a time, {cfg.epochs} epochs each "
             f"(ASHA on val_top1, grace {cfg.grace_epochs})  ·  Ray started in {ray_start:.1f} s")
        wandb_cb = _wandb_callbacks(cfg, study_dir, echo)
        exhausted = False  # the sampler only proposed genomes already trained: a space smaller than --trials
        if todo > 0 or tune.Tuner.can_restore(str(study_dir.resolve() / "ray" / name)):
            searcher = _optuna_search_class(echo)(
                space=define, metric=objectives, mode=directions, sampler=_sampler(cfg.sampler, cfg.seed, cfg.trials),
                storage=storage, study_name=name)
            searcher.budget, searcher.proposed, searcher._counted = cfg.trials, done_before, set()
            scheduler = ASHAScheduler(metric="val_top1", mode="max", max_t=cfg.epochs,
                                      grace_period=min(cfg.grace_epochs, cfg.epochs), reduction_factor=2,
                                      time_attr="epochs")
            # Rejected genomes end at once and do not count: allow for many of them.
            grid = _tune(cfg, study_dir, name, searcher, cfg.trials * 10, settings, concurrency, resources,
                  [_progress_callback(echo, cfg.trials, "trial"), *wandb_cb], scheduler)
            _close_orphans(study, {r.config.get("_number") for r in grid if r.config})
            exhausted = searcher.exhausted
        fin, fail, rej, rep, running = _count(study)
        interrupted = running > 0 or (fin + fail < cfg.trials and not exhausted)

        if cfg.baselines and not interrupted:
            interrupted = _run_baselines(cfg, study_dir, name, storage, directions, objectives, settings,
                                         concurrency, resources, wandb_cb, echo)

        df, _, hv = write_tables(study_dir)
        _finish_wandb(wandb_cb, df, hv)
    return SearchOutcome(study_dir=study_dir, interrupted=interrupted, finished=fin, failed=fail, rejected=rej, repeated=rep,
                         wall_s=time.perf_counter() - t_start, ray_start_s=ray_start,
                         hypervolume=hv.get("hypervolume"), concurrency=concurrency)


def _run_baselines(cfg: SearchConfig, study_dir: Path, name: str, storage: Any, directions: list[str],
                   objectives: list[str], settings: dict, concurrency: int, resources: dict, wandb_cb: list,
                   echo: Callable[[str], None]) -> bool:
    import optuna

    from .results import finished, load_results

    df, _ = load_results(study_dir)
    search_df = finished(df[~df["baseline"]])
    if search_df.empty:
        echo("baselines: skipped (no finished search trial to take the skeleton from)")
        return False
    from .pareto import knee_point

    knee = parse(search_df.loc[knee_point(search_df, objectives, directions), "genome"])
    bstudy = optuna.create_study(study_name=name + BASELINE_SUFFIX, storage=storage, load_if_exists=True,
                                 directions=["maximize" if d == "max" else "minimize" for d in directions])
    done = {t.user_attrs.get("label") for t in bstudy.get_trials(deepcopy=False)
            if t.state != optuna.trial.TrialState.RUNNING}
    todo = [(l, g) for l, g in baseline_genomes(knee) if l not in done]
    if not todo:
        return False
    echo(f"baselines on the knee point's skeleton ({knee}): {', '.join(l for l, _ in todo)}")
    searcher = _fixed_search_class()(todo, bstudy, objectives, directions)
    _tune(cfg, study_dir, name + "-baselines", searcher, len(todo), settings, concurrency, resources,
          [_progress_callback(echo, len(todo), "baseline"), *wandb_cb], None)
    fin, fail, _, _, running = _count(bstudy)
    return running > 0 or fin + fail < len(todo) + len(done)


# W&B lives in tracking.py; the search only hands it Ray callbacks (none until it exists).
def _wandb_callbacks(cfg: SearchConfig, study_dir: Path, echo: Callable[[str], None]) -> list:
    try:
        from .tracking import search_callbacks
    except ImportError:
        return []
    return search_callbacks(cfg.wandb, study_dir, echo)


def _finish_wandb(callbacks: list, df: Any, hv: dict) -> None:
    for cb in callbacks:
        finish = getattr(cb, "finish_study", None)
        if finish is not None:
            finish(df, hv)


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
