"""`archlab search`: parse the options into a SearchConfig, run it, print the front."""

from __future__ import annotations

import argparse
import sys

from ..training.recipe import ProxyRecipe
from .common import fmt_int, key_values, table
from .forms import CALIBRATED_HELP, RUNTIMES, add_form_option


def _ci(r) -> str:
    """'0.733 [0.61, 0.86] n=3': a point's mean over all its seeds and its 95% CI."""
    mean, n = r.get("top1_mean"), r.get("n_seeds")
    if mean != mean or mean is None:
        return "-"
    lo = r.get("top1_ci95_low")
    ci = f" [{lo:.2f}, {r['top1_ci95_high']:.2f}]" if lo == lo and lo is not None else ""
    return f"{mean:.3f}{ci} n={int(n)}"


def _front_table(front, objectives: list[str]) -> str:
    rows = []
    for _, r in front.iterrows():
        rows.append(
            [
                str(r["trial"]),
                f"{r['val_top1']:.3f}",
                _ci(r),
                f"{r['latency_ms']:.1f}" if r["latency_ms"] == r["latency_ms"] else "-",
                f"{r['gmacs']:.3f}",
                fmt_int(int(r["params"])),
                r["label"] or "",
                r["genome"],
            ]
        )
    return table(
        rows,
        ["trial", "val_top1", "mean over seeds, 95% CI", "latency ms", "GMACs", "params", "baseline", "genome"],
        right={0, 1, 3, 4, 5},
    )


