"""`archlab fidelity`: the command line of archlab.fidelity.runner (parsing and printing only).

The proxy recipe's options are ``ProxyRecipe``'s own (``--epochs``, ``--batch``, ``--lr``...,
defaults the search's recipe); ``--seed`` is left out because ``--seeds`` decides the seeds
(run k trains seed k). The reference budget is the same recipe with more epochs and clips.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..util.errors import UserError, shorten
from ..fidelity.anchors import ANCHORS
from ..training.recipe import ProxyRecipe
from ..util.versions import default_workers

# ``--quick``: a smoke run of a few seconds (tests, a first look).
QUICK = {"epochs": 1, "train_clips": 32, "val_clips": 24}
ANCHOR_NAMES = ", ".join(ANCHORS)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fidelity", help="measure a proxy recipe: seed noise, bimodal genomes, rank agreement "
                       "with a longer reference budget, and how cheap scores rank")
    p.add_argument("--space", default="interleave", help="search space to sample genomes from (default interleave)")
    p.add_argument("--genomes", type=int, default=None, help="genomes sampled from the space, stratified by GMACs, "
                   "besides the anchors (default 10; --quick: 1)")
    p.add_argument("--anchors", default=None, help=f"comma-separated anchors ({ANCHOR_NAMES}), 'all' or 'none' "
                   "(default all; --quick: 2D)")
    p.add_argument("--seeds", type=int, default=None, help="proxy seeds per genome (default 3; --quick: 2)")
    p.add_argument("--ref-seeds", type=int, default=None, help="reference seeds per genome (default 2: one "
                   "seed's reference agrees with another's at rho 0.78, below the rho it is meant to judge; "
                   "--quick: 1)")
    p.add_argument("--fresh-clips", choices=("on", "off"), default="off",
                   help="new training clips every epoch, both budgets (default off, as every other command)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic clips (default 0)")
    p.add_argument("--ref-epochs-x", type=float, default=1.5, help="reference epochs = this x proxy epochs, rounded "
                   "(default 1.5: 21 for the 14-epoch proxy; fractions allowed)")
    p.add_argument("--ref-clips-x", type=float, default=2, help="reference clips = this x proxy clips, rounded (default 2)")
    p.add_argument("--tse-epochs", type=int, default=2, help="epochs summed by the training-speed score (default 2)")
    p.add_argument("--max-gmacs", type=float, default=None, help="override the space's GMAC limit")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the genome sample (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: reproducible float sums)")
    p.add_argument("--workers", type=int, default=None, help="runs trained at once, one process each (default: "
                   "usable cores // --threads; --quick: 1)")
    p.add_argument("--form", default=None, help="numeric form both budgets train in (archlab.measure.forms), e.g. "
                   "bf16-autocast/cl3d (default: fp32, the trainer's CPU default)")
    p.add_argument("--against", default=None, metavar="DIR", help="another fidelity output (e.g. the same "
                   "measurement in fp32): Kendall tau / Spearman rho between the two proxy rankings -> against.json")
    p.add_argument("--out", default=None, help="output directory (default runs/fidelity/SPACE[-quick])")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 genomes (1 sampled + 2D), 2 seeds, "
                   "1 epoch of 32 clips, reference 2 epochs; a few seconds)")
    ProxyRecipe.add_arguments(p, skip=("seed",))
    p.set_defaults(func=cmd_fidelity)


def _anchors(text: str) -> tuple[str, ...]:
    if text == "all":
        return tuple(ANCHORS)
    if text == "none":
        return ()
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    for a in names:
        if a not in ANCHORS:
            raise UserError(f"--anchors: {shorten(a)} is not one of {ANCHOR_NAMES}")
    return names


def config_from_args(args: argparse.Namespace):
    """The FidelityConfig the options ask for (every value checked before anything runs)."""
    from ..fidelity.runner import FidelityConfig, reference_of

    if not (1 <= args.ref_epochs_x < math.inf and 1 <= args.ref_clips_x < math.inf):  # nan and inf too
        raise UserError("--ref-epochs-x and --ref-clips-x must be at least 1")
    base = ProxyRecipe().with_(**QUICK) if args.quick else ProxyRecipe()
    proxy = ProxyRecipe.from_args(args, base=base)
    try:
        ref = reference_of(proxy, 2, 1) if args.quick else reference_of(proxy, args.ref_epochs_x, args.ref_clips_x)
    except UserError as e:  # the products of the multipliers, not what the user typed
        raise UserError(f"the reference budget (--ref-epochs-x, --ref-clips-x): {e}") from e
    anchors = _anchors(args.anchors or ("2D" if args.quick else "all"))
    genomes = args.genomes if args.genomes is not None else (1 if args.quick else 10)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 3)
    ref_seeds = args.ref_seeds if args.ref_seeds is not None else (1 if args.quick else 2)
    workers = args.workers if args.workers is not None else (1 if args.quick else default_workers(args.threads))
    out = args.out or str(Path("runs") / "fidelity" / (args.space + ("-quick" if args.quick else "")))
    return FidelityConfig(out=out, space=args.space, genomes=genomes, anchors=anchors, seeds=seeds,
                          ref_seeds=ref_seeds, proxy=proxy, reference=ref, data_seed=args.data_seed,
                          fresh_clips=args.fresh_clips == "on", sample_seed=args.sample_seed,
                          tse_epochs=args.tse_epochs, max_gmacs=args.max_gmacs, threads=args.threads,
                          workers=workers, form=args.form)


def cmd_fidelity(args: argparse.Namespace) -> int:
    from ..fidelity.runner import run_fidelity

    cfg = config_from_args(args)
    if cfg.form is not None:
        from ..training.calibrate import warn_if_failed

        warn_if_failed(cfg.form, "training")  # fidelity trains on the CPU
    other = _read_other(args.against) if args.against else None  # before any training: a bad path fails first
    t0 = time.perf_counter()
    s = run_fidelity(cfg)
    print(f"median seed std {s['median_seed_std']:.3f}; bimodal: {', '.join(s['bimodal']) or 'none'}; "
          f"seed tau {s['seed_tau']:.3f}; proxy-vs-reference rho {s['proxy_vs_ref_rho']:.3f}, "
          f"tau {s['proxy_vs_ref_tau']:.3f} (the reference's val noise caps it at {s['ref_rho_ceiling']:.3f}); "
          f"top-quarter overlap {s['top_quarter_overlap']:.2f}; on the {s['separated_pairs']['pairs']} genome "
          f"pairs the reference separates it agrees on {s['separated_pairs']['agree']:g}")
    for name, r in s["scores"].items():
        print(f"  {name:15s} rho {r['rho']:+.3f}  tau {r['tau']:+.3f}  top-quarter {r['top_quarter']:.2f}")
    if other is not None:
        import json

        from ..fidelity.summary import against
        from ..util.files import atomic_write

        try:
            a = against(s, other)
        except ValueError as e:
            raise UserError(f"--against {shorten(args.against)}: {e}") from None
        atomic_write(Path(cfg.out) / "against.json", json.dumps({"against": args.against, **a}, indent=1) + "\n")
        print(f"against {args.against}: {a['genomes']} genomes, Kendall tau {a['tau']:.3f}, Spearman rho "
              f"{a['rho']:.3f}; median seed std {a['median_seed_std']:.3f} here, {a['other_median_seed_std']:.3f} "
              f"there; mean |difference| {a['mean_abs_diff']:.3f}"
              + (f"; the two references: tau {a['ref_tau']:.3f}, rho {a['ref_rho']:.3f}" if "ref_tau" in a else "")
              + f" -> {cfg.out}/against.json")
    print(f"-> {cfg.out}/summary.md, fidelity.png  ({time.perf_counter() - t0:.0f} s)")
    return 0


def _read_other(path: str) -> dict:
    import json

    f = Path(path) / "summary.json"
    try:
        return json.loads(f.read_text())
    except FileNotFoundError:
        raise UserError(f"--against {shorten(path)}: no summary.json there (a finished archlab fidelity output)") from None
    except (OSError, ValueError) as e:
        raise UserError(f"--against {shorten(path)}: {f} cannot be read ({e})") from None
