"""The local scheduler: run a graph on this machine and return the requested values.

One run:

1. take the graph in any form (:func:`hlg.execute.forms.graph_tasks`) and keep
   only the tasks the requested keys need;
2. order them (:mod:`hlg.execute.order`) and build a
   :class:`~hlg.execute.state.SchedulerState`;
3. run ready tasks, smallest priority first, on one of three drivers:

   - ``sync``: one loop in the calling thread;
   - ``threads``: worker threads that share the state under one lock, each
     taking the next ready task, running it outside the lock, and recording
     the result (there is no central dispatcher to hand tasks over to). Each
     thread runs in a copy of the caller's :mod:`contextvars` context;
   - ``processes``: a pool of worker processes fed by the calling thread;
     tasks, inputs and results cross as cloudpickle bytes.

   :data:`SCHEDULERS` maps every accepted scheduler name to its
   :class:`Driver`, the one table the rest of hlg consults.

Intermediate results are released as soon as their last dependent finishes.

A run that no callback watches (the common case) keeps no task groups and runs
the tightest loops. The ``sync`` driver then runs the tasks in priority order,
without a heap (one worker on a topological order takes exactly that order).
The ``threads`` driver lets a thread take several ready tasks at once, while
tasks are quick: the lock is taken once per batch rather than twice per task.
A batch holds at most ``_BATCH_SECONDS`` of work as last measured, so its
results are recorded, and the inputs they free released, within about that
time of finishing; tasks slower than that go one at a time, as they do
whenever a callback watches.

The failure policy, the same on every driver: the first failure of a run (a
task raising, a callback hook raising, Ctrl-C) stops new tasks from starting;
tasks already running finish; then the failure is raised again with its
original type and traceback and a note naming the key (and, for a hook, the
hook). A worker process that dies is a :class:`~hlg.WorkerDiedError`.

Callbacks active through ``with`` blocks are switched off inside a run's
tasks, so that a task calling :func:`get` itself is not counted twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from heapq import heappop, heappush
from types import MappingProxyType
from typing import Any

from hlg.daskspec import check_scheduler_kwargs
from hlg.errors import (
    CycleError,
    GraphError,
    MissingKeyError,
    UsageError,
    WorkerDiedError,
    article,
    counted,
)
from hlg.execute.callbacks import Callback, active_callbacks
from hlg.execute.forms import graph_tasks
from hlg.execute.procpool import ProcessPool
from hlg.execute.state import SchedulerState
from hlg.graph import flatten_keys
from hlg.keys import Key, is_key
from hlg.limits import Limits
from hlg.task import GraphNode, SerializedFunction, Task, callable_name
from hlg.toposort import find_cycle

__all__ = ["SCHEDULERS", "Driver", "add_note", "driver_for", "get", "run"]

# Ids of the ``with`` callbacks of the runs whose tasks the current context is running:
# they are off here, so a task's own hlg.get does not report to them. Callbacks a task
# activates itself are not in it, and see that task's inner runs.
_OUTER: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "hlg_outer_callbacks", default=frozenset()
)


def get(
    graph: Any,
    keys: Any = None,
    *,
    scheduler: str = "threads",
    num_workers: int | None = None,
    callbacks: Iterable[Callback] = (),
    rerun_exceptions_locally: bool = False,
    limits: Limits | None = None,
    max_tasks: int | None = None,
    **dask_kwargs: Any,
) -> Any:
    """Compute ``keys`` of ``graph`` and return their values.

    Parameters
    ----------
    graph
        A dict graph (dask style or of nodes), a :class:`~hlg.HighLevelGraph`, a
        layer, a collection, a :class:`~hlg.FlatGraph`, or packed bytes.
    keys
        A key (its value is returned), a list of keys (a tuple of values) or
        nested lists (nested tuples). Optional for a FlatGraph or packed bytes,
        which carry their requested keys.
    scheduler
        ``"sync"``, ``"threads"`` or ``"processes"``.
    num_workers
        Threads or processes to use; the number of CPUs by default.
    callbacks
        :class:`~hlg.Callback` objects for this run, besides those active
        through ``with`` blocks.
    rerun_exceptions_locally
        When a task raises, run it again in the calling thread, so that a
        debugger (``pdb.pm()``) sees it.
    limits, max_tasks
        For packed bytes: what unpacking may build (see :func:`hlg.unpack`).
    **dask_kwargs
        What dask passes its schedulers besides these (``cache``, ``pool``,
        ``chunksize``, ...; see :data:`hlg.daskspec.DASK_SCHEDULER_KWARGS`):
        accepted and ignored, so that ``dask.compute(x, scheduler=hlg.get)``
        works. Any other name raises :class:`~hlg.UsageError`.

    Raises
    ------
    MissingKeyError
        A requested key is not in the graph.
    WorkerDiedError
        A worker process died; the message names the task it was running.
    TaskExecutionError
        A task's result or exception could not travel back from a worker
        process; the message carries the exception's type, message and traceback.
    Exception
        Whatever a task or a callback hook raised, with a note naming the key.

    Examples
    --------
    >>> from operator import add
    >>> dsk = {"x": 1, "y": 2, "z": (add, "x", "y"), "w": (sum, ["x", "y", "z"])}
    >>> get(dsk, "w")
    6
    >>> get(dsk, [["x"], "z"], scheduler="sync")
    ((1,), 3)
    >>> get({0: 5, 1: (add, 0, 10), ("y", 0.5): (add, 1, 2)}, ("y", 0.5))  # dask's key model
    17
    """
    if dask_kwargs:
        check_scheduler_kwargs(dask_kwargs)
    tasks, carried = graph_tasks(
        graph, keys, unpack_options={"limits": limits, "max_tasks": max_tasks}
    )
    if keys is None:
        keys = carried
        if keys is None:
            raise UsageError(
                "pass the keys to compute; only packed and flat graphs carry their own"
            )
    return run(
        tasks,
        keys,
        scheduler=scheduler,
        num_workers=num_workers,
        callbacks=callbacks,
        rerun_exceptions_locally=rerun_exceptions_locally,
    )


def run(
    tasks: Mapping[Key, GraphNode],
    keys: Any,
    *,
    scheduler: str = "threads",
    num_workers: int | None = None,
    callbacks: Iterable[Callback] = (),
    rerun_exceptions_locally: bool = False,
    data: Mapping[Key, Any] | None = None,
    pool: ProcessPool | None = None,
    broadcast: frozenset[Key] = frozenset(),
) -> Any:
    """Run nodes; the engine behind :func:`get` and :class:`~hlg.Client`.

    ``data`` holds values of keys that are not tasks (scattered data); with
    ``pool`` (leased by the caller), keys in ``broadcast`` are already held by
    every worker process.
    """
    driver = driver_for(scheduler)
    workers = num_workers if num_workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise UsageError(f"num_workers must be at least 1; got {num_workers}")
    if isinstance(keys, set | frozenset):
        raise UsageError(
            "pass the keys as a list (the values come back as a tuple in the same order), "
            f"not as {article(type(keys).__name__)}"
        )
    data = data or {}
    wanted = list(flatten_keys(keys))
    for key in wanted:
        if not (is_key(key) and (key in tasks or key in data)):
            raise MissingKeyError(f"key {key!r} is not in the graph")
    outer = _OUTER.get()
    active = [cb for cb in active_callbacks() if id(cb) not in outer]
    hooks = _Hooks([*active, *callbacks])
    hooks.call("start", tasks)
    state = SchedulerState.build(
        tasks,
        wanted,
        data,
        measure_sizes=hooks.measure_sizes,
        track_groups=hooks.watching,
        serial=not (driver.concurrent or hooks.watching),
    )
    for key in wanted:
        if key not in state.index:
            state.cache[key] = data[key]
    hooks.call("start_state", state)
    token = _OUTER.set(outer.union(map(id, active)))
    options = _RunOptions(workers, rerun_exceptions_locally, pool, broadcast)
    try:
        driver.execute(state, hooks, options)
        if state.finished < state.ntasks:
            _raise_stalled(state)
    except BaseException as err:
        _OUTER.reset(token)
        hooks.finish(state, err)
        raise
    _OUTER.reset(token)
    hooks.finish(state, None)
    return _nest(keys, state.cache)


@dataclasses.dataclass(frozen=True, slots=True)
class Driver:
    """One way of running a graph's tasks; what a scheduler name selects.

    Attributes
    ----------
    name : str
        The driver's own name: ``"sync"``, ``"threads"`` or ``"processes"``.
    uses_processes : bool
        Whether tasks run in worker processes, so that tasks, inputs and
        results are pickled, and a :class:`~hlg.Client` keeps a pool for them.
    concurrent : bool
        Whether several tasks may run at once (``num_workers`` counts).
    execute : callable
        Runs the tasks of a state built by :func:`run`.
    """

    name: str
    uses_processes: bool
    concurrent: bool
    execute: Callable[[SchedulerState, _Hooks, _RunOptions], None] = dataclasses.field(repr=False)


def driver_for(scheduler: str) -> Driver:
    """Return the driver that the scheduler name ``scheduler`` selects.

    Raises
    ------
    UsageError
        No scheduler has that name.

    Examples
    --------
    >>> driver_for("threading").name
    'threads'
    >>> driver_for("multiprocessing").uses_processes, driver_for("sync").concurrent
    (True, False)
    """
    driver = SCHEDULERS.get(scheduler) if isinstance(scheduler, str) else None
    if driver is None:
        names = [repr(name) for name in dict.fromkeys(d.name for d in SCHEDULERS.values())]
        aliases = sorted(set(SCHEDULERS) - {d.name for d in SCHEDULERS.values()})
        raise UsageError(
            f"unknown scheduler {scheduler!r}; choose {', '.join(names[:-1])} or {names[-1]} "
            f"(also accepted: {', '.join(map(repr, aliases))})"
        )
    return driver


@dataclasses.dataclass(frozen=True, slots=True)
class _RunOptions:
    """What :func:`run` hands every driver besides the state and the hooks."""

    num_workers: int
    rerun: bool
    # A process pool leased by the caller (a Client's), or None for a pool of the run's own.
    pool: ProcessPool | None
    # Keys whose values every worker process of ``pool`` holds already.
    broadcast: frozenset[Key]


def add_note(err: BaseException, note: str) -> None:
    """Add ``note`` to ``err``, even when its type refuses new attributes.

    A frozen dataclass exception raises on ``add_note``; the note is then
    stored the way ``add_note`` stores it, bypassing the type's ``__setattr__``.
    """
    try:
        err.add_note(note)
    except Exception:
        notes = list(getattr(err, "__notes__", None) or ())
        notes.append(note)
        with contextlib.suppress(Exception):  # an exception without a __dict__ keeps none
            object.__setattr__(err, "__notes__", notes)


class _Hooks:
    """The overridden hooks of the active callbacks, ready to call.

    ``pretask`` and ``posttask`` are called by the drivers directly (they run
    once per task); :meth:`failed` turns an exception one of them raised into
    the run's error.
    """

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        def overridden(name: str) -> list[Callable[..., None]]:
            base = getattr(Callback, name)
            return [getattr(cb, name) for cb in callbacks if getattr(type(cb), name) is not base]

        self.pretask = overridden("pretask")
        self.posttask = overridden("posttask")
        self._start = {name: overridden(name) for name in ("start", "start_state")}
        self._finish = overridden("finish")
        self.measure_sizes = any(cb.measures_sizes for cb in callbacks)
        # Whether any callback can see the run's state, so that it must be kept whole.
        self.watching = bool(callbacks)

    def call(self, name: str, *args: Any) -> None:
        for hook in self._start[name]:
            try:
                hook(*args)
            except BaseException as err:
                add_note(err, f"hlg: raised by the callback hook {_hook_name(hook)}")
                raise

    def finish(self, state: SchedulerState, error: BaseException | None) -> None:
        """Call every ``finish`` hook; raise the first one's exception if the run succeeded."""
        first: BaseException | None = None
        for hook in self._finish:
            try:
                hook(state, error is not None)
            except Exception as err:
                add_note(err, f"hlg: raised by the callback hook {_hook_name(hook)}")
                if error is not None:
                    add_note(
                        error, f"hlg: the callback hook {_hook_name(hook)} also raised {err!r}"
                    )
                elif first is None:
                    first = err
        if first is not None:
            raise first

    @staticmethod
    def failed(hook: Callable[..., Any], key: Key, err: BaseException) -> BaseException:
        add_note(err, f"hlg: raised by the callback hook {_hook_name(hook)} for key {key!r}")
        return err


