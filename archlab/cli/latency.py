"""`archlab latency-table`: measure the latency predictor's table of parts for a space at a
clip (``archlab.measure.latency_table``), cache it, and report its error against end-to-end
measurement on a sample of the space. The prediction itself is also `archlab profile
GENOME --latency predicted`."""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

from ..util.errors import UserError, shorten
from ..util.progress import CountProgress
from .common import DEVICES, at_least, table
from .forms import CALIBRATED_HELP, RUNTIMES, add_form_option, checked_form

DEFAULT_CLIP = (16, 112, 112)  # the clip users deploy, where a space names no target clip
GOAL_WITHIN, GOAL_TAU = 0.90, 0.90  # the predictor's goal: 90% within +-10%, Kendall tau 0.9


def _genomes_option(text: str) -> int | None:
    """--genomes: 'all' (None) or a positive number of random genomes."""
    if text.strip() == "all":
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise UserError(f"--genomes {shorten(text)} must be all or a positive number of genomes")
    return int(text)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_latency_table(args: argparse.Namespace) -> int:
    from ..measure.forms import FP32
    from ..measure.latency_errors import prediction_errors
    from ..measure.latency_parts import distinct_parts
    from ..measure.latency_table import LatencyTable
    from ..measure.profile import parse_clip, resolve_device
    from ..results.stats import kendall_tau_b
    from ..spaces import load_space, space_genomes
    from .forms import resolve_latency_form

    # every option first: a mistake is one line before anything is measured
    clip = parse_clip(args.input) if args.input else None
    count = _genomes_option(args.genomes)
    form = checked_form(args.form)
    if form is not None and args.runtime != "torch":
        raise UserError(f"--form applies to --runtime torch; {args.runtime} runs the fp32 ONNX graph")
    space = load_space(args.space)
    clip = clip or getattr(space, "target_clip", None) or DEFAULT_CLIP
    kw = dict(
        device=args.device,
        runtime=args.runtime,
        threads=args.threads,
        runs=args.runs,
        passes=args.passes,
        clock=args.clock,
    )
    LatencyTable(form=form if form not in (None, "calibrated") else FP32, **kw)  # checks device, runtime, threads
    form = resolve_latency_form(form, resolve_device(args.device))  # calibrated: may measure first (~3 min)
    tab = LatencyTable.load(form=form, **kw)

    if args.show:
        if not len(tab):
            raise UserError(f"no latency table for this setting in {tab.path}: run archlab latency-table")
        print(show(tab))
        return 0
    if args.refresh:
        tab.clear()
    clip_text = "x".join(map(str, clip))
    print(f"latency table: {tab.describe()}")
    print(f"machine load (1-min average) at the start: {_load():.2f} on {_cores()} cores")
    rng = random.Random(args.seed)
    fill = space_genomes(space, count, rng)
    check = (
        space_genomes(space, args.check, random.Random(args.seed + 1), constrained=args.constrained)
        if args.check
        else []
    )
    reached = distinct_parts(fill, clip)
    todo = tab.missing([*fill, *check], clip)
    what = f"all {len(fill):,} genomes" if count is None else f"{len(fill):,} random genomes"
    print(f"space {space.name}: {what} reach {len(reached)} parts at {clip_text}; {len(todo)} to measure")
    t0 = time.monotonic()
    measured = tab.fill([*fill, *check], clip, progress=CountProgress(label="parts", echo=_log))
    minutes = (time.monotonic() - t0) / 60
    print(
        f"table: {len(tab)} parts in all, {measured} measured now in {minutes:.1f} min "
        f"({tab.runs} timed runs in each of {tab.passes} pass(es), in context, the fastest kept); "
        f"cached in {tab.path}"
    )
    if not check:
        return 0
    what = "within its constraints" if args.constrained else "unconstrained"
    print(
        f"check: {len(check)} genomes of {space.name} ({what}, seed {args.seed + 1}) measured end to end "
        f"(fastest of {args.check_runs} runs in each of {args.check_passes} shuffled passes, the fastest pass kept)"
    )
    t0 = time.monotonic()
    per_pass = tab.network_passes(
        check,
        clip,
        runs=args.check_runs,
        passes=args.check_passes,
        progress=CountProgress(label="networks", echo=_log, every=30.0),
    )
    measured_ms = [min(row) for row in per_pass]
    minutes = (time.monotonic() - t0) / 60
    print(f"  measured in {minutes:.1f} min; machine load (1-min average) at the end: {_load():.2f}")
    predicted = [tab.predict(g, clip, measure_missing=False).total_ms for g in check]
    tau = kendall_tau_b(predicted, measured_ms) if len(check) > 1 else float("nan")
    print(report(check, predicted, measured_ms, tau))
    floor, floor_tau = None, None
    if args.check_passes > 1:
        first, second = [row[0] for row in per_pass], [row[1] for row in per_pass]
        floor = prediction_errors(second, first)
        floor_tau = kendall_tau_b(second, first) if len(check) > 1 else float("nan")
        print(
            f"the measurement against itself (pass 2 against pass 1): {floor.within:.0%} within ±10%  ·  "
            f"median |difference| {floor.median_abs:.1%}  ·  Kendall tau {floor_tau:.3f}"
        )
    tab.record_check(
        clip,
        check,
        predicted,
        measured_ms,
        tau=tau,
        space=space.name,
        constrained=args.constrained,
        seed=args.seed + 1,
        runs=args.check_runs,
        passes=args.check_passes,
        per_pass=per_pass,
        pass_to_pass_within=None if floor is None else floor.within,
        pass_to_pass_median_abs=None if floor is None else floor.median_abs,
        pass_to_pass_tau=floor_tau,
        clock=tab.clock,
        minutes=round(minutes, 2),
    )
    print(f"check kept in {tab.save()}")
    return 0


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _cores() -> int:
    from ..util.versions import usable_cores

    return usable_cores()


