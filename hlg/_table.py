"""Plain-text tables, for the command line, the demo and diagnostics."""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["format_table"]


def format_table(rows: Sequence[Sequence[str]], left: Collection[int] = (0,)) -> str:
    """Format ``rows`` (the first is the header) in aligned columns under a rule.

    Columns whose index is in ``left`` are left-aligned, the others right-aligned.

    Examples
    --------
    >>> print(format_table([["name", "n"], ["a", "10"], ["bb", "2"]]))
    name   n
    ----  --
    a     10
    bb     2
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
