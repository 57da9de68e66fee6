"""Widgets the panels share: a line redrawn only when its text changes, a read-only
table, and `KeyedRows`, which keeps a table equal to a list of keyed rows by changing
only what changed (STYLE.md: update in place, never rebuild)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widgets import DataTable, Static

__all__ = ["KeyedRows", "Line", "ReadOnlyTable"]

Rows = list[tuple[str, tuple[str, ...]]]
"""(row key, its cells as plain text), in the order shown."""


class Line(Static):
    """One part of a panel; redrawn only when its text changes, hidden when empty."""

    def __init__(self, classes: str) -> None:
        super().__init__("", markup=False, classes=classes)
        self.shown = ""
        self.display = False

    def show(self, text: str | Text) -> None:
        """Display `text`; hide the line when it is empty; do nothing when unchanged."""
        plain = text.plain if isinstance(text, Text) else text
        if plain == self.shown:
            return
        self.shown = plain
        self.update(text)
        self.display = bool(plain)


class ReadOnlyTable(DataTable[Text], can_focus=False):
    """A read-only table (no cursor, no focus: Tab stays with the master panels)."""


class KeyedRows:
    """A `DataTable` kept equal to a list of keyed rows, changing only what changed.

    Rows that left are removed, new ones added at the bottom, changed cells rewritten.
    The table is cleared and refilled only when the rows kept would change order (or a
    new one must go above them), and, with `bulk_clear`, when most rows left at once
    (one clear is cheaper than many removals). `cell` turns a column's plain text into
    what the table shows (a style for the values that must stand out).
    """

    def __init__(
        self,
        table: ReadOnlyTable,
        columns: tuple[tuple[str, str], ...],
        cell: Callable[[str, str], Text],
        *,
        bulk_clear: bool = True,
    ) -> None:
        self.table = table
        self.columns = tuple(key for key, _ in columns)
        self.headers = tuple(header for _, header in columns)
        self.cell = cell
        self.bulk_clear = bulk_clear
        self.shown: dict[str, tuple[str, ...]] = {}
        """Row key → its cells, in the order shown."""
        self.rebuilds = 0
        """How many times the table was cleared and refilled (for tests and profiling)."""

    def sync(self, rows: Rows) -> None:
        """Make the table show `rows` (key, cells), in that order."""
        table = self.table
        if not table.columns:
            for key, header in zip(self.columns, self.headers, strict=True):
                table.add_column(header, key=key)
        shown = self.shown
        wanted = dict(rows)
        kept = [key for key in shown if key in wanted]
        stale = len(shown) - len(kept)
        order = [key for key, _ in rows]
        mostly_gone = self.bulk_clear and stale > 1 and 2 * stale > len(shown)
        if order[: len(kept)] != kept or mostly_gone:
            self._rebuild(rows)
            return
        for key in [key for key in shown if key not in wanted]:
            table.remove_row(key)
            del shown[key]
        for key, cells in rows:
            before = shown.get(key)
            if before is None:
                self._add(key, cells)
            elif before != cells:
                for column, old, new in zip(self.columns, before, cells, strict=True):
                    if old != new:
                        table.update_cell(key, column, self.cell(column, new), update_width=True)
            else:
                continue
            shown[key] = cells

    def _rebuild(self, rows: Rows) -> None:
        self.rebuilds += 1
        self.table.clear()
        self.shown = {}
        for key, cells in rows:
            self._add(key, cells)
            self.shown[key] = cells

    def _add(self, key: str, cells: tuple[str, ...]) -> None:
        """Add a row at the bottom."""
        cell = self.cell
        values = (cell(column, value) for column, value in zip(self.columns, cells, strict=True))
        self.table.add_row(*values, key=key)

    def lines(self) -> list[str]:
        """The table as plain text: the header, then one line per row."""
        if not self.shown:
            return []
        rows = [self.headers, *self.shown.values()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self.headers))]
        return [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