def report(genomes: list[Any], predicted: list[float], measured: list[float], tau: float, worst: int = 5) -> str:
    """The error report: share within +-10%, median / 90th-percentile error, Kendall tau, the
    goal, and the ``worst`` genomes."""
    from ..measure.latency_errors import prediction_errors

    e = prediction_errors(predicted, measured)
    met = e.within >= GOAL_WITHIN and tau >= GOAL_TAU
    lines = [
        f"within ±{e.tolerance:.0%}: {round(e.within * e.n)}/{e.n} ({e.within:.0%})  ·  median |error| "
        f"{e.median_abs:.1%}  ·  90th percentile {e.p90_abs:.1%}  ·  mean error {e.mean:+.1%}  ·  "
        f"Kendall tau {tau:.3f}",
        f"goal (≥{GOAL_WITHIN:.0%} within ±{e.tolerance:.0%}, tau ≥ {GOAL_TAU}): {'met' if met else 'NOT met'}",
    ]
    order = sorted(range(e.n), key=lambda i: -abs(e.errors[i]))[:worst]
    rows = [[f"{predicted[i]:.1f}", f"{measured[i]:.1f}", f"{e.errors[i]:+.1%}", str(genomes[i])] for i in order]
    lines.append(table(rows, ["predicted ms", "measured ms", "error", "genome"], right={0, 1, 2}))
    return "\n".join(lines)


def show(tab: Any) -> str:
    """The cached table: what it was measured in, then every part with its time."""
    rows = [[f"{v['ms']:.3f}", k] for k, v in sorted(tab.entries.items())]
    out = [f"latency table: {tab.describe()}", table(rows, ["ms", "part"], right={0})]
    for clip, ms in sorted(tab.overhead.items()):
        out.append(f"per-network overhead at {clip}: {ms:+.2f} ms")
    for clip, c in sorted(tab.checks.items()):
        out.append(
            f"last check at {clip} ({c.get('when')}): {len(c.get('genomes', []))} genomes of {c.get('space')}, "
            f"{c.get('within', 0):.0%} within ±10%, median |error| {c.get('median_abs', 0):.1%}, "
            f"Kendall tau {c.get('tau', float('nan')):.3f}"
        )
    return "\n".join(out)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "latency-table",
        help="measure the latency predictor's table of parts for a space, cache it, report its error",
    )
    p.add_argument("--space", default="interleave", help="search space whose parts fill the table (default interleave)")
    p.add_argument("--input", help="clip FRAMESxHEIGHTxWIDTH (default: the space's target clip, else 16x112x112)")
    p.add_argument("--device", default="cpu", help=f"{DEVICES} (default cpu)")
    add_form_option(p, "--form", help=f"precision/layout (default fp32/ncdhw), e.g. bf16/cl3d, {CALIBRATED_HELP}")
    p.add_argument(
        "--runtime", choices=RUNTIMES, default="torch", help="torch (eager, default), or onnxruntime / openvino (CPU)"
    )
    p.add_argument("--threads", type=at_least(1), help="torch intra-op threads (default: torch's setting)")
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall (default: the time a user waits) or cpu (the thread's CPU time, --threads 1 only: "
        "time spent waiting for a core another process holds does not count)",
    )
    p.add_argument(
        "--genomes",
        default="all",
        help="genomes whose parts fill the table: all (every genome of the space, default) or N random ones",
    )
    p.add_argument("--runs", type=at_least(1), default=7, help="timed chains of a network's parts per pass (default 7)")
    p.add_argument(
        "--passes", type=at_least(1), default=2, help="passes over the networks, the fastest chain kept (default 2)"
    )
    p.add_argument(
        "--check",
        type=at_least(0),
        default=50,
        help="genomes sampled from the space and measured end to end for the error report (default 50; 0: none)",
    )
    p.add_argument("--check-runs", type=at_least(1), default=5, help="timed runs per network and pass (default 5)")
    p.add_argument(
        "--check-passes",
        type=at_least(1),
        default=2,
        help="shuffled passes over the check genomes, the fastest kept; 2 or more also measure the "
        "measurement against itself (default 2)",
    )
    p.add_argument("--constrained", action="store_true", help="sample the check within the space's max_gmacs/params")
    p.add_argument("--seed", type=at_least(0), default=0, help="seed of the samples (default 0)")
    p.add_argument("--refresh", action="store_true", help="forget the cached table and measure every part again")
    p.add_argument("--show", action="store_true", help="print the cached table only")
    p.set_defaults(func=cmd_latency_table)
