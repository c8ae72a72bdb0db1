"""Terminal rendering: the plain-text table, and a ``rich`` table when rich is installed.

``print(graph.describe())`` needs nothing beyond hlg. With ``rich`` installed,
``rich.print(graph.describe())`` shows the same table with colour swatches for
layer types (the colours of the pictures); a :class:`GraphDescription` is a
rich renderable through its ``__rich__`` method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hlg.errors import NotInstalledError
from hlg.visualize.style import UNKNOWN_FILL, palette_for

if TYPE_CHECKING:
    from hlg.visualize.description import GraphDescription

__all__ = ["rich_table"]


def rich_table(info: GraphDescription) -> Any:
    """Return a description as a ``rich.table.Table``.

    Raises
    ------
    NotInstalledError
        ``rich`` is not installed (``pip install rich``).
    """
    try:
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        raise NotInstalledError(
            "rendering a layer table with rich needs the rich package: pip install rich "
            "(print() the description for plain text)"
        ) from None
    colours = palette_for(row.layer_type for row in info.layers)
    rows = info.rows()
    table = Table(title=info.summary(), title_justify="left")
    for i, heading in enumerate(rows[0]):
        table.add_column(heading, justify="right" if heading in ("tasks", "packed") else "left")
        if i == 0:
            table.columns[0].no_wrap = True
    for row, cells in zip(info.layers, rows[1:], strict=True):
        swatch = Text("■ ", style=colours.get(row.layer_type, UNKNOWN_FILL))
        table.add_row(swatch + Text(cells[0], style="bold"), *cells[1:])
    return table
