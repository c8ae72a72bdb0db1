"""The local scheduler: run a graph on this machine and return the requested values.

One run:

1. take the graph in any form and keep only the tasks the requested keys need;
2. order them (:mod:`hlg.execute.order`) and build a
   :class:`~hlg.execute.state.SchedulerState`;
3. run ready tasks, smallest priority first, on one of three drivers:

   - ``sync``: one loop in the calling thread;
   - ``threads``: worker threads that share the state under one lock, each
     taking the next ready task, running it outside the lock, and recording
     the result (there is no central dispatcher to hand tasks over to);
   - ``processes``: a pool of worker processes fed by the calling thread;
     tasks, inputs and results cross as cloudpickle bytes.

Intermediate results are released as soon as their last dependent finishes.
A task's exception stops the run: no new task starts, running ones finish,
and the exception is raised again with its original type and traceback and a
note naming the key. Ctrl-C does the same with KeyboardInterrupt.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from heapq import heappop
from typing import Any

from hlg.convert import convert_graph
from hlg.daskspec import check_scheduler_kwargs, dask_graph
from hlg.errors import (
    CycleError,
    GraphError,
    MissingKeyError,
    UsageError,
    WorkerDiedError,
)
from hlg.execute.callbacks import Callback, active_callbacks
from hlg.execute.procpool import ProcessPool
from hlg.execute.state import SchedulerState
from hlg.graph import HighLevelGraph, ensure_graph, flatten_keys
from hlg.keys import Key, is_key
from hlg.materialize.flatgraph import FlatGraph
from hlg.materialize.unpack import unpack
from hlg.task import GraphNode, SerializedFunction, Task, _callable_name
from hlg.toposort import find_cycle

__all__ = ["SCHEDULERS", "as_tasks", "get", "run"]

#: Accepted scheduler names and the driver each selects.
SCHEDULERS = {
    "sync": "sync",
    "synchronous": "sync",
    "single-threaded": "sync",
    "threads": "threads",
    "threading": "threads",
    "processes": "processes",
    "multiprocessing": "processes",
}


def get(
    graph: Any,
    keys: Any = None,
    *,
    scheduler: str = "threads",
    num_workers: int | None = None,
    callbacks: Iterable[Callback] = (),
    rerun_exceptions_locally: bool = False,
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
    Exception
        Whatever a task raised, with a note naming the task's key.

    Examples
    --------
    >>> from operator import add
    >>> dsk = {"x": 1, "y": 2, "z": (add, "x", "y"), "w": (sum, ["x", "y", "z"])}
    >>> get(dsk, "w")
    6
    >>> get(dsk, [["x"], "z"], scheduler="sync")
    ((1,), 3)
    """
    if dask_kwargs:
        check_scheduler_kwargs(dask_kwargs)
    tasks = as_tasks(graph, keys)
    if keys is None:
        keys = tasks.keys if isinstance(tasks, FlatGraph) else None
        if keys is None:
            raise UsageError(
                "pass the keys to compute; only packed and flat graphs carry their own"
            )
    nodes = tasks.tasks if isinstance(tasks, FlatGraph) else tasks
    return run(
        nodes,
        keys,
        scheduler=scheduler,
        num_workers=num_workers,
        callbacks=callbacks,
        rerun_exceptions_locally=rerun_exceptions_locally,
    )


