"""The presentation seam: how graphs, layers and flat graphs show themselves.

:class:`~hlg.HighLevelGraph`, :class:`~hlg.Layer` and :class:`~hlg.FlatGraph`
have display methods (``describe``, ``visualize``, ``to_dot``, ``to_networkx``,
``_repr_html_``), but what draws them lives in :mod:`hlg.visualize`, which is
built on those classes. So the classes call a :class:`Presenter` installed here,
and :mod:`hlg.visualize` installs one when it is imported (``import hlg`` does),
keeping imports flowing downstream. Importing :mod:`hlg.visualize` stays cheap:
graphviz, networkx and rich are imported only when a picture, a networkx graph
or a rich table is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hlg.errors import UsageError

if TYPE_CHECKING:
    from hlg.materialize.flatgraph import FlatGraph
    from hlg.visualize.description import GraphDescription

__all__ = ["MAX_FLAT_TASKS", "Presenter", "install_presenter", "presenter"]

#: Past this many tasks, a picture of a flat graph refuses rather than draw a hairball.
MAX_FLAT_TASKS = 500


class Presenter(Protocol):
    """What the display methods of graphs, layers and flat graphs call.

    ``obj`` is a :class:`~hlg.HighLevelGraph`, a :class:`~hlg.Layer` or a
    :class:`~hlg.FlatGraph`; each method does what the display method of the
    same name documents.
    """

    def describe(self, obj: Any, *, sizes: bool = True) -> GraphDescription:
        """Return the layer table of ``obj``."""

    def visualize(self, obj: Any, filename: str | os.PathLike[str]) -> Path:
        """Draw the layer graph of ``obj`` to ``filename``."""

    def to_dot(self, obj: Any) -> str:
        """Return the layer graph of ``obj`` as DOT text."""

    def to_html(self, obj: Any) -> str:
        """Return the layer table of ``obj`` as HTML."""

    def to_networkx(self, obj: Any) -> Any:
        """Return ``obj`` as a ``networkx.DiGraph``."""

    def visualize_flat(
        self, flat: FlatGraph, filename: str | os.PathLike[str], max_tasks: int
    ) -> Path:
        """Draw the tasks of ``flat`` to ``filename``."""

    def flat_to_dot(self, flat: FlatGraph, max_tasks: int) -> str:
        """Return the tasks of ``flat`` as DOT text."""


# The installed presenter; empty until hlg.visualize is imported.
_INSTALLED: list[Presenter] = []


def install_presenter(presenter: Presenter) -> None:
    """Make ``presenter`` the one the display methods call, in place of any before it.

    Examples
    --------
    >>> import hlg
    >>> previous = presenter()
    >>> class Plain:
    ...     def to_dot(self, obj):
    ...         return f"digraph {obj.name} {{}}"
    >>> install_presenter(Plain())  # type: ignore[arg-type]
    >>> hlg.MaterializedLayer({"x": 1}, name="x").to_dot()
    'digraph x {}'
    >>> install_presenter(previous)
    """
    _INSTALLED[:] = [presenter]


def presenter() -> Presenter:
    """Return the installed presenter.

    Raises
    ------
    UsageError
        None is installed: :mod:`hlg.visualize` has not been imported.

    Examples
    --------
    >>> type(presenter()).__name__
    'VisualizePresenter'
    """
    if not _INSTALLED:
        raise UsageError(
            "showing a graph needs hlg.visualize, which installs the presenter when it is "
            "imported; import hlg.visualize (import hlg does)"
        )
    return _INSTALLED[0]
