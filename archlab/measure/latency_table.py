"""A latency predictor: a genome's latency as the sum of its parts' measured latencies (the
FBNet / nn-Meter way), from a table measured once per machine and cached.

Why: at the clip users deploy (16x112x112) one forward of a P3D-width network takes 0.1-2 s
on a 2-core CPU, so measuring every proposal of a search end to end is out of reach, and a
MAC count misjudges the depthwise and temporal blocks. A network here is a chain of parts
(``latency_parts``: stem, temporal pools, residual blocks, head) whose time depends only on
what each part is and the shape it receives; a space of thousands of genomes reaches a few
hundred distinct parts. Each is timed once, in context (inside a network that has it, each
part called on what the one before returned), in the numeric form, runtime, device and thread
count the network would run in (BN folded, eval, inference mode, batch 1); a prediction is
then a sum of table lookups, about 0.1 ms per genome.

The table (``LatencyTable``) is one JSON file per (device, runtime, form, threads, torch
version, CPU or GPU model, runtime version) in ``$ARCHLAB_CACHE_DIR``, else
``$XDG_CACHE_HOME/archlab``, else ``~/.cache/archlab`` (the calibration's cache folder),
under ``latency/``: a new CPU, a torch upgrade or another thread count is another table. A
part the table lacks is measured when a prediction needs it (``measure_missing=True``, the
default) or refused with one line (``MissingParts``), so a caller that must not spend time
measuring can say so. Writes merge with what other processes wrote, under a lock, atomically.

How close the sum comes to the end-to-end measurement is measured, not assumed: ``archlab
latency-table --check N`` times N genomes of a space end to end and reports the share within
+-10%, the median error and Kendall's tau, and the measurement's own repeatability beside
them (docs/guide/latency.md; the figures of this machine: docs/notebook/latency-predictor.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import random
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..model.builder import VideoNet, build, fuse_bn
from ..model.genome import Genome
from ..util.device import resolve_device
from ..util.errors import UserError
from ..util.files import atomic_write
from ..util.versions import cpu_name
from .forms import FP32, Form
from .latency_errors import prediction_errors
from .latency_parts import Clip, Part, distinct_parts, genome_parts, part_module
from .runtimes import module_runner
from .timing import CLOCKS, clock_fn, interleaved, sync, timing_input, torch_threads

TABLE_VERSION = 1  # bump when what a part's time means changes (how it is timed, its key)
ENV_DIR = "ARCHLAB_CACHE_DIR"  # = archlab.training.calibrate.ENV_DIR (a test checks they agree)
RUNTIMES = ("torch", "onnxruntime", "openvino")  # = runtimes.RUNTIMES (without importing onnx here)
Progress = Callable[[int, int, str], None]  # (done, total, what): long work tells how far it is


class MissingParts(UserError):
    """A prediction needs parts the table has not measured, and measuring was not allowed."""


def cache_dir() -> Path:
    """The user's archlab cache folder, the calibration's: ``$ARCHLAB_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/archlab``, else ``~/.cache/archlab`` (never the repository)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archlab"


def _runtime_version(runtime: str) -> str | None:
    if runtime == "torch":
        return torch.__version__
    try:
        return metadata.version(runtime)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Prediction:
    """A genome's predicted latency: ``total_ms`` = ``parts_ms`` (the sum of its parts' times)
    + ``overhead_ms`` (the table's per-network term at this clip, 0 unless fitted), with each
    part's own time (``parts``: (part, ms), in the order they run)."""

    total_ms: float
    parts_ms: float
    overhead_ms: float
    parts: tuple[tuple[Part, float], ...]


