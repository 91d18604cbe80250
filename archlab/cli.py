"""Command-line interface: argument parsing and printing only.

Every command is a ``cmd_*`` function that calls into the package and prints. Mistakes a
user can make raise ``UserError``; ``main`` prints them as one line on stderr and returns 2.
Nothing imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import cli_calibrate
from .errors import UserError


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _table(rows: list[list[str]], header: list[str], right: set[int] | None = None) -> str:
    """A plain fixed-width table (no dependency, pastes into any terminal or issue)."""
    right = right if right is not None else set(range(1, len(header)))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


# ---- build / profile / presets -----------------------------------------------------------

def _genome_arg(text: str, classes: int | None):
    from .presets import resolve

    return resolve(text, classes)


def _clip_arg(args: argparse.Namespace, genome_text: str):
    from .presets import DEFAULT_INPUT
    from .profile import parse_clip

    if args.input:
        return parse_clip(args.input)
    return DEFAULT_INPUT.get(genome_text.strip(), (16, 160, 160))


def _cost_table(genome, clip, method: str) -> str:
    from .profile import cost

    c = cost(genome, clip, method=method)
    rows = [[s.name, s.letters, "x".join(map(str, s.out_shape)), _fmt_int(s.params), f"{s.macs / 1e9:.3f}"]
            for s in c.stages]
    rows.append(["total", "", "", _fmt_int(c.params), f"{c.gmacs:.3f}"])
    out = _table(rows, ["part", "blocks", "output CxTxHxW", "params", "GMACs"], right={3, 4})
    skipped = ", ".join(op.removeprefix("aten::") for op in c.uncounted)
    return out + f"\nMACs = multiply-adds of conv and linear layers; not counted: {skipped}."


def cmd_build(args: argparse.Namespace) -> int:
    g = _genome_arg(args.genome, args.classes)
    clip = _clip_arg(args, args.genome)
    print(f"genome  {g}\nid      {g.id}\ninput   3x{'x'.join(map(str, clip))}")
    print(_cost_table(g, clip, args.counter))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from .profile import latency, resolve_device

    resolve_device(args.device)  # fail before printing anything
    g = _genome_arg(args.genome, args.classes)
    clip = _clip_arg(args, args.genome)
    print(f"genome  {g}\nid      {g.id}\ninput   {args.batch}x3x{'x'.join(map(str, clip))}")
    print(_cost_table(g, clip, args.counter))
    print(f"measuring latency on {args.device} ({args.runs} runs after warm-up)...", file=sys.stderr)
    lat = latency(g, clip, device=args.device, batch=args.batch, runs=args.runs, form=cli_calibrate.latency_form(args),
                  runtime=args.latency_runtime)
    print(f"latency {lat.median_ms:.1f} ms (median of {lat.runs})  ·  {lat.clips_per_s:.2f} clips/s  ·  "
          f"peak memory {lat.peak_mem_mb:.0f} MiB  ·  {lat.device}  ·  {lat.runtime} {lat.form}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .presets import DEFAULT_INPUT, DESCRIPTIONS, PRESETS, get
    from .profile import cost

    rows = []
    for name in PRESETS:
        g = get(name, args.classes)
        clip = DEFAULT_INPUT[name]
        c = cost(g, clip)
        rows.append([name, _fmt_int(c.params), f"{c.gmacs:.2f}", "x".join(map(str, clip)), str(g), DESCRIPTIONS[name]])
    print(_table(rows, ["preset", "params", "GMACs", "input", "genome", "what"], right={1, 2}))
    return 0


# ---- export ------------------------------------------------------------------------------

EXPORT_DESCRIPTION = """\
Export one network as model.pt2 (torch.export, runs without archlab), model.onnx (onnxruntime)
and a model card, after checking both against eager PyTorch (nothing is written if they differ).

