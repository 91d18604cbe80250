"""What a network costs: parameters and MACs (total and per stage), latency, memory.

MACs are multiply-adds of conv and linear layers; fvcore's "flop" is one multiply-add.
Everything else fvcore sees (adds, pools, BN, ReLU) is not a multiply-add: it is listed in
``Cost.uncounted`` so the report can say so, and never printed as a wall of warnings.

Two counters give the same numbers: ``count_fvcore`` (fvcore's JIT trace, the reference) and
``count_fast`` (forward hooks on a meta-device model, no arithmetic at all: thousands of
genomes per minute, for sampling and constraints). Tests check they agree on every preset.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..model.builder import VideoNet, build, count_params, fuse_bn
from ..model.genome import Genome
from ..util.clips import Clip, parse_clip  # noqa: F401 - parse_clip re-exported: its old home
from ..util.device import device_label, resolve_device
from ..util.errors import UserError, shorten
from ..util.files import atomic_write
from .forms import FP32, Form


@dataclass
class StageCost:
    name: str
    letters: str
    out_shape: tuple[int, ...]  # C, T, H, W
    params: int
    macs: int


@dataclass
class Cost:
    params: int
    macs: int
    stages: list[StageCost]  # stem, stage 1..n, head
    uncounted: dict[str, int] = field(default_factory=dict)  # op name -> times seen

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9


@dataclass
class Latency:
    device: str
    batch: int
    median_ms: float
    clips_per_s: float
    peak_mem_mb: float
    runs: int
    # What the figure was taken in: latencies of different forms or runtimes are never
    # points of one front (forms.Form.name; "torch" | "onnxruntime" | "openvino").
    form: str = FP32.name
    runtime: str = "torch"


def _stage_names(model: VideoNet) -> list[tuple[str, nn.Module, str]]:
    g_letters = model.genome_string.split()[0].split("|")
    out = [("stem", model.stem, "")]
    out += [(f"stages.{i}", st, g_letters[i]) for i, st in enumerate(model.stages)]
    return out


def _head_modules(model: VideoNet) -> dict[str, nn.Module]:
    """The head's modules by attribute name (X3D's head has a neck and a 2048-wide layer)."""
    return {"neck": model.neck, "post": model.post, "fc": model.fc}


def _meta_forward(genome: Genome, clip: Clip) -> tuple[VideoNet, dict[str, tuple[int, ...]], dict[int, int]]:
    """One forward of a meta-device model (no arithmetic): output shape (C,T,H,W) of the stem
    and each stage, and the multiply-adds of every conv/linear, by module id."""
    with torch.device("meta"):
        model = VideoNet(genome)
    model.eval()
    shapes: dict[str, tuple[int, ...]] = {}
    macs: dict[int, int] = {}

    def count(m: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if isinstance(m, nn.Conv3d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.kernel_size[2]
            macs[id(m)] = out[0].numel() * (m.in_channels // m.groups) * k
        elif isinstance(m, nn.Linear):
            macs[id(m)] = out[0].numel() * m.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]
    hooks += [
        m.register_forward_hook(lambda _m, _i, o, n=name: shapes.__setitem__(n, tuple(o.shape[1:])))
        for name, m, _ in _stage_names(model)
    ]
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, *clip, device="meta"))
    except RuntimeError as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        if not any(k in msg.lower() for k in ("too small", "kernel size", "input size", "output size")):
            raise
        raise UserError(f"input {'x'.join(map(str, clip))} is too small for this network: {msg}") from None
    finally:
        for h in hooks:
            h.remove()
    return model, shapes, macs


def count_fast(genome: Genome, clip: Clip = (16, 160, 160)) -> Cost:
    """Params and MACs from hooks on a meta-device model: exact for conv/linear, no compute."""
    model, shapes, macs = _meta_forward(genome, clip)

    def mod_macs(mod: nn.Module) -> int:
        return sum(macs.get(id(m), 0) for m in mod.modules())

    stages = [
        StageCost(name, letters, shapes[name], count_params(mod), mod_macs(mod))
        for name, mod, letters in _stage_names(model)
    ]
    head = _head_modules(model)
    stages.append(
        StageCost(
            "head",
            "",
            (genome.classes,),
            sum(count_params(m) for m in head.values()),
            sum(mod_macs(m) for m in head.values()),
        )
    )
    return Cost(
        params=count_params(model), macs=sum(macs.values()), stages=stages, uncounted={op: 0 for op in _NOT_MACS}
    )


# Ops that run in these networks but are not multiply-adds. fvcore would warn about each;
# we skip them explicitly and list them.
_NOT_MACS = (
    "aten::batch_norm",
    "aten::add",
    "aten::add_",
    "aten::relu",
    "aten::relu_",
    "aten::max_pool3d",
    "aten::adaptive_avg_pool3d",
    "aten::dropout",
    "aten::flatten",
    "aten::mean",
    "aten::feature_dropout",
    # X3D (squeeze-excitation, swish) and TSM (the shift is slicing and padding):
    "aten::mul",
    "aten::sigmoid",
    "aten::silu",
    "aten::silu_",
    "aten::slice",
    "aten::constant_pad_nd",
    "aten::pad",
    "aten::cat",
)


def _zero(_inputs: object, _outputs: object) -> int:
    return 0


def count_fvcore(genome: Genome, clip: Clip = (16, 160, 160), model: nn.Module | None = None) -> Cost:
    """fvcore's count on model.eval() (the reference the fast counter is checked against)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

    _, shapes, _ = _meta_forward(genome, clip)  # also rejects a clip too small, cheaply
    model = model if model is not None else build(genome)
    model.eval()
    x = torch.zeros(1, 3, *clip)
    fca = FlopCountAnalysis(model, x)
    for op in _NOT_MACS:
        # A handle of None only silences ops fvcore has no handle for; batch_norm has one,
        # so it gets an explicit zero.
        fca.set_op_handle(op, _zero)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    fca.tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_module = fca.by_module()
        uncounted = dict(fca.unsupported_ops())
    # Ops we skipped on purpose are also "not counted": say so, with how often they ran.
    stages = [
        StageCost(name, letters, shapes[name], count_params(mod), int(by_module.get(name, 0)))
        for name, mod, letters in _stage_names(model)
    ]  # type: ignore[arg-type]
    head = _head_modules(model)  # type: ignore[arg-type]
    stages.append(
        StageCost(
            "head",
            "",
            (genome.classes,),
            sum(count_params(m) for m in head.values()),
            sum(int(by_module.get(name, 0)) for name in head),
        )
    )
    skipped = {op: 0 for op in _NOT_MACS}
    skipped.update(uncounted)
    return Cost(params=count_params(model), macs=int(fca.total()), stages=stages, uncounted=skipped)


