"""Seeing graphs: the layer table, DOT/SVG/PNG pictures, Jupyter HTML and networkx.

Importable without any optional dependency: DOT text and the tables need
nothing; pictures need ``graphviz`` and the ``dot`` program, networkx graphs
need ``networkx``, and rich tables need ``rich``. Importing it installs the
:class:`VisualizePresenter` that the display methods of graphs, layers and
flat graphs call (see :mod:`hlg.presentation`).
"""

from hlg.visualize.describe import describe, to_html
from hlg.visualize.description import FunctionInfo, GraphDescription, LayerInfo, block_counts
from hlg.visualize.dot import MAX_FLAT_TASKS, flat_to_dot, render, render_flat, to_dot, visualize
from hlg.visualize.html import description_html
from hlg.visualize.nx import to_networkx
from hlg.visualize.packed import describe_packed, layer_type_for_tag
from hlg.visualize.presenter import VisualizePresenter
from hlg.visualize.style import format_annotations, format_size, palette_for
from hlg.visualize.text import rich_table

__all__ = [
    "MAX_FLAT_TASKS",
    "FunctionInfo",
    "GraphDescription",
    "LayerInfo",
    "VisualizePresenter",
    "block_counts",
    "describe",
    "describe_packed",
    "description_html",
    "flat_to_dot",
    "format_annotations",
    "format_size",
    "layer_type_for_tag",
    "palette_for",
    "render",
    "render_flat",
    "rich_table",
    "to_dot",
    "to_html",
    "to_networkx",
    "visualize",
]
