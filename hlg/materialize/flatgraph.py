"""FlatGraph: the scheduler's view of a graph, every task materialised."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from hlg.errors import counted
from hlg.keys import Key
from hlg.materialize.groups import TaskGroup, TaskPrefix, build_groups
from hlg.presentation import MAX_FLAT_TASKS, presenter
from hlg.task import GraphNode

__all__ = ["FlatGraph", "LayerSummary"]


@dataclasses.dataclass(frozen=True, slots=True)
class LayerSummary:
    """What a flat graph remembers of a layer it was built from."""

    name: str
    tag: str
    ntasks: int
    dependencies: tuple[str, ...]


class _Dependencies(Mapping[Key, frozenset[Key]]):
    """A read-only view of each task's dependencies, read from the tasks themselves."""

    __slots__ = ("_tasks",)

    def __init__(self, tasks: Mapping[Key, GraphNode]) -> None:
        self._tasks = tasks

    def __getitem__(self, key: Key) -> frozenset[Key]:
        return self._tasks[key].dependencies

    def __iter__(self) -> Iterator[Key]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._tasks
        except TypeError:
            return False

    def __repr__(self) -> str:
        return repr({key: node.dependencies for key, node in self._tasks.items()})


class FlatGraph:
    """A flat task graph: what :func:`hlg.unpack` returns and schedulers run.

    ``graph[key]``, ``key in graph`` and ``len(graph)`` look at the tasks.
    ``dependents``, ``groups`` and ``prefixes`` are computed on first access.

    Parameters
    ----------
    tasks
        Every task, by key.
    keys
        The requested keys.
    remote_keys
        Keys of data held by the scheduler that tasks may depend on.
    annotations
        Annotation name to key to value, expanded per key.
    layers
        The layers the tasks came from, in topological order.

    Examples
    --------
    >>> import hlg
    >>> flat = hlg.unpack(hlg.pack({"a": 1, "b": (abs, "a")}, "b"))
    >>> flat.keys, sorted(flat.dependencies["b"]), flat.dependents["a"]
    (['b'], ['a'], {'b'})
    """

    def __init__(
        self,
        tasks: dict[Key, GraphNode],
        keys: list[Key],
        remote_keys: frozenset[Key] = frozenset(),
        annotations: dict[str, dict[Key, Any]] | None = None,
        layers: tuple[LayerSummary, ...] = (),
    ) -> None:
        self.tasks = tasks
        self.keys = keys
        self.remote_keys = remote_keys
        self.annotations: dict[str, dict[Key, Any]] = annotations or {}
        self.layers = layers

    def __getitem__(self, key: Key) -> GraphNode:
        return self.tasks[key]

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self.tasks
        except TypeError:
            return False

    @cached_property
    def dependencies(self) -> Mapping[Key, frozenset[Key]]:
        """Each key's dependencies: a read-only view, each lookup O(1)."""
        return _Dependencies(self.tasks)

    @cached_property
    def dependents(self) -> dict[Key, set[Key]]:
        """Each key's dependents: the tasks that need its value."""
        out: dict[Key, set[Key]] = {key: set() for key in self.tasks}
        for key in self.remote_keys:
            out.setdefault(key, set())
        for key, node in self.tasks.items():
            for dep in node.dependencies:
                out[dep].add(key)
        return out

    @cached_property
    def _grouped(self) -> tuple[dict[str, TaskGroup], dict[str, TaskPrefix]]:
        return build_groups(self.tasks, self.remote_keys)

    @property
    def groups(self) -> dict[str, TaskGroup]:
        """Task groups by name; see :mod:`hlg.materialize.groups`."""
        return self._grouped[0]

    @property
    def prefixes(self) -> dict[str, TaskPrefix]:
        """Task prefixes by name."""
        return self._grouped[1]

    def __repr__(self) -> str:
        return (
            f"<FlatGraph: {counted(len(self.tasks), 'task')}, "
            f"{counted(len(self.keys), 'requested key')}, "
            f"{counted(len(self.remote_keys), 'remote key')}>"
        )

    # -- display -------------------------------------------------------------------------

    def describe(self) -> Any:
        """Return the table of the layers the tasks came from; see :func:`hlg.describe`.

        Examples
        --------
        >>> import hlg
        >>> flat = hlg.unpack(hlg.pack({"a": 1, "b": (abs, "a")}, "b"))
        >>> [(row.tag, row.tasks) for row in flat.describe().layers]
        [('hlg.materialized', 2)]
        """
        return presenter().describe(self)

    def visualize(
        self, filename: str | os.PathLike[str] = "hlg.svg", max_tasks: int = MAX_FLAT_TASKS
    ) -> Path:
        """Draw the tasks to ``filename`` (SVG, PNG, PDF or DOT), grouped by task group.

        Refuses graphs of more than ``max_tasks`` tasks; cull first, or raise
        the limit. See :func:`hlg.visualize.flat_to_dot`.
        """
        return presenter().visualize_flat(self, filename, max_tasks)

    def to_dot(self, max_tasks: int = MAX_FLAT_TASKS) -> str:
        """Return the tasks as Graphviz DOT text, grouped and coloured by task group.

        Examples
        --------
        >>> import hlg
        >>> flat = hlg.unpack(hlg.pack({"a": 1, "b": (abs, "a")}, "b"))
        >>> flat.to_dot().count("task0 -> task1;")
        1
        """
        return presenter().flat_to_dot(self, max_tasks)

    def to_networkx(self) -> Any:
        """Return the task graph as a ``networkx.DiGraph`` (needs networkx).

        Examples
        --------
        >>> import hlg
        >>> flat = hlg.unpack(hlg.pack({"a": 1, "b": (abs, "a")}, "b"))
        >>> list(flat.to_networkx().edges)
        [('a', 'b')]
        """
        return presenter().to_networkx(self)

    def _repr_html_(self) -> str:
        return presenter().to_html(self)