# ---- latency and memory ------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    """Samples resident memory every millisecond: CPU has no allocator high-water mark."""

    def __enter__(self) -> "_PeakRSS":
        self.base = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_bytes())


def measure_latency(
    model: nn.Module,
    clip: Clip,
    device: torch.device | str = "cpu",
    batch: int = 1,
    warmup: int = 3,
    runs: int = 10,
    seed: int = 0,
    form: Form | None = None,
) -> Latency:
    """Inference latency: warm-up, then the median of ``runs`` timed forwards (synchronised
    on CUDA), on a deterministic input. Peak memory is the CUDA allocator's high-water mark,
    or the growth of resident memory on CPU. ``form`` (default fp32 NCDHW): the precision,
    layout and threads the model and input are put in (the model is converted in place)."""
    for name, v, least in (("--runs", runs, 1), ("--batch", batch, 1), ("warm-up", warmup, 0)):
        if not isinstance(v, int) or v < least:
            raise UserError(f"{name} {shorten(v)}: latency needs an integer of at least {least}")
    device = torch.device(device)
    form = form or FP32
    form.apply_threads()
    model = form.apply_model(model.to(device).eval())
    gen = torch.Generator().manual_seed(seed)
    x = form.apply_input(torch.randn(batch, 3, *clip, generator=gen).to(device))
    times: list[float] = []
    with torch.inference_mode(), form.autocast(device):
        for _ in range(warmup):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            for _ in range(runs):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(x)
                end.record()
                torch.cuda.synchronize(device)
                times.append(start.elapsed_time(end) / 1000)
            peak = torch.cuda.max_memory_allocated(device) - base
        else:
            with _PeakRSS() as mem:
                for _ in range(runs):
                    t0 = time.perf_counter()
                    model(x)
                    times.append(time.perf_counter() - t0)
            peak = mem.peak - mem.base
    med = statistics.median(times)
    return Latency(
        device=device_label(device),
        batch=batch,
        median_ms=med * 1000,
        clips_per_s=batch / med,
        peak_mem_mb=peak / 2**20,
        runs=runs,
        form=form.name,
    )


