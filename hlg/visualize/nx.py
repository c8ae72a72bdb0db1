"""networkx graphs: the layer graph of a HighLevelGraph, the task graph of a FlatGraph.

Both are ``networkx.DiGraph`` objects whose edges point from a dependency to
its dependent, the direction data flows. Needs ``networkx`` (``pip install
'hlg[viz]'``).
"""

from __future__ import annotations

from typing import Any

from hlg.errors import NotInstalledError
from hlg.keys import key_split
from hlg.materialize.flatgraph import FlatGraph
from hlg.visualize.describe import describe
from hlg.visualize.description import GraphDescription

__all__ = ["to_networkx"]


def to_networkx(obj: Any) -> Any:
    """Return ``obj`` as a ``networkx.DiGraph``.

    Parameters
    ----------
    obj
        A :class:`~hlg.FlatGraph` gives the task graph: one node per key, with
        ``group`` (its task group) and ``remote`` attributes, and the key's
        annotations. Anything else :func:`~hlg.visualize.describe` takes (or a
        description) gives the layer graph: one node per layer name, with the
        attributes ``layer_type``, ``tag``, ``tasks``, ``blocks``,
        ``annotations`` and ``packed_bytes``.

    Raises
    ------
    NotInstalledError
        networkx is not installed.

    Examples
    --------
    >>> import hlg
    >>> graph = hlg.HighLevelGraph({"a": {"a": 1}, "b": {"b": (abs, "a")}}, {"b": {"a"}})
    >>> g = to_networkx(graph)
    >>> list(g.edges), g.nodes["b"]["tasks"], g.nodes["b"]["layer_type"]
    ([('a', 'b')], 1, 'MaterializedLayer')
    """
    try:
        import networkx as nx
    except ImportError:
        raise NotInstalledError(
            "to_networkx() needs the networkx package: pip install 'hlg[viz]'"
        ) from None
    graph = nx.DiGraph()
    if isinstance(obj, FlatGraph):
        for key in obj.tasks:
            attrs = {name: values[key] for name, values in obj.annotations.items() if key in values}
            graph.add_node(key, group=key_split(key), remote=False, **attrs)
        for key in obj.remote_keys:
            graph.add_node(key, group=key_split(key), remote=True)
        for key, node in obj.tasks.items():
            graph.add_edges_from((dep, key) for dep in node.dependencies)
        return graph
    info = obj if isinstance(obj, GraphDescription) else describe(obj)
    for row in info.layers:
        graph.add_node(
            row.name,
            layer_type=row.layer_type,
            tag=row.tag,
            tasks=row.tasks,
            blocks=row.blocks,
            annotations=dict(row.annotations),
            packed_bytes=row.packed_bytes,
        )
    for row in info.layers:
        graph.add_edges_from((dep, row.name) for dep in row.dependencies)
    return graph
