"""The graph forms every entry point accepts, turned into tasks in one place.

:func:`hlg.get`, :func:`hlg.order` and :meth:`hlg.Client.compute` take a
graph in any of these forms, and all of them call :func:`graph_tasks`:

- packed bytes (``bytes``, ``bytearray``, ``memoryview``): unpacked;
- a :class:`~hlg.FlatGraph`: its tasks as they are;
- a :class:`~hlg.HighLevelGraph`, a :class:`~hlg.Layer` or a collection
  (``__hlg_graph__``): culled to the requested keys first, so that only the
  tasks they need are materialised;
- any other mapping (a dask-style dict of tuples, of hlg's task nodes or of
  dask's task-spec nodes): converted once by :func:`hlg.convert.convert_graph`;
- a dask collection or expression (``__dask_graph__``), as ``dask.compute``
  hands it to a scheduler: its dict of tasks, converted the same way.

The specific types are checked before the general ``Mapping``: a layer and a
high-level graph are mappings too, but treating them as plain dicts would
materialise every task of every layer.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any, NamedTuple

from hlg.convert import convert_graph
from hlg.daskspec import dask_graph
from hlg.errors import GraphError
from hlg.graph import HighLevelGraph, flatten_keys
from hlg.keys import Key, is_key
from hlg.layers.base import Layer
from hlg.materialize.flatgraph import FlatGraph
from hlg.materialize.unpack import unpack
from hlg.task import GraphNode

__all__ = ["GraphTasks", "graph_tasks"]


class GraphTasks(NamedTuple):
    """A graph as tasks: what :func:`graph_tasks` returns."""

    #: The task nodes by key.
    tasks: Mapping[Key, GraphNode]
    #: The keys the graph itself requests (packed and flat graphs carry them), else None.
    keys: list[Key] | None


def graph_tasks(
    graph: Any,
    keys: Any = None,
    *,
    known: Container[object] | None = None,
    unpack_options: Mapping[str, Any] | None = None,
) -> GraphTasks:
    """Return the tasks of ``graph`` in any form, culled to ``keys`` where that is cheap.

    Parameters
    ----------
    graph
        Packed bytes, a FlatGraph, a HighLevelGraph, a Layer, a collection, or a
        dict graph.
    keys
        The keys to be computed (a key or nested lists of keys), or None for the
        whole graph. Layered forms are culled to them; dict graphs keep every
        task (the scheduler runs only what the keys need).
    known
        Keys of data held already (a :class:`~hlg.Client`'s scattered data):
        tasks may depend on them, and dict graphs refer to them by key.
    unpack_options
        Keyword arguments for :func:`hlg.unpack`, for packed bytes.

    Raises
    ------
    GraphError
        ``graph`` is none of the forms above.
    MissingDependencyError
        A kept task of a layered graph needs a key that no layer produces and
        that is not ``known``.

    Examples
    --------
    >>> import hlg
    >>> layer = hlg.MaterializedLayer({"a": 1, "b": (abs, "a"), "c": 3}, name="l")
    >>> sorted(graph_tasks(layer, "b").tasks)
    ['a', 'b']
    >>> graph_tasks(hlg.pack({"a": 1}, "a")).keys
    ['a']
    """
    if type(graph) is dict:  # the commonest form, and none of the checks below applies
        return GraphTasks(convert_graph(graph, known), None)
    if isinstance(graph, bytes | bytearray | memoryview):
        graph = unpack(graph, **(unpack_options or {}))
    if isinstance(graph, FlatGraph):
        return GraphTasks(graph.tasks, graph.keys)
    layered = _as_high_level(graph)
    if layered is not None:
        return GraphTasks(_cull(layered, keys, known), None)
    dask_tasks = dask_graph(graph)
    if dask_tasks is not None:
        graph = dask_tasks  # a dask collection or expression: its dict of tasks
    if isinstance(graph, Mapping):
        return GraphTasks(convert_graph(graph, known), None)
    raise GraphError(
        f"expected a graph (a dict, HighLevelGraph, Layer, collection, FlatGraph or packed "
        f"bytes); got {type(graph).__name__}"
    )


def _as_high_level(graph: Any) -> HighLevelGraph | None:
    if isinstance(graph, HighLevelGraph):
        return graph
    if isinstance(graph, Layer):
        return HighLevelGraph({graph.name: graph})
    method = getattr(graph, "__hlg_graph__", None)
    if method is not None and callable(method):
        hlg_graph = method()
        if not isinstance(hlg_graph, HighLevelGraph):
            raise GraphError(
                f"{type(graph).__name__}.__hlg_graph__() returned "
                f"{type(hlg_graph).__name__}; it must return an hlg.HighLevelGraph"
            )
        return hlg_graph
    return None


def _cull(
    graph: HighLevelGraph, keys: Any, known: Container[object] | None
) -> Mapping[Key, GraphNode]:
    if keys is None:
        return graph.to_dict()
    # Keys the graph does not produce are left to the scheduler, which names them.
    present = [k for k in flatten_keys(keys) if is_key(k) and k in graph]
    return graph.cull(present, held=() if known is None else known).to_dict()