def measure_runtime_latency(
    model: nn.Module,
    clip: Clip,
    runtime: str,
    batch: int = 1,
    warmup: int = 3,
    runs: int = 10,
    threads: int | None = None,
    seed: int = 0,
) -> Latency:
    """The latency of ``model`` (already in its deployed form, e.g. BN folded) exported to
    ONNX and run in ``runtime`` (onnxruntime | openvino, ``archlab.measure.runtimes``) on CPU:
    warm-up, then the median of ``runs`` timed calls."""
    import tempfile

    from . import runtimes

    if runtime == "openvino" and not runtimes.openvino_available():
        runtimes.runner(Path("-"), runtime)  # raises the one-line UserError
    x = torch.randn(batch, 3, *clip, generator=torch.Generator().manual_seed(seed)).numpy()
    with tempfile.TemporaryDirectory(prefix="archlab-rt-") as d:
        run, label = runtimes.runner(runtimes.export_onnx_tmp(model, clip, Path(d)), runtime, threads)
        for _ in range(warmup):
            run(x)
        times = []
        with _PeakRSS() as mem:
            for _ in range(runs):
                t0 = time.perf_counter()
                run(x)
                times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    n = threads or torch.get_num_threads()
    return Latency(
        device=f"cpu x{n} threads",
        batch=batch,
        median_ms=med * 1000,
        clips_per_s=batch / med,
        peak_mem_mb=(mem.peak - mem.base) / 2**20,
        runs=runs,
        form=label,
        runtime=runtime,
    )


# ---- cache -------------------------------------------------------------------------------


class ProfileCache:
    """Profiles keyed by (genome id, input, batch, device), in memory and optionally in a JSON
    file (written atomically), so a search never measures the same network twice."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.data: dict[str, dict] = {}
        if self.path and self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                self.data = {}

    @staticmethod
    def key(genome: Genome, clip: Clip, batch: int, device: str, kind: str) -> str:
        return f"{kind}:{genome.id}:{'x'.join(map(str, clip))}:b{batch}:{device}"

    def get(self, key: str) -> dict | None:
        return self.data.get(key)

    def put(self, key: str, value: dict) -> None:
        self.data[key] = value
        if self.path:
            atomic_write(self.path, json.dumps(self.data))


_MEMORY_CACHE = ProfileCache()


def cost(genome: Genome, clip: Clip = (16, 160, 160), method: str = "fast", cache: ProfileCache | None = None) -> Cost:
    """Params and MACs, cached. ``method`` is 'fast' (meta hooks) or 'fvcore'."""
    cache = cache or _MEMORY_CACHE
    key = ProfileCache.key(genome, clip, 1, "any", f"cost-{method}")
    hit = cache.get(key)
    if hit is not None:
        hit = dict(hit)
        hit["stages"] = [StageCost(**{**s, "out_shape": tuple(s["out_shape"])}) for s in hit["stages"]]
        return Cost(**hit)
    c = (count_fast if method == "fast" else count_fvcore)(genome, clip)
    cache.put(key, asdict(c))
    return c


def latency(
    genome: Genome,
    clip: Clip = (16, 160, 160),
    device: str = "cpu",
    batch: int = 1,
    runs: int = 10,
    cache: ProfileCache | None = None,
    model: nn.Module | None = None,
    fused: bool = True,
    form: Form | None = None,
    runtime: str = "torch",
) -> Latency:
    """Measured latency of a genome on a device, cached by (genome id, input, batch, device,
    form, runtime). ``fused``: of the network's inference form (BatchNorm folded into the
    convs, ``builder.fuse_bn``), the form a deployed network runs, on every device; measured
    faster than the training form on CPU (python -m archlab.bench reference). ``form``:
    precision x layout x threads (default fp32 NCDHW; ``calibrate.inference_form(device)``
    is this machine's fastest safe one). ``runtime``: ``torch`` (eager), or ``onnxruntime``
    / ``openvino`` running the exported ONNX graph as a deployment would (``runtimes``)."""
    from .runtimes import RUNTIMES

    if runtime not in RUNTIMES:
        raise UserError(f"latency runtime {runtime!r} must be one of {', '.join(RUNTIMES)}")
    cache = cache or _MEMORY_CACHE
    dev = resolve_device(device)
    form = form or FP32
    kind = "latency-fused" if fused else "latency"
    if form.with_threads(None) != FP32 or runtime != "torch":  # fp32 eager keeps its old keys
        kind += f"-{runtime}-{form.with_threads(None).name}"
    label = device_label(dev) if form.threads is None else f"{dev.type} x{form.threads} threads"
    key = ProfileCache.key(genome, clip, batch, label, kind)
    hit = cache.get(key)
    if hit is not None:
        return Latency(**hit)
    net = model if model is not None else build(genome)
    net = fuse_bn(net) if fused else net
    if runtime == "torch":
        lat = measure_latency(net, clip, dev, batch, runs=runs, form=form)
    else:
        if dev.type != "cpu":
            raise UserError(f"--latency-runtime {runtime} measures on CPU only")
        lat = measure_runtime_latency(net, clip, runtime, batch=batch, runs=runs, threads=form.threads)
    cache.put(key, asdict(lat))
    return lat
