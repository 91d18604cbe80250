"""Which form (precision x memory format x threads) is fastest AND safe on this machine.

Why measure instead of hard-coding: bf16 + channels_last_3d trains proxies much faster on
a CPU with bf16 instructions and may be slower on one without, and the per-device defaults
had been measured on a CPU where channels_last_3d alone was slower
(docs/notebook/calibration.md). The answer belongs to the machine, so it is measured once per
machine and cached:

* **timing**: every candidate training form runs the search's proxy training step (the
  proxy genome at batch 8x8x32x32, AdamW, the thread count trials run with) and every
  candidate inference form runs a preset's forward (BN folded, as latency is measured),
  interleaved round-robin in ONE run (``form_checks``), so every form sees the same
  minutes of machine load; medians are compared as ratios to fp32/ncdhw.
* **numerics** (``check_training`` / ``check_inference``): a form is only eligible if it
  computes what fp32 computes, closely enough that it cannot reorder a search:

  - training: from the same initial weights, ``NUMERICS_STEPS`` AdamW steps (20% warm-up,
    cosine to 0) over ``NUMERICS_BATCHES`` fixed batches of the synthetic proxy task, cycled
    so the network memorises them and the loss falls from ~1.8 to ~0.7 nats (on fresh
    batches a proxy stays at chance for its first 40 steps, and a check of a flat curve
    detects nothing). Run at the search's LR (2e-3) and at 2e-4 (where the cosine ends and
    bf16 weights lose updates below 2^-8 of a weight); at both, the mean loss over the
    second half of the steps must be within ``TRAIN_LOSS_TOL`` (0.02 nats) of fp32's, every
    loss finite. Why 0.02: fp32 runs that differ only in the init seed differ by more than
    that on this check, while fp32 channels_last_3d and bf16 autocast stay well inside it: a
    form inside 0.02 perturbs the trajectory less than re-seeding does, so it cannot reorder a
    search more than seed noise; bf16 weights exceed it, most at 2e-4: updates are being lost
    (docs/notebook/calibration.md).
  - every convolution (``conv_checks``): the proxy never runs some shapes a search
    builds, and a kernel can be wrong for one shape only. For every distinct 3D conv
    geometry of ``COVERAGE_GENOMES`` (every block letter under each temporal skeleton, so
    every frame count 8/4/2/1 of the proxy clip), with the input layout the network really
    hands it in that form, the output and the weight and input gradients from random
    weights, inputs and upstream gradients (``CONV_REPS`` draws) must be within
    ``CONV_REL_TOL`` (0.05, relative L2) of fp32's and finite. Why 0.05: a correct bf16
    kernel stays an order of magnitude inside it, a wrong kernel gives >= 1 or inf; torch
    2.13's CPU bf16 weight gradient of a temporal kernel on exactly 2 frames was such a kernel on
    one CPU, which the loss-curve check alone had passed (docs/notebook/calibration.md).
  - inference: max |logits - fp32 logits| <= ``INFER_REL_TOL`` (2e-2) x max |fp32 logits|
    on random clips. bf16 keeps 8 significant bits (2^-8 = 4e-3 per rounding); 60 layers
    of it accumulate to ~1e-2 of the output scale, a wrong kernel gives O(1).
* **choice** (``choose``): the fastest form that passes, provided it beats fp32/ncdhw by
  ``MIN_GAIN`` (5%): a gain inside the noise of a shared machine is no reason to change
  the numerics. fp32/ncdhw (the reference) always passes, so nothing gets slower.

The cache is a JSON file in the user's cache directory (``$ARCHLAB_CACHE_DIR``, else
``$XDG_CACHE_HOME/archlab``, else ``~/.cache/archlab``; never the repository), keyed by
``machine_key``: CPU model, ISA flags, torch version and CUDA device, so a new CPU or a
torch upgrade is measured again. ``ARCHLAB_CALIBRATION=off`` never measures (today's
defaults: ``forms.default_training_form``), ``=refresh`` measures again on next use,
``auto`` (default) measures on first use. On CUDA, calibration is not run automatically
(not measured on a GPU yet): the defaults stay unless ``archlab calibrate --device cuda``
was run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from ..measure.forms import CALIBRATED, FP32, Form, candidates, default_inference_form, default_training_form
from ..util.errors import UserError
from ..util.files import atomic_write
from ..util.versions import cpu_name
from .form_checks import (  # noqa: F401 - re-exported: what a calibration measures
    CONV_REL_TOL,
    COVERAGE_GENOMES,
    INFER_REL_TOL,
    NUMERICS_BATCHES,
    NUMERICS_LRS,
    NUMERICS_STEPS,
    PROXY_BATCH,
    PROXY_CLIP,
    PROXY_GENOME,
    TRAIN_LOSS_TOL,
    check_inference,
    check_training,
    conv_checks,
    inference_runners,
    loss_curve,
    numerics_checks,
    proxy_batches,
    tail_mean,
    time_forms,
    training_steppers,
)

INFER_GENOME = "p3d63"
INFER_CLIP = (16, 160, 160)
MIN_GAIN = 1.05  # a form must be 5% faster than fp32/ncdhw to be chosen
CACHE_FILE = "calibration.json"
CACHE_VERSION = 2  # 2: training forms also pass the per-convolution check (an older choice may not)
ENV_MODE = "ARCHLAB_CALIBRATION"  # auto | off | refresh
ENV_DIR = "ARCHLAB_CACHE_DIR"


# ---- what a calibration holds --------------------------------------------------------------


@dataclass
class Row:
    """One candidate form: its timing and its numerics check."""

    kind: str  # "training" | "inference"
    form: str  # Form.name, with threads
    median_ms: float
    speedup: float  # fp32/ncdhw median / this median, same threads
    runs: int
    numerics: float  # training: |mean loss diff| (nats); inference: max rel error
    tol: float
    ok: bool  # numerics within tol and finite (training: the conv check too)
    note: str = ""
    conv_error: float = 0.0  # training: worst per-conv relative gradient error (conv_checks)
    conv_tol: float = CONV_REL_TOL
    conv_worst: str = ""  # the geometry of that worst error


@dataclass
class Calibration:
    key: str
    machine: dict[str, Any]
    created: str
    device: str
    rows: list[Row]
    training: dict[str, str]  # threads -> chosen Form.name
    inference: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "version": CACHE_VERSION}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Calibration":
        return cls(
            key=d["key"],
            machine=d["machine"],
            created=d["created"],
            device=d["device"],
            rows=[Row(**r) for r in d["rows"]],
            training=dict(d["training"]),
            inference=dict(d["inference"]),
            settings=dict(d.get("settings", {})),
        )


# ---- the cache -------------------------------------------------------------------------------


def isa_flags() -> list[str]:
    """The CPU flags that decide which kernels oneDNN runs (vector widths, bf16/int8 dot
    products, AMX tiles), sorted; other flags do not change speed and would only split the
    cache between machines that are the same for us."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    keep = ("avx", "amx", "fma", "f16c", "sse4", "neon", "sve", "asimd", "bf16", "vnni")
    return sorted(f for f in flags if f.startswith(keep) or any(k in f for k in ("bf16", "vnni", "amx")))


