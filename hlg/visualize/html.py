"""HTML for Jupyter: the layer table with a collapsible details row per layer.

The HTML is one self-contained ``<div>``: inline styles only, no scripts, no
external assets. Text and rules inherit the notebook's colours (``currentColor``
and translucent greys), so the table reads in light and dark themes alike; the
only fixed colours are the small swatches of layer types, the same as in the
pictures :func:`~hlg.visualize.to_dot` draws. :func:`~hlg.visualize.to_html`
shows any graph this way.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from hlg.visualize.style import UNKNOWN_FILL, format_annotations, format_size, palette_for

if TYPE_CHECKING:
    from hlg.visualize.description import GraphDescription, LayerInfo

__all__ = ["description_html"]

_CELL = (
    "padding:2px 10px;text-align:{align};white-space:nowrap;"
    "border-bottom:1px solid rgba(127,127,127,0.25)"
)
_RULE = "border-bottom:1px solid rgba(127,127,127,0.6)"


def description_html(info: GraphDescription) -> str:
    """Return a description as HTML; what ``_repr_html_`` shows.

    Each layer's name opens a collapsible block with its tag, annotations and
    any note.

    Examples
    --------
    >>> import hlg
    >>> html = description_html(hlg.describe(hlg.pack({"x": 1})))
    >>> html.count("<details>"), "function table" in html
    (1, False)
    """
    colours = palette_for(row.layer_type for row in info.layers)
    columns = ["layer", "type", "tasks"]
    if any(row.blocks for row in info.layers):
        columns.append("blocks")
    columns.append("depends on")
    if any(row.annotations for row in info.layers):
        columns.append("annotations")
    if any(row.packed_bytes is not None for row in info.layers):
        columns.append("packed")
    header = "".join(
        f'<th style="{_CELL.format(align=_align(c))};{_RULE}">{c}</th>' for c in columns
    )
    body = "".join(
        _row(row, colours.get(row.layer_type, UNKNOWN_FILL), columns) for row in info.layers
    )
    parts = [
        '<div class="hlg-description" style="font-family:system-ui,-apple-system,sans-serif;'
        'font-size:13px;line-height:1.4;color:inherit;max-width:100%;overflow-x:auto">',
        f'<div style="font-weight:600;margin:4px 0 2px 0">{escape(info.summary())}</div>',
    ]
    if info.keys_line():
        parts.append(
            f'<div style="opacity:0.75;margin-bottom:4px">{escape(info.keys_line())}</div>'
        )
    parts.append(
        '<table style="border-collapse:collapse;color:inherit;background:transparent">'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    )
    if info.functions:
        parts.append(_functions(info))
    parts.append("</div>")
    return "".join(parts)


def _align(column: str) -> str:
    return "right" if column in ("tasks", "packed") else "left"


def _row(row: LayerInfo, fill: str, columns: list[str]) -> str:
    swatch = (
        f'<span style="display:inline-block;width:10px;height:10px;border-radius:2px;'
        f'background:{fill};margin:0 6px 0 2px;vertical-align:middle"></span>'
    )
    cells = {
        "layer": (
            f'<details><summary style="cursor:pointer;white-space:nowrap">{swatch}'
            f"<b>{escape(row.name)}</b></summary>{_details(row)}</details>"
        ),
        "type": escape(row.layer_type),
        "tasks": "?" if row.tasks is None else f"{row.tasks:,}",
        "blocks": escape(row.blocks),
        "depends on": escape(", ".join(row.dependencies)),
        "annotations": escape(format_annotations(row.annotations)),
        "packed": "" if row.packed_bytes is None else format_size(row.packed_bytes),
    }
    return (
        "<tr>"
        + "".join(
            f'<td style="{_CELL.format(align=_align(c))};vertical-align:top">{cells[c]}</td>'
            for c in columns
        )
        + "</tr>"
    )


def _details(row: LayerInfo) -> str:
    items = [("tag", row.tag or "-")]
    items.append(("annotations", format_annotations(row.annotations, limit=80) or "none"))
    if row.note:
        items.append(("note", row.note))
    listing = "".join(
        f'<tr><td style="padding:0 8px 0 20px;opacity:0.7">{escape(name)}</td>'
        f'<td style="padding:0">{escape(value)}</td></tr>'
        for name, value in items
    )
    return f'<table style="border-collapse:collapse;font-size:12px;color:inherit">{listing}</table>'


def _functions(info: GraphDescription) -> str:
    rows = "".join(
        f'<tr><td style="{_CELL.format(align="right")}">{f.index}</td>'
        f'<td style="{_CELL.format(align="left")}">{escape(f.name)}</td>'
        f'<td style="{_CELL.format(align="right")}">{f.nbytes:,} B</td></tr>'
        for f in info.functions
    )
    return (
        f'<details style="margin-top:6px"><summary style="cursor:pointer">'
        f"function table ({len(info.functions):,})</summary>"
        f'<table style="border-collapse:collapse;color:inherit">{rows}</table></details>'
    )
