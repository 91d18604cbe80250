"""`archlab spaces` and `archlab sample`: the search spaces and genomes drawn from them."""

from __future__ import annotations

import argparse

from ..util.errors import UserError
from .common import fmt_int, table


def cmd_spaces(args: argparse.Namespace) -> int:
    from ..spaces import list_spaces

    rows = []
    for s in list_spaces():
        limits = ", ".join(
            x
            for x in (
                f"<= {s.max_gmacs:g} GMACs" if s.max_gmacs else "",
                f"<= {s.max_params:,} params" if s.max_params else "",
            )
            if x
        )
        rows.append(
            [
                s.name,
                fmt_int(s.cardinality()),
                f"{limits} at {'x'.join(map(str, s.clip))}" if limits else "-",
                f"{'x'.join(map(str, s.target_clip))}, proxy x{s.proxy_width:g}" if s.target_clip else "-",
                s.description,
            ]
        )
    print(table(rows, ["space", "assignments", "constraints", "target", "description"], right={1}))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import json
    import random

    from ..measure.profile import cost, parse_clip
    from ..spaces import load_space

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
        row = [str(i), fmt_int(c.params), f"{c.gmacs:.3f}", str(g)]
        if args.show_params:
            row.append(json.dumps(params))
        rows.append(row)
    header = ["#", "params", f"GMACs@{'x'.join(map(str, clip))}", "genome"] + (
        ["parameters"] if args.show_params else []
    )
    print(table(rows, header, right={0, 1, 2}))
    if space.target_clip is not None:
        print(
            f"genomes are targets (the networks shipped, costs at {'x'.join(map(str, space.target_clip))}); "
            f"a search trains each as its proxy at x{space.proxy_width:g} width (archlab.model.reduction)"
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spaces", help="list the search spaces with their size and constraints")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("sample", help="random genomes of a search space, with params and GMACs")
    p.add_argument("space", help="a space name (see `archlab spaces`) or a path to a .yaml")
    p.add_argument("-n", type=int, default=5, help="how many (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--input",
        help="clip FRAMESxHEIGHTxWIDTH to count at (default: the space's input; constraints stay at the space's input)",
    )
    p.add_argument("--unconstrained", action="store_true", help="also draw genomes that break the space's limits")
    p.add_argument("--show-params", action="store_true", help="also print each genome's space parameters")
    p.set_defaults(func=cmd_sample)
