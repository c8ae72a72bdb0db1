"""Callbacks: hooks into the local scheduler, a progress bar and a profiler.

Subclass :class:`Callback` and override the hooks you need; the scheduler
calls only the overridden ones. Hooks run on the scheduler's side of the run,
one at a time (under the scheduler's lock with the ``threads`` scheduler), so
they see a consistent :class:`~hlg.execute.state.SchedulerState` and need no
locking of their own. Keep them cheap: they run once per task.

Use a callback for one call (``hlg.get(..., callbacks=[cb])``) or for every
run inside a block (``with cb: ...``). Callbacks active through ``with`` are
off inside the tasks of a run: a task that calls ``hlg.get`` itself does not
report its inner run to them (pass ``callbacks=`` to that inner call to watch
it).

A hook can fail. The policy is the same on every scheduler: the first
exception from ``pretask`` or ``posttask`` stops new tasks from starting,
tasks already running finish, and the hook's exception is raised from
``hlg.get`` with a note naming the hook and the key. An exception from
``start`` or ``start_state`` is raised before any task runs. ``finish`` hooks
all run, even after a failure; the first exception one raises is raised if the
run itself succeeded, and otherwise noted on the run's error.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
import zlib
from collections.abc import Mapping
from html import escape
from typing import IO, TYPE_CHECKING, Any, ClassVar

from hlg._table import format_table
from hlg.errors import UsageError
from hlg.keys import Key, key_group
from hlg.materialize.groups import TaskGroup, TaskPrefix, format_groups
from hlg.task import GraphNode

if TYPE_CHECKING:
    from types import TracebackType

    from hlg.execute.state import SchedulerState

__all__ = ["Callback", "ProgressBar", "Profiler", "TaskGroups", "TaskRecord", "active_callbacks"]

_ACTIVE: list[Callback] = []
_ACTIVE_LOCK = threading.Lock()


class Callback:
    """Hooks called by the local scheduler; every method is an optional no-op.

    Examples
    --------
    >>> import hlg
    >>> class Count(Callback):
    ...     def __init__(self):
    ...         self.ran = []
    ...     def posttask(self, key, result, state, worker_id):
    ...         self.ran.append(key)
    >>> counter = Count()
    >>> with counter:
    ...     hlg.get({"a": 1, "b": (abs, "a")}, "b", scheduler="sync")
    1
    >>> counter.ran
    ['a', 'b']
    """

    #: Whether the scheduler should measure each result's size (``sys.getsizeof``)
    #: into its task group's ``nbytes_total`` while this callback is active. Off
    #: unless a callback reads the sizes: the count can cost more than a task.
    measures_sizes: ClassVar[bool] = False

    def start(self, graph: Mapping[Key, GraphNode]) -> None:
        """Before ordering: ``graph`` maps keys to tasks; those the requested keys need run."""

    def start_state(self, state: SchedulerState) -> None:
        """After the run's state is built, before any task starts."""

    def pretask(self, key: Key, state: SchedulerState) -> None:
        """Just before the task ``key`` starts."""

    def posttask(self, key: Key, result: Any, state: SchedulerState, worker_id: int) -> None:
        """Just after the task ``key`` finished on worker ``worker_id`` with ``result``."""

    def finish(self, state: SchedulerState, errored: bool) -> None:
        """After the run, whether it succeeded or not."""

    def __enter__(self) -> Callback:
        with _ACTIVE_LOCK:
            _ACTIVE.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)


def active_callbacks() -> list[Callback]:
    """Return the callbacks active through ``with`` blocks, oldest first."""
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


class ProgressBar(Callback):
    """A terminal progress bar for runs, drawn by tqdm (``pip install hlg[progress]``).

    Quiet when the output is not a terminal, unless ``force`` is set. If the
    output goes away mid-run (a closed pipe, as in ``python script.py | head``),
    the bar stops drawing and the run goes on.

    Parameters
    ----------
    minimum
        Seconds to wait before drawing, so short runs stay quiet.
    out
        Where to draw; standard error by default.
    force
        Draw even when ``out`` is not a terminal.
    description
        The label in front of the bar.

    Examples
    --------
    >>> import hlg, io
    >>> out = io.StringIO()
    >>> hlg.get({"a": 1}, "a", scheduler="sync", callbacks=[ProgressBar(out=out, force=True)])
    1
    >>> "1/1" in out.getvalue()
    True
    """

    def __init__(
        self,
        *,
        minimum: float = 0.0,
        out: IO[str] | None = None,
        force: bool = False,
        description: str = "hlg",
    ) -> None:
        self.minimum = minimum
        self.out = out
        self.force = force
        self.description = description
        self._bar: Any = None

    def start_state(self, state: SchedulerState) -> None:
        """Open the bar, if drawing."""
        out = self.out if self.out is not None else sys.stderr
        if not self.force and not (hasattr(out, "isatty") and out.isatty()):
            self._bar = None
            return
        try:
            from tqdm import tqdm
        except ImportError as err:
            raise UsageError(
                "hlg.ProgressBar draws with tqdm; install it with pip install 'hlg[progress]'"
            ) from err
        try:
            self._bar = tqdm(
                total=state.ntasks,
                file=out,
                delay=self.minimum,
                desc=self.description,
                unit="task",
                mininterval=0.1,
                dynamic_ncols=True,
            )
        except _CLOSED_STREAM:
            self._bar = None

    def posttask(self, key: Key, result: Any, state: SchedulerState, worker_id: int) -> None:
        """Advance the bar."""
        if self._bar is not None:
            try:
                self._bar.update(1)
            except _CLOSED_STREAM:
                self._abandon()

    def finish(self, state: SchedulerState, errored: bool) -> None:
        """Close the bar."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            try:
                bar.close()
            except _CLOSED_STREAM:
                bar.disable = True

    def _abandon(self) -> None:
        # The stream is gone: stop drawing, and keep tqdm from drawing on close.
        bar, self._bar = self._bar, None
        bar.disable = True


# What writing to a stream that went away raises: BrokenPipeError (an OSError) for a
# closed pipe, ValueError for a closed file object.
_CLOSED_STREAM = (OSError, ValueError)


class TaskGroups(Callback):
    """Keeps the live task groups of the latest run, for progress and diagnostics.

    Attributes
    ----------
    groups : dict of str to TaskGroup
        The groups, updated while the run goes on and complete after it.
    prefixes : dict of str to TaskPrefix
        The same, by prefix.

    Examples
    --------
    >>> import hlg
    >>> with TaskGroups() as tg:
    ...     hlg.get({("x-1a2b3c4d", i): (abs, -i) for i in range(3)}, ("x-1a2b3c4d", 2),
    ...             scheduler="sync")
    2
    >>> tg.groups["x-1a2b3c4d"].states["memory"], tg.groups["x-1a2b3c4d"].types
    (1, {'int'})
    """

    measures_sizes = True

    def __init__(self) -> None:
        self.groups: dict[str, TaskGroup] = {}
        self.prefixes: dict[str, TaskPrefix] = {}

    def __enter__(self) -> TaskGroups:
        super().__enter__()
        return self

    def start_state(self, state: SchedulerState) -> None:
        """Take the run's groups."""
        self.groups = state.groups
        self.prefixes = state.prefixes

    def table(self) -> str:
        """Return the groups as a text table."""
        return format_groups(self.groups)


