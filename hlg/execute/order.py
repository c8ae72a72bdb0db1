"""Static task ordering that keeps memory low: the entry points.

:func:`order` gives every task a priority (0 runs first). The local scheduler
runs, among the tasks that are ready, the one with the smallest priority, so
with one worker the priorities are exactly the order of execution.

This module turns keys into task numbers and back; the algorithm, and what it
optimises (the most results held at once), is :mod:`hlg.execute.memory_order`.
The order is the same in every process and under every hash seed, and nothing
recurses: a chain of a million tasks is ordered without the C stack.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from itertools import compress
from typing import Any

from hlg._gc import gc_paused_for
from hlg.convert import dependency_positions
from hlg.errors import CycleError, MissingDependencyError
from hlg.execute.forms import graph_tasks
from hlg.execute.memory_order import memory_order, order_acyclic, with_cycle
from hlg.keys import Key
from hlg.task import GraphNode, numbered_dependencies
from hlg.toposort import find_cycle

__all__ = ["order", "order_tasks"]


def order(graph: Any) -> dict[Key, int]:
    """Return a priority for every task of ``graph``: lower runs first.

    Parameters
    ----------
    graph
        A dict graph, :class:`~hlg.HighLevelGraph`, layer, collection,
        :class:`~hlg.FlatGraph` or packed bytes.

    Returns
    -------
    dict
        Key to priority, ``0`` to ``len(graph) - 1``, each task after its
        dependencies.

    Raises
    ------
    CycleError
        Tasks depend on each other in a cycle; the message names them.

    Examples
    --------
    >>> from operator import add
    >>> dsk = {"a": 1, "b": 2, "c": (add, "a", "b"), "d": (add, "c", 10)}
    >>> sorted(order(dsk).items(), key=lambda kv: kv[1])
    [('a', 0), ('b', 1), ('c', 2), ('d', 3)]
    """
    if type(graph) is dict and not isinstance(next(iter(graph.values()), None), GraphNode):
        # A dask-style dict: only its shape is needed, read from the values as they
        # are, without building a task per value (the same dependencies, faster). A
        # dict of nodes takes the path below, which reads nodes directly; either path
        # reads any mix of the two correctly.
        keys = list(graph)
        with gc_paused_for(len(keys)):
            return _ordered(keys, dependency_positions(graph))
    tasks = graph_tasks(graph).tasks
    keys = list(tasks)
    with gc_paused_for(len(keys)):
        return _ordered(keys, _numbered(keys, list(tasks.values()))[1])


def _ordered(keys: list[Key], deps: list[list[int]]) -> dict[Key, int]:
    """Return the priority of each of ``keys``, whose dependencies are ``deps`` by position."""
    numbers = order_acyclic(deps)
    if numbers is None:
        raise _cycle_error(keys, deps)
    return dict(zip(map(keys.__getitem__, numbers), range(len(keys)), strict=True))


def _cycle_error(keys: list[Key], deps: list[list[int]]) -> CycleError:
    # The tasks that can run come first; the first task after them needs one
    # that cannot, so it is on a cycle or behind one, and the walk from it names it.
    order = with_cycle(deps)
    placed = [False] * len(deps)
    start = order[-1]
    for t in order:
        if not all(map(placed.__getitem__, deps[t])):
            start = t
            break
        placed[t] = True
    cycle = find_cycle(dict(enumerate(deps)), start) or [start]
    return CycleError(
        "tasks depend on each other in a cycle: "
        + " -> ".join(repr(keys[t]) for t in cycle)
        + "; a task cannot need its own result"
    )


def order_tasks(
    tasks: Mapping[Key, GraphNode],
    roots: Iterable[Key] | None = None,
    known: Container[Key] | None = None,
) -> dict[Key, int]:
    """Order the tasks of a mapping of nodes.

    Parameters
    ----------
    tasks
        The nodes, by key.
    roots
        Order only what these keys need, walking from them in this order. By
        default every task is ordered, walking from the tasks nothing depends on.
    known
        With ``roots``: keys that are not tasks but whose values are held
        (scattered data). Without ``roots``, dependencies outside ``tasks`` are
        ignored.

    Raises
    ------
    MissingDependencyError
        With ``roots``: a needed task depends on a key that is neither a task
        nor ``known``.

    Examples
    --------
    >>> from hlg import Task, TaskRef
    >>> tasks = {"x": Task(abs, 1), "y": Task(abs, TaskRef("x")), "z": Task(abs, 2)}
    >>> order_tasks(tasks)  # z is needed by nothing and needs nothing: it runs first
    {'z': 0, 'x': 1, 'y': 2}
    >>> order_tasks(tasks, roots=["y"])
    {'x': 0, 'y': 1}
    """
    keys = list(tasks)
    nodes = list(tasks.values())
    # The walks build a few small lists per task, none of them in a cycle.
    with gc_paused_for(len(keys)):
        index = dict(zip(keys, range(len(keys)), strict=True))
        deps = _positions(index, nodes)
        outputs = None
        if roots is not None:
            roots = list(roots)
            if deps is None:  # some dependencies are not tasks: known data, or missing
                needed = _needed(tasks, roots, known)
                keys = [key for key in keys if key in needed]
                nodes = [tasks[key] for key in keys]
                index = dict(zip(keys, range(len(keys)), strict=True))
                deps = _positions(index, nodes)
            outputs = [index[r] for r in roots if r in index]
        if deps is None:
            deps = _known_positions(index, nodes)
        elif outputs is not None:
            keys, deps, outputs = _reached(keys, deps, outputs)
        # On a cycle, what can run comes first; the scheduler finds and names the cycle.
        numbers = memory_order(deps, outputs)
        return dict(zip(map(keys.__getitem__, numbers), range(len(keys)), strict=True))


def _positions(index: dict[Key, int], nodes: list[GraphNode]) -> list[list[int]] | None:
    """Return each node's dependencies as positions, or ``None`` if one is not in ``index``."""
    try:
        return numbered_dependencies(nodes, index.__getitem__)
    except KeyError:
        return None


