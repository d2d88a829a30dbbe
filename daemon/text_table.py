"""Plain-text tables for people (the CLI's lists, /quota?format=table): pure."""

from __future__ import annotations

from collections.abc import Sequence

GAP = "  "  # between columns


def render(rows: Sequence[Sequence[str]]) -> str:
    """`rows` (the first is usually the header) as lines ending in "\\n", each cell padded to its
    column's widest; no trailing spaces (they would show in diffs and copy-pastes)."""
    widths = [max(map(len, column)) for column in zip(*rows)]
    return "".join(GAP.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n" for row in rows)
