"""What the command modules share: the table printer, number formatting, genome and clip
arguments, KEY=VALUE options and the one-line-error parser class."""

from __future__ import annotations

import argparse

from ..util.errors import UserError
from ..util.tables import text_table


def table(rows: list[list[str]], header: list[str], right: set[int] | None = None) -> str:
    return text_table(header, rows, right=right)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def genome_arg(text: str, classes: int | None):
    from ..model.presets import resolve

    return resolve(text, classes)


def clip_arg(args: argparse.Namespace, genome_text: str):
    from ..model.presets import DEFAULT_INPUT
    from ..measure.profile import parse_clip

    if args.input:
        return parse_clip(args.input)
    return DEFAULT_INPUT.get(genome_text.strip(), (16, 160, 160))


def cost_table(genome, clip, method: str) -> str:
    from ..measure.profile import cost

    c = cost(genome, clip, method=method)
    rows = [[s.name, s.letters, "x".join(map(str, s.out_shape)), fmt_int(s.params), f"{s.macs / 1e9:.3f}"]
            for s in c.stages]
    rows.append(["total", "", "", fmt_int(c.params), f"{c.gmacs:.3f}"])
    out = table(rows, ["part", "blocks", "output CxTxHxW", "params", "GMACs"], right={3, 4})
    skipped = ", ".join(op.removeprefix("aten::") for op in c.uncounted)
    return out + f"\nMACs = multiply-adds of conv and linear layers; not counted: {skipped}."


def key_values(items: list[str] | None, flag: str) -> dict:
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


def add_genome_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("genome", help="a preset name (see `archlab presets`) or a genome string, e.g. 'ABC|ABCA|BCABCA|222'")
    p.add_argument("--input", help="clip FRAMESxHEIGHTxWIDTH (default: the preset's own, else 16x160x160)")
    p.add_argument("--classes", type=int, help="number of output classes (default: the genome's)")
    p.add_argument("--counter", choices=["fast", "fvcore"], default="fvcore",
                   help="MAC counter: fvcore (reference) or fast (meta-device hooks, same numbers)")


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is ONE line on stderr (exit 2), like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def at_least(low: int):
    """An argparse type: a whole number >= ``low`` (a bad one is argparse's one-line error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low} (got {value})")
        return value

    return parse