def cmd_search(args: argparse.Namespace) -> int:
    from ..results.reader import FINISHED, finished, load_results
    from ..search import SearchConfig, search, shutdown

    cfg = SearchConfig(
        space=args.space,
        name=args.name,
        out=args.out,
        data=args.data,
        data_root=args.data_root,
        data_opts=key_values(args.data_opt, "--data-opt"),
        recipe=ProxyRecipe.from_args(args),
        objectives=args.objectives,
        trials=args.trials,
        grace_epochs=args.grace_epochs,
        scheduler=args.scheduler,
        sampler=args.sampler,
        concurrency=args.concurrency,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        address=args.address,
        baselines=args.baselines,
        max_gmacs=args.max_gmacs,
        max_params=args.max_params,
        max_latency_ms=args.max_latency_ms,
        latency=args.latency,
        proposal_tries=args.proposal_tries,
        target_input=args.target_input,
        proxy_width=args.proxy_width,
        init=args.init,
        storage=args.storage,
        wandb=args.wandb,
        train_form=args.train_form,
        latency_form=args.latency_form,
        latency_runtime=args.latency_runtime,
        seeds=args.seeds,
        confirm_seeds=args.confirm_seeds,
        latency_passes=args.latency_passes,
    )
    try:
        out = search(cfg, resume=args.resume, echo=lambda line: print(line, flush=True))
    finally:
        shutdown()
    df, info = load_results(out.study_dir)
    front = df[df["on_front"]].sort_values(info.objectives[1])
    kind = str(df["front"].iloc[0]) if len(df) else "provisional"
    print(
        f"\nPareto front, {kind} ({len(front)} of {len(finished(df))} finished trials; "
        f"{info.objectives[0]} up, {info.objectives[1]} down):"
    )
    print(info.units())
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
    rejected = f"{out.rejected} rejected" + (
        f", {out.repeated} repeated genome(s) not retrained" if out.repeated else ""
    )
    print(
        f"\n{out.finished} finished, {out.failed} failed, {rejected} in {out.wall_s:.0f} s "
        f"(Ray start {out.ray_start_s:.1f} s, trials busy {busy:.0f} s)  ·  results: {out.study_dir}/results.csv"
    )
    if not out.interrupted:
        print(
            f"next: archlab report {out.study_dir}  ·  archlab export {out.study_dir} --rank 1  ·  "
            f"more trials: the same command with a larger --trials"
        )
    if out.interrupted:
        print(
            f"search INTERRUPTED: continue it with `archlab search --name {out.study_dir.name} "
            f"--out {cfg.out} --resume`",
            file=sys.stderr,
        )
        return 130
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a space: Ray Tune trials, Optuna proposals, a Pareto front")
    p.add_argument("--space", default="interleave", help="a space name (see `archlab spaces`) or a YAML path")
    p.add_argument("--data", default="synthetic", help="synthetic (built in, default) | ucf101 | folder")
    p.add_argument("--data-root", help="dataset root for ucf101/folder")
    p.add_argument(
        "--data-opt",
        action="append",
        metavar="KEY=VALUE",
        help="dataset option, repeatable (e.g. n_clips=600 for synthetic, classes=10 or cache=PATH for ucf101)",
    )
    p.add_argument("--objectives", default="acc,latency", help="acc,latency (default) | acc,gmacs | acc,params")
    p.add_argument(
        "--trials",
        type=int,
        help="trials that train, in total (default 12; a continued study keeps "
        "its own; a larger value on a finished study trains the difference)",
    )
    p.add_argument(
        "--grace-epochs",
        type=int,
        default=8,  # = SearchConfig.grace_epochs (a test checks)
        help="ASHA: epochs every trial gets before it can be stopped (default 8: from there the "
        "14-epoch proxy's ranking agrees with its final one at rho 0.93)",
    )
    p.add_argument(
        "--scheduler",
        default="asha",
        choices=["asha", "mo-asha"],
        help="early stopping at the rungs: ASHA on val_top1, or MO-ASHA on every objective (default asha)",
    )
    p.add_argument(
        "--latency-passes",
        type=int,
        default=5,
        help="after the budget, measure every trained genome's latency again in this many shuffled "
        "passes, one at a time, and rank on the fastest (default 5; 0: the trials' own values)",
    )
    p.add_argument("--sampler", default="nsga2", choices=["nsga2", "tpe", "random"], help="Optuna sampler")
    p.add_argument("--concurrency", type=int, help="trials at a time (default: as many as resources allow)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial, fractions allowed")
    p.add_argument("--address", help="an existing Ray cluster: ray://HOST:PORT, HOST:PORT or auto")
    p.add_argument("--name", help="study name (default SPACE-DATA); re-running a name continues it")
    p.add_argument(
        "--out",
        default="runs",
        metavar="DIR",
        help="where study directories live: the study is DIR/NAME (default runs/)",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted study (must exist)")
    p.add_argument(
        "--baselines",
        action="store_true",
        help="also train pure A/B/C, 2D and the A->B->C interleave on the knee point's skeleton",
    )
    p.add_argument(
        "--max-gmacs", type=float, help="reject genomes whose target is above this many GMACs, before training"
    )
    p.add_argument("--max-params", type=float, help="reject genomes whose target has more parameters than this")
    p.add_argument(
        "--max-latency-ms",
        type=float,
        metavar="MS",
        help="a limit on the target's latency at the target clip, judged before training by the latency table's "
        "prediction (archlab latency-table; the parts it lacks are measured first, once per machine)",
    )
    p.add_argument(
        "--latency",
        choices=["measured", "predicted"],
        default="measured",
        help="the trials' latency: measured end to end by each trial (default) or predicted by the latency table; "
        "the full-budget trials are measured end to end after the search either way",
    )
    p.add_argument(
        "--proposal-tries",
        type=int,
        default=100,
        metavar="N",
        help="proposals drawn for a trial until one meets the limits known before training (default 100; "
        "1: the sampler's proposals as they come, the ones over a limit recorded as rejected)",
    )
    p.add_argument(
        "--target-input",
        metavar="FxHxW",
        help="the clip the shipped network sees: every cost and constraint is taken there (default: the space's "
        "target, e.g. 16x112x112)",
    )
    p.add_argument(
        "--proxy-width",
        type=float,
        metavar="W",
        help="the proxy trains at W times the target's widths, in (0, 1] (default: the space's proxy width; 1: "
        "train the target itself)",
    )
    p.add_argument(
        "--init",
        metavar="FILE",
        help="a 2D ResNet state dict (torchvision/timm names) every proxy is inflated from; needs --proxy-width 1",
    )
    p.add_argument("--storage", help="Optuna RDB URL for a shared database (default: optuna.db in the study)")
    p.add_argument(
        "--wandb",
        default="auto",
        choices=["auto", "online", "offline", "off"],
        help="W&B logging (auto: online with credentials, else offline files in the study)",
    )
    add_form_option(
        p,
        "--train-form",
        default="fp32/ncdhw",
        help="precision/layout proxies train in (default fp32/ncdhw: bf16's effect on the proxy "
        f"ranking is not measured yet), e.g. bf16-autocast/cl3d, {CALIBRATED_HELP}, for training "
        "at the trials' thread count; study.yaml stores the form it resolved to",
    )
    add_form_option(
        p,
        "--latency-form",
        default="fp32/ncdhw",
        help="precision/layout the latency objective is measured in (default fp32/ncdhw), e.g. "
        f"bf16/cl3d, {CALIBRATED_HELP}, for inference",
    )
    p.add_argument(
        "--latency-runtime",
        choices=RUNTIMES,
        default="torch",
        help="where the latency objective is measured: torch eager (default), or the exported "
        "ONNX graph in onnxruntime / openvino",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="K",
        help="seeds per trial (--seed, --seed+1, ...), trained interleaved epoch by epoch; the accuracy "
        "objective is their mean (default 1: extra seeds go to the front's points, --confirm-seeds)",
    )
    p.add_argument(
        "--confirm-seeds",
        type=int,
        default=2,
        metavar="N",
        help="after the budget, retrain every front point with N more seeds; the final front is "
        "computed on the means over all its seeds, with 95%% CIs (default 2; 0: off)",
    )
    ProxyRecipe.add_arguments(p)  # --epochs, --batch, --lr, --frames, --size, --seed, ... (one definition)
    p.set_defaults(func=cmd_search)
