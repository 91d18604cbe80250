"""The seed tail's loss curves: where healthy seeds take off and stuck ones sit, per epoch.

What the plateau rule's epoch, margin and dwell are read from (docs/notebook/seed-tail.md). Trains,
under the default recipe with the rule off (the raw curves), either

* ``anchors``: the P3D anchors (P3D-C, A->B->C, P3D-A, P3D-B; ``archlab.fidelity.anchors``)
  over seeds FIRST..LAST, seed-major, every ``--shards``-th job from ``--shard``; or
* ``space``: the fidelity sample of ``interleave`` (``sample_stratified``, 10 genomes, sample
  seed 0), one seed (FIRST): how often the rule fires on the genomes a search proposes; or
* ``seeds``: given anchor seeds (``--runs P3D-A:511,P3D-C:502``), typically under a changed
  recipe (``--set warmup=3``, repeatable): whether a recipe change lifts the seeds the default
  recipe leaves on the plateau, on the same initial weights (``--set`` applies to the other
  modes too: ``anchors 501 510 --set warmup=3 --out runs/seed_tail_warmup``),

each run to epoch ``--stop`` of the 14-epoch schedule (the schedule is the full run's: a run
stopped at epoch e has exactly the first e epochs of the full run). One thread per run; each
epoch's training loss and val top-1 is appended to ``OUT/epochs.csv`` as it finishes (a killed
measurement keeps what it had, and resumes from each run's checkpoint). Before each run it
waits while ``/tmp/archlab_quiet`` exists (a shared machine's timing window).

Run: ``nice -n 19 .venv/bin/python bench/seed_tail.py anchors 402 440 --stop 7 --shard 0 --shards 2``,
then ``.venv/bin/python bench/seed_tail.py report`` for the table. Runs trained to the end
(``--stop 14``) also get the tail: each genome's median final val top-1, the runs more than 0.2
below it, and which of those the plateau rule would have set aside after epoch 7;
``report --out A --against B`` pairs A's runs with B's by anchor and seed (one recipe against
another on the same initial weights).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

OUT = Path("runs/seed_tail")
ANCHORS = ("P3D-C", "A->B->C", "P3D-A", "P3D-B")
CLASSES = 6  # the synthetic data's: the plateau is at ln CLASSES
COLUMNS = ["what", "label", "genome", "seed", "epoch", "train_loss", "val_top1", "epoch_time_s"]


class _Stop(Exception):
    pass


def _jobs(args: argparse.Namespace) -> list[tuple[str, object, int]]:
    from archlab.fidelity.anchors import anchor_genomes
    from archlab.fidelity.runner import sample_stratified
    from archlab.training.recipe import ProxyRecipe

    if args.what == "anchors":
        genomes = dict(anchor_genomes(ANCHORS))
        jobs = [(n, genomes[n], s) for s in range(args.first, args.last + 1) for n in ANCHORS]
        return jobs[args.shard :: args.shards]
    if args.what == "seeds":
        genomes = dict(anchor_genomes(ANCHORS))
        runs = [r.rsplit(":", 1) for r in args.runs.split(",") if r]
        return [(n, genomes[n], int(s)) for n, s in runs][args.shard :: args.shards]
    sample = sample_stratified("interleave", 10, ProxyRecipe().clip, 0)
    return [(f"s{i + 1}", g, args.first) for i, g in enumerate(sample)]


def measure(args: argparse.Namespace) -> None:
    import torch

    from archlab.data import get_dataset
    from archlab.training.recipe import ProxyRecipe
    from archlab.training.trainer import TrainConfig, train

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = ProxyRecipe(plateau_epochs=0)
    changes = {}
    for item in args.set:
        name, _, value = item.partition("=")
        kind = type(getattr(recipe, name))
        changes[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    recipe = recipe.with_(**changes)
    what = " ".join([args.what, *(f"{k}={v}" for k, v in changes.items())])
    train_set = get_dataset("synthetic", "train", **recipe.dataset_opts("synthetic", "train"))
    val_set = get_dataset("synthetic", "val", **recipe.dataset_opts("synthetic", "val"))
    table = out / "epochs.csv"
    done: dict[tuple[str, str, int], int] = defaultdict(int)
    if table.exists():
        for r in csv.DictReader(table.open()):
            key = (r["what"], r["label"], int(r["seed"]))
            done[key] = max(done[key], int(r["epoch"]))
    for label, genome, seed in _jobs(args):
        if done[(what, label, seed)] >= args.stop:
            continue
        while os.path.exists("/tmp/archlab_quiet"):
            time.sleep(20)
        g = genome.with_(classes=len(train_set.classes))

        def on_epoch(m, label=label, g=g, seed=seed) -> None:
            if m.epoch > done[(what, label, seed)]:
                new = not table.exists()
                with table.open("a", newline="") as f:
                    w = csv.writer(f)
                    if new:
                        w.writerow(COLUMNS)
                    w.writerow([what, label, str(g), seed, m.epoch, f"{m.train_loss:.5f}", f"{m.val_top1:.5f}",
                                f"{m.epoch_time_s:.2f}"])  # fmt: skip
            if m.epoch >= args.stop:
                raise _Stop

        try:
            cfg = TrainConfig(recipe=recipe.with_(seed=seed), device="cpu")
            train(
                g,
                train_set,
                val_set,
                cfg,
                out_dir=out / "ck" / "_".join([*what.split()[1:], g.id, str(seed)]),
                on_epoch=on_epoch,
            )
        except _Stop:
            pass
        print(label, seed, flush=True)


def report(args: argparse.Namespace) -> None:
    """Per run: training loss / ln 6 per epoch, the take-off epoch; per candidate epoch E: the
    highest healthy loss there (a run that took off by the rung, epoch 8, or whose curve ended
    before it already below the take-off bound) and the runs the rule would restart."""
    from archlab.results.tail import takeoff_epoch

    runs, finals = _load(Path(args.out))
    ln = math.log(CLASSES)
    for (what, label, seed), curve in sorted(runs.items()):
        losses = [curve[e] for e in sorted(curve)]
        print(f"{what:7s} {label:8s} {seed:4d}  take-off {str(takeoff_epoch(losses, CLASSES)):>4s}  "
              + " ".join(f"{v / ln:.3f}" for v in losses))  # fmt: skip
    for e in range(3, 9):
        at = [(k, c[e] / ln) for k, c in runs.items() if e in c]
        if not at:
            continue
        flagged = [k for k, v in at if v >= 1 - args.margin]
        print(f"E={e}: {len(at)} runs reached it; {len(flagged)} at >= {1 - args.margin:.2f} x ln 6: {flagged}")
    _tail(args, runs, finals)
    if args.against:
        _paired(args, runs, finals)


def _load(out: Path) -> tuple[dict, dict]:
    """``OUT/epochs.csv`` as run -> {epoch: training loss} and run -> (last epoch, its val top-1);
    a run is (what, label, seed)."""
    runs: dict[tuple[str, str, int], dict[int, float]] = defaultdict(dict)
    finals: dict[tuple[str, str, int], tuple[int, float]] = {}
    for r in csv.DictReader((out / "epochs.csv").open()):
        key, epoch = (r["what"], r["label"], int(r["seed"])), int(r["epoch"])
        runs[key][epoch] = float(r["train_loss"])
        if epoch >= finals.get(key, (0, 0.0))[0]:
            finals[key] = (epoch, float(r["val_top1"]))
    return runs, finals


def _paired(args: argparse.Namespace, runs: dict, finals: dict) -> None:
    """The runs trained to the end here against the same anchor and seed (the same initial
    weights and batch order) trained to the end in ``--against`` (another recipe): per anchor the
    median final val top-1 of each and of the paired difference, how many runs the rule calls
    stuck (``--margin``, ``--dwell``) at its epoch, and the take-off epochs; a recipe that
    removes the plateau lowers the epoch-E losses of all seeds, not only of the few it was
    screened on."""
    import statistics

    from archlab.results.tail import takeoff_counts, takeoff_epoch
    from archlab.training.plateau import is_stuck

    other_runs, other_finals = _load(Path(args.against))

    def ended(rs: dict, fs: dict) -> dict[tuple[str, int], tuple[list[float], float]]:
        return {(k[1], k[2]): ([rs[k][e] for e in sorted(rs[k])], fs[k][1]) for k in fs if fs[k][0] == args.final}

    here, there = ended(runs, finals), ended(other_runs, other_finals)
    pairs = sorted(set(here) & set(there))
    print(f"\npaired with {args.against} (the same anchor and seed, both to epoch {args.final}): {len(pairs)} runs")
    e = args.rule_epoch

    def side(ended_runs: dict, ps: list) -> tuple[float, float, int, dict[str, int]]:
        """Median final top-1, median loss / ln classes at epoch E, runs the rule calls stuck, take-off counts."""
        curves = [ended_runs[p][0] for p in ps]
        return (
            statistics.median(ended_runs[p][1] for p in ps),
            statistics.median(c[e - 1] / math.log(CLASSES) for c in curves),
            sum(is_stuck(c, CLASSES, e, args.margin, args.dwell) for c in curves),
            takeoff_counts([takeoff_epoch(c, CLASSES) for c in curves]),
        )

    for label in [*dict.fromkeys(lb for lb, _ in pairs), None]:
        ps = [p for p in pairs if label in (None, p[0])]
        diffs = [here[p][1] - there[p][1] for p in ps]
        h, t = side(here, ps), side(there, ps)
        print(
            f"  {label or 'all':8s} {len(ps):3d} pairs: final top-1 median {h[0]:.3f} here, {t[0]:.3f} there, "
            f"paired difference median {statistics.median(diffs):+.3f} (here better in {sum(d > 0 for d in diffs)}); "
            f"loss / ln 6 at epoch {e}: median {h[1]:.3f} here, {t[1]:.3f} there; stuck by the rule (margin "
            f"{args.margin:g}, dwell {args.dwell}) at epoch {e}: {h[2]} here, {t[2]} there; take-off epochs here {h[3]}, "
            f"there {t[3]}"
        )


def _tail(args: argparse.Namespace, runs: dict, finals: dict) -> None:
    """The runs trained to the end: per genome the median of the last epoch's val top-1, each
    run's distance below it, and which runs the plateau rule (after epoch ``--rule-epoch``,
    ``--margin``) would have set aside; the tail (more than 0.2 below the median) with and
    without the rule."""
    import statistics

    from archlab.results import stats
    from archlab.results.tail import TAIL_GAP, below_median, takeoff_epoch
    from archlab.training.plateau import is_stuck

    done = {k: v for k, v in finals.items() if v[0] == args.final}
    if not done:
        return
    by_label: dict[str, list] = defaultdict(list)  # per genome (and recipe, where not the default)
    for key, (_, top1) in sorted(done.items()):
        losses = [runs[key][e] for e in sorted(runs[key])]
        by_label[key[1] if key[0] in ("anchors", "space") else f"{key[1]} [{key[0]}]"].append(
            (key[2], top1, is_stuck(losses, CLASSES, args.rule_epoch, args.margin, args.dwell))
        )
    n_all = n_kept = tail_all = tail_kept = 0
    print(f"\nruns trained to epoch {args.final}: the last epoch's val top-1, distance below the genome's median")
    for label, rows in by_label.items():
        gaps = below_median([t for _, t, _ in rows])
        tails = [(seed, round(t, 3)) for (seed, t, _), gap in zip(rows, gaps) if gap > TAIL_GAP]
        kept_tails = [(seed, round(t, 3)) for (seed, t, stuck), gap in zip(rows, gaps) if gap > TAIL_GAP and not stuck]
        n_all += len(rows)
        n_kept += sum(not stuck for *_, stuck in rows)
        tail_all += len(tails)
        tail_kept += len(kept_tails)
        set_aside = [seed for seed, *_, stuck in rows if stuck]
        print(
            f"  {label:8s} {len(rows):3d} runs, median {statistics.median(t for _, t, _ in rows):.3f}, "
            f"worst {max(gaps):.3f} below; tail {tails}; set aside by the rule {set_aside}; tail the rule keeps {kept_tails}"
        )
    print(
        f"tail (> {TAIL_GAP} below the genome's median): {tail_all} of {n_all} runs without the rule; "
        f"{tail_kept} of {n_kept} runs the rule keeps ({n_all - n_kept} set aside after epoch {args.rule_epoch})"
    )
    # The seed std per genome over all its runs, and over the runs the rule keeps (a set-aside
    # seed's restart is another draw of the same distribution, so the kept runs stand for it).
    std_all = {label: stats.interval([t for _, t, _ in rows]).std for label, rows in by_label.items()}
    std_kept = {label: stats.interval([t for _, t, stuck in rows if not stuck]).std for label, rows in by_label.items()}
    print(
        "seed std per genome, all runs / the runs the rule keeps: "
        + "; ".join(f"{label} {std_all[label]:.3f} / {std_kept[label]:.3f}" for label in by_label)
        + f"; median {statistics.median(std_all.values()):.3f} / {statistics.median(std_kept.values()):.3f}"
    )

    # The fidelity's statistic: a genome's std over 3 seeds (here consecutive triples of its
    # runs, in seed order), the median over every genome and triple.
    def triples(kept_only: bool) -> float:
        stds = []
        for rows in by_label.values():
            tops = [t for _, t, stuck in rows if not (kept_only and stuck)]
            stds += [stats.interval(tops[i : i + 3]).std for i in range(0, len(tops) - 2, 3)]
        return statistics.median(stds)

    print(f"median 3-seed std (consecutive triples), all runs / the runs the rule keeps: "
          f"{triples(False):.3f} / {triples(True):.3f}")  # fmt: skip
    takeoffs = Counter(str(takeoff_epoch([runs[k][e] for e in sorted(runs[k])], CLASSES)) for k in done)
    print("take-off epochs of these runs (first below 0.95 x ln 6): "
          + ", ".join(f"{e}: {n}" for e, n in sorted(takeoffs.items(), key=lambda x: (len(x[0]), x[0]))))  # fmt: skip


def main() -> None:
    from archlab.training.recipe import ProxyRecipe

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("anchors", "space", "seeds", "report"))
    p.add_argument("first", type=int, nargs="?", default=402)
    p.add_argument("last", type=int, nargs="?", default=440)
    p.add_argument("--stop", type=int, default=7)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument(
        "--margin", type=float, default=ProxyRecipe().plateau_margin, help="report: the plateau rule's margin"
    )
    p.add_argument(
        "--rule-epoch", type=int, default=ProxyRecipe().plateau_epochs, help="report: the plateau rule's epoch E"
    )
    p.add_argument(
        "--dwell", type=int, default=ProxyRecipe().plateau_dwell, help="report: the plateau rule's dwell (0: none)"
    )
    p.add_argument("--final", type=int, default=14, help="report: the epoch a run trained to the end reaches")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--runs", default="", help="seeds: LABEL:SEED,... (anchor labels)")
    p.add_argument("--set", action="append", default=[], help="a recipe field NAME=VALUE (repeatable)")
    p.add_argument("--against", default="", help="report: another OUT whose runs pair with these by anchor and seed")
    args = p.parse_args()
    report(args) if args.what == "report" else measure(args)


if __name__ == "__main__":
    main()
