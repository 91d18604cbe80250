"""``archlab fidelity``: the command line of archlab.fidelity.runner (parsing and printing only)."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from .errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fidelity", help="measure a proxy recipe: seed noise, bimodal genomes, rank agreement "
                       "with a longer reference budget, and how cheap scores rank")
    p.add_argument("--space", default="interleave", help="search space to sample genomes from (default interleave)")
    p.add_argument("--genomes", type=int, default=None, help="genomes sampled from the space, stratified by GMACs, "
                   "besides the anchors (default 10; --quick: 1)")
    p.add_argument("--anchors", default=None, help="comma-separated anchors (2D, P3D-A, P3D-B, P3D-C, A->B->C, "
                   "3D, (2+1)D), 'all' or 'none' (default all; --quick: 2D)")
    p.add_argument("--seeds", type=int, default=None, help="proxy seeds per genome (default 3; --quick: 2)")
    p.add_argument("--ref-seeds", type=int, default=1, help="reference seeds per genome (default 1)")
    p.add_argument("--epochs", type=int, default=None, help="proxy epochs (default: the recipe's)")
    p.add_argument("--train-clips", type=int, default=None, help="proxy training clips (default: the recipe's)")
    p.add_argument("--val-clips", type=int, default=None, help="validation clips (default: the recipe's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the recipe's)")
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default=None, help="optimizer (default: the recipe's)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: the recipe's)")
    p.add_argument("--fresh-clips", choices=("on", "off"), default=None,
                   help="new training clips every epoch (default: the recipe's)")
    p.add_argument("--ref-epochs-x", type=int, default=3, help="reference epochs = this x proxy epochs (default 3)")
    p.add_argument("--ref-clips-x", type=int, default=2, help="reference clips = this x proxy clips (default 2)")
    p.add_argument("--tse-epochs", type=int, default=2, help="epochs summed by the training-speed score (default 2)")
    p.add_argument("--max-gmacs", type=float, default=None, help="override the space's GMAC limit")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the genome sample (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: reproducible float sums)")
    p.add_argument("--out", default=None, help="output directory (default runs/fidelity/SPACE[-quick])")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 genomes (1 sampled + 2D), 2 seeds, "
                   "1 epoch of 32 clips, reference 2 epochs; a few seconds)")
    p.set_defaults(func=cmd_fidelity)


def _anchors(text: str) -> tuple[str, ...]:
    from .fidelity.runner import ANCHORS

    if text == "all":
        return tuple(ANCHORS)
    if text == "none":
        return ()
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    for a in names:
        if a not in ANCHORS:
            raise UserError(f"--anchors: {a!r} is not one of {', '.join(ANCHORS)}")
    return names


def config_from_args(args: argparse.Namespace):
    from .fidelity.runner import FidelityConfig, Recipe, reference_of

    if args.ref_epochs_x < 1 or args.ref_clips_x < 1:
        raise UserError("--ref-epochs-x and --ref-clips-x must be at least 1")
    proxy = Recipe()
    anchors = _anchors(args.anchors or ("2D" if args.quick else "all"))
    genomes = args.genomes if args.genomes is not None else (1 if args.quick else 10)
    if args.quick:
        proxy = replace(proxy, epochs=1, train_clips=32, val_clips=24)
    changes = {k: v for k, v in (("epochs", args.epochs), ("train_clips", args.train_clips),
                                 ("val_clips", args.val_clips), ("lr", args.lr),
                                 ("optimizer", args.optimizer), ("batch", args.batch)) if v is not None}
    if args.fresh_clips is not None:
        changes["fresh_clips"] = args.fresh_clips == "on"
    proxy = replace(proxy, **changes)
    ref = reference_of(proxy, 2, 1) if args.quick else reference_of(proxy, args.ref_epochs_x, args.ref_clips_x)
    out = args.out or str(Path("runs") / "fidelity" / (args.space + ("-quick" if args.quick else "")))
    cfg = FidelityConfig(out=out, space=args.space, genomes=genomes, anchors=anchors, seeds=args.seeds if args.seeds is not None else (2 if args.quick else 3),
                         ref_seeds=args.ref_seeds, proxy=proxy, reference=ref, sample_seed=args.sample_seed,
                         tse_epochs=args.tse_epochs, max_gmacs=args.max_gmacs, threads=args.threads)
    return cfg


def cmd_fidelity(args: argparse.Namespace) -> int:
    from .fidelity.runner import run_fidelity

    cfg = config_from_args(args)
    t0 = time.perf_counter()
    s = run_fidelity(cfg)
    print(f"median seed std {s['median_seed_std']:.3f}; bimodal: {', '.join(s['bimodal']) or 'none'}; "
          f"seed tau {s['seed_tau']:.3f}; proxy-vs-reference rho {s['proxy_vs_ref_rho']:.3f}, "
          f"tau {s['proxy_vs_ref_tau']:.3f}; top-quarter overlap {s['top_quarter_overlap']:.2f}")
    for name, r in s["scores"].items():
        print(f"  {name:15s} rho {r['rho']:+.3f}  tau {r['tau']:+.3f}  top-quarter {r['top_quarter']:.2f}")
    print(f"-> {cfg.out}/summary.md, fidelity.png  ({time.perf_counter() - t0:.0f} s)")
    return 0
