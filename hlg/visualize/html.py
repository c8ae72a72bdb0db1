"""HTML for Jupyter: the layer table with a collapsible details row per layer.

The HTML is one self-contained ``<div>``: inline styles only, no scripts, no
external assets. Text and rules inherit the notebook's colours (``currentColor``
and translucent greys), so the table reads in light and dark themes alike; the
only fixed colours are the small swatches of layer types, the same as in the
pictures :func:`~hlg.visualize.to_dot` draws.
"""

from __future__ import annotations

from html import escape
from typing import Any

from hlg.visualize.describe import GraphDescription, LayerInfo, format_annotations, format_size
from hlg.visualize.dot import UNKNOWN_FILL, palette_for

__all__ = ["description_html", "to_html"]

_CELL = "padding:2px 10px;text-align:{align};border-bottom:1px solid rgba(127,127,127,0.25)"
_RULE = "border-bottom:1px solid rgba(127,127,127,0.6)"


def to_html(obj: Any) -> str:
    """Return the layer table of ``obj`` as self-contained HTML.

    Parameters
    ----------
    obj
        Anything :func:`~hlg.visualize.describe` takes, or a description.

    Examples
    --------
    >>> import hlg
    >>> html = to_html(hlg.HighLevelGraph.from_dict({"x": 1}, name="x"))
    >>> html.startswith("<div") and "<b>x</b>" in html
    True
    """
    from hlg.visualize.describe import describe

    info = obj if isinstance(obj, GraphDescription) else describe(obj)
    return description_html(info)


def description_html(info: GraphDescription) -> str:
    """Return a description as HTML; what ``_repr_html_`` shows."""
    colours = palette_for(row.layer_type for row in info.layers)
    sized = any(row.packed_bytes is not None for row in info.layers)
    head = ["layer", "type", "tasks", "blocks", "depends on"] + (["packed"] if sized else [])
    right = {"tasks", "packed"}
    header = "".join(
        f'<th style="{_CELL.format(align="right" if h in right else "left")};{_RULE}">{h}</th>'
        for h in head
    )
    body = "".join(
        _row(row, colours.get(row.layer_type, UNKNOWN_FILL), sized) for row in info.layers
    )
    parts = [
        '<div class="hlg-description" style="font-family:system-ui,-apple-system,sans-serif;'
        'font-size:13px;line-height:1.4;color:inherit;max-width:100%;overflow-x:auto">',
        f'<div style="font-weight:600;margin:4px 0 6px 0">{escape(info.summary())}</div>',
        f'<table style="border-collapse:collapse;color:inherit;background:transparent">'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>",
    ]
    if info.functions:
        parts.append(_functions(info))
    parts.append("</div>")
    return "".join(parts)


def _row(row: LayerInfo, fill: str, sized: bool) -> str:
    swatch = (
        f'<span style="display:inline-block;width:10px;height:10px;border-radius:2px;'
        f'background:{fill};margin-right:6px;vertical-align:middle"></span>'
    )
    tasks = "?" if row.tasks is None else f"{row.tasks:,}"
    cells = [
        (f"{swatch}<b>{escape(row.name)}</b>", "left"),
        (escape(row.layer_type), "left"),
        (tasks, "right"),
        (escape(row.blocks), "left"),
        (escape(", ".join(row.dependencies)), "left"),
    ]
    if sized:
        size = "" if row.packed_bytes is None else format_size(row.packed_bytes)
        cells.append((size, "right"))
    html = "<tr>" + "".join(
        f'<td style="{_CELL.format(align=align)}">{text}</td>' for text, align in cells
    )
    details = _details(row)
    span = len(cells)
    return (
        html
        + "</tr>"
        + f'<tr><td colspan="{span}" style="padding:0 10px 4px 26px;opacity:0.85">'
        + f"{details}</td></tr>"
    )


def _details(row: LayerInfo) -> str:
    items = [("tag", row.tag or "-")]
    items.append(("annotations", format_annotations(row.annotations, limit=80) or "none"))
    if row.note:
        items.append(("note", row.note))
    listing = "".join(
        f'<tr><td style="padding:0 8px 0 0;opacity:0.7">{escape(name)}</td>'
        f"<td>{escape(value)}</td></tr>"
        for name, value in items
    )
    marker = " (note)" if row.note else ""
    return (
        f'<details><summary style="cursor:pointer;font-size:12px;opacity:0.8">'
        f"details{marker}</summary>"
        f'<table style="border-collapse:collapse;font-size:12px;color:inherit">{listing}</table>'
        f"</details>"
    )


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
