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

from ..fidelity.anchors import ANCHORS, anchor_names
from ..fidelity.defaults import DEFAULTS, QUICK, QUICK_RECIPE
from ..training.recipe import ProxyRecipe
from ..util.errors import UserError, shorten
from ..util.versions import default_workers
from .forms import CALIBRATED, CALIBRATED_HELP, add_form_option, checked_form

ANCHOR_NAMES = ", ".join(ANCHORS)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fidelity",
        help="measure a proxy recipe: seed noise, bimodal genomes, rank agreement "
        "with a longer reference budget, and how cheap scores rank",
    )
    p.add_argument(
        "--space", default=DEFAULTS["space"], help=f"search space to sample genomes from (default {DEFAULTS['space']})"
    )
    p.add_argument(
        "--genomes",
        type=int,
        default=None,
        help="genomes sampled from the space, stratified by GMACs, "
        f"besides the anchors (default {DEFAULTS['genomes']}; --quick: {QUICK['genomes']})",
    )
    p.add_argument(
        "--anchors",
        default=None,
        help=f"comma-separated anchors ({ANCHOR_NAMES}), 'all' or 'none' "
        f"(default {DEFAULTS['anchors']}; --quick: {','.join(QUICK['anchors'])})",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=f"proxy seeds per genome (default {DEFAULTS['seeds']}; --quick: {QUICK['seeds']})",
    )
    p.add_argument(
        "--ref-seeds",
        type=int,
        default=None,
        help="reference seeds per genome (default "
        f"{DEFAULTS['ref_seeds']}: one seed's reference is too noisy to rank against; --quick: "
        f"{QUICK['ref_seeds']})",
    )
    p.add_argument(
        "--fresh-clips",
        choices=("on", "off"),
        default="on" if DEFAULTS["fresh_clips"] else "off",
        help="new training clips every epoch, both budgets (default off, as every other command)",
    )
    p.add_argument(
        "--data-seed", type=int, default=DEFAULTS["data_seed"], help="seed of the synthetic clips (default %(default)s)"
    )
    p.add_argument(
        "--ref-epochs-x",
        type=float,
        default=None,
        help="reference epochs = this x proxy epochs, rounded "
        f"(default {DEFAULTS['ref_epochs_x']}; --quick: {QUICK['ref_epochs_x']}; fractions allowed)",
    )
    p.add_argument(
        "--ref-clips-x",
        type=float,
        default=None,
        help="reference clips = this x proxy clips, rounded "
        f"(default {DEFAULTS['ref_clips_x']}; --quick: {QUICK['ref_clips_x']})",
    )
    p.add_argument(
        "--tse-epochs",
        type=int,
        default=DEFAULTS["tse_epochs"],
        help="epochs summed by the training-speed score (default %(default)s)",
    )
    p.add_argument("--max-gmacs", type=float, default=None, help="override the space's GMAC limit")
    p.add_argument(
        "--reference-width",
        type=float,
        default=None,
        metavar="W",
        help="a less-reduced reference: it trains each target at W times its widths, in (0, 1] (default: the "
        "proxy's own width); with --reference-input, the question whether the search's reduction keeps the ranking",
    )
    p.add_argument(
        "--reference-input",
        default=None,
        metavar="FxHxW",
        help="the reference's clip, e.g. 8x64x64 (default: the proxy recipe's --frames and --size)",
    )
    p.add_argument(
        "--sample-seed",
        type=int,
        default=DEFAULTS["sample_seed"],
        help="seed of the genome sample (default %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULTS["threads"],
        help="torch threads per run (default %(default)s: reproducible float sums)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs trained at once, one process each (default: usable cores // --threads; --quick: 1)",
    )
    add_form_option(
        p,
        "--form",
        help="numeric form both budgets train in (archlab.measure.forms), e.g. "
        f"bf16-autocast/cl3d, {CALIBRATED_HELP}, for training at --threads (default: fp32, the "
        "trainer's CPU default); fidelity.json stores the form it resolved to",
    )
    p.add_argument(
        "--against",
        default=None,
        metavar="DIR",
        help="another fidelity output (e.g. the same "
        "measurement in fp32): Kendall tau / Spearman rho between the two proxy rankings -> against.json",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default runs/fidelity/SPACE[-quick])")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 2 genomes (1 sampled + 2D), 2 seeds, "
        "1 epoch of 32 clips, reference 2 epochs; a few seconds)",
    )
    ProxyRecipe.add_arguments(p, skip=("seed",))
    p.set_defaults(func=cmd_fidelity)


def _anchors(value: str | list[str]) -> tuple[str, ...]:
    names = anchor_names(
        [a.strip() for a in value.split(",") if a.strip()]
        if isinstance(value, str) and value not in ("all", "none")
        else value
    )
    for a in names:
        if a not in ANCHORS:
            raise UserError(f"--anchors: {shorten(a)} is not one of {ANCHOR_NAMES}")
    return names