@dataclasses.dataclass(frozen=True, slots=True)
class TaskRecord:
    """When and where one task ran."""

    key: Key
    group: str
    start: float
    end: float
    worker_id: int


class Profiler(Callback):
    """Records when and on which worker every task ran.

    Attributes
    ----------
    records : list of TaskRecord
        One per finished task, in the order they finished, for every run since
        the ``with`` block was entered (or since the profiler was made).

    Examples
    --------
    >>> import hlg
    >>> with Profiler() as prof:
    ...     hlg.get({("x", i): (abs, -i) for i in range(3)}, [("x", 2)], scheduler="sync")
    (2,)
    >>> [r.key for r in prof.records]
    [('x', 2)]
    >>> print(prof.table())  # doctest: +ELLIPSIS
    group  tasks  total s  mean ms  max ms
    -----  -----  -------  -------  ------
    x          1    ...
    """

    def __init__(self) -> None:
        self.records: list[TaskRecord] = []
        # Start times of tasks running now, by run (the state's id) and key: runs in
        # several threads may share the profiler, and their keys may overlap.
        self._starts: dict[tuple[int, Key], float] = {}

    def __enter__(self) -> Profiler:
        self.records = []
        self._starts = {}
        super().__enter__()
        return self

    def pretask(self, key: Key, state: SchedulerState) -> None:
        """Note the start time."""
        self._starts[id(state), key] = time.perf_counter()

    def posttask(self, key: Key, result: Any, state: SchedulerState, worker_id: int) -> None:
        """Record the task."""
        end = time.perf_counter()
        start = self._starts.pop((id(state), key), end)
        self.records.append(TaskRecord(key, key_group(key), start, end, worker_id))

    def table(self) -> str:
        """Return per-group totals as a text table, slowest group first."""
        totals: dict[str, list[float]] = {}
        for r in self.records:
            totals.setdefault(r.group, []).append(r.end - r.start)
        rows = [["group", "tasks", "total s", "mean ms", "max ms"]]
        for group, durations in sorted(totals.items(), key=lambda kv: -sum(kv[1])):
            total = sum(durations)
            rows.append(
                [
                    group,
                    f"{len(durations):,}",
                    f"{total:.3f}",
                    f"{1e3 * total / len(durations):.3f}",
                    f"{1e3 * max(durations):.3f}",
                ]
            )
        return format_table(rows)

    def to_svg(self, width: int = 900, lane_height: int = 18) -> str:
        """Return a timeline of the run as an SVG document: one lane per worker.

        Each task is a bar coloured by its task group; hovering shows its key and
        duration.
        """
        if not self.records:
            return '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>'
        t0 = min(r.start for r in self.records)
        span = max(r.end for r in self.records) - t0 or 1e-9
        workers = sorted({r.worker_id for r in self.records})
        lane = {w: n for n, w in enumerate(workers)}
        left = 70
        scale = (width - left - 10) / span
        height = lane_height * len(workers) + 30
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            'font-family="sans-serif" font-size="11">'
        ]
        for w, n in lane.items():
            y = 5 + n * lane_height
            parts.append(f'<text x="4" y="{y + lane_height - 6}">worker {w}</text>')
        for r in self.records:
            x = left + (r.start - t0) * scale
            bar = max((r.end - r.start) * scale, 0.5)
            y = 5 + lane[r.worker_id] * lane_height
            title = escape(f"{r.key!r}: {1e3 * (r.end - r.start):.3f} ms")
            parts.append(
                f'<rect x="{x:.2f}" y="{y}" width="{bar:.2f}" height="{lane_height - 3}" '
                f'fill="{_colour(r.group)}"><title>{title}</title></rect>'
            )
        axis_y = height - 8
        parts.append(f'<text x="{left}" y="{axis_y}">0 s</text>')
        parts.append(f'<text x="{width - 60}" y="{axis_y}">{span:.3f} s</text>')
        parts.append("</svg>")
        return "\n".join(parts)


def _colour(group: str) -> str:
    hue = zlib.crc32(group.encode()) % 360
    return f"hsl({hue}, 60%, 55%)"
