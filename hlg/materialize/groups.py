"""Task groups and task prefixes: per-layer and per-name summaries of a graph.

A *task group* gathers the tasks whose keys share a first item (the blocks of
one layer: ``("x-3f2a", 0)``, ``("x-3f2a", 1)`` → group ``x-3f2a``); a *task
prefix* gathers the groups whose names share a prefix once tokens are removed
(``x-3f2a`` and ``x-91c0`` → prefix ``x``). Schedulers show them as progress
rows and use them for diagnostics.

Each group counts its tasks by :class:`TaskState`. Groups are built from a
graph with every task ``waiting``; a scheduler moves tasks between states
with :meth:`TaskGroup.transition` and records results with
:meth:`TaskGroup.record_result`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping

from hlg._table import format_table
from hlg.errors import counted
from hlg.keys import Key, key_group, key_split
from hlg.task import GraphNode

__all__ = ["TaskGroup", "TaskPrefix", "TaskState", "build_groups", "format_groups"]


class TaskState(enum.StrEnum):
    """Where a task is in its life."""

    WAITING = "waiting"
    """Some dependency has not been computed yet, or it has not been started."""
    PROCESSING = "processing"
    """Running on a worker."""
    MEMORY = "memory"
    """Finished; its result is held."""
    RELEASED = "released"
    """Finished; its result was dropped once no dependent needed it."""
    ERRED = "erred"
    """Raised an exception."""


@dataclasses.dataclass(eq=False, slots=True)
class TaskGroup:
    """The tasks of one group and what they have done.

    Attributes
    ----------
    name : str
        The group name, e.g. ``"x-3f2a"``.
    prefix : str
        The group's prefix, e.g. ``"x"``.
    states : dict
        Number of tasks in each :class:`TaskState`; sums to the number of tasks.
    dependencies : set of str
        Names of the groups this group's tasks depend on.
    nbytes_total : int
        Bytes of all results produced so far (as far as they can be measured).
    duration : float
        Seconds spent running this group's tasks.
    types : set of str
        Type names of the results produced so far.
    """

    name: str
    prefix: str
    states: dict[TaskState, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(TaskState, 0)
    )
    dependencies: set[str] = dataclasses.field(default_factory=set)
    nbytes_total: int = 0
    duration: float = 0.0
    types: set[str] = dataclasses.field(default_factory=set)

    @property
    def ntasks(self) -> int:
        """The number of tasks in the group."""
        return sum(self.states.values())

    def transition(self, old: TaskState, new: TaskState, count: int = 1) -> None:
        """Move ``count`` tasks from state ``old`` to state ``new``."""
        self.states[old] -= count
        self.states[new] += count

    def record_result(self, duration: float, nbytes: int, type_name: str) -> None:
        """Add one finished task's duration, result size and result type."""
        self.duration += duration
        self.nbytes_total += nbytes
        self.types.add(type_name)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}: {n}" for s, n in self.states.items() if n)
        return f"<TaskGroup {self.name!r}: {counts or 'empty'}>"


@dataclasses.dataclass(eq=False, slots=True)
class TaskPrefix:
    """All task groups sharing a prefix.

    Attributes
    ----------
    name : str
        The prefix, e.g. ``"x"``.
    groups : list of TaskGroup
        Its groups, in the order they were first seen.
    """

    name: str
    groups: list[TaskGroup] = dataclasses.field(default_factory=list)

    @property
    def states(self) -> dict[TaskState, int]:
        """Number of tasks in each state, over all groups."""
        out = dict.fromkeys(TaskState, 0)
        for group in self.groups:
            for state, count in group.states.items():
                out[state] += count
        return out

    @property
    def duration(self) -> float:
        """Seconds spent running the prefix's tasks."""
        return sum(g.duration for g in self.groups)

    @property
    def nbytes_total(self) -> int:
        """Bytes of all results produced so far."""
        return sum(g.nbytes_total for g in self.groups)

    @property
    def types(self) -> set[str]:
        """Type names of the results produced so far."""
        return set().union(*(g.types for g in self.groups))

    def __repr__(self) -> str:
        return f"<TaskPrefix {self.name!r}: {counted(len(self.groups), 'group')}>"


def build_groups(
    tasks: Mapping[Key, GraphNode], remote_keys: Iterable[Key] = ()
) -> tuple[dict[str, TaskGroup], dict[str, TaskPrefix]]:
    """Group the tasks of a flat graph, every task ``waiting``.

    Examples
    --------
    >>> from hlg import Task, TaskRef
    >>> groups, prefixes = build_groups({("x-1a2b3c4d", 0): Task(abs, -1),
    ...                                  ("y-5e6f7a8b", 0): Task(abs, TaskRef(("x-1a2b3c4d", 0)))})
    >>> sorted(groups), sorted(prefixes)
    (['x-1a2b3c4d', 'y-5e6f7a8b'], ['x', 'y'])
    >>> groups["y-5e6f7a8b"].dependencies, groups["x-1a2b3c4d"].states["waiting"]
    ({'x-1a2b3c4d'}, 1)
    """
    groups: dict[str, TaskGroup] = {}
    counts: dict[str, int] = {}
    # Each group's first key: its prefix is that key's, as dask.distributed names it
    # (a group's own name may split differently, e.g. "('x-abc', 0)" in group "x-abc").
    first: dict[str, Key] = {}
    # Group of every key seen, to avoid splitting the same name twice.
    group_of: dict[Key, str] = {}
    for key in tasks:
        name = key_group(key)
        group_of[key] = name
        if name in counts:
            counts[name] += 1
        else:
            counts[name] = 1
            first[name] = key
    for key in remote_keys:
        group_of.setdefault(key, key_group(key))
    for name, count in counts.items():
        group = TaskGroup(name, key_split(first[name]))
        group.states[TaskState.WAITING] = count
        groups[name] = group
    for key, node in tasks.items():
        name = group_of[key]
        deps = groups[name].dependencies
        for dep in node.dependencies:
            dep_group = group_of.get(dep)
            if dep_group is None:
                dep_group = key_group(dep)
            if dep_group != name:
                deps.add(dep_group)
    prefixes: dict[str, TaskPrefix] = {}
    for group in groups.values():
        prefixes.setdefault(group.prefix, TaskPrefix(group.prefix)).groups.append(group)
    return groups, prefixes


def format_groups(groups: Mapping[str, TaskGroup]) -> str:
    """Return a text table of task groups: tasks by state, time, bytes and result types.

    Examples
    --------
    >>> from hlg import Task
    >>> groups, _ = build_groups({("load-1a2b3c4d", 0): Task(abs, 1)})
    >>> print(format_groups(groups))
    group          tasks  waiting  processing  memory  released  erred  seconds  bytes  types
    -------------  -----  -------  ----------  ------  --------  -----  -------  -----  -----
    load-1a2b3c4d      1        1           0       0         0      0    0.000      0
    """
    header = ["group", "tasks", *[s.value for s in TaskState], "seconds", "bytes", "types"]
    rows = [header, *(_group_row(g) for g in groups.values())]
    return format_table(rows, left=(0, len(header) - 1))


def _group_row(group: TaskGroup) -> list[str]:
    return [
        group.name,
        f"{group.ntasks:,}",
        *[f"{group.states[s]:,}" for s in TaskState],
        f"{group.duration:.3f}",
        _bytes(group.nbytes_total),
        ", ".join(sorted(group.types)),
    ]


def _bytes(n: int) -> str:
    for unit in ("", "k", "M", "G"):
        if n < 1000:
            return f"{n}{unit}" if not unit else f"{n:.1f}{unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.1f}T"
