"""The local scheduler's state for one run, and the transitions that change it.

Tasks are numbered by priority (:func:`hlg.execute.order.order_tasks`), and
all per-task state lives in lists indexed by that number, which is both fast
and compact. The vocabulary:

- ``dependencies[i]`` / ``dependents[i]``: task numbers, fixed for the run;
- ``waiting[i]``: dependencies of ``i`` not finished yet. At 0 the task is
  *ready*: it goes on the ``ready`` heap, smallest priority on top;
- ``waiting_data[i]``: dependents of ``i`` not finished yet. At 0 the result
  is *released* (dropped from ``cache``), unless its key was requested;
- ``running``: tasks started and not finished;
- ``cache``: results held, by key, plus data given up front (scattered data).

Each task goes ``waiting → processing → memory → released`` (or ``erred``),
and its task group counts it in that state. A group's ``nbytes_total`` (the
``sys.getsizeof`` of each result) is measured only when a callback asks for
it (``Callback.measures_sizes``, set by :class:`~hlg.TaskGroups`): for some
objects, a pandas DataFrame of strings say, that count is a deep walk that
costs more than the task itself.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from heapq import heappush
from typing import Any

from hlg.execute.order import order_tasks
from hlg.keys import Key, key_group, key_split
from hlg.materialize.groups import TaskGroup, TaskPrefix, TaskState
from hlg.task import GraphNode

__all__ = ["SchedulerState"]

_WAITING, _PROCESSING, _MEMORY, _RELEASED, _ERRED = (
    TaskState.WAITING,
    TaskState.PROCESSING,
    TaskState.MEMORY,
    TaskState.RELEASED,
    TaskState.ERRED,
)


@dataclasses.dataclass(eq=False, slots=True)
class SchedulerState:
    """Everything the local scheduler knows during one run; see the module docstring.

    Callbacks receive it; treat it as read-only.
    """

    #: Keys by task number; task numbers are priorities.
    keys: list[Key]
    #: Nodes by task number.
    nodes: list[GraphNode]
    #: The run's task numbers by key.
    index: dict[Key, int]
    dependencies: list[list[int]]
    dependents: list[list[int]]
    #: Unfinished dependencies per task. Invariant: ready tasks have 0.
    waiting: list[int]
    #: Unfinished dependents per task. Invariant: released results have 0.
    waiting_data: list[int]
    #: Heap of ready task numbers.
    ready: list[int]
    #: Task numbers started and not finished.
    running: set[int]
    #: Results held, by key: finished tasks still needed, requested keys, given data.
    cache: dict[Key, Any]
    #: Keys whose results are kept to the end.
    requested: frozenset[Key]
    #: Task groups by name, updated as tasks change state.
    groups: dict[str, TaskGroup]
    prefixes: dict[str, TaskPrefix]
    #: Task group of each task number.
    group_of: list[TaskGroup]
    #: Number of finished tasks.
    finished: int = 0
    #: Whether to add each result's size to its group's ``nbytes_total``.
    measure_sizes: bool = False

    @classmethod
    def build(
        cls,
        tasks: Mapping[Key, GraphNode],
        requested: Iterable[Key],
        data: Mapping[Key, Any] | None = None,
        *,
        measure_sizes: bool = False,
    ) -> SchedulerState:
        """Set up a run of what ``requested`` needs from ``tasks``.

        ``data`` holds the values of keys that are not tasks (scattered data);
        with ``measure_sizes``, results' sizes are added up per task group.

        Raises
        ------
        MissingDependencyError
            A needed task depends on a key that is neither a task nor in ``data``.
        """
        wanted = list(requested)
        priority = order_tasks(tasks, roots=wanted, known=data or {})
        n = len(priority)
        keys: list[Any] = [None] * n
        for key, i in priority.items():
            keys[i] = key
        nodes = [tasks[key] for key in keys]
        groups, group_of = _groups_of(keys)
        dependencies: list[list[int]] = []
        dependents: list[list[int]] = [[] for _ in range(n)]
        cache: dict[Key, Any] = {}
        for i, node in enumerate(nodes):
            try:
                deps = [priority[d] for d in node.dependencies]
            except KeyError:  # some dependencies are data, not tasks
                deps = [priority[d] for d in node.dependencies if d in priority]
                for dep in node.dependencies:
                    if dep not in priority:
                        cache[dep] = data[dep]  # type: ignore[index]
            dependencies.append(deps)
            if deps:
                group = group_of[i]
                for d in deps:
                    dependents[d].append(i)
                    other = group_of[d]
                    if other is not group:
                        group.dependencies.add(other.name)
        waiting = [len(deps) for deps in dependencies]
        prefixes: dict[str, TaskPrefix] = {}
        for group in groups.values():
            prefixes.setdefault(group.prefix, TaskPrefix(group.prefix)).groups.append(group)
        return cls(
            keys=keys,
            nodes=nodes,
            index=priority,
            dependencies=dependencies,
            dependents=dependents,
            waiting=waiting,
            waiting_data=[len(d) for d in dependents],
            ready=[i for i in range(n) if not waiting[i]],  # ascending: already a heap
            running=set(),
            cache=cache,
            requested=frozenset(wanted),
            groups=groups,
            prefixes=prefixes,
            group_of=group_of,
            measure_sizes=measure_sizes,
        )

    @property
    def ntasks(self) -> int:
        """The number of tasks in the run."""
        return len(self.keys)

    def start(self, i: int) -> None:
        """Mark task ``i`` (just taken off ``ready``) as running."""
        self.running.add(i)
        states = self.group_of[i].states
        states[_WAITING] -= 1
        states[_PROCESSING] += 1

    def finish(self, i: int, result: Any, duration: float) -> int:
        """Record the result of task ``i``; return how many tasks became ready."""
        key = self.keys[i]
        cache = self.cache
        cache[key] = result
        self.running.discard(i)
        self.finished += 1
        # Inline TaskGroup.transition and record_result: this runs once per task.
        group = self.group_of[i]
        states = group.states
        states[_PROCESSING] -= 1
        group.duration += duration
        if self.measure_sizes:
            group.nbytes_total += _sizeof(result)
        group.types.add(type(result).__name__)
        woken = 0
        waiting = self.waiting
        for d in self.dependents[i]:
            waiting[d] -= 1
            if not waiting[d]:
                heappush(self.ready, d)
                woken += 1
        waiting_data = self.waiting_data
        requested = self.requested
        keys = self.keys
        for d in self.dependencies[i]:
            waiting_data[d] -= 1
            if not waiting_data[d] and keys[d] not in requested:
                del cache[keys[d]]
                dstates = self.group_of[d].states
                dstates[_MEMORY] -= 1
                dstates[_RELEASED] += 1
        if self.dependents[i] or key in requested:
            states[_MEMORY] += 1
        else:
            del cache[key]  # a task whose result nobody asked for nor needs
            states[_RELEASED] += 1
        return woken

    def fail(self, i: int) -> None:
        """Record that task ``i`` raised."""
        self.running.discard(i)
        self.group_of[i].transition(_PROCESSING, _ERRED)


def _groups_of(keys: list[Key]) -> tuple[dict[str, TaskGroup], list[TaskGroup]]:
    """Return the task groups of ``keys`` (all waiting) and each key's group."""
    groups: dict[str, TaskGroup] = {}
    group_of: list[TaskGroup] = []
    for key in keys:
        # key_group, inlined for the common tuple key
        name = key[0] if type(key) is tuple and key and type(key[0]) is str else key_group(key)
        group = groups.get(name)
        if group is None:
            group = groups[name] = TaskGroup(name, key_split(name))
        group_of.append(group)
    for group in groups.values():
        group.states[_WAITING] = 0
    for group in group_of:
        group.states[_WAITING] += 1
    return groups, group_of


def _sizeof(obj: Any) -> int:
    try:
        return sys.getsizeof(obj)
    except Exception:  # objects whose __sizeof__ is broken are still results
        return 0