def machine_key(device: torch.device | str = "cpu") -> tuple[str, dict[str, Any]]:
    """(hash, what it hashes): CPU model, ISA flags, torch version and capability, CUDA device."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device}: no CUDA GPU is visible to torch on this machine")
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "isa": isa_flags(),
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "device": dev.type,
        "cuda": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
    }
    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]
    return digest, info


def cache_dir() -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archlab"


def mode() -> str:
    m = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if m not in ("auto", "off", "refresh"):
        raise UserError(f"{ENV_MODE}={m!r} must be auto, off or refresh")
    return m


def _read_all(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}  # a corrupt cache is re-measured, never an error


def load(device: torch.device | str = "cpu") -> Calibration | None:
    """This machine's cached calibration, or None (none yet, another machine's, or corrupt)."""
    key, _ = machine_key(device)
    entry = _read_all(cache_dir() / CACHE_FILE).get(key)
    if not isinstance(entry, dict) or entry.get("version") != CACHE_VERSION:
        return None
    try:
        return Calibration.from_dict(entry)
    except (KeyError, TypeError):
        return None


def save(cal: Calibration) -> Path:
    """Merge into the cache file (other machines' entries kept), atomically, under a lock."""
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / CACHE_FILE
    with open(d / ".calibration.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _read_all(path)
        data[cal.key] = cal.to_dict()
        atomic_write(path, json.dumps(data, indent=1))
    return path


# ---- the choice ------------------------------------------------------------------------------


def choose(timings: dict[Form, float], ok: dict[Form, bool], min_gain: float = MIN_GAIN) -> Form:
    """The fastest form whose numerics passed, if it beats the fp32/ncdhw reference (same
    threads as the candidates) by ``min_gain``; else that reference. A form absent from
    ``ok`` or failing it is never chosen, however fast."""
    threads = {f.threads for f in timings}
    if len(threads) != 1:
        raise ValueError(f"choose() compares forms at one thread count, got {sorted(map(str, threads))}")
    ref = FP32.with_threads(threads.pop())
    if ref not in timings:
        raise ValueError(f"the reference {ref} must be among the timed forms")
    passing = [f for f in timings if f == ref or ok.get(f, False)]
    passing = [f for f in passing if math.isfinite(timings[f])]
    best = min(passing, key=lambda f: (timings[f], f != ref))
    return best if timings[ref] >= min_gain * timings[best] else ref


# ---- a calibration ------------------------------------------------------------------------------


def _parse_threads(threads: Iterable[int] | None) -> tuple[int, ...]:
    ts = tuple(threads) if threads else (1,)
    if not ts or any(int(t) < 1 for t in ts):
        raise UserError(f"threads {ts} must be positive")
    return tuple(int(t) for t in ts)


def run(
    device: str = "cpu",
    *,
    train_threads: Iterable[int] | None = None,
    infer_threads: Iterable[int] | None = None,
    train_genome: str = PROXY_GENOME,
    train_clip: tuple[int, int, int] = PROXY_CLIP,
    train_batch: int = PROXY_BATCH,
    infer_genome: str = INFER_GENOME,
    infer_clip: tuple[int, int, int] = INFER_CLIP,
    train_runs: int = 15,
    infer_runs: int = 8,
    numerics_steps: int = NUMERICS_STEPS,
    forms: Sequence[Form] | None = None,
    coverage: Sequence[str] | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> Calibration:
    """Time and check every candidate form; the choice per thread count. Writes nothing.
    ``coverage``: the genomes whose conv geometries the training forms must compute right
    (default ``COVERAGE_GENOMES``)."""
    from ..model.presets import resolve

    if device != "cpu":
        raise UserError(
            f"calibration on {device!r} is not implemented: it has only been run on CPU "
            "(the CUDA defaults stay bf16 autocast + channels_last_3d)"
        )
    if numerics_steps < 4:
        raise UserError(f"numerics steps {numerics_steps} must be at least 4")
    tg, ig = resolve(train_genome), resolve(infer_genome)
    coverage = list(coverage if coverage is not None else COVERAGE_GENOMES)
    tt, it = _parse_threads(train_threads), _parse_threads(infer_threads)
    base = list(forms) if forms is not None else candidates()
    before = torch.get_num_threads()
    rows: list[Row] = []
    training: dict[str, str] = {}
    inference: dict[str, str] = {}
    try:
        # numerics of training (threads do not change what is computed: checked at the first count)
        log(f"numerics: {numerics_steps} proxy training steps per form and LR from one init ...")
        batches = proxy_batches(numerics_steps, train_batch, train_clip, distinct=NUMERICS_BATCHES)
        checks, refs = numerics_checks(tg, base, batches, tt[0])
        noise = tail_mean(loss_curve(tg, FP32.with_threads(tt[0]), batches, init_seed=1, lr=NUMERICS_LRS[0]))
        seed_noise = abs(noise - tail_mean(refs[NUMERICS_LRS[0]]))
        cover = [resolve(g) for g in coverage]
        log(f"numerics: every conv geometry of {len(cover)} coverage genome(s), per form, against fp32 ...")
        torch.set_num_threads(tt[0])
        convs = conv_checks(base, cover, train_clip, train_batch)

        tforms = [f.with_threads(t) for t in tt for f in base]
        log(
            f"timing {len(tforms)} training forms x {train_runs} round-robin steps "
            f"({train_genome}, batch {train_batch}x{'x'.join(map(str, train_clip))}) ..."
        )
        tms = time_forms(training_steppers(tg, tforms, train_batch, train_clip), train_runs)
        for t in tt:
            here = {f: tms[f.name] for f in tforms if f.threads == t}
            ref_ms = here[FP32.with_threads(t)]
            passed = {}
            for f, ms in here.items():
                diff, ok = checks[f.with_threads(None)]
                cerr, cok, worst = convs[f.with_threads(None)]
                passed[f] = ok and cok
                rows.append(
                    Row(
                        "training",
                        f.name,
                        ms,
                        ref_ms / ms,
                        train_runs,
                        diff,
                        TRAIN_LOSS_TOL,
                        ok and cok,
                        "reference" if f.with_threads(None) == FP32 else "",
                        cerr,
                        CONV_REL_TOL,
                        worst,
                    )
                )
            training[str(t)] = choose(here, passed).name

        iforms = [f.with_threads(t) for t in it for f in base]
        log(
            f"timing {len(iforms)} inference forms x {infer_runs} round-robin forwards "
            f"({infer_genome}, 1x{'x'.join(map(str, infer_clip))}, BN folded) ..."
        )
        runners, _ = inference_runners(ig, iforms, infer_clip)
        outs = {name: fn() for name, fn in runners.items()}
        ims = time_forms(runners, infer_runs, warmup=1)
        for t in it:
            here = {f: ims[f.name] for f in iforms if f.threads == t}
            ref_f = FP32.with_threads(t)
            ichecks = {f: check_inference(outs[ref_f.name], outs[f.name]) for f in here}
            for f, ms in here.items():
                rel, ok = ichecks[f]
                rows.append(
                    Row(
                        "inference",
                        f.name,
                        ms,
                        here[ref_f] / ms,
                        infer_runs,
                        rel,
                        INFER_REL_TOL,
                        ok,
                        "reference" if f == ref_f else "",
                    )
                )
            inference[str(t)] = choose(here, {f: ichecks[f][1] for f in here}).name
    finally:
        torch.set_num_threads(before)
    key, info = machine_key(device)
    settings = {
        "train_genome": train_genome,
        "train_clip": list(train_clip),
        "train_batch": train_batch,
        "infer_genome": infer_genome,
        "infer_clip": list(infer_clip),
        "numerics_steps": numerics_steps,
        "train_loss_tol": TRAIN_LOSS_TOL,
        "infer_rel_tol": INFER_REL_TOL,
        "min_gain": MIN_GAIN,
        "conv_rel_tol": CONV_REL_TOL,
        "coverage": coverage,
        "fp32_seed_noise_nats": seed_noise,
    }
    return Calibration(
        key=key,
        machine=info,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        device=device,
        rows=rows,
        training=training,
        inference=inference,
        settings=settings,
    )


# ---- the lookups the rest of archlab calls ------------------------------------------------------


def _lookup(choices: dict[str, str], threads: int) -> Form | None:
    """The choice at ``threads``, else at the nearest thread count measured."""
    if not choices:
        return None
    t = min(choices, key=lambda k: (abs(int(k) - threads), int(k)))
    return Form.parse(choices[t]).with_threads(threads)


def _get(device: torch.device | str, log: Callable[[str], None]) -> Calibration | None:
    dev = torch.device(device)
    m = mode()
    if m == "off":
        return None
    cal = None if m == "refresh" else load(dev)
    if cal is None and dev.type == "cpu":
        log(
            "calibrating this machine's training and inference forms once (archlab calibrate; "
            f"{ENV_MODE}=off to skip) ..."
        )
        cal = run("cpu", log=log)
        save(cal)
        if m == "refresh":
            os.environ[ENV_MODE] = "auto"  # refreshed once per process, not on every lookup
    return cal


def training_form(
    device: torch.device | str = "cpu",
    threads: int | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> Form:
    """The form training should use on ``device`` at ``threads`` (default: torch's current
    count): the cached calibration's choice, measured on first use (CPU only); the defaults
    of ``forms`` with ``ARCHLAB_CALIBRATION=off``, on CUDA, or when nothing fits."""
    threads = threads or torch.get_num_threads()
    cal = _get(device, log) if torch.device(device).type == "cpu" else load(device) if mode() != "off" else None
    chosen = _lookup(cal.training, threads) if cal else None
    return chosen or default_training_form(device).with_threads(threads)


def inference_form(
    device: torch.device | str = "cpu",
    threads: int | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> Form:
    """The form latency is measured (and a model deployed) in; as ``training_form``."""
    threads = threads or torch.get_num_threads()
    cal = _get(device, log) if torch.device(device).type == "cpu" else load(device) if mode() != "off" else None
    chosen = _lookup(cal.inference, threads) if cal else None
    return chosen or default_inference_form(device).with_threads(threads)


def _conv_failure(r: Row) -> str | None:
    """How a training row failed the conv check, or None (it passed it, or is not training)."""
    if r.kind != "training" or r.note == "reference" or r.conv_error <= r.conv_tol:
        return None
    return f"worst {r.conv_worst} ({r.conv_error:.1e} rel, tolerance {r.conv_tol:.0e})"


def failed_check(form: Form | str, kind: str = "training", device: torch.device | str = "cpu") -> str | None:
    """Why this machine's cached calibration failed ``form`` for ``kind``, or None (it passed,
    or nothing is cached: this never measures). A user may still name a failing form; they
    are told once, with the reason, instead of finding NaN trials later."""
    try:
        cal = load(device) if mode() != "off" else None
    except UserError:
        return None
    if cal is None:
        return None
    name = (Form.parse(form) if isinstance(form, str) else form).with_threads(None).name
    for r in cal.rows:
        if r.kind == kind and Form.parse(r.form).with_threads(None).name == name and not r.ok:
            why = _conv_failure(r) or f"numerics {r.numerics:.3g} (tolerance {r.tol:.3g})"
            return (
                f"{name} failed this machine's {kind} numerics check ({why}; archlab calibrate --show): "
                "its results may diverge or differ from fp32"
            )
    return None


def warn_if_failed(form: Form | str | None, kind: str = "training", device: torch.device | str = "cpu") -> None:
    if form is None or str(form) == CALIBRATED:
        return
    why = failed_check(form, kind, device)
    if why:
        print(f"warning: {why}", file=sys.stderr, flush=True)


# ---- printing -----------------------------------------------------------------------------------


def table(cal: Calibration) -> str:
    from ..util.tables import text_table

    header = ["kind", "form", "median ms", "vs fp32/ncdhw", "numerics", "tolerance", "convs", "check", "chosen"]
    chosen = {("training", v) for v in cal.training.values()} | {("inference", v) for v in cal.inference.values()}
    body = []
    for r in cal.rows:
        num = f"{r.numerics:.3f} nats" if r.kind == "training" else f"{r.numerics:.1e} rel"
        tol = f"{r.tol:.3f} nats" if r.kind == "training" else f"{r.tol:.1e} rel"
        conv = "-" if r.kind != "training" or r.note == "reference" else f"{r.conv_error:.1e} rel"
        body.append(
            [
                r.kind,
                r.form,
                f"{r.median_ms:.1f}",
                f"{r.speedup:.2f}x",
                num if r.note != "reference" else "-",
                tol if r.note != "reference" else "-",
                conv,
                ("pass" if r.ok else "FAIL") if r.note != "reference" else "reference",
                "<-" if (r.kind, r.form) in chosen else "",
            ]
        )
    lines = [f"{r.form}: {why}" for r in cal.rows if (why := _conv_failure(r))]
    return "\n".join([text_table(header, body), *lines])


# ---- wiring ---------------------------------------------------------------------------------------


def search_forms(cfg: Any) -> Any:
    """A new search's config with ``train_form`` / ``latency_form`` fixed: as given, or, for
    ``"calibrated"`` (an opt-in: it may calibrate this machine first, ~3 min), this
    machine's calibrated choice at the trials' thread count (``cpus_per_trial``). Stored in
    study.yaml, so every trial of the study (and a resumed one) uses the same forms and its
    latencies are points of one front. A latency runtime other than torch runs the exported
    fp32 graph: its form is that runtime's (recorded per trial as latency_form)."""
    device = "cuda" if cfg.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"
    threads = max(1, int(cfg.cpus_per_trial))
    train, latency = cfg.train_form, cfg.latency_form
    if train == CALIBRATED:
        train = training_form(device, threads).with_threads(None).name
    if latency == CALIBRATED:
        latency = (
            inference_form(device, threads).with_threads(None).name if cfg.latency_runtime == "torch" else FP32.name
        )
    if device == "cpu":
        warn_if_failed(train, "training")
        warn_if_failed(latency, "inference")
    return cfg.with_(train_form=train, latency_form=latency)