def config_from_args(args: argparse.Namespace):
    """The FidelityConfig the options ask for (every value checked before anything runs)."""
    from ..fidelity.runner import FidelityConfig, reference_of

    def option(key: str):  # the option as given, else --quick's or the measurement's default
        given = getattr(args, key)
        return given if given is not None else (QUICK if args.quick and key in QUICK else DEFAULTS)[key]

    epochs_x, clips_x = option("ref_epochs_x"), option("ref_clips_x")
    if not (1 <= epochs_x < math.inf and 1 <= clips_x < math.inf):  # nan and inf too
        raise UserError("--ref-epochs-x and --ref-clips-x must be at least 1")
    base = ProxyRecipe().with_(**QUICK_RECIPE) if args.quick else ProxyRecipe()
    proxy = ProxyRecipe.from_args(args, base=base)
    try:
        ref = reference_of(proxy, epochs_x, clips_x)
    except UserError as e:  # the products of the multipliers, not what the user typed
        raise UserError(f"the reference budget (--ref-epochs-x, --ref-clips-x): {e}") from e
    anchors = _anchors(option("anchors"))
    workers = option("workers")
    workers = workers if workers is not None else default_workers(args.threads)
    out = args.out or str(Path("runs") / "fidelity" / (args.space + ("-quick" if args.quick else "")))
    form = checked_form(args.form)  # calibrated: resolved by cmd_fidelity once everything else is checked
    return FidelityConfig(
        out=out,
        space=args.space,
        genomes=option("genomes"),
        anchors=anchors,
        seeds=option("seeds"),
        ref_seeds=option("ref_seeds"),
        proxy=proxy,
        reference=ref,
        data_seed=args.data_seed,
        fresh_clips=args.fresh_clips == "on",
        sample_seed=args.sample_seed,
        tse_epochs=args.tse_epochs,
        max_gmacs=args.max_gmacs,
        threads=args.threads,
        workers=workers,
        form=None if form in (None, CALIBRATED) else args.form,
        reference_width=args.reference_width,
        reference_input=args.reference_input,
    )


def cmd_fidelity(args: argparse.Namespace) -> int:
    from ..fidelity.runner import run_fidelity

    cfg = config_from_args(args)
    if cfg.form is not None:
        from ..training.calibrate import warn_if_failed

        warn_if_failed(cfg.form, "training")  # fidelity trains on the CPU
    other = _read_other(args.against) if args.against else None  # before any training: a bad path fails first
    if args.form == CALIBRATED:  # this machine's training choice at the runs' thread count (may measure, ~3 min)
        from dataclasses import replace

        from ..training.calibrate import training_form

        cfg = replace(cfg, form=training_form("cpu", cfg.threads).with_threads(None).name)
    t0 = time.perf_counter()
    s = run_fidelity(cfg)
    print(
        f"median seed std {s['median_seed_std']:.3f}; bimodal: {', '.join(s['bimodal']) or 'none'}; "
        f"seed tau {s['seed_tau']:.3f}; proxy-vs-reference rho {s['proxy_vs_ref_rho']:.3f}, "
        f"tau {s['proxy_vs_ref_tau']:.3f} (the reference's val noise caps it at {s['ref_rho_ceiling']:.3f}); "
        f"top-quarter overlap {s['top_quarter_overlap']:.2f}; on the {s['separated_pairs']['pairs']} genome "
        f"pairs the reference separates it agrees on {s['separated_pairs']['agree']:g}"
    )
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
        print(
            f"against {args.against}: {a['genomes']} genomes, Kendall tau {a['tau']:.3f}, Spearman rho "
            f"{a['rho']:.3f}; median seed std {a['median_seed_std']:.3f} here, {a['other_median_seed_std']:.3f} "
            f"there; mean |difference| {a['mean_abs_diff']:.3f}"
            + (f"; the two references: tau {a['ref_tau']:.3f}, rho {a['ref_rho']:.3f}" if "ref_tau" in a else "")
            + f" -> {cfg.out}/against.json"
        )
    print(f"-> {cfg.out}/summary.md, fidelity.png  ({time.perf_counter() - t0:.0f} s)")
    return 0


def _read_other(path: str) -> dict:
    import json

    f = Path(path) / "summary.json"
    try:
        return json.loads(f.read_text())
    except FileNotFoundError:
        raise UserError(
            f"--against {shorten(path)}: no summary.json there (a finished archlab fidelity output)"
        ) from None
    except (OSError, ValueError) as e:
        raise UserError(f"--against {shorten(path)}: {f} cannot be read ({e})") from None
