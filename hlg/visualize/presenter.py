"""The presenter :mod:`hlg.visualize` installs, through which graphs, layers and flat graphs show.

Importing this module (which importing :mod:`hlg.visualize` does) installs a
:class:`VisualizePresenter` with :func:`hlg.presentation.install_presenter`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hlg.materialize.flatgraph import FlatGraph
from hlg.presentation import install_presenter
from hlg.visualize.describe import describe, to_html
from hlg.visualize.description import GraphDescription
from hlg.visualize.dot import flat_to_dot, render_flat, to_dot, visualize
from hlg.visualize.nx import to_networkx

__all__ = ["VisualizePresenter"]


class VisualizePresenter:
    """Shows graphs, layers and flat graphs with the functions of :mod:`hlg.visualize`.

    Examples
    --------
    >>> import hlg
    >>> VisualizePresenter().to_dot(hlg.MaterializedLayer({"x": 1}, name="x")).split()[:2]
    ['digraph', 'hlg']
    """

    def describe(self, obj: Any, *, sizes: bool = True) -> GraphDescription:
        """Return :func:`~hlg.visualize.describe` of ``obj``."""
        return describe(obj, sizes=sizes)

    def visualize(self, obj: Any, filename: str | os.PathLike[str]) -> Path:
        """Draw ``obj`` with :func:`~hlg.visualize.visualize`."""
        return visualize(obj, filename)

    def to_dot(self, obj: Any) -> str:
        """Return :func:`~hlg.visualize.to_dot` of ``obj``."""
        return to_dot(obj)

    def to_html(self, obj: Any) -> str:
        """Return :func:`~hlg.visualize.to_html` of ``obj``."""
        return to_html(obj)

    def to_networkx(self, obj: Any) -> Any:
        """Return :func:`~hlg.visualize.to_networkx` of ``obj``."""
        return to_networkx(obj)

    def visualize_flat(
        self, flat: FlatGraph, filename: str | os.PathLike[str], max_tasks: int
    ) -> Path:
        """Draw ``flat`` with :func:`~hlg.visualize.render_flat`."""
        return render_flat(flat, filename, max_tasks)

    def flat_to_dot(self, flat: FlatGraph, max_tasks: int) -> str:
        """Return :func:`~hlg.visualize.flat_to_dot` of ``flat``."""
        return flat_to_dot(flat, max_tasks)


install_presenter(VisualizePresenter())