def as_tasks(graph: Any, keys: Any = None, data: Mapping[Key, Any] | None = None) -> Any:
    """Return ``graph`` as a mapping of nodes (or a FlatGraph), culled to ``keys`` if given.

    Keys in ``data`` are values held already (scattered data), which tasks of
    a high-level graph may depend on.

    Examples
    --------
    >>> sorted(as_tasks({"a": 1, "b": (abs, "a")}))
    ['a', 'b']
    """
    if isinstance(graph, bytes | bytearray | memoryview):
        return unpack(graph)
    if isinstance(graph, FlatGraph):
        return graph
    dask_tasks = dask_graph(graph)
    if dask_tasks is not None:
        graph = dask_tasks
    if isinstance(graph, Mapping) and not isinstance(graph, HighLevelGraph):
        return convert_graph(graph)
    hlg_graph = ensure_graph(graph)
    if keys is None:
        return hlg_graph.to_dict()
    present = [k for k in flatten_keys(keys) if is_key(k) and k in hlg_graph]
    culled, unresolved = hlg_graph._cull(present)
    missing = {k: v for k, v in unresolved.items() if data is None or k not in data}
    if missing:
        hlg_graph._raise_unresolved(culled, missing)
    return culled.to_dict()


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
    ``pool``, keys in ``broadcast`` are already held by every worker process.
    """
    driver = SCHEDULERS.get(scheduler)
    if driver is None:
        raise UsageError(
            f"unknown scheduler {scheduler!r}; choose 'sync', 'threads' or 'processes'"
        )
    workers = num_workers if num_workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise UsageError(f"num_workers must be at least 1; got {num_workers}")
    data = data or {}
    wanted = list(flatten_keys(keys))
    for key in wanted:
        if not (is_key(key) and (key in tasks or key in data)):
            raise MissingKeyError(f"key {key!r} is not in the graph")
    hooks = _Hooks([*active_callbacks(), *callbacks])
    hooks.call("start", tasks)
    state = SchedulerState.build(tasks, wanted, data)
    for key in wanted:
        if key not in state.index:
            state.cache[key] = data[key]
    hooks.call("start_state", state)
    errored = True
    try:
        if driver == "sync":
            _run_sync(state, hooks, rerun_exceptions_locally)
        elif driver == "threads":
            _run_threads(state, hooks, workers, rerun_exceptions_locally)
        else:
            _run_processes(
                state,
                hooks,
                num_workers=workers,
                rerun=rerun_exceptions_locally,
                pool=pool,
                broadcast=broadcast,
            )
        if state.finished < state.ntasks:
            _raise_stalled(state)
        errored = False
    finally:
        hooks.call("finish", state, errored)
    return _nest(keys, state.cache)


class _Hooks:
    """The overridden hooks of the active callbacks, ready to call."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        def overridden(name: str) -> list[Callable[..., None]]:
            base = getattr(Callback, name)
            return [getattr(cb, name) for cb in callbacks if getattr(type(cb), name) is not base]

        self.pretask = overridden("pretask")
        self.posttask = overridden("posttask")
        self._other = {name: overridden(name) for name in ("start", "start_state", "finish")}

    def call(self, name: str, *args: Any) -> None:
        for hook in self._other[name]:
            hook(*args)


# --------------------------------------------------------------------------- sync


def _run_sync(state: SchedulerState, hooks: _Hooks, rerun: bool) -> None:
    ready, nodes, keys, cache = state.ready, state.nodes, state.keys, state.cache
    pretask, posttask = hooks.pretask, hooks.posttask
    clock = time.perf_counter
    while ready:
        i = heappop(ready)
        key = keys[i]
        state.start(i)
        for hook in pretask:
            hook(key, state)
        start = clock()
        try:
            result = nodes[i](cache)
        except BaseException as err:
            state.fail(i)
            _reraise(state, i, err, rerun=False)
        state.finish(i, result, clock() - start)
        for post in posttask:
            post(key, result, state, 0)


# --------------------------------------------------------------------------- threads


class _ThreadRun:
    """What worker threads share besides the state, guarded by ``condition``."""

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        # Set to stop taking new tasks: after an error or on Ctrl-C.
        self.stop = False
        # The first failure: (task number, exception).
        self.error: tuple[int, BaseException] | None = None


def _run_threads(state: SchedulerState, hooks: _Hooks, num_workers: int, rerun: bool) -> None:
    shared = _ThreadRun()
    threads = [
        threading.Thread(
            target=_thread_worker,
            args=(state, hooks, shared, n),
            name=f"hlg-worker-{n}",
            daemon=True,
        )
        for n in range(min(num_workers, max(state.ntasks, 1)))
    ]
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
        _reraise(state, i, err, rerun)


