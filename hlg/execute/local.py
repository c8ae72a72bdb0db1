"""The local scheduler: run a graph in this process and return the requested values.

State, for one run:

- ``tasks``: key → node, only what the requested keys need;
- ``values``: key → result, for finished tasks whose result is still needed;
- ``waiting_on``: key → number of its dependents not yet finished. When it
  drops to zero the result is released, unless the key was requested.

Tasks run in topological order, so each task's dependencies are in ``values``
when it starts; nothing recurses, so chains of any length run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hlg.errors import GraphError, MissingKeyError
from hlg.graph import HighLevelGraph, ensure_graph, flatten_keys
from hlg.keys import Key, is_key
from hlg.layers.base import missing_dependency
from hlg.materialize.flatgraph import FlatGraph
from hlg.materialize.unpack import unpack
from hlg.task import GraphNode, convert_graph
from hlg.toposort import toposort

__all__ = ["get", "needed_tasks"]


def get(graph: Any, keys: Any = None) -> Any:
    """Compute ``keys`` of ``graph`` and return their values.

    Parameters
    ----------
    graph
        A dict graph (dask style or of nodes), a :class:`~hlg.HighLevelGraph`, a
        collection, a :class:`~hlg.FlatGraph`, or packed bytes.
    keys
        A key (its value is returned), a list of keys (a tuple of values is
        returned) or nested lists (nested tuples). Optional for a FlatGraph or
        packed bytes, which carry their requested keys.

    Raises
    ------
    MissingKeyError
        A requested key is not in the graph.
    Exception
        Whatever a task raised, with a note naming the task's key.

    Examples
    --------
    >>> from operator import add
    >>> dsk = {"x": 1, "y": 2, "z": (add, "x", "y"), "w": (sum, ["x", "y", "z"])}
    >>> get(dsk, "w")
    6
    >>> get(dsk, [["x"], "z"])
    ((1,), 3)
    """
    tasks, keys = _as_tasks(graph, keys)
    wanted = list(flatten_keys(keys))
    needed = needed_tasks(tasks, wanted)
    values = _run(needed, set(wanted))
    return _nest(keys, values)


def _as_tasks(graph: Any, keys: Any) -> tuple[Mapping[Key, GraphNode], Any]:
    if isinstance(graph, bytes | bytearray | memoryview):
        graph = unpack(graph)
    if isinstance(graph, FlatGraph):
        if graph.remote_keys:
            raise GraphError(
                f"the graph depends on {len(graph.remote_keys)} remotely held keys, such as "
                f"{next(iter(graph.remote_keys))!r}; run it with the hlg.Client that holds them"
            )
        return graph.tasks, graph.keys if keys is None else keys
    if keys is None:
        raise GraphError("pass the keys to compute; only packed and flat graphs carry their own")
    if isinstance(graph, Mapping) and not isinstance(graph, HighLevelGraph):
        return convert_graph(graph), keys
    hlg_graph = ensure_graph(graph)
    present = [k for k in flatten_keys(keys) if is_key(k) and k in hlg_graph]
    return hlg_graph.cull(present).to_dict(), keys


def needed_tasks(tasks: Mapping[Key, GraphNode], keys: list[Key]) -> dict[Key, GraphNode]:
    """Return the tasks that computing ``keys`` needs.

    Raises
    ------
    MissingKeyError
        A requested key is not in ``tasks``.
    MissingDependencyError
        A needed task depends on a key that is not in ``tasks``.

    Examples
    --------
    >>> from hlg import Task, TaskRef
    >>> sorted(needed_tasks({"a": Task(abs, 1), "b": Task(abs, TaskRef("a")), "c": Task(abs, 2)},
    ...                     ["b"]))
    ['a', 'b']
    """
    needed: dict[Key, GraphNode] = {}
    for key in keys:
        if not (is_key(key) and key in tasks):
            raise MissingKeyError(f"key {key!r} is not in the graph")
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key in needed:
            continue
        node = tasks[key]
        needed[key] = node
        for dep in node.dependencies:
            if dep not in needed:
                if dep not in tasks:
                    raise missing_dependency("graph", key, dep)
                stack.append(dep)
    return needed


def _run(tasks: dict[Key, GraphNode], requested: set[Key]) -> dict[Key, Any]:
    order = toposort(
        {k: n.dependencies for k, n in tasks.items()},
        describe=lambda cycle: (
            "tasks depend on each other in a cycle: " + " -> ".join(map(repr, cycle))
        ),
    )
    waiting_on: dict[Key, int] = dict.fromkeys(tasks, 0)
    for node in tasks.values():
        for dep in node.dependencies:
            waiting_on[dep] += 1
    values: dict[Key, Any] = {}
    for key in order:
        node = tasks[key]
        try:
            values[key] = node(values)
        except Exception as err:
            err.add_note(f"hlg: raised while computing key {key!r}")
            raise
        for dep in node.dependencies:
            waiting_on[dep] -= 1
            if waiting_on[dep] == 0 and dep not in requested:
                del values[dep]
    return values


def _nest(keys: Any, values: Mapping[Key, Any]) -> Any:
    if type(keys) is not list:
        return values[keys]
    return tuple(_nest(k, values) for k in keys)
