"""What the command modules share: the table printer, number formatting, genome and clip
arguments, KEY=VALUE options, deprecation notes and the one-line-error parser class."""

from __future__ import annotations

import argparse

from ..util.errors import UserError
from ..util.tables import text_table

# What a --device option takes (= archlab.util.device.CHOICES, checked by a test: that module imports torch).
DEVICES = "auto, cpu, cuda or cuda:N"


def table(rows: list[list[str]], header: list[str], right: set[int] | None = None) -> str:
    return text_table(header, rows, right=right)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def genome_arg(text: str, classes: int | None):
    from ..model.presets import resolve

    return resolve(text, classes)


def clip_arg(args: argparse.Namespace, genome_text: str):
    from ..measure.profile import parse_clip
    from ..model.presets import DEFAULT_INPUT

    if args.input:
        return parse_clip(args.input)
    return DEFAULT_INPUT.get(genome_text.strip(), (16, 160, 160))


def cost_table(genome, clip, method: str) -> str:
    from ..measure.profile import cost

    c = cost(genome, clip, method=method)
    rows = [
        [s.name, s.letters, "x".join(map(str, s.out_shape)), fmt_int(s.params), f"{s.macs / 1e9:.3f}"] for s in c.stages
    ]
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
    p.add_argument(
        "genome", help="a preset name (see `archlab presets`) or a genome string, e.g. 'ABC|ABCA|BCABCA|222'"
    )
    p.add_argument("--input", help="clip FRAMESxHEIGHTxWIDTH (default: the preset's own, else 16x160x160)")
    p.add_argument("--classes", type=int, help="number of output classes (default: the genome's)")
    p.add_argument(
        "--counter",
        choices=["fast", "fvcore"],
        default="fvcore",
        help="MAC counter: fvcore (reference) or fast (meta-device hooks, same numbers)",
    )


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is ONE line on stderr (exit 2), like every other user error,
    and no abbreviations: ``--latency`` is an unknown option, not ``--latency-runtime``, so a
    new option can never be shadowed by an old one's prefix (nor a script's abbreviation
    silently change meaning when an option is added). Every parser of the CLI is one of
    these: ``add_subparsers`` makes its parsers of the parent's class."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

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


# ---- deprecated spellings -----------------------------------------------------------------------
# An old spelling a user may have in scripts keeps working for one release: parsing records
# a note on the namespace (``deprecated``), and ``main`` prints each as one line on stderr
# before the command runs ("archlab profile: note: --form auto is deprecated and will be
# removed in the next release: write --form calibrated").

NOTES = "_deprecation_notes"  # the namespace attribute (copied up from a sub-command's namespace)


def deprecation_note(old: str, new: str) -> str:
    return f"{old} is deprecated and will be removed in the next release: write {new}"


def deprecated(namespace: argparse.Namespace, old: str, new: str) -> None:
    note = deprecation_note(old, new)
    notes = getattr(namespace, NOTES, None)
    if notes is None:
        notes = []
        setattr(namespace, NOTES, notes)
    if note not in notes:
        notes.append(note)


def deprecation_notes(namespace: argparse.Namespace) -> list[str]:
    return list(getattr(namespace, NOTES, None) or [])