class LatencyTable:
    """Measured part times of one (device, runtime, form, threads) on this machine.

    ``LatencyTable.load(device="cpu", runtime="torch", form=FP32, threads=None)`` reads the
    cached table (empty if there is none); ``fill(genomes, clip)`` measures the parts they
    reach that the table lacks; ``predict(genome, clip)`` sums them. ``threads``: torch's
    intra-op threads (None: the form's, else torch's current setting); the table records the
    number, so tables of different thread counts never mix. ``runs`` / ``warmup``: timed and
    untimed chains of a network's parts (``_time_parts``), in ``passes`` passes; a part's
    time is the one of its network's fastest chain (a shared machine's load only ever adds
    time), the median of its calls is stored beside it. ``clock``: "wall" or "cpu" (``CLOCKS``; cpu needs 1 thread on the CPU in
    torch); each entry records the clock it was timed on, and both estimate the same
    quiet-machine latency, so the clock does not split the cache. ``path``: the JSON file
    (default: ``latency/table-<hash of the identity>.json`` in ``cache_dir()``)."""

    def __init__(
        self,
        *,
        device: str = "cpu",
        runtime: str = "torch",
        form: Form | None = None,
        threads: int | None = None,
        runs: int = 7,
        warmup: int = 2,
        passes: int = 2,
        clock: str = "wall",
        path: str | Path | None = None,
    ):
        if runtime not in RUNTIMES:
            raise UserError(f"latency runtime {runtime!r} must be one of {', '.join(RUNTIMES)}")
        form = FP32 if form is None else form
        if not isinstance(form, Form):
            raise UserError(f"form {form!r} must be a Form (archlab.measure.forms)")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise UserError(f"threads {threads!r} must be a positive integer")
        for name, v, least in (("runs", runs, 1), ("warm-up", warmup, 0), ("passes", passes, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise UserError(f"{name} {v!r}: a latency table needs an integer of at least {least}")
        self.device = resolve_device(device)
        if runtime != "torch":
            if self.device.type != "cpu":
                raise UserError(f"latency runtime {runtime} measures on CPU only (--device cpu)")
            if form.with_threads(None) != FP32:
                raise UserError(f"form {form.name} applies to the torch runtime; {runtime} runs the fp32 ONNX graph")
            if _runtime_version(runtime) is None:
                raise UserError(f"latency runtime {runtime} needs the {runtime} package installed")
        self.runtime = runtime
        self.threads = threads or form.threads or torch.get_num_threads()
        if clock not in CLOCKS:
            raise UserError(f"clock {clock!r} must be one of {', '.join(CLOCKS)}")
        if clock == "cpu" and (self.device.type != "cpu" or runtime != "torch" or self.threads != 1):
            raise UserError(
                "the cpu clock times one thread's CPU time: it needs --device cpu, --runtime torch and --threads 1"
            )
        self.clock = clock
        self.form = form.with_threads(self.threads)
        self.runs, self.warmup, self.passes = runs, warmup, passes
        self.identity: dict[str, Any] = {
            "version": TABLE_VERSION,
            "device": self.device.type,
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else cpu_name(),
            "runtime": runtime,
            "runtime_version": _runtime_version(runtime),
            "form": self.form.name,
            "threads": self.threads,
            "torch": torch.__version__,
            "batch": 1,
        }
        digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()[:16]
        self.key = digest
        self.path = Path(path) if path is not None else cache_dir() / "latency" / f"table-{digest}.json"
        # part key -> {"ms": fastest, "median_ms", "runs", "clock"}; clip "TxHxW" -> the
        # per-network overhead (ms), and the last error check at that clip (``record_check``)
        self.entries: dict[str, dict[str, Any]] = {}
        self.overhead: dict[str, float] = {}
        self.checks: dict[str, dict[str, Any]] = {}
        self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._replace = False

    # ---- the cache file -----------------------------------------------------------------

    @classmethod
    def load(
        cls,
        *,
        device: str = "cpu",
        runtime: str = "torch",
        form: Form | None = None,
        threads: int | None = None,
        runs: int = 7,
        warmup: int = 2,
        passes: int = 2,
        clock: str = "wall",
        path: str | Path | None = None,
    ) -> "LatencyTable":
        """The cached table of this machine for (device, runtime, form, threads); empty if
        none was measured yet (or the file is corrupt or another identity's: measured again,
        never an error)."""
        table = cls(
            device=device,
            runtime=runtime,
            form=form,
            threads=threads,
            runs=runs,
            warmup=warmup,
            passes=passes,
            clock=clock,
            path=path,
        )
        data = _read(table.path)
        if data.get("identity") == table.identity:
            table.entries = {k: dict(v) for k, v in data.get("entries", {}).items() if _valid_entry(v)}
            table.overhead = {k: float(v) for k, v in data.get("overhead", {}).items() if _finite(v)}
            table.checks = {k: v for k, v in data.get("checks", {}).items() if isinstance(v, dict)}
            table.created = str(data.get("created", table.created))
        return table

    def clear(self) -> None:
        """Forget every part, overhead and check; the next ``save`` replaces the file (``--refresh``)."""
        self.entries, self.overhead, self.checks, self._replace = {}, {}, {}, True
        self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def save(self) -> Path:
        """Write the table, merged with what other processes added to the file meanwhile
        (this table's values win), atomically and under a lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.parent / ".latency.lock"):
            if not self._replace:
                data = _read(self.path)
                if data.get("identity") == self.identity:
                    disk = {k: v for k, v in data.get("entries", {}).items() if _valid_entry(v)}
                    self.entries = {**disk, **self.entries}
                    disk_overhead = {k: float(v) for k, v in data.get("overhead", {}).items() if _finite(v)}
                    self.overhead = {**disk_overhead, **self.overhead}
                    disk_checks = {k: v for k, v in data.get("checks", {}).items() if isinstance(v, dict)}
                    self.checks = {**disk_checks, **self.checks}
            payload = {
                "identity": self.identity,
                "created": self.created,
                "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "entries": self.entries,
                "overhead": self.overhead,
                "checks": self.checks,
            }
            atomic_write(self.path, json.dumps(payload, indent=0, sort_keys=True))
        self._replace = False
        return self.path

    def __len__(self) -> int:
        return len(self.entries)

    def describe(self) -> str:
        """One line: what this table was measured in, and where it lives."""
        i = self.identity
        return (
            f"{i['device_name']} ({i['device']}), {i['runtime']} {i['form']}, {i['threads']} thread(s), "
            f"torch {i['torch']}: {len(self)} parts in {self.path}"
        )

    # ---- measuring parts ------------------------------------------------------------------

    def missing(self, genomes: Iterable[Genome], clip: Clip) -> list[Part]:
        """The distinct parts of ``genomes`` at ``clip`` the table has not measured."""
        return [p for k, p in distinct_parts(genomes, tuple(clip)).items() if k not in self.entries]

    def fill(
        self,
        genomes: Iterable[Genome],
        clip: Clip,
        *,
        progress: Progress | None = None,
        save: bool = True,
        save_every_s: float = 30.0,
    ) -> int:
        """Measure every part of ``genomes`` at ``clip`` the table lacks; returns how many.
        Each part is timed in a network built from a genome that has it (the genome with the
        most missing parts first, so few networks are built), in ``passes`` passes over those
        networks (later ones in shuffled order), keeping each part's time in its network's
        fastest chain: a slow spell of a shared machine then falls on one pass, not on all of
        them. ``save``:
        write the file as it goes (every ``save_every_s``) and at the end, so an interrupted
        fill keeps its work."""
        clip = tuple(clip)
        gs = list(genomes)
        lists = [genome_parts(g, clip) for g in gs]
        new = [{p.key for p in parts if p.key not in self.entries} for parts in lists]
        order = sorted(range(len(gs)), key=lambda i: -len(new[i]))
        assigned: dict[int, list[Part]] = {}
        taken: set[str] = set()
        for i in order:
            mine = [p for p in lists[i] if p.key in new[i] and p.key not in taken]
            seen: set[str] = set()
            mine = [p for p in mine if not (p.key in seen or seen.add(p.key))]
            if mine:
                assigned[i] = mine
                taken.update(p.key for p in mine)
        total, done = len(taken), 0
        samples: dict[str, list[float]] = {k: [] for k in taken}
        fastest: dict[int, tuple[float, dict[str, float]]] = {}
        rng = random.Random(0)
        last_save = time.monotonic()
        with torch_threads(self.threads):
            for pass_ in range(self.passes):
                groups = list(assigned.items())
                if pass_:
                    rng.shuffle(groups)
                for i, parts in groups:
                    model = self._network(gs[i])
                    chains = self._time_parts(model, lists[i], {p.key for p in parts})
                    del model
                    for chain_ms, part_ms in chains:
                        for k, ms in part_ms.items():
                            samples[k].append(ms)
                        if chain_ms < fastest.get(i, (math.inf, {}))[0]:
                            fastest[i] = (chain_ms, part_ms)
                    for p in parts:
                        self.entries[p.key] = {
                            "ms": fastest[i][1][p.key],
                            "median_ms": statistics.median(samples[p.key]),
                            "runs": len(samples[p.key]),
                            "clock": self.clock,
                        }
                    done += len(parts)
                    if progress:
                        progress(done, total * self.passes, str(gs[i]))
                    if save and time.monotonic() - last_save > save_every_s:
                        self.save()
                        last_save = time.monotonic()
        if save and (total or self._replace):
            self.save()
        return total

    def _network(self, genome: Genome) -> VideoNet:
        """The genome's inference form (BN folded, eval) on the device, in the table's form."""
        net = fuse_bn(build(genome)).to(self.device)
        return self.form.apply_model(net) if self.runtime == "torch" else net  # type: ignore[return-value]

    def _time_parts(self, model: VideoNet, parts: list[Part], keys: set[str]) -> list[tuple[float, dict[str, float]]]:
        """The network's parts timed **in context**: its parts (``parts``, all of them, in
        order) called one after another on a clip, each on what the one before returned,
        ``runs`` times after ``warmup`` untimed chains. Per timed chain: its total (ms) and the
        time of each part in ``keys`` (the mean of its calls, where the network has it twice).

        Why in context: a part alone, called again and again on one input, is not the part in
        a network: alone, the parts of a 16x112x112 network summed to 8% more than the
        network, from the memory allocator (docs/notebook/latency-predictor.md). The table
        keeps each part's time **in the fastest chain** (``fill``), not its own fastest call:
        on a noisy machine the sum of each part's luckiest call undercuts any whole run, as
        the end-to-end measurement (the fastest forward) cannot."""
        fns = [self._part_fn(part_module(model, p), p.shape) for p in parts]
        x = timing_input(parts[0].shape)
        x = x.numpy() if self.runtime != "torch" else self.form.apply_input(x.to(self.device))
        now = clock_fn(self.clock)
        out: list[tuple[float, dict[str, float]]] = []
        with torch.inference_mode(), self.form.autocast(self.device):
            for run in range(self.warmup + self.runs):
                y, calls = x, {k: [] for k in keys}  # type: ignore[var-annotated]
                total = 0.0
                for p, fn in zip(parts, fns):
                    t0 = now()
                    y = fn(y)
                    sync(self.device)
                    ms = (now() - t0) * 1000
                    total += ms
                    if p.key in calls:
                        calls[p.key].append(ms)
                if run >= self.warmup:
                    out.append((total, {k: statistics.fmean(v) for k, v in calls.items()}))
        return out

    def _part_fn(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[Any], Any]:
        """``module`` as the table's runtime runs it: torch eager, or its own ONNX graph (a
        numpy array in, one out; exported on an input of ``shape``)."""
        if self.runtime == "torch":
            return module
        return module_runner(module, timing_input(shape), self.runtime, self.threads)

    def _caller(self, module: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
        """One call of ``module`` on ``x`` as the table's runtime, form and device run it."""
        if self.runtime != "torch":
            run = module_runner(module, x, self.runtime, self.threads)
            arr = x.numpy()
            return lambda: run(arr)
        x = self.form.apply_input(x.to(self.device))
        form, device = self.form, self.device

        def call() -> Any:
            with torch.inference_mode(), form.autocast(device):
                return module(x)

        return call

    # ---- predicting -----------------------------------------------------------------------

    def predict(self, genome: Genome, clip: Clip, *, measure_missing: bool = True) -> Prediction:
        """The sum of ``genome``'s parts at ``clip`` (+ the table's overhead at that clip).
        Parts the table lacks are measured first (and saved), or, with ``measure_missing``
        False, refused with one line (``MissingParts``)."""
        clip = tuple(clip)
        parts = genome_parts(genome, clip)
        missing = {p.key for p in parts if p.key not in self.entries}
        if missing:
            if not measure_missing:
                c = "x".join(map(str, clip))
                raise MissingParts(
                    f"the latency table lacks {len(missing)} of this genome's {len({p.key for p in parts})} "
                    f"distinct parts at {c}: run archlab latency-table --input {c}{self._options()} "
                    "(or predict with measuring allowed)"
                )
            self.fill([genome], clip)
        timed = tuple((p, float(self.entries[p.key]["ms"])) for p in parts)
        parts_ms = math.fsum(ms for _, ms in timed)
        overhead = self.overhead.get(_clip_str(clip), 0.0)
        return Prediction(total_ms=parts_ms + overhead, parts_ms=parts_ms, overhead_ms=overhead, parts=timed)

    def _options(self) -> str:
        """The ``archlab latency-table`` options that name this table's setting."""
        out = "" if self.device.type == "cpu" else f" --device {self.device}"
        out += f" --threads {self.threads}"
        if self.form.with_threads(None) != FP32:
            out += f" --form {self.form.with_threads(None).name}"
        return out + ("" if self.runtime == "torch" else f" --runtime {self.runtime}")

    # ---- end to end -----------------------------------------------------------------------

    def measure_networks(
        self,
        genomes: Sequence[Genome],
        clip: Clip,
        *,
        runs: int = 5,
        passes: int = 2,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> list[float]:
        """Each genome's end-to-end latency (ms) in the table's device, runtime, form, threads
        and clock: the fastest of ``runs`` timed forwards in each of ``passes`` passes over
        the genomes in shuffled order, the fastest pass kept (a shared machine's load only
        ever adds time; docs/notebook/latency.md). What the prediction is checked against."""
        per_pass = self.network_passes(genomes, clip, runs=runs, passes=passes, seed=seed, progress=progress)
        return [min(row) for row in per_pass]

    def network_passes(
        self,
        genomes: Sequence[Genome],
        clip: Clip,
        *,
        runs: int = 5,
        passes: int = 2,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> list[list[float]]:
        """``measure_networks`` pass by pass: per genome, its fastest forward in each pass
        (pass order). Two passes measure the measurement itself: how far a genome's latency
        moves between two passes is the floor no prediction can beat on this machine."""
        if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
            raise UserError(f"passes {passes!r} must be a positive integer")
        if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
            raise UserError(f"runs {runs!r} must be a positive integer")
        clip = tuple(clip)
        out: list[list[float]] = [[] for _ in genomes]
        rng = random.Random(seed)
        done, total = 0, len(genomes) * passes
        with torch_threads(self.threads):
            for _ in range(passes):
                order = list(range(len(genomes)))
                rng.shuffle(order)
                for i in order:
                    net = self._network(genomes[i])
                    call = self._caller(net, timing_input((3, *clip)))
                    out[i].append(min(interleaved({"net": call}, runs, self.warmup, self.device, self.clock)["net"]))
                    del net, call
                    done += 1
                    if progress:
                        progress(done, total, str(genomes[i]))
        return out

    def fit_overhead(self, genomes: Sequence[Genome], measured: Sequence[float], clip: Clip) -> float:
        """Set the per-network overhead at ``clip`` to the median of (measured - sum of parts)
        over ``genomes`` (their parts must be in the table) and return it: what a network
        costs beyond its parts timed alone (the calls between them, cold caches)."""
        if len(genomes) != len(measured) or not genomes:
            raise UserError("fit_overhead needs one measured latency per genome, and at least one genome")
        gaps = [m - self.predict(g, clip, measure_missing=False).parts_ms for g, m in zip(genomes, measured)]
        self.overhead[_clip_str(tuple(clip))] = float(statistics.median(gaps))
        return self.overhead[_clip_str(tuple(clip))]

    def record_check(
        self, clip: Clip, genomes: Sequence[Genome], predicted: Sequence[float], measured: Sequence[float], **notes: Any
    ) -> dict[str, Any]:
        """Keep an error check at ``clip`` in the table (the last one per clip): each genome
        with its predicted and measured ms, the figures (``prediction_errors``), when, and
        ``notes`` (how it was measured). Saved with the table."""
        e = prediction_errors(predicted, measured)
        record = {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "within": e.within,
            "median_abs": e.median_abs,
            "p90_abs": e.p90_abs,
            "mean": e.mean,
            "genomes": [[str(g), p, m] for g, p, m in zip(genomes, predicted, measured)],
            **notes,
        }
        self.checks[_clip_str(tuple(clip))] = record
        return record


def predict_latency_ms(genome: Genome, clip: Clip, *, table: LatencyTable, measure_missing: bool = True) -> float:
    """The predicted latency (ms, batch 1) of ``genome`` at ``clip`` from ``table``: the sum of
    its parts' measured times plus the table's overhead at that clip. Missing parts are
    measured (and saved), or with ``measure_missing`` False raise ``MissingParts``."""
    return table.predict(genome, clip, measure_missing=measure_missing).total_ms


# ---- helpers ----------------------------------------------------------------------------------


def _clip_str(clip: Clip) -> str:
    return "x".join(map(str, clip))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _valid_entry(v: Any) -> bool:
    return isinstance(v, dict) and _finite(v.get("ms")) and v["ms"] >= 0


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # none yet, or corrupt: measured again, never an error


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock that waits (two processes filling one table take turns to write)."""
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
