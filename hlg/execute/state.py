"""The local scheduler's state for one run, and the transitions that change it.

Tasks are numbered by priority (:func:`hlg.execute.order.order_tasks`), and
all per-task state lives in lists indexed by that number, which is both fast
and compact. The vocabulary:

- ``dependencies[i]`` / ``dependents[i]``: task numbers, fixed for the run;
- ``waiting[i]``: dependencies of ``i`` not finished yet. At 0 the task is
  *ready*: it goes on the ``ready`` heap, smallest priority on top;
- ``waiting_data[i]``: dependents of ``i`` not finished yet, plus one if its
  key was requested. At 0 the result is *released* (dropped from ``cache``), so
  a requested result is never released;
- ``running``: tasks started and not finished;
- ``cache``: results held, by key, plus data given up front (scattered data);
- ``ordered``: every task is numbered after its dependencies (the order is
  topological), so running tasks ``0, 1, 2, ...`` one at a time is exactly what
  the ``ready`` heap would give. Only a dependency cycle makes it false.

Each task goes ``waiting → processing → memory → released`` (or ``erred``),
and its task group counts it in that state. Groups are kept only when a
callback can see them (``tracks_groups``): a run nobody watches skips that
bookkeeping, and the drivers then run their tightest loops, which update only
what a run without callbacks reads (the results, ``waiting``,
``waiting_data``, ``ready`` and ``finished``). The ``sync`` driver's loop,
which runs the tasks in number order, reads neither ``waiting`` nor ``ready``
nor ``dependents``: for it they are not built at all (``serial``). A group's
``nbytes_total`` (the ``sys.getsizeof`` of each result) is measured only when
a callback asks for it (``Callback.measures_sizes``, set by :class:`~hlg.TaskGroups`): for
some objects, a pandas DataFrame of strings say, that count is a deep walk
that costs more than the task itself.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from heapq import heappush
from typing import Any, NamedTuple

from hlg._gc import gc_paused_for
from hlg.errors import MissingDependencyError
from hlg.execute.memory_order import memory_order, order_acyclic
from hlg.keys import Key, key_group, key_split
from hlg.materialize.groups import TaskGroup, TaskPrefix, TaskState
from hlg.task import GraphNode, numbered_dependencies

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
    #: Dependent task numbers per task; empty (no list at all) for a ``serial`` build.
    dependents: list[list[int]]
    #: Unfinished dependencies per task. Invariant: ready tasks have 0. Empty
    #: for a ``serial`` build, as is ``ready``.
    waiting: list[int]
    #: Unfinished dependents per task, plus one for a requested key. Invariant:
    #: released results have 0, and requested results never reach it.
    waiting_data: list[int]
    #: Heap of ready task numbers.
    ready: list[int]
    #: Task numbers started and not finished.
    running: set[int]
    #: Results held, by key: finished tasks still needed, requested keys, given data.
    cache: dict[Key, Any]
    #: Keys whose results are kept to the end.
    requested: frozenset[Key]
    #: Task groups by name, updated as tasks change state; empty unless ``tracks_groups``.
    groups: dict[str, TaskGroup]
    prefixes: dict[str, TaskPrefix]
    #: Task group of each task number; empty unless ``tracks_groups``.
    group_of: list[TaskGroup]
    #: Whether every task's number is above those of its dependencies.
    ordered: bool = True
    #: Whether task groups are kept up to date (only when a callback can read them).
    tracks_groups: bool = True
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
        track_groups: bool = True,
        serial: bool = False,
    ) -> SchedulerState:
        """Set up a run of what ``requested`` needs from ``tasks``.

        ``data`` holds the values of keys that are not tasks (scattered data);
        with ``measure_sizes``, results' sizes are added up per task group;
        without ``track_groups``, no task groups are kept at all. With
        ``serial``, for a run that executes tasks ``0, 1, 2, ...`` one at a
        time and that no callback watches, ``dependents``, ``waiting`` and
        ``ready`` are left empty when the order is topological (``ordered``):
        that run does not read them.

        Raises
        ------
        MissingDependencyError
            A needed task depends on a key that is neither a task nor in ``data``.

        Examples
        --------
        >>> from hlg import Task, TaskRef
        >>> tasks = {"a": Task(abs, -1), "b": Task(abs, TaskRef("a")), "c": Task(abs, 2)}
        >>> state = SchedulerState.build(tasks, ["b"])
        >>> state.keys, state.dependencies, state.waiting_data, state.ready
        (['a', 'b'], [[], [0]], [1, 1], [0])
        >>> sorted(state.groups), SchedulerState.build(tasks, ["b"], track_groups=False).groups
        (['a', 'b'], {})
        >>> lean = SchedulerState.build(tasks, ["b"], serial=True)
        >>> lean.waiting_data, lean.dependents, lean.waiting, lean.ready
        ([1, 1], [], [], [])
        """
        wanted = list(requested)
        with gc_paused_for(len(tasks)):
            keys, nodes, dependencies, cache, ordered = _ordered(tasks, wanted, data or {})
            n = len(keys)
            if serial and ordered:
                dependents: list[list[int]] = []
                waiting: list[int] = []
                waiting_data = [0] * n
                for deps in dependencies:
                    for d in deps:
                        waiting_data[d] += 1
            else:
                dependents = [[] for _ in range(n)]
                for i, deps in enumerate(dependencies):
                    for d in deps:
                        dependents[d].append(i)
                waiting = list(map(len, dependencies))
                waiting_data = list(map(len, dependents))
            priority = dict(zip(keys, range(n), strict=True))
        for key in dict.fromkeys(wanted):
            number = priority.get(key)
            if number is not None:  # else the key is data
                waiting_data[number] += 1
        if track_groups:
            groups, group_of = _groups_of(keys, dependencies)
        else:
            groups, group_of = {}, []
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
            waiting_data=waiting_data,
            ready=[i for i, w in enumerate(waiting) if not w],  # ascending: already a heap
            running=set(),
            cache=cache,
            requested=frozenset(wanted),
            groups=groups,
            prefixes=prefixes,
            group_of=group_of,
            ordered=ordered,
            tracks_groups=track_groups,
            measure_sizes=measure_sizes,
        )

    @property
    def ntasks(self) -> int:
        """The number of tasks in the run."""
        return len(self.keys)

    def start(self, i: int) -> None:
        """Mark task ``i`` (just taken off ``ready``) as running."""
        self.running.add(i)
        if self.tracks_groups:
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
        tracks_groups = self.tracks_groups
        if tracks_groups:
            # Inline TaskGroup.transition and record_result: this runs once per task.
            group = self.group_of[i]
            group.states[_PROCESSING] -= 1
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
        keys = self.keys
        for d in self.dependencies[i]:
            waiting_data[d] -= 1
            if not waiting_data[d]:
                del cache[keys[d]]
                if tracks_groups:
                    dstates = self.group_of[d].states
                    dstates[_MEMORY] -= 1
                    dstates[_RELEASED] += 1
        held = waiting_data[i] > 0
        if not held:
            del cache[key]  # a task whose result nobody asked for nor needs
        if tracks_groups:
            self.group_of[i].states[_MEMORY if held else _RELEASED] += 1
        return woken

    def fail(self, i: int) -> None:
        """Record that task ``i`` raised."""
        self.running.discard(i)
        if self.tracks_groups:
            self.group_of[i].transition(_PROCESSING, _ERRED)


class _Ordered(NamedTuple):
    """The tasks of a run by task number: what :func:`_ordered` returns."""

    keys: list[Key]
    nodes: list[GraphNode]
    #: Dependencies of each task, as task numbers.
    dependencies: list[list[int]]
    #: The values of given data that the run's tasks depend on, by key.
    cache: dict[Key, Any]
    #: Whether each task comes after its dependencies (false only on a cycle).
    ordered: bool


def _ordered(
    tasks: Mapping[Key, GraphNode], wanted: list[Key], data: Mapping[Key, Any]
) -> _Ordered:
    """Return the tasks ``wanted`` needs, numbered in the order to run them.

    What :func:`~hlg.execute.order.order_tasks` gives, with the numbered
    dependencies the ordering walks on reused rather than rebuilt from keys:
    the graph is numbered once (by position), the needed tasks are found on
    those numbers, and the dependencies are renumbered by priority with list
    lookups. On the 100,000-task dict graphs of the scheduler benchmark, this
    cut the cost of building a state by a fifth to a half (hashing keys was
    most of it).
    """
    all_keys = list(tasks)
    all_nodes = list(tasks.values())
    position = dict(zip(all_keys, range(len(all_keys)), strict=True))
    deps, outside = _positions(all_nodes, position)
    roots = [position[key] for key in wanted if key in position]
    needed = _needed(deps, roots)
    cache: dict[Key, Any] = {}
    for p, keys_outside in outside.items():
        if needed[p]:
            for key in keys_outside:
                if key not in data:
                    raise _missing(all_keys[p], key)
                cache[key] = data[key]
    if all(needed):
        keys, nodes = all_keys, all_nodes
    else:  # renumber the needed tasks by their positions among themselves
        kept = [p for p in range(len(all_keys)) if needed[p]]
        number = [0] * len(all_keys)
        for i, p in enumerate(kept):
            number[p] = i
        keys = [all_keys[p] for p in kept]
        nodes = [all_nodes[p] for p in kept]
        deps = _renumbered(deps, kept, number)
        roots = [number[p] for p in roots]
    run_order = order_acyclic(deps, roots)
    ordered = run_order is not None
    if run_order is None:  # on a cycle, what can run comes first; the scheduler names it
        run_order = memory_order(deps, roots)
    priority = [0] * len(run_order)
    for i, p in enumerate(run_order):
        priority[p] = i
    return _Ordered(
        [keys[p] for p in run_order],
        [nodes[p] for p in run_order],
        _renumbered(deps, run_order, priority),
        cache,
        ordered,
    )


# The loops below spell out the cases of none and one dependency, most tasks: on
# CPython 3.11 a comprehension per task (a function call each) made them take
# about a fifth longer.


def _renumbered(deps: list[list[int]], tasks: list[int], number: list[int]) -> list[list[int]]:
    """Return ``deps`` of each of ``tasks``, with each dependency ``d`` as ``number[d]``."""
    out: list[list[int]] = []
    append = out.append
    for t in tasks:
        ds = deps[t]
        if not ds:
            append([])
        elif len(ds) == 1:
            append([number[ds[0]]])
        else:
            append(list(map(number.__getitem__, ds)))
    return out


def _positions(
    nodes: list[GraphNode], position: Mapping[Key, int]
) -> tuple[list[list[int]], dict[int, list[Key]]]:
    """Return each node's dependencies as positions, and those that are not tasks.

    The second result maps a node's position to its dependencies outside
    ``position`` (given data, or missing), for the nodes that have any.
    """
    try:
        return numbered_dependencies(nodes, position.__getitem__), {}
    except KeyError:  # some dependencies are not tasks
        pass
    deps: list[list[int]] = []
    outside: dict[int, list[Key]] = {}
    for p, node in enumerate(nodes):
        mine = []
        for dep in node.dependencies:
            q = position.get(dep)
            if q is None:
                outside.setdefault(p, []).append(dep)
            else:
                mine.append(q)
        mine.sort()  # as numbered_dependencies does: not in hash-seeded frozenset order
        deps.append(mine)
    return deps, outside


def _needed(deps: list[list[int]], roots: list[int]) -> bytearray:
    """Return a flag per task: whether ``roots`` need it (directly or not)."""
    needed = bytearray(len(deps))
    stack = []
    for r in roots:
        if not needed[r]:
            needed[r] = 1
            stack.append(r)
    while stack:
        for d in deps[stack.pop()]:
            if not needed[d]:
                needed[d] = 1
                stack.append(d)
    return needed


def _missing(key: Key, dep: Key) -> MissingDependencyError:
    return MissingDependencyError(
        f"task {key!r} needs {dep!r}, which is neither in the graph nor held as data; add "
        "the task, or scatter the data with an hlg.Client and compute there"
    )


def _groups_of(
    keys: list[Key], dependencies: list[list[int]]
) -> tuple[dict[str, TaskGroup], list[TaskGroup]]:
    """Return the task groups of ``keys`` (all waiting) and each key's group.

    Each group's ``dependencies`` are filled in from the tasks' ``dependencies``.
    """
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
    for group, deps in zip(group_of, dependencies, strict=True):
        group.states[_WAITING] += 1
        for d in deps:
            other = group_of[d]
            if other is not group:
                group.dependencies.add(other.name)
    return groups, group_of


def _sizeof(obj: Any) -> int:
    try:
        return sys.getsizeof(obj)
    except Exception:  # objects whose __sizeof__ is broken are still results
        return 0
