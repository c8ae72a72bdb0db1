"""Static task ordering that keeps memory low.

:func:`order` gives every task a priority (0 runs first). The local scheduler
runs, among the tasks that are ready, the one with the smallest priority, so
with one worker the priorities are exactly the order of execution.

The algorithm is a depth-first *post-order* walk from the graph's roots (the
tasks nothing depends on), in graph order. A task is numbered once all its
dependencies are numbered, and a task's dependencies are walked one subtree at
a time, so each subtree is finished, and its intermediate results released,
before the next one starts. That is what keeps memory low: a reduction is
completed before more leaves are loaded, and a result waits only for the
siblings that were started before it.

Which dependency to walk first matters. Walking the biggest subtree first
means its many intermediate results are gone before the small subtrees' few
results start waiting (the Sethi-Ullman rule for expression trees). Subtree
size is approximated, cheaply, by the number of direct dependencies; literal
data, which costs nothing to hold until needed, comes last. Ties keep graph
order, so the result is the same in every process and under every hash seed.

Vocabulary of the walk:

- ``stack``: tasks to visit; a task stays on it while its dependencies are
  walked above it;
- ``entered``: tasks whose dependencies have been pushed;
- ``priority``: tasks already numbered, with their number.

Everything is iterative: a chain of a million tasks is walked without
recursion.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

from hlg.errors import CycleError, MissingDependencyError
from hlg.execute.forms import graph_tasks
from hlg.keys import Key
from hlg.task import GraphNode
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
    tasks = graph_tasks(graph).tasks
    priority = order_tasks(tasks)
    _check_acyclic(tasks, priority)
    return priority


def _check_acyclic(tasks: Mapping[Key, GraphNode], priority: Mapping[Key, int]) -> None:
    # A topological numbering puts every task after its dependencies; tasks on a
    # cycle cannot be, so any task numbered before one of its dependencies is on
    # (or after) a cycle, which find_cycle then names.
    for key, node in tasks.items():
        mine = priority[key]
        for dep in node.dependencies:
            if priority.get(dep, -1) >= mine:
                deps = {k: n.dependencies for k, n in tasks.items()}
                for start in (key, dep, *deps):
                    cycle = find_cycle(deps, start)
                    if cycle:
                        raise CycleError(
                            "tasks depend on each other in a cycle: "
                            + " -> ".join(map(repr, cycle))
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
    >>> order_tasks(tasks)
    {'x': 0, 'y': 1, 'z': 2}
    >>> order_tasks(tasks, roots=["y"])
    {'x': 0, 'y': 1}
    """
    position = {key: i for i, key in enumerate(tasks)}
    complete = roots is None
    if roots is None:
        has_dependents: set[Key] = set()
        for node in tasks.values():
            has_dependents.update(node.dependencies)
        roots = [key for key in tasks if key not in has_dependents]
    priority: dict[Key, int] = {}
    entered: set[Key] = set()

    def rank(key: Key) -> tuple[int, int]:
        # More dependencies first (a bigger subtree); graph order breaks ties.
        return (-len(tasks[key].dependencies), position[key])

    for root in roots:
        if root in priority or root not in position:
            continue
        stack = [root]
        while stack:
            key = stack[-1]
            if key in priority:
                stack.pop()
            elif key in entered:
                stack.pop()
                priority[key] = len(priority)
            else:
                entered.add(key)
                children = []
                for d in tasks[key].dependencies:
                    if d in position:
                        if d not in priority:
                            children.append(d)
                    elif not complete and (known is None or d not in known):
                        raise _missing(key, d)
                if not children:
                    stack.pop()  # a leaf, or all dependencies done: number it now
                    priority[key] = len(priority)
                    continue
                if len(children) > 1:
                    children.sort(key=rank, reverse=True)
                stack.extend(children)
    if complete and len(priority) < len(tasks):
        # Tasks on a cycle are nobody's root: number them last, in graph order, so
        # the scheduler can find and report the cycle.
        for key in tasks:
            if key not in priority:
                priority[key] = len(priority)
    return priority


def _missing(key: Key, dep: Key) -> MissingDependencyError:
    return MissingDependencyError(
        f"task {key!r} needs {dep!r}, which is neither in the graph nor held as data; add "
        "the task, or scatter the data with an hlg.Client and compute there"
    )