Which trial of a study (finished search trials compete: status ok or stopped; baselines
only with --trial):
  with --max-latency / --max-gmacs: among the trials within the limits, the non-dominated ones
    ranked by val_top1, best first: rank 1 is the most accurate trial within the budget.
  without limits: rank 1 is the knee point of the front (closest to the utopia point with each
    objective scaled to [0, 1] over the front); rank k is the knee of the front that remains
    after removing ranks 1..k-1 (from the balanced middle towards the extremes; ties: the
    earlier row of results.csv).
  --trial ID skips the rule (a trial_id, or a trial number)."""


def cmd_export(args: argparse.Namespace) -> int:
    from .export import FORMATS, VerificationError, export, resolve_source
    from .profile import parse_clip

    clip = parse_clip(args.input) if args.input else None
    src = resolve_source(args.study_dir, args.genome, rank=args.rank, trial=args.trial, weights=args.weights,
                         max_latency=args.max_latency, max_gmacs=args.max_gmacs)
    if src.trial is not None:
        print(f"trial   {src.trial['trial_id']}  ({src.selection})")
    print(f"genome  {src.genome}\nid      {src.genome.id}")
    formats = FORMATS if args.format == "all" else (args.format,)
    try:
        res = export(src, args.out, formats, clip, progress=lambda m: print(m, file=sys.stderr, flush=True),
                     form=cli_calibrate.export_form(args))
    except VerificationError as e:  # the exporter's fault, not the user's: exit 1, with the numbers
        print(f"archlab export: error: verification failed, nothing written: {e}", file=sys.stderr)
        return 1
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    rows = [[c.format, str(c.batch), f"{c.max_abs_err:.2e}", f"{c.max_rel_err:.2e}", f"{c.tol:.2e}",
             "ok" if c.ok else "FAILED"] for c in res.checks]
    print(_table(rows, ["format", "batch", "max abs err", "max rel err", "tolerance", "verdict"]))
    rows = [[name, _fmt_int(f["bytes"]), f["sha256"]] for name, f in res.files.items()]
    print(_table(rows, ["file", "bytes", "sha256"], right={1}))
    print(f"{'replaced' if res.replaced else 'wrote'} {res.out_dir}/ (model card: MODEL_CARD.md, model_card.json)")
    return 0


# ---- search ------------------------------------------------------------------------------

def _front_table(front, objectives: list[str]) -> str:
    rows = []
    for _, r in front.iterrows():
        rows.append([str(int(r["number"])) if not r["baseline"] else "base", f"{r['val_top1']:.3f}",
                     f"{r['latency_ms']:.1f}" if r["latency_ms"] == r["latency_ms"] else "-",
                     f"{r['gmacs']:.3f}", _fmt_int(int(r["params"])), r["label"] or "", r["genome"]])
    return _table(rows, ["trial", "val_top1", "latency ms", "GMACs", "params", "baseline", "genome"],
                  right={0, 1, 2, 3, 4})


def _key_values(items: list[str] | None, flag: str) -> dict:
    """['n_clips=64', 'classes=10'] -> {'n_clips': 64, 'classes': 10} (values read as YAML scalars)."""
    import yaml

    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            raise UserError(f"{flag} {item!r} must look like KEY=VALUE")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out


def cmd_search(args: argparse.Namespace) -> int:
    from .results import FINISHED, finished, load_results
    from .search import SearchConfig, search, shutdown

    cfg = SearchConfig(space=args.space, name=args.name, out=args.out, data=args.data, data_root=args.data_root,
                       data_opts=_key_values(args.data_opt, "--data-opt"),
                       frames=args.frames, size=args.size, objectives=args.objectives, trials=args.trials,
                       epochs=args.epochs, batch=args.batch, optimizer=args.optimizer, lr=args.lr,
                       grace_epochs=args.grace_epochs, sampler=args.sampler, concurrency=args.concurrency,
                       cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                       address=args.address, seed=args.seed, baselines=args.baselines, max_gmacs=args.max_gmacs,
                       max_params=args.max_params, storage=args.storage, wandb=args.wandb,
                       latency_runtime=args.latency_runtime, train_form=args.train_form)
    try:
        out = search(cfg, resume=args.resume, echo=lambda line: print(line, flush=True))
    finally:
        shutdown()
    df, info = load_results(out.study_dir)
    front = df[df["on_front"]].sort_values(info.objectives[1])
    print(f"\nPareto front ({len(front)} of {len(finished(df))} finished trials; "
          f"{info.objectives[0]} up, {info.objectives[1]} down):")
    print(_front_table(front, info.objectives) if len(front) else "  (empty)")
    base = df[df["baseline"] & df["status"].isin(FINISHED)]
    if len(base):
        print("\nBaselines (same proxy budget, on the knee point's skeleton):")
        print(_front_table(base, info.objectives))
    if out.hypervolume is not None:
        print(f"\nhypervolume {out.hypervolume:.4g}  (reference point in {out.study_dir}/front.yaml)")
    failed = df[df["status"].isin(["failed", "rejected"])]
    if len(failed):
        print(f"\n{len(failed)} trial(s) failed or were rejected:")
        for _, r in failed.iterrows():
            print(f"  #{int(r['number'])} {r['status']}: {r['reason']}  ({r['genome']})")
    busy = float(df["trial_time_s"].fillna(0).sum())
    rejected = f"{out.rejected} rejected" + (f", {out.repeated} repeated genome(s) not retrained" if out.repeated else "")
    print(f"\n{out.finished} finished, {out.failed} failed, {rejected} in {out.wall_s:.0f} s "
          f"(Ray start {out.ray_start_s:.1f} s, trials busy {busy:.0f} s)  ·  results: {out.study_dir}/results.csv")
    if out.interrupted:
        print(f"search INTERRUPTED: continue it with `archlab search --name {out.study_dir.name} "
              f"--out {cfg.out} --resume`", file=sys.stderr)
        return 130
    return 0


def _add_search_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a space: Ray Tune trials, Optuna proposals, a Pareto front")
    p.add_argument("--space", default="interleave", help="a space name (see `archlab spaces`) or a YAML path")
    p.add_argument("--data", default="synthetic", help="synthetic (built in, default) | ucf101 | folder")
    p.add_argument("--data-root", help="dataset root for ucf101/folder")
    p.add_argument("--data-opt", action="append", metavar="KEY=VALUE",
                   help="dataset option, repeatable (e.g. n_clips=600 for synthetic, classes=10 or "
                        "cache=PATH for ucf101)")
    p.add_argument("--frames", type=int, default=8, help="frames per proxy clip (default 8)")
    p.add_argument("--size", type=int, default=32, help="proxy clip height=width (default 32)")
    p.add_argument("--objectives", default="acc,latency", help="acc,latency (default) | acc,gmacs | acc,params")
    p.add_argument("--trials", type=int, default=12, help="trials to run in total (default 12)")
    p.add_argument("--epochs", type=int, default=5, help="proxy epochs per trial (default 5)")
    p.add_argument("--batch", type=int, default=8, help="proxy batch size (default 8)")
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"], help="proxy optimizer (default adamw)")
    p.add_argument("--lr", type=float, default=0.002, help="proxy peak learning rate (default 0.002)")
    p.add_argument("--grace-epochs", type=int, default=3,
                   help="ASHA: epochs every trial gets before it can be stopped (default 3)")
    p.add_argument("--sampler", default="nsga2", choices=["nsga2", "tpe", "random"], help="Optuna sampler")
    p.add_argument("--concurrency", type=int, help="trials at a time (default: as many as resources allow)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial, fractions allowed")
    p.add_argument("--address", help="an existing Ray cluster: ray://HOST:PORT, HOST:PORT or auto")
    p.add_argument("--name", help="study name (default SPACE-DATA); re-running a name continues it")
    p.add_argument("--out", default="runs", help="where study directories live (default runs/)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted study (must exist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baselines", action="store_true",
                   help="also train pure A/B/C, 2D and the A->B->C interleave on the knee point's skeleton")
    p.add_argument("--max-gmacs", type=float, help="reject genomes above this many GMACs before training")
    p.add_argument("--max-params", type=float, help="reject genomes above this many parameters")
    p.add_argument("--storage", help="Optuna RDB URL for a shared database (default: optuna.db in the study)")
    p.add_argument("--wandb", default="auto", choices=["auto", "online", "offline", "off"],
                   help="W&B logging (auto: online with credentials, else offline files in the study)")
    p.add_argument("--latency-runtime", choices=["torch", "onnxruntime", "openvino"], default="torch",
                   help="where the latency objective is measured: torch eager in this machine's calibrated "
                        "form (default), or the exported ONNX graph in onnxruntime / openvino")
    p.add_argument("--train-form", metavar="FORM", help="precision/layout proxies train in, e.g. fp32/ncdhw "
                   "(default: this machine's calibrated choice, archlab calibrate)")
    p.set_defaults(func=cmd_search)


# ---- study -------------------------------------------------------------------------------

def cmd_study_run(args: argparse.Namespace) -> int:
    from .studies import load_study, run_study

    study = load_study(args.study, quick=args.quick)
    res = run_study(study, out=args.out, echo=lambda line: print(line, flush=True))
    print()
    print(res.markdown.rstrip())
    runs = f"{res.trained} train run(s) trained, {res.reused} reused, " if study.train is not None else ""
    print(f"\n{runs}{res.wall_s:.0f} s  ·  {res.out_dir}/summary.csv, summary.md")
    if res.interrupted:
        print("study INTERRUPTED: run the same command again to continue it", file=sys.stderr)
        return 130
    return 0


def cmd_study_list(args: argparse.Namespace) -> int:
    from .studies import list_studies

    rows = [[s.name, s.kinds(), s.description] for s in list_studies()]
    print(_table(rows, ["study", "entries", "description"], right=set()))
    return 0


def _add_study_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run a study (studies/*.yaml): fixed comparisons that reproduce an experiment")
    study_sub = p.add_subparsers(dest="study_command", metavar="STUDY_COMMAND", parser_class=_Parser)
    study_sub.required = True
    p = study_sub.add_parser("run", help="run (or continue) a study and write summary.csv + summary.md")
    p.add_argument("study", metavar="FILE_OR_NAME", help="a study name (see `archlab study list`) or a YAML path")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/studies/NAME, "
                   "runs/studies/NAME-quick with --quick); re-running continues it")
    p.add_argument("--quick", action="store_true", help="a smoke run of about a minute: 1 epoch, 1 seed, "
                   "2 trials per search, few clips (the file's quick: section)")
    p.set_defaults(func=cmd_study_run)
    p = study_sub.add_parser("list", help="the studies in studies/ with what they run")
    p.set_defaults(func=cmd_study_list)


# ---- data ------------------------------------------------------------------------------

def cmd_data_prepare(args: argparse.Namespace) -> int:
    from .data.cache import PREPARERS
    from .data.video import parse_size

    opts: dict = {}
    if args.dataset == "ucf101":
        classes = args.classes
        opts = {"split": args.split, "classes": int(classes) if classes and classes.isdigit() else classes}
    elif args.split is not None or args.classes is not None:
        raise UserError("--split and --classes apply to ucf101 only")

    def started(todo: int, done: int, need: int, free: int) -> None:
        print(f"{todo} videos to decode, {done} already in the cache; about {need / 1e9:.1f} GB to write "
              f"({free / 1e9:.0f} GB free)", file=sys.stderr)

    s = PREPARERS[args.dataset](args.root, args.cache, size=parse_size(args.size) if args.size else None,
                                workers=args.workers, on_start=started, **opts)
    print(f"cache {s.cache}: {s.total} videos; {s.decoded} decoded now ({_fmt_int(s.frames)} frames, "
          f"{s.bytes_written / 1e6:,.1f} MB, {s.seconds:.1f} s), {s.already_done} already cached, "
          f"{len(s.corrupt)} skipped as corrupt or missing")
    for key, reason in sorted(s.corrupt.items()):
        print(f"  skipped {key}: {reason}")
    return 0


# ---- report / dashboard ----------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    build_report(args.study_dir, args.format, echo=print)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from .report import serve_dashboard

    try:
        serve_dashboard(args.study_dir, host=args.host, port=args.port, echo=lambda line: print(line, flush=True))
    except KeyboardInterrupt:  # Ctrl-C is how a user stops it: not an error
        pass
    return 0


# ---- train / spaces ----------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    from .data import get_dataset
    from .genome import scale_widths
    from .train import TrainConfig, train

    g = _genome_arg(args.genome, None)
    if args.width != 1.0:
        g = scale_widths(g, args.width)
    opts: dict = {}
    if args.clips is not None:
        if args.data != "synthetic":
            raise UserError("--clips sets the size of the synthetic dataset only")
        if args.clips < 2:
            raise UserError(f"--clips {args.clips}: give at least 2 clips")
        opts = {"n_clips": args.clips}
    data = dict(root=args.data_root, frames=args.frames, size=args.size)
    train_set = get_dataset(args.data, "train", **data, **opts)
    val_opts = {"n_clips": max(2, args.clips // 4)} if opts else {}
    val_set = get_dataset(args.data, "val", **data, **val_opts)
    g = g.with_(classes=len(train_set.classes))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
                      seed=args.seed, workers=args.workers, device=args.device, compile=args.compile,
                      channels_last=None if args.channels_last == "auto" else args.channels_last == "on",
                      max_steps_per_epoch=args.max_steps, zero_init_last_bn=not args.no_zero_init,
                      form=cli_calibrate.train_form(args))
    print(f"genome  {g}\nid      {g.id}\ndata    {args.data}: {len(train_set)} train / {len(val_set)} val clips, "
          f"{len(train_set.classes)} classes, {args.frames}x{args.size}x{args.size}\nout     {args.out}", flush=True)
    result = train(g, train_set, val_set, cfg, out_dir=args.out, progress=True)
    if result.status != "ok":
        print(f"archlab train: training stopped ({result.status}): {result.reason}", file=sys.stderr)
        return 1
    last = result.history[-1]
    print(f"best val top1 {result.best_top1:.3f} at epoch {result.best_epoch}  ·  last: top1 {last.val_top1:.3f} "
          f"top5 {last.val_top5:.3f} loss {last.val_loss:.3f}  ·  {result.train_time_s:.1f} s training  ·  "
          f"weights {args.out}/best.pt")
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    from .spaces import list_spaces

    rows = []
    for s in list_spaces():
        limits = ", ".join(x for x in (f"<= {s.max_gmacs:g} GMACs" if s.max_gmacs else "",
                                       f"<= {s.max_params:,} params" if s.max_params else "") if x)
        rows.append([s.name, _fmt_int(s.cardinality()), f"{limits} at {'x'.join(map(str, s.clip))}" if limits else "-",
                     s.description])
    print(_table(rows, ["space", "assignments", "constraints", "description"], right={1}))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import json
    import random

    from .profile import cost, parse_clip
    from .spaces import load_space

    if args.n < 1:
        raise UserError(f"-n {args.n}: give a positive number of genomes")
    space = load_space(args.space)
    clip = parse_clip(args.input) if args.input else space.clip
    rng = random.Random(args.seed)
    rows = []
    for i in range(1, args.n + 1):
        params = space.sample_params(rng, constrained=not args.unconstrained)
        g = space.from_params(params)
        c = cost(g, clip)
        row = [str(i), _fmt_int(c.params), f"{c.gmacs:.3f}", str(g)]
        if args.show_params:
            row.append(json.dumps(params))
        rows.append(row)
    header = ["#", "params", f"GMACs@{'x'.join(map(str, clip))}", "genome"] + (["parameters"] if args.show_params else [])
    print(_table(rows, header, right={0, 1, 2}))
    return 0


def cmd_blocks(args: argparse.Namespace) -> int:
    from .bench import blocks_table, block_costs
    from .profile import device_label, parse_clip, resolve_device

    dev = resolve_device(args.device)
    clip = parse_clip(args.input)
    if args.width <= 0 or args.runs < 1:
        raise UserError("--width must be positive and --runs at least 1")
    print(f"one bottleneck block per letter at each P3D-63 stage's shape, input 1x3x{args.input}, "
          f"width x{args.width:g}, {device_label(dev)}; median of {args.runs} round-robin runs", file=sys.stderr)
    body, header = blocks_table(block_costs(clip, args.width, args.device, args.runs))
    print(_table([[str(c) for c in r] for r in body], header, right=set(range(2, len(header)))))
    print("MACs = multiply-adds of conv layers; ms/GMAC vs 2D > 1: slower per multiply-add than the 2D block.")
    return 0


# ---- parser ------------------------------------------------------------------------------

def _add_genome_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("genome", help="a preset name (see `archlab presets`) or a genome string, e.g. 'ABC|ABCA|BCABCA|222'")
    p.add_argument("--input", help="clip FRAMESxHEIGHTxWIDTH (default: the preset's own, else 16x160x160)")
    p.add_argument("--classes", type=int, help="number of output classes (default: the genome's)")
    p.add_argument("--counter", choices=["fast", "fvcore"], default="fvcore",
                   help="MAC counter: fvcore (reference) or fast (meta-device hooks, same numbers)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is ONE line on stderr (exit 2), like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archlab", description="Search, profile, train and export video networks "
                     "built from Pseudo-3D ResNet block mixes.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("build", help="show a network's per-stage shapes, params and GMACs")
    _add_genome_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("profile", help="build + measured latency, clips/s and memory")
    _add_genome_args(p)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch", type=int, default=1, help="clips per forward (default 1)")
    p.add_argument("--runs", type=int, default=10, help="timed runs after warm-up (default 10)")
    cli_calibrate.add_latency_args(p)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("presets", help="list the named models with params and GMACs")
    p.add_argument("--classes", type=int, help="number of output classes (default 400)")
    p.set_defaults(func=cmd_presets)

    _add_search_parser(sub)
    _add_study_parser(sub)
    cli_calibrate.add_parser(sub)

    p = sub.add_parser("export", help="export a study's best trial or a genome: .pt2 + ONNX + model card",
                       description=EXPORT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study_dir", nargs="?", metavar="STUDY_DIR", help="a study directory (holds results.csv)")
    p.add_argument("--genome", metavar="GENOME|PRESET", help="export this genome instead of a study's trial")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--rank", type=int, help="the k-th trial by the rule above (default 1)")
    which.add_argument("--trial", metavar="ID", help="this trial: a trial_id or a trial number")
    p.add_argument("--weights", metavar="trial|none|PATH",
                   help="trial: the trial's best.pt (default for a study); none: fresh initialisation "
                        "(default for --genome); PATH: this checkpoint")
    p.add_argument("--format", choices=["pt2", "onnx", "all"], default="all", help="what to write (default all)")
    p.add_argument("--input", help="clip FRAMESxHEIGHTxWIDTH (default: the checkpoint's, else the study's, "
                                   "else the preset's, else 16x160x160); batch stays dynamic")
    p.add_argument("--out", metavar="DIR", help="default STUDY_DIR/export/<genome_id>/ or ./export/<genome_id>/")
    p.add_argument("--max-latency", type=float, metavar="MS", help="rank among trials with latency_ms <= MS")
    p.add_argument("--max-gmacs", type=float, metavar="G", help="rank among trials with gmacs <= G")
    cli_calibrate.add_export_form_arg(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("data", help="prepare datasets (decode videos once into a frame cache)")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=_Parser)
    data_sub.required = True
    p = data_sub.add_parser("prepare", help="decode a dataset's videos once into a memory-mappable cache "
                            "(resumable: re-run to continue)")
    p.add_argument("dataset", choices=["ucf101", "folder"],
                   help="ucf101 (ROOT/UCF-101 + ROOT/ucfTrainTestlist) or folder (ROOT/<class>/<video>)")
    p.add_argument("--root", required=True, help="the dataset folder")
    p.add_argument("--cache", required=True, help="the cache folder to write (or to resume)")
    p.add_argument("--size", help="frame size HEIGHTxWIDTH, or a short side (default 128x171 for ucf101, "
                   "short side 128 for folder)")
    p.add_argument("--split", type=int, choices=[1, 2, 3], help="ucf101: only this official split's "
                   "videos (default: all three, i.e. every video)")
    p.add_argument("--classes", help="ucf101: the first K classes, or comma-separated class names")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="decoding processes (default: one per CPU core)")
    p.set_defaults(func=cmd_data_prepare)

    p = sub.add_parser("report", help="plots and a report (front, failures, hypervolume) of a study")
    p.add_argument("study_dir", metavar="STUDY_DIR", help="a study directory (holds study.yaml and optuna.db)")
    p.add_argument("--format", choices=["md", "html"], default="md", help="report.md (default) or report.html")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("dashboard", help="serve optuna-dashboard for a study (until Ctrl-C)")
    p.add_argument("study_dir", metavar="STUDY_DIR", help="a study directory (holds study.yaml and optuna.db)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("train", help="train one genome on a dataset (progress bar, checkpoints, metrics.csv)")
    p.add_argument("genome", metavar="GENOME|PRESET", help="a preset name or a genome string")
    p.add_argument("--data", default="synthetic", choices=["synthetic", "ucf101", "folder"],
                   help="dataset (default synthetic: built in, no download)")
    p.add_argument("--data-root", help="dataset root for ucf101/folder")
    p.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    p.add_argument("--size", type=int, default=64, help="clip height=width (default 64)")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of every stage and the stem (default 1.0)")
    p.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    p.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw"], help="default sgd (Nesterov)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 0.1*batch/64 for sgd, 1e-3 for adamw)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (first epoch pays 15-30 s)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="channels_last_3d memory format (auto: on for CUDA, off for CPU, as measured)")
    cli_calibrate.add_train_form_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="data loader processes (default 0)")
    p.add_argument("--max-steps", type=int, help="at most this many steps per epoch")
    p.add_argument("--clips", type=int, help="synthetic only: training clips (default 1200; val gets a quarter)")
    p.add_argument("--no-zero-init", action="store_true",
                   help="start residual branches at their random init, not at zero (better for 1-3 block nets)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="writes checkpoint.pt, best.pt, metrics.csv; a DIR with a checkpoint resumes")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("spaces", help="list the search spaces with their size and constraints")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("sample", help="random genomes of a search space, with params and GMACs")
    p.add_argument("space", help="a space name (see `archlab spaces`) or a path to a .yaml")
    p.add_argument("-n", type=int, default=5, help="how many (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input", help="clip FRAMESxHEIGHTxWIDTH to count at (default: the space's input; "
                                   "constraints stay at the space's input)")
    p.add_argument("--unconstrained", action="store_true", help="also draw genomes that break the space's limits")
    p.add_argument("--show-params", action="store_true", help="also print each genome's space parameters")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("blocks", help="per-letter block cost: latency, MACs, params, ms/GMAC vs the 2D block")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--input", default="8x112x112", help="clip FRAMESxHEIGHTxWIDTH (default 8x112x112)")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier of P3D-63 (default 1.0)")
    p.add_argument("--runs", type=int, default=20, help="timed round-robin runs after warm-up (default 20)")
    p.set_defaults(func=cmd_blocks)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"archlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"archlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