def _hook_name(hook: Callable[..., Any]) -> str:
    owner = getattr(hook, "__self__", None)
    name = getattr(hook, "__name__", "hook")
    return f"{type(owner).__name__}.{name}" if owner is not None else name


def _call_hooks(hooks: list[Callable[..., None]], key: Key, *args: Any) -> BaseException | None:
    """Call per-task hooks; return the first exception, annotated, or None."""
    for hook in hooks:
        try:
            hook(key, *args)
        except Exception as err:
            return _Hooks.failed(hook, key, err)
    return None


# --------------------------------------------------------------------------- sync


def _run_sync(state: SchedulerState, hooks: _Hooks, options: _RunOptions) -> None:
    if state.ordered and not hooks.watching:
        _run_in_order(state)
    else:
        _run_sync_watched(state, hooks)


def _run_in_order(state: SchedulerState) -> None:
    """Run tasks ``0, 1, 2, ...`` in this thread, releasing inputs as they are done with.

    With one worker and a topological order, the ready heap would hand out the
    tasks in exactly this order, so it is not kept, nor ``waiting``. Measured on
    100,000 trivial tasks, this loop costs a quarter of the general one.
    """
    nodes, keys, cache = state.nodes, state.keys, state.cache
    dependencies, waiting_data = state.dependencies, state.waiting_data
    for i, node in enumerate(nodes):
        try:
            result = node(cache)
        except BaseException as err:
            state.finished = i
            _reraise(state, i, err, rerun=False)
        if waiting_data[i]:
            cache[keys[i]] = result
        for d in dependencies[i]:
            left = waiting_data[d] - 1
            waiting_data[d] = left
            if not left:
                del cache[keys[d]]
    state.finished = len(nodes)
    state.ready.clear()


