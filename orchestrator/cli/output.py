"""How every command prints what it reports: a rich table for people, or ``--json`` with the same keys.

A report is a list of rows (dicts) or one record (a dict); the table's column headers (or row labels) are
the JSON keys, so a script reads what a person sees. Messages are printed without markup: a bracketed
word in a message (``[twin]``) is text, not a style.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table

# stdout carries the report (a table, or JSON a script parses); stderr carries progress, warnings, errors.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Row = Mapping[str, Any]


def cell(value: Any) -> str:
    """A value as a table shows it: floats to four significant digits, lists of text one item a line."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return "\n".join(f"{k}: {cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        # Numbers side by side (a shape, an interval), anything else one a line (paths, problems).
        numbers = all(isinstance(v, int | float) for v in value)
        return (", " if numbers else "\n").join(cell(v) for v in value) or "-"
    return str(value)


def rows_table(title: str, rows: Sequence[Row]) -> Table | Group:
    """One column per key of the rows. A narrow terminal folds values onto more lines, never cuts them
    (an id or a path is shown whole)."""
    # No vertical rules: more of an 80-column terminal is left for the values.
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for key in rows[0] if rows else ():
        numbers = all(isinstance(row[key], int | float) for row in rows)
        table.add_column(key, overflow="fold", justify="right" if numbers else "left")
    for row in rows:
        table.add_row(*(cell(v) for v in row.values()))
    if rows and _unbroken_width(table) > out.width:
        # Too many columns for the terminal even with every heading broken between words: one record
        # per row reads better than columns folded a few letters wide.
        if len(rows) == 1:
            return record_table(title, rows[0])
        return Group(*(record_table(f"{title}: {cell(next(iter(row.values())))}", row) for row in rows))
    return table


def _unbroken_width(table: Table) -> int:
    """Columns needed to show ``table`` without breaking any word of a heading or a value."""
    def longest_word(text: str) -> int:
        return max((len(word) for word in text.split()), default=0)

    widths = [max([longest_word(str(c.header)), *(longest_word(str(v)) for v in c.cells)]) for c in table.columns]
    return sum(widths) + 2 * (len(widths) - 1)


def record_table(title: str, record: Row) -> Table:
    """One row per key of ``record``."""
    table = Table(title=title, show_header=False)
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        table.add_row(key, cell(value))
    return table


def emit(report: Any, table: Table | Group | Sequence[Table | Group], *, as_json: bool) -> None:
    """Print ``report`` as JSON, or the table(s) made from it."""
    if as_json:
        out.print_json(json.dumps(report, default=str))
        return
    for t in (table,) if isinstance(table, Table | Group) else table:
        out.print(t)


def say(message: str) -> None:
    """A line for people (not part of a report): to stderr, markup-free."""
    err.print(message, markup=False, soft_wrap=True)


def warn(message: str) -> None:
    err.print("warning: ", style="yellow", end="")
    err.print(message, markup=False, soft_wrap=True)