def _numbered(keys: list[Key], nodes: list[GraphNode]) -> tuple[dict[Key, int], list[list[int]]]:
    """Return each key's position, and each node's dependencies as positions.

    Dependencies that are not among ``keys`` are left out: known data, or ignored.
    """
    index = dict(zip(keys, range(len(keys)), strict=True))
    deps = _positions(index, nodes)
    if deps is None:
        deps = _known_positions(index, nodes)
    return index, deps


def _known_positions(index: dict[Key, int], nodes: list[GraphNode]) -> list[list[int]]:
    """Return each node's dependencies among ``index`` as positions, in ascending order.

    Sorted as :func:`~hlg.task.numbered_dependencies` sorts: the walks follow
    the order of each list, which must not be the hash-seeded order of a frozenset.
    """
    return [sorted([index[d] for d in node.dependencies if d in index]) for node in nodes]


def _reached(
    keys: list[Key], deps: list[list[int]], outputs: list[int]
) -> tuple[list[Key], list[list[int]], list[int]]:
    """Keep the tasks ``outputs`` need, numbered again in graph order.

    Every dependency is a task here, so the walk goes by position: indexing a
    list costs less than hashing a tuple key into a set.
    """
    n = len(deps)
    seen = [False] * n
    stack: list[int] = []
    for t in outputs:
        if not seen[t]:
            seen[t] = True
            stack.append(t)
    while stack:
        for d in deps[stack.pop()]:
            if not seen[d]:
                seen[d] = True
                stack.append(d)
    kept = list(compress(range(n), seen))
    if len(kept) == n:
        return keys, deps, outputs
    renumber = [0] * n
    for i, t in enumerate(kept):
        renumber[t] = i
    get = renumber.__getitem__
    return (
        [keys[t] for t in kept],
        [list(map(get, deps[t])) for t in kept],
        list(map(get, outputs)),
    )


def _needed(
    tasks: Mapping[Key, GraphNode], roots: Iterable[Key], known: Container[Key] | None
) -> set[Key]:
    """Collect the tasks ``roots`` need, checking each dependency is a task or known."""
    needed: set[Key] = set()
    stack = [key for key in roots if key in tasks]
    needed.update(stack)
    while stack:
        key = stack.pop()
        for d in tasks[key].dependencies:
            if d in needed:
                continue
            if d in tasks:
                needed.add(d)
                stack.append(d)
            elif known is None or d not in known:
                raise _missing(key, d)
    return needed


def _missing(key: Key, dep: Key) -> MissingDependencyError:
    return MissingDependencyError(
        f"task {key!r} needs {dep!r}, which is neither in the graph nor held as data; add "
        "the task, or scatter the data with an hlg.Client and compute there"
    )