def _run_sync_watched(state: SchedulerState, hooks: _Hooks) -> None:
    ready, nodes, keys, cache = state.ready, state.nodes, state.keys, state.cache
    pretask, posttask = hooks.pretask, hooks.posttask
    clock = time.perf_counter
    while ready:
        i = heappop(ready)
        key = keys[i]
        state.start(i)
        if pretask:
            failure = _call_hooks(pretask, key, state)
            if failure is not None:
                state.fail(i)
                raise failure
        start = clock()
        try:
            result = nodes[i](cache)
        except BaseException as err:
            state.fail(i)
            _reraise(state, i, err, rerun=False)
        state.finish(i, result, clock() - start)
        if posttask:
            failure = _call_hooks(posttask, key, result, state, 0)
            if failure is not None:
                raise failure


# --------------------------------------------------------------------------- threads


class _ThreadRun:
    """What worker threads share besides the state, guarded by ``lock``."""

    def __init__(self) -> None:
        # ``with lock`` is ``with condition`` without a Python-level call in between.
        self.lock = threading.Lock()
        self.condition = threading.Condition(self.lock)
        # Set to stop taking new tasks: after a failure or on Ctrl-C.
        self.stop = False
        # The first failure: (task number, exception), or (None, exception) for a
        # failure already annotated (a hook's, or the scheduler's own).
        self.error: tuple[int | None, BaseException] | None = None
        # Batched loop: tasks taken off ``ready`` and not recorded yet (started or not).
        self.claimed = 0
        # Batched loop: threads waiting on ``condition`` for tasks to become ready.
        self.idle = 0

    def fail(self, i: int | None, err: BaseException) -> None:
        """Record a failure and stop the run; the caller holds ``lock``."""
        if self.error is None:
            self.error = (i, err)
        self.stop = True
        self.condition.notify_all()


