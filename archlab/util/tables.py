"""The one table printer: fixed-width text for terminals, GitHub markdown for reports.

Why one: the CLI, the report, the benchmarks and the experiments each printed tables, and the
markdown ones disagreed about genome strings: a genome is ``AB|CABC|A|22 ...``, and an
unescaped ``|`` splits a markdown cell, shifting every column after it. Here a markdown cell
always escapes ``|`` (and turns a newline into a space); text cells are printed as they are.

Cells may be anything: they are shown with ``str()``. ``right`` names the columns (0-based)
to right-align, the way numbers read best; by default every column but the first.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

Row = Sequence[Any]


def _right(n: int, right: Iterable[int] | None) -> set[int]:
    return set(range(1, n)) if right is None else set(right)


def _check(header: Row, rows: Sequence[Row]) -> None:
    bad = [i for i, r in enumerate(rows) if len(r) != len(header)]
    if bad:
        raise ValueError(f"table row {bad[0]} has {len(rows[bad[0]])} cells, the header {len(header)}")


def text_table(header: Row, rows: Sequence[Row], *, right: Iterable[int] | None = None) -> str:
    """A plain fixed-width table (two spaces between columns, a dashed rule under the header):
    no dependency, pastes into any terminal or issue. Lines carry no trailing spaces."""
    _check(header, rows)
    cells = [[str(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    rset = _right(len(header), right)

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in rset else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def md_cell(value: Any) -> str:
    """One markdown table cell: ``|`` escaped (genome strings hold it), newlines as spaces."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def md_table(header: Row, rows: Sequence[Row], *, right: Iterable[int] | None = ()) -> str:
    """A GitHub markdown table; every cell (header included) goes through ``md_cell``.
    ``right`` columns get ``---:`` (default: none, markdown's usual left alignment)."""
    _check(header, rows)
    rset = _right(len(header), right)
    out = [
        "| " + " | ".join(md_cell(h) for h in header) + " |",
        "|" + "|".join("---:" if i in rset else "---" for i in range(len(header))) + "|",
    ]
    out += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