def _thread_worker(
    state: SchedulerState, hooks: _Hooks, shared: _ThreadRun, worker_id: int
) -> None:
    condition = shared.condition
    ready, nodes, keys, cache = state.ready, state.nodes, state.keys, state.cache
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
            for hook in hooks.pretask:
                hook(key, state)
        start = clock()
        try:
            result = nodes[i](cache)  # reads only keys no other thread will delete now
        except BaseException as err:
            with condition:
                state.fail(i)
                if shared.error is None:
                    shared.error = (i, err)
                shared.stop = True
                condition.notify_all()
            return
        duration = clock() - start
        with condition:
            state.finish(i, result, duration)
            for post in hooks.posttask:
                post(key, result, state, worker_id)
            # This worker takes the next ready task itself: wake others only for the
            # rest, or all of them when nothing is left so that they can exit.
            if not ready and not state.running:
                condition.notify_all()
            elif len(ready) > 1:
                condition.notify(len(ready) - 1)


# --------------------------------------------------------------------------- processes


def _run_processes(
    state: SchedulerState,
    hooks: _Hooks,
    *,
    num_workers: int,
    rerun: bool,
    pool: ProcessPool | None,
    broadcast: frozenset[Key],
) -> None:
    own = pool is None
    workers = pool if pool is not None else ProcessPool(min(num_workers, max(state.ntasks, 1)))
    shipped = _FunctionShipper()
    idle = list(range(workers.size))[::-1]
    on_worker: dict[int, tuple[int, float]] = {}
    error: tuple[int, BaseException] | None = None
    ready, keys = state.ready, state.keys
    try:
        try:
            while True:
                while idle and ready and error is None:
                    i = heappop(ready)
                    w = idle.pop()
                    state.start(i)
                    for hook in hooks.pretask:
                        hook(keys[i], state)
                    node = state.nodes[i]
                    values = {d: state.cache[d] for d in node.dependencies if d not in broadcast}
                    workers.send(w, ("task", i, shipped.node(node), values))
                    on_worker[w] = (i, time.perf_counter())
                if not on_worker:
                    break
                for w, reply in workers.wait(list(on_worker)):
                    i, started = on_worker.pop(w)
                    if reply is None:
                        state.fail(i)
                        raise _worker_died(workers, w, keys[i])
                    idle.append(w)
                    if reply[1]:
                        state.finish(i, reply[2], time.perf_counter() - started)
                        for post in hooks.posttask:
                            post(keys[i], reply[2], state, w)
                    else:
                        state.fail(i)
                        err = reply[2]
                        err.add_note(f"hlg: traceback in the worker process:\n{reply[3]}")
                        if error is None:
                            error = (i, err)
        except KeyboardInterrupt:
            while on_worker:  # let running tasks finish, then stop
                for w, _ in workers.wait(list(on_worker)):
                    on_worker.pop(w, None)
            raise
    except BaseException:
        if not own:
            workers.close()  # a pool that lost a worker or was interrupted is not reused
        raise
    finally:
        if own:
            workers.close()
    if error is not None:
        _reraise(state, error[0], error[1], rerun)


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

            shipped = SerializedFunction(_callable_name(func), cloudpickle.dumps(func, protocol=5))
            self._by_id[id(func)] = shipped
            self._alive.append(func)
        return Task._from_parts(
            shipped, node._args, node._refs, node.kwargs, node._deep, node.dependencies
        )


# --------------------------------------------------------------------------- endings


def _reraise(state: SchedulerState, i: int, err: BaseException, rerun: bool) -> None:
    key = state.keys[i]
    if rerun and isinstance(err, Exception):
        try:
            state.nodes[i](state.cache)  # its inputs are still held: it never finished
        except Exception as again:
            again.add_note(f"hlg: raised while computing key {key!r} (rerun locally)")
            raise
    err.add_note(f"hlg: raised while computing key {key!r}")
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
    raise GraphError(f"{len(left)} tasks could not run; their dependencies never finished")


def _nest(keys: Any, values: Mapping[Key, Any]) -> Any:
    if type(keys) is not list:
        return values[keys]
    return tuple(_nest(k, values) for k in keys)