def _run_threads(state: SchedulerState, hooks: _Hooks, options: _RunOptions) -> None:
    shared = _ThreadRun()
    count = min(options.num_workers, max(state.ntasks, 1))
    threads = []
    for n in range(count):
        # Each thread runs in its own copy of the caller's context (contextvars).
        context = contextvars.copy_context()
        threads.append(
            threading.Thread(
                target=context.run,
                args=(_thread_worker, state, hooks, shared, n, count),
                name=f"hlg-worker-{n}",
                daemon=True,
            )
        )
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)  # a timeout keeps the wait interruptible by Ctrl-C
    except KeyboardInterrupt:
        with shared.condition:
            shared.stop = True
            shared.condition.notify_all()
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join()
        raise
    if shared.error is not None:
        i, err = shared.error
        if i is None:
            raise err
        _reraise(state, i, err, options.rerun)


def _thread_worker(
    state: SchedulerState, hooks: _Hooks, shared: _ThreadRun, worker_id: int, workers: int
) -> None:
    try:
        if hooks.watching:
            _thread_loop(state, hooks, shared, worker_id)
        else:
            _thread_loop_batched(state, shared, workers)
    except BaseException as err:  # a failure outside any task: never leave others waiting
        with shared.condition:
            add_note(err, f"hlg: raised in scheduler thread {worker_id}")
            shared.fail(None, err)


