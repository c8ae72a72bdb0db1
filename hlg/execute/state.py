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
and its task group counts it in that state.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from heapq import heappush
from typing import Any

from hlg.execute.order import order_tasks
from hlg.keys import Key, key_group
from hlg.materialize.groups import TaskGroup, TaskPrefix, TaskState, build_groups
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

    @classmethod
    def build(
        cls,
        tasks: Mapping[Key, GraphNode],
        requested: Iterable[Key],
        data: Mapping[Key, Any] | None = None,
    ) -> SchedulerState:
        """Set up a run of ``tasks``; ``data`` holds values of keys that are not tasks."""
        priority = order_tasks(tasks)
        n = len(priority)
        keys: list[Any] = [None] * n
        for key, i in priority.items():
            keys[i] = key
        nodes = [tasks[key] for key in keys]
        dependencies = [[priority[d] for d in node.dependencies if d in priority] for node in nodes]
        dependents: list[list[int]] = [[] for _ in range(n)]
        for i, deps in enumerate(dependencies):
            for d in deps:
                dependents[d].append(i)
        waiting = [len(deps) for deps in dependencies]
        groups, prefixes = build_groups(tasks)
        cache: dict[Key, Any] = {}
        if data:
            for node in nodes:
                for dep in node.dependencies:
                    if dep not in priority:
                        cache[dep] = data[dep]
        return cls(
            keys=keys,
            nodes=nodes,
            index=priority,
            dependencies=dependencies,
            dependents=dependents,
            waiting=waiting,
            waiting_data=[len(d) for d in dependents],
            ready=[i for i in range(n) if waiting[i] == 0],  # ascending: already a heap
            running=set(),
            cache=cache,
            requested=frozenset(requested),
            groups=groups,
            prefixes=prefixes,
            group_of=[groups[key_group(key)] for key in keys],
        )

    @property
    def ntasks(self) -> int:
        """The number of tasks in the run."""
        return len(self.keys)

    def start(self, i: int) -> None:
        """Mark task ``i`` (just taken off ``ready``) as running."""
        self.running.add(i)
        self.group_of[i].transition(_WAITING, _PROCESSING)

    def finish(self, i: int, result: Any, duration: float) -> int:
        """Record the result of task ``i``; return how many tasks became ready."""
        key = self.keys[i]
        cache = self.cache
        cache[key] = result
        self.running.discard(i)
        self.finished += 1
        group = self.group_of[i]
        group.transition(_PROCESSING, _MEMORY)
        group.record_result(duration, _sizeof(result), type(result).__name__)
        woken = 0
        waiting = self.waiting
        for d in self.dependents[i]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heappush(self.ready, d)
                woken += 1
        waiting_data = self.waiting_data
        requested = self.requested
        for d in self.dependencies[i]:
            waiting_data[d] -= 1
            if waiting_data[d] == 0 and self.keys[d] not in requested:
                del cache[self.keys[d]]
                self.group_of[d].transition(_MEMORY, _RELEASED)
        if not self.dependents[i] and key not in requested:
            del cache[key]  # a task whose result nobody asked for nor needs
            group.transition(_MEMORY, _RELEASED)
        return woken

    def fail(self, i: int) -> None:
        """Record that task ``i`` raised."""
        self.running.discard(i)
        self.group_of[i].transition(_PROCESSING, _ERRED)

    def inputs(self, i: int) -> dict[Key, Any]:
        """Return the values task ``i`` needs, by key."""
        cache = self.cache
        return {d: cache[d] for d in self.nodes[i].dependencies}


def _sizeof(obj: Any) -> int:
    try:
        return sys.getsizeof(obj)
    except Exception:  # objects whose __sizeof__ is broken are still results
        return 0
