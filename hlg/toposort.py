"""Topological order and cycle finding over ``node -> dependencies`` mappings.

Used for layers (names) on the client and for tasks (keys) on the scheduler.
Both algorithms are iterative, so a chain of a million nodes is fine.

Kahn's algorithm: count each node's unfinished dependencies (``remaining``);
nodes with none are *ready*; emitting a ready node lowers the count of each of
its dependents. Nodes never emitted lie on or behind a cycle, and
:func:`find_cycle` then walks dependencies from one of them until a node
repeats, which names the cycle exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TypeVar

from hlg.errors import CycleError

__all__ = ["find_cycle", "toposort"]

N = TypeVar("N", bound=Hashable)


def toposort(
    dependencies: Mapping[N, Iterable[N]],
    *,
    describe: Callable[[list[N]], str] | None = None,
) -> list[N]:
    """Return the nodes so that each comes after all of its dependencies.

    Dependencies that are not themselves nodes of the mapping are ignored. Ties
    keep the mapping's order, so the result is deterministic.

    Parameters
    ----------
    dependencies
        Each node's dependencies.
    describe
        Builds the error message from the nodes of a cycle.

    Raises
    ------
    CycleError
        Some nodes depend on themselves; the message lists one cycle.

    Examples
    --------
    >>> toposort({"c": ["b"], "b": ["a"], "a": []})
    ['a', 'b', 'c']
    >>> toposort({"a": ["b"], "b": ["a"]})
    Traceback (most recent call last):
    hlg.errors.CycleError: cycle: 'a' -> 'b' -> 'a'
    """
    remaining: dict[N, int] = {}
    dependents: dict[N, list[N]] = {node: [] for node in dependencies}
    for node, deps in dependencies.items():
        count = 0
        for dep in set(deps):
            if dep in dependents:
                dependents[dep].append(node)
                count += 1
        remaining[node] = count
    ready = [node for node, count in remaining.items() if count == 0]
    ready.reverse()
    order: list[N] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for dependent in reversed(dependents[node]):
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                ready.append(dependent)
    if len(order) < len(remaining):
        done = set(order)
        start = next(node for node in dependencies if node not in done)
        cycle = find_cycle(dependencies, start) or [start]
        message = describe(cycle) if describe else "cycle: " + " -> ".join(map(repr, cycle))
        raise CycleError(message)
    return order


def find_cycle(dependencies: Mapping[N, Iterable[N]], start: N) -> list[N] | None:
    """Return a cycle reachable from ``start`` as ``[a, b, ..., a]``, or None.

    Examples
    --------
    >>> find_cycle({"x": ["y"], "y": ["z"], "z": ["y"]}, "x")
    ['y', 'z', 'y']
    >>> find_cycle({"x": []}, "x") is None
    True
    """
    # Iterative depth-first search; ``on_path`` maps nodes of the current path to
    # their position in ``path``, ``finished`` holds nodes proven cycle-free.
    path: list[N] = [start]
    on_path: dict[N, int] = {start: 0}
    iterators = [iter(dependencies.get(start, ()))]
    finished: set[N] = set()
    while iterators:
        for dep in iterators[-1]:
            if dep in on_path:
                return [*path[on_path[dep] :], dep]
            if dep in finished or dep not in dependencies:
                continue
            on_path[dep] = len(path)
            path.append(dep)
            iterators.append(iter(dependencies[dep]))
            break
        else:
            iterators.pop()
            node = path.pop()
            del on_path[node]
            finished.add(node)
    return None