def _thread_loop(state: SchedulerState, hooks: _Hooks, shared: _ThreadRun, worker_id: int) -> None:
    condition = shared.condition
    ready, nodes, keys, cache = state.ready, state.nodes, state.keys, state.cache
    pretask, posttask = hooks.pretask, hooks.posttask
    clock = time.perf_counter
    while True:
        with condition:
            while not ready and not shared.stop and state.running:
                condition.wait()
            if shared.stop or not ready:
                condition.notify_all()
                return
            i = heappop(ready)
            key = keys[i]
            state.start(i)
            if pretask:
                failure = _call_hooks(pretask, key, state)
                if failure is not None:
                    state.fail(i)
                    shared.fail(None, failure)
                    return
        start = clock()
        try:
            result = nodes[i](cache)  # reads only keys no other thread will delete now
        except BaseException as err:
            with condition:
                state.fail(i)
                shared.fail(i, err)
            return
        duration = clock() - start
        with condition:
            state.finish(i, result, duration)
            if posttask:
                failure = _call_hooks(posttask, key, result, state, worker_id)
                if failure is not None:
                    shared.fail(None, failure)
                    return
            del result  # an idle thread holds no result the run has released
            # This worker takes the next ready task itself: wake others only for the
            # rest, or all of them when nothing is left so that they can exit.
            if not ready and not state.running:
                condition.notify_all()
            elif len(ready) > 1:
                condition.notify(len(ready) - 1)


# A thread takes more than one ready task at once only while a batch is measured
# to take less than this, and at most _BATCH_MAX tasks: that bounds how long a
# finished task's result waits to be recorded and its inputs to be released.
_BATCH_SECONDS = 0.001
_BATCH_MAX = 64


