"""Timing and numerics of candidate forms, the measurements ``archlab.training.calibrate`` chooses from
(and ``python -m archlab.bench forms`` prints). Why each check and tolerance: the
``archlab.training.calibrate`` docstring.

* timing: the search's proxy training step (AdamW, as trials train) and a preset's BN-folded
  forward, per form, round-robin in one run (``measure.timing.interleaved``);
* numerics: the loss curve of a few AdamW steps on memorised proxy batches against fp32's
  (``check_training``), the gradients of every convolution geometry the coverage genomes
  build against fp32's (``conv_checks``), and inference logits against fp32's
  (``check_inference``).
"""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..measure.forms import FP32, Form

PROXY_GENOME = "A|B|CAB|2 stem=2d/none sw=8 w=8,16,32,64 t=-,-,-,- cls=6"  # the search's proxy shape
PROXY_CLIP = (8, 32, 32)
PROXY_BATCH = 8
NUMERICS_STEPS = 32
NUMERICS_BATCHES = 2  # distinct batches, cycled: the net memorises them, so the loss falls fast
NUMERICS_LRS = (2e-3, 2e-4)  # the search's AdamW LR, and the low-LR regime of the cosine's tail
TRAIN_LOSS_TOL = 0.02  # nats, mean loss over the second half of NUMERICS_STEPS (see docstring)
INFER_REL_TOL = 2e-2  # of the fp32 output scale
# Every block letter of the bottleneck family in every stage, under each kind of temporal
# skeleton a space can choose (no pooling, the official P3D pools, strided temporal convs),
# so that each convolution sees each frame count it can meet at the proxy clip (8, 4, 2, 1).
_ALL = "ABC23RFDIXYT"
COVERAGE_GENOMES = tuple(
    f"{_ALL}|{_ALL}|{_ALL}|{_ALL} stem={stem} sw=8 w=8,16,32,64 t={t} cls=6"
    for stem, t in (
        ("2d/none", "-,-,-,-"),
        ("2d/ts", "-,p,p,p"),
        ("3d/s", "-,c,c,c"),
        ("r21/none", "-,p,c,-"),
        ("x3d/ts", "-,c,p,p"),
    )
)
CONV_REPS = 3  # random draws per geometry: a kernel that reads uninitialised memory fails some, not all
CONV_REL_TOL = 0.05  # ||grad - fp32 grad|| / ||fp32 grad|| of one conv (see conv_checks)


# ---- timing ---------------------------------------------------------------------------------


def _threaded(fn: Callable[[], Any], threads: int | None) -> Callable[[], Any]:
    def call() -> Any:
        if threads is not None:
            torch.set_num_threads(threads)
        return fn()

    return call


def _train_step(
    model: nn.Module,
    form: Form,
    x: torch.Tensor,
    y: torch.Tensor,
    opt: torch.optim.Optimizer,
    label_smoothing: float = 0.1,
) -> float:
    with form.autocast(x.device):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _adamw(model: nn.Module, lr: float = 2e-3) -> torch.optim.Optimizer:
    from .optim import adamw

    return adamw(model, lr=lr, weight_decay=5e-4)


def training_steppers(
    genome: Any, forms: Sequence[Form], batch: int, clip: tuple[int, int, int], seed: int = 0
) -> dict[str, Callable[[], Any]]:
    """One proxy training step per form (same init, same batch), as the search's trials run
    it: AdamW, cross-entropy with label smoothing, threads as each form says."""
    from ..model.builder import build

    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(batch, 3, *clip, generator=gen)
    y = torch.randint(0, genome.classes, (batch,), generator=gen)
    out: dict[str, Callable[[], Any]] = {}
    for f in forms:
        torch.manual_seed(seed)
        m = f.apply_model(build(genome).train())
        x, opt = f.apply_input(x0), _adamw(m)
        out[f.name] = _threaded(lambda m=m, f=f, x=x, opt=opt: _train_step(m, f, x, y, opt), f.threads)
    return out


def inference_runners(
    genome: Any, forms: Sequence[Form], clip: tuple[int, int, int], batch: int = 1, seed: int = 0
) -> tuple[dict[str, Callable[[], torch.Tensor]], torch.Tensor]:
    """One forward per form of the BN-folded network (the form latency is measured in), and
    the fp32 input they all see."""
    from ..model.builder import build, fuse_bn

    torch.manual_seed(seed)
    base = fuse_bn(build(genome).eval())
    x0 = torch.randn(batch, 3, *clip, generator=torch.Generator().manual_seed(seed + 1))
    out: dict[str, Callable[[], torch.Tensor]] = {}
    for f in forms:
        m = f.apply_model(copy.deepcopy(base))
        x = f.apply_input(x0)

        def run(m: nn.Module = m, f: Form = f, x: torch.Tensor = x) -> torch.Tensor:
            with torch.inference_mode(), f.autocast("cpu"):
                return m(x)

        out[f.name] = _threaded(run, f.threads)
    return out, x0