def _thread_loop_batched(state: SchedulerState, shared: _ThreadRun, workers: int) -> None:
    """Run batches of ready tasks in a worker thread of a run nobody watches."""
    lock, condition = shared.lock, shared.condition
    ready, nodes, cache = state.ready, state.nodes, state.cache
    clock = time.perf_counter
    batch: list[int] = []
    results: list[Any] = []
    size = 1  # tasks to take next time; adapted to how long tasks take
    while True:
        with lock:
            failed = _record_batch(state, shared, batch, results)
            results.clear()  # an idle thread holds no result the run has released
            if failed:
                return
            while not ready and not shared.stop and shared.claimed:
                shared.idle += 1
                condition.wait()
                shared.idle -= 1
            if shared.stop or not ready:
                condition.notify_all()
                return
            take = min(size, (len(ready) + workers - 1) // workers)
            batch = [heappop(ready) for _ in range(take)]
            shared.claimed += take
            if ready and shared.idle:
                condition.notify()  # that thread wakes the next, if there is more
        results = []
        start = clock()
        for i in batch:
            if shared.stop:  # another thread failed: start nothing new
                break
            try:
                results.append(nodes[i](cache))  # its inputs stay until it is recorded
            except BaseException as err:
                results.append(_Failed(err))
                break
        elapsed = clock() - start
        size = _next_batch_size(elapsed, len(results))


class _Failed:
    """What a batched task raised, in place of its result."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _next_batch_size(elapsed: float, count: int) -> int:
    if not count or elapsed * _BATCH_MAX <= _BATCH_SECONDS * count:
        return _BATCH_MAX
    return max(1, min(_BATCH_MAX, int(_BATCH_SECONDS * count / elapsed)))


def _record_batch(
    state: SchedulerState, shared: _ThreadRun, batch: list[int], results: list[Any]
) -> bool:
    """Record a batch's results (the caller holds the lock); return whether a task failed.

    ``results`` holds one entry per task of ``batch`` that ran, in order; the
    rest of the batch never started, because of a failure.
    """
    keys, cache, ready = state.keys, state.cache, state.ready
    dependents, dependencies = state.dependents, state.dependencies
    waiting, waiting_data = state.waiting, state.waiting_data
    shared.claimed -= len(batch)
    recorded = 0
    for i, result in zip(batch, results, strict=False):
        if type(result) is _Failed:
            state.finished += recorded
            shared.fail(i, result.error)
            return True
        recorded += 1
        if waiting_data[i]:
            cache[keys[i]] = result
        for d in dependents[i]:
            left = waiting[d] - 1
            waiting[d] = left
            if not left:
                heappush(ready, d)
        for d in dependencies[i]:
            left = waiting_data[d] - 1
            waiting_data[d] = left
            if not left:
                del cache[keys[d]]
    state.finished += recorded
    return False


# --------------------------------------------------------------------------- processes


class _ProcessRun:
    """The parent's bookkeeping for one run on a process pool."""

    def __init__(self, state: SchedulerState, pool: ProcessPool, broadcast: frozenset[Key]):
        self.state = state
        self.pool = pool
        self.broadcast = broadcast
        self.shipped = _FunctionShipper()
        # Workers with nothing to do, the next one to use last.
        self.idle = list(range(pool.size))[::-1]
        # Worker -> (task number, start time) of the task it runs.
        self.on_worker: dict[int, tuple[int, float]] = {}
        # The first failure, as in _ThreadRun.error.
        self.error: tuple[int | None, BaseException] | None = None

    def fail(self, i: int | None, err: BaseException) -> None:
        if self.error is None:
            self.error = (i, err)

    def dispatch(self, hooks: _Hooks) -> None:
        """Send ready tasks to idle workers, until either runs out or the run failed."""
        state, ready, keys = self.state, self.state.ready, self.state.keys
        while self.idle and ready and self.error is None:
            i = heappop(ready)
            state.start(i)
            if hooks.pretask:
                failure = _call_hooks(hooks.pretask, keys[i], state)
                if failure is not None:
                    state.fail(i)
                    self.fail(None, failure)
                    return
            node = state.nodes[i]
            values = {d: state.cache[d] for d in node.dependencies if d not in self.broadcast}
            w = self.idle[-1]
            try:
                self.pool.submit(w, self.shipped.node(node), values)
            except WorkerDiedError as died:
                state.fail(i)
                add_note(died, f"hlg: task {keys[i]!r} was about to be sent to it")
                raise
            except Exception as err:  # the task or its inputs could not be pickled
                state.fail(i)
                add_note(err, "hlg: the task or its inputs could not be sent to a worker process")
                self.fail(i, err)
                return
            self.idle.pop()
            self.on_worker[w] = (i, time.perf_counter())

    def collect(self, hooks: _Hooks) -> None:
        """Wait for replies and record them."""
        state, keys = self.state, self.state.keys
        for w, reply in self.pool.wait(list(self.on_worker)):
            i, started = self.on_worker.pop(w)
            if reply is None:
                state.fail(i)
                raise _worker_died(self.pool, w, keys[i])
            self.idle.append(w)
            if reply.ok:
                state.finish(i, reply.value, time.perf_counter() - started)
                if hooks.posttask and self.error is None:
                    failure = _call_hooks(hooks.posttask, keys[i], reply.value, state, w)
                    if failure is not None:
                        self.fail(None, failure)
            else:
                state.fail(i)
                err = reply.value
                if reply.traceback:
                    add_note(err, f"hlg: traceback in the worker process:\n{reply.traceback}")
                self.fail(i, err)


def _run_processes(state: SchedulerState, hooks: _Hooks, options: _RunOptions) -> None:
    pool = options.pool
    own = pool is None
    workers = (
        pool if pool is not None else ProcessPool(min(options.num_workers, max(state.ntasks, 1)))
    )
    run = _ProcessRun(state, workers, options.broadcast)
    try:
        try:
            while True:
                run.dispatch(hooks)
                if not run.on_worker:
                    break
                run.collect(hooks)
        except KeyboardInterrupt:
            while run.on_worker:  # let running tasks finish, then stop
                for w, _ in workers.wait(list(run.on_worker)):
                    run.on_worker.pop(w, None)
            raise
    except BaseException:
        if not own:
            workers.close()  # a pool that lost a worker or was interrupted is not reused
        raise
    finally:
        if own:
            workers.close()
    if run.error is not None:
        i, err = run.error
        if i is None:
            raise err
        _reraise(state, i, err, options.rerun)


def _worker_died(workers: ProcessPool, w: int, key: Key) -> WorkerDiedError:
    code = workers.exitcode(w)
    if not workers.started[w]:
        return WorkerDiedError(
            f"worker process {w} exited (exit code {code}) before it started, so task "
            f"{key!r} never ran. Workers are started with 'spawn', which imports your main "
            "module in each of them: a script that computes when imported must guard that "
            "code with `if __name__ == '__main__':` (the worker's own traceback is above)"
        )
    return WorkerDiedError(
        f"worker process {w} died (exit code {code}) while running task {key!r}; the task "
        "may crash its process (a segfault, os._exit, running out of memory)"
    )


class _FunctionShipper:
    """Replaces each task's function by its serialised form once per distinct function."""

    def __init__(self) -> None:
        self._by_id: dict[int, SerializedFunction] = {}
        # Keeps the functions alive so that their ids stay unique.
        self._alive: list[Any] = []

    def node(self, node: GraphNode) -> GraphNode:
        if type(node) is not Task or type(node.func) is SerializedFunction:
            return node
        func = node.func
        shipped = self._by_id.get(id(func))
        if shipped is None:
            import cloudpickle

            shipped = SerializedFunction(callable_name(func), cloudpickle.dumps(func, protocol=5))
            self._by_id[id(func)] = shipped
            self._alive.append(func)
        return Task.from_parts(*node.parts()._replace(func=shipped))


# --------------------------------------------------------------------------- endings


def _reraise(state: SchedulerState, i: int, err: BaseException, rerun: bool) -> None:
    key = state.keys[i]
    if rerun and isinstance(err, Exception):
        try:
            state.nodes[i](state.cache)  # its inputs are still held: it never finished
        except Exception as again:
            add_note(again, f"hlg: raised while computing key {key!r} (rerun locally)")
            raise
    add_note(err, f"hlg: raised while computing key {key!r}")
    raise err


def _raise_stalled(state: SchedulerState) -> None:
    left = {
        state.keys[i]: state.nodes[i].dependencies for i in range(state.ntasks) if state.waiting[i]
    }
    for start in left:
        cycle = find_cycle(left, start)
        if cycle:
            raise CycleError(
                "tasks depend on each other in a cycle: " + " -> ".join(map(repr, cycle))
            )
    raise GraphError(
        f"{counted(len(left), 'task')} could not run; their dependencies never finished"
    )


def _nest(keys: Any, values: Mapping[Key, Any]) -> Any:
    if type(keys) is not list:
        return values[keys]
    return tuple(_nest(k, values) for k in keys)


# --------------------------------------------------------------------------- the table

_SYNC = Driver("sync", uses_processes=False, concurrent=False, execute=_run_sync)
_THREADS = Driver("threads", uses_processes=False, concurrent=True, execute=_run_threads)
_PROCESSES = Driver("processes", uses_processes=True, concurrent=True, execute=_run_processes)

#: Every accepted scheduler name and the driver it selects (dask's names included).
SCHEDULERS: Mapping[str, Driver] = MappingProxyType(
    {
        "sync": _SYNC,
        "synchronous": _SYNC,
        "single-threaded": _SYNC,
        "threads": _THREADS,
        "threading": _THREADS,
        "processes": _PROCESSES,
        "multiprocessing": _PROCESSES,
    }
)