def time_forms(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 2) -> dict[str, float]:
    """Median ms per form, round-robin in one run (``measure.timing.interleaved``)."""
    from ..measure.timing import interleaved

    times = interleaved(fns, runs, warmup=warmup)
    return {k: float(statistics.median(v)) for k, v in times.items()}


# ---- numerics -------------------------------------------------------------------------------


def proxy_batches(
    n: int,
    batch: int = PROXY_BATCH,
    clip: tuple[int, int, int] = PROXY_CLIP,
    seed: int = 0,
    distinct: int | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` batches of the synthetic proxy task (the data search trials train on),
    normalised as the loader feeds training: ``distinct`` fixed ones cycled (default all
    different)."""
    distinct = n if distinct is None else max(1, min(distinct, n))
    from ..data.loader import to_input
    from ..data.synthetic import SyntheticMotion

    ds = SyntheticMotion("train", n_clips=distinct * batch, frames=clip[0], size=clip[1], seed=seed)
    out = []
    for i in range(distinct):
        items = [ds[i * batch + j] for j in range(batch)]
        clips = torch.stack([c for c, _ in items])
        labels = torch.tensor([int(lab) for _, lab in items])
        out.append((to_input(clips, "cpu"), labels))
    return [out[i % distinct] for i in range(n)]


def loss_curve(
    genome: Any, form: Form, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], init_seed: int = 0, lr: float = 2e-3
) -> list[float]:
    """Training losses over ``batches`` in ``form``, from the init of ``init_seed``, with the
    search's recipe compressed to len(batches) steps: AdamW, 20% warm-up, cosine to 0."""
    from ..model.builder import build
    from .optim import lr_factor

    torch.manual_seed(init_seed)
    m = build(genome).train()
    if form.threads is not None:
        torch.set_num_threads(form.threads)
    m = form.apply_model(m)
    opt = _adamw(m, lr)
    n = len(batches)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, n, max(1, n // 5)))
    losses = []
    for x, y in batches:
        value = _train_step(m, form, form.apply_input(x), y, opt)
        sched.step()
        losses.append(value)
        if not math.isfinite(value):
            break
    return losses


def tail_mean(losses: Sequence[float]) -> float:
    half = losses[len(losses) // 2 :]
    return float(sum(half) / len(half)) if half else math.nan


def check_training(
    ref_losses: Sequence[float], losses: Sequence[float], tol: float = TRAIN_LOSS_TOL
) -> tuple[float, bool]:
    """(|tail mean difference| in nats, passed): finite, complete, within ``tol`` of fp32."""
    if len(losses) != len(ref_losses) or not all(math.isfinite(v) for v in losses):
        return math.inf, False
    diff = abs(tail_mean(losses) - tail_mean(ref_losses))
    return diff, diff <= tol


def numerics_checks(
    genome: Any,
    forms: Sequence[Form],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    threads: int = 1,
    lrs: Sequence[float] = NUMERICS_LRS,
    tol: float = TRAIN_LOSS_TOL,
) -> tuple[dict[Form, tuple[float, bool]], dict[float, list[float]]]:
    """Form (threads None) -> (worst |tail mean diff| over ``lrs``, passed at every LR), and
    fp32's loss curve per LR. fp32/ncdhw is the reference: (0, True)."""
    refs = {lr: loss_curve(genome, FP32.with_threads(threads), batches, lr=lr) for lr in lrs}
    out: dict[Form, tuple[float, bool]] = {FP32: (0.0, True)}
    for f in forms:
        f0 = f.with_threads(None)
        if f0 in out:
            continue
        per_lr = [
            check_training(refs[lr], loss_curve(genome, f0.with_threads(threads), batches, lr=lr), tol) for lr in lrs
        ]
        out[f0] = (max(d for d, _ in per_lr), all(ok for _, ok in per_lr))
    return out, refs


def check_inference(ref: torch.Tensor, got: torch.Tensor, rel_tol: float = INFER_REL_TOL) -> tuple[float, bool]:
    """(max |got - ref| / max |ref|, passed)."""
    ref, got = ref.detach().float(), got.detach().float()
    if got.shape != ref.shape or not torch.isfinite(got).all():
        return math.inf, False
    scale = float(ref.abs().max()) or 1.0
    rel = float((got - ref).abs().max()) / scale
    return rel, rel <= rel_tol


# ---- numerics of every convolution (what a space can build) ---------------------------------


@dataclass(frozen=True)
class ConvCase:
    """One convolution geometry as a network in some form runs it: the layer's settings and
    the shape and memory layout of the input it receives."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    groups: int
    input_shape: tuple[int, ...]
    channels_last: bool

    @property
    def label(self) -> str:
        k = "x".join(map(str, self.kernel))
        s = "" if set(self.stride) == {1} else f" stride {'x'.join(map(str, self.stride))}"
        g = "" if self.groups == 1 else f" groups {self.groups}"
        return (
            f"conv {k}{s}{g} {self.in_channels}->{self.out_channels} on "
            f"{'x'.join(map(str, self.input_shape))} ({'cl3d' if self.channels_last else 'ncdhw'})"
        )

    def module(self) -> nn.Conv3d:
        return nn.Conv3d(
            self.in_channels, self.out_channels, self.kernel, self.stride, self.padding, groups=self.groups, bias=False
        )


def conv_cases(
    genome: Any, form: Form, clip: tuple[int, int, int] = PROXY_CLIP, batch: int = PROXY_BATCH
) -> list[ConvCase]:
    """Every distinct 3D convolution ``genome`` runs in ``form`` on a ``batch`` x ``clip``
    input, in the order met, with the layout its input really has there (a pool or a
    reshape can hand a channels_last_3d network a contiguous tensor)."""
    from ..model.builder import build

    torch.manual_seed(0)
    m = form.apply_model(build(genome).train())
    seen: dict[ConvCase, None] = {}

    def hook(mod: nn.Module, inputs: tuple[Any, ...], _out: Any) -> None:
        x = inputs[0]
        seen.setdefault(
            ConvCase(
                mod.in_channels,
                mod.out_channels,
                tuple(mod.kernel_size),
                tuple(mod.stride),
                tuple(mod.padding),
                mod.groups,
                tuple(x.shape),
                x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d),
            ),
            None,
        )

    hooks = [mod.register_forward_hook(hook) for mod in m.modules() if isinstance(mod, nn.Conv3d)]
    try:
        with torch.no_grad(), form.autocast("cpu"):
            m(form.apply_input(torch.randn(batch, 3, *clip)))
    finally:
        for h in hooks:
            h.remove()
    return list(seen)


def _rel(got: torch.Tensor, ref: torch.Tensor) -> float:
    got = got.float()
    if not torch.isfinite(got).all():
        return math.inf
    scale = float(ref.norm()) or 1.0
    return float((got - ref).norm()) / scale


def conv_error(case: ConvCase, form: Form, reps: int = CONV_REPS, seed: int = 0) -> float:
    """The worst relative error, over ``reps`` random draws, of the weight and input
    gradients (and the output) of ``case`` computed in ``form`` against fp32 from the same
    weights, input and upstream gradient; inf if anything is non-finite."""
    worst = 0.0
    gen = torch.Generator().manual_seed(seed)
    for _ in range(reps):
        ref_conv = case.module()
        with torch.no_grad():
            ref_conv.weight.copy_(torch.randn(ref_conv.weight.shape, generator=gen) * 0.1)
        x0 = torch.randn(case.input_shape, generator=gen)
        xr = x0.clone().requires_grad_()
        yr = ref_conv(xr)
        up = torch.randn(yr.shape, generator=gen)
        yr.backward(up)
        conv = copy.deepcopy(ref_conv)
        conv.weight.grad = None
        conv = form.apply_model(conv)
        x = x0.to(form.dtype)
        if case.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        x.requires_grad_()
        with form.autocast("cpu"):
            y = conv(x)
        y.backward(up.to(y.dtype))
        worst = max(
            worst, _rel(y.detach(), yr.detach()), _rel(conv.weight.grad, ref_conv.weight.grad), _rel(x.grad, xr.grad)
        )
        if not math.isfinite(worst):
            break
    return worst


def conv_checks(
    forms: Sequence[Form],
    genomes: Sequence[Any],
    clip: tuple[int, int, int] = PROXY_CLIP,
    batch: int = PROXY_BATCH,
    reps: int = CONV_REPS,
    tol: float = CONV_REL_TOL,
) -> dict[Form, tuple[float, bool, str]]:
    """Form (threads None) -> (worst conv error, passed, the worst geometry's label) over every
    convolution geometry ``genomes`` build in that form. fp32/ncdhw is the reference.

    Why per convolution and not only the loss curve: a kernel can be wrong for one input
    shape only. torch 2.13's CPU bf16 weight gradient of a 3x1x1 conv on exactly 2 frames
    (stage 2 of the official P3D skeleton at 8 frames) is garbage or non-finite in many
    draws on one CPU (docs/notebook/calibration.md), and the proxy of the loss-curve
    check never runs that shape, so bf16 passed it while every pooled genome diverged."""
    out: dict[Form, tuple[float, bool, str]] = {FP32: (0.0, True, "")}
    for f in forms:
        f0 = f.with_threads(None)
        if f0 in out:
            continue
        worst, label = 0.0, ""
        for g in genomes:
            for case in conv_cases(g, f0, clip, batch):
                err = conv_error(case, f0, reps)
                if err > worst or not label:
                    worst, label = err, case.label
                if not math.isfinite(worst):
                    break
            if not math.isfinite(worst):
                break
        out[f0] = (worst, worst <= tol, label)
    return out
