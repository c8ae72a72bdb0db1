"""Client: data kept between computations, and the local scheduler to compute with.

A :class:`Client` holds *scattered* data under keys. Graphs computed through
it may use that data: as :class:`~hlg.Ref` arguments, as :class:`~hlg.TaskRef`
to the key, or, in dask-style dicts, as the key itself. With the
``processes`` scheduler the client keeps one pool of worker processes for its
whole life; ``scatter(..., broadcast=True)`` copies data to every worker once,
so tasks that use it do not ship it again.

A client is safe to share between threads. Scattering, gathering and
releasing are guarded by one lock; computations on the ``sync`` and
``threads`` schedulers run side by side; on ``processes`` they take turns
on the client's one pool, which is started once, by the first computation
that needs it. When a worker process dies, the computation raises
:class:`~hlg.WorkerDiedError` and the client starts a new pool next time.

A client's life is a :class:`ClientState`: ``OPEN`` from creation;
``CLOSING`` once :meth:`Client.close` has begun, while it waits for a
computation running on the worker processes to finish; ``CLOSED`` when the
processes are stopped and the data dropped. Closing is one way: ``close()``
on a closing or closed client does nothing, and every call that needs the
client after ``close()`` began raises :class:`~hlg.UsageError`, including a
computation that was waiting for the worker processes. A computation already
running when ``close()`` begins finishes with its result.
"""

from __future__ import annotations

import enum
import os
import threading
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from hlg.convert import KeyUnion
from hlg.errors import MissingKeyError, UsageError, WorkerDiedError, counted
from hlg.execute.callbacks import Callback
from hlg.execute.forms import graph_tasks
from hlg.execute.local import driver_for, run
from hlg.execute.procpool import ProcessPool
from hlg.keys import Key, tokenize, validate_key
from hlg.limits import Limits
from hlg.task import Ref

__all__ = ["Client", "ClientState"]


class ClientState(enum.Enum):
    """Where a :class:`Client` is in its life: OPEN → CLOSING → CLOSED, never back.

    Examples
    --------
    >>> client = Client(scheduler="sync")
    >>> client.state
    <ClientState.OPEN: 'open'>
    >>> client.close()
    >>> client.state
    <ClientState.CLOSED: 'closed'>
    """

    #: Accepting work.
    OPEN = "open"
    #: ``close()`` has begun: refusing work, waiting for the worker processes' current run.
    CLOSING = "closing"
    #: Worker processes stopped, data dropped.
    CLOSED = "closed"


class Client:
    """Compute graphs locally, keeping scattered data between computations.

    Parameters
    ----------
    scheduler
        ``"sync"``, ``"threads"`` or ``"processes"``.
    num_workers
        Threads or processes; the number of CPUs by default.

    Examples
    --------
    >>> from operator import add
    >>> with Client(scheduler="sync") as client:
    ...     x = client.scatter(10)
    ...     client.compute({"y": (add, x, 1)}, "y")
    11
    """

    def __init__(self, scheduler: str = "threads", num_workers: int | None = None) -> None:
        self._driver = driver_for(scheduler)
        self.scheduler = scheduler
        self.num_workers = num_workers
        # Scattered values by key. Invariant: every key in _broadcast is in _data.
        self._data: dict[Key, Any] = {}
        self._broadcast: set[Key] = set()
        self._pool: ProcessPool | None = None
        # Moves only forward, OPEN -> CLOSING -> CLOSED, and only in close().
        self._state = ClientState.OPEN
        # Guards _data, _broadcast, _pool and _state; held only briefly, never for a run.
        self._lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def state(self) -> ClientState:
        """Where the client is in its life; see :class:`ClientState`."""
        return self._state

    def close(self) -> None:
        """Drop all data and stop worker processes; do nothing if already closing or closed.

        From the moment it begins, every call that needs the client raises
        :class:`~hlg.UsageError`. A computation running on the worker
        processes finishes first (``close`` waits for it, in state
        ``CLOSING``); one running on the ``sync`` or ``threads`` scheduler
        finishes on its own, with the data it started with.

        Examples
        --------
        >>> client = Client(scheduler="sync")
        >>> client.close()
        >>> client.close()  # a second close does nothing
        >>> client.scatter(1)
        Traceback (most recent call last):
        hlg.errors.UsageError: this hlg.Client is closed; create a new one
        """
        with self._lock:
            if self._state is not ClientState.OPEN:
                return
            self._state = ClientState.CLOSING
            self._data.clear()
            self._broadcast.clear()
            pool, self._pool = self._pool, None
        if pool is not None:
            with pool.lease():  # a computation running on it finishes first
                pool.close()
        with self._lock:
            self._state = ClientState.CLOSED

    def __repr__(self) -> str:
        state = self._state
        held = f"{counted(len(self._data), 'key')} held"
        shown = held if state is ClientState.OPEN else state.value
        return f"<hlg.Client scheduler={self.scheduler!r}: {shown}>"

    # -- data ----------------------------------------------------------------------------

    def scatter(self, data: Any, broadcast: bool = False, hash: bool = True) -> Any:
        """Hold ``data`` for later computations; return references to it.

        Parameters
        ----------
        data
            One object (returns one :class:`~hlg.Ref`), a list or tuple (a list or
            tuple of refs), or a dict (a dict of refs, the data held under the
            dict's own keys).
        broadcast
            With the ``processes`` scheduler, copy the data to every worker
            process now, instead of with each task that needs it.
        hash
            Name data by a token of its value, so scattering equal data twice
            gives the same key; otherwise by a random token.

        Examples
        --------
        >>> client = Client(scheduler="sync")
        >>> a, b = client.scatter([1, 2])
        >>> client.scatter(1) == a, client.gather([a, b])
        (True, [1, 2])
        >>> sorted(client.scatter({"x": 1, "y": 2}))
        ['x', 'y']
        >>> client.scatter(3, hash=False) == client.scatter(3, hash=False)
        False
        """
        self._check_open()
        if isinstance(data, dict):
            return {validate_key(k): self._hold(k, v, broadcast) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return type(data)(self._hold(self._name(v, hash), v, broadcast) for v in data)
        return self._hold(self._name(data, hash), data, broadcast)

    def _name(self, value: Any, hash: bool) -> Key:
        token = tokenize(value) if hash else uuid.uuid4().hex
        return f"{type(value).__name__}-{token}"

    def _hold(self, key: Key, value: Any, broadcast: bool) -> Ref:
        with self._lock:
            self._check_open()  # again: close() may have begun since scatter checked
            self._data[key] = value
        if broadcast and self._driver.uses_processes:
            pool = self._workers()
            try:
                with pool.lease():
                    pool.broadcast_store(key, value)
            except WorkerDiedError:
                self._drop_pool(pool)
                raise
            with self._lock:
                self._broadcast.add(key)
        return Ref(key)

    def gather(self, refs: Any) -> Any:
        """Return the data behind ``refs``, in the same shape (ref, list, tuple, dict, set).

        Raises
        ------
        MissingKeyError
            The client holds no data under a ref's key (released, or never scattered).
        """
        self._check_open()
        if isinstance(refs, Ref):
            return self._value(refs.key)
        if isinstance(refs, dict):
            return {k: self.gather(v) for k, v in refs.items()}
        if isinstance(refs, list | tuple | set | frozenset):
            return type(refs)(self.gather(r) for r in refs)
        return self._value(validate_key(refs))

    def _value(self, key: Key) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise MissingKeyError(
                f"this client holds no data under key {key!r}; it was released or never scattered"
            ) from None

    def release(self, refs: Any) -> None:
        """Drop the data behind ``refs`` (a ref, a key, or a collection of them)."""
        self._check_open()
        items = refs.values() if isinstance(refs, dict) else refs
        if isinstance(items, Ref) or not isinstance(items, Iterable) or isinstance(items, str):
            items = [items]
        for ref in items:
            key = ref.key if isinstance(ref, Ref) else ref
            with self._lock:
                self._data.pop(key, None)
                forget = key in self._broadcast
                self._broadcast.discard(key)
                pool = self._pool
            if forget and pool is not None:
                with pool.lease():
                    pool.broadcast_forget(key)

    @property
    def held_keys(self) -> frozenset[Key]:
        """The keys of all data the client holds."""
        return frozenset(self._data)

    # -- computing -----------------------------------------------------------------------

    def compute(
        self,
        graph: Any,
        keys: Any = None,
        *,
        callbacks: Iterable[Callback] = (),
        limits: Limits | None = None,
        max_tasks: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Compute ``keys`` of ``graph``, whose tasks may use the client's data.

        Takes the same graph forms and key conventions as :func:`hlg.get`. Extra
        keyword arguments (``rerun_exceptions_locally``) are passed on. ``limits``
        and ``max_tasks`` bound what unpacking packed bytes may build (see
        :func:`hlg.unpack`).

        Raises
        ------
        MissingDependencyError
            A task needs a key that is neither in the graph nor held by the client.
        """
        self._check_open()
        with self._lock:
            data = dict(self._data)  # a snapshot: other threads may scatter and release
            broadcast = frozenset(self._broadcast)
        tasks, carried = graph_tasks(
            graph,
            keys,
            known=KeyUnion(data),
            unpack_options={"limits": limits, "max_tasks": max_tasks},
        )
        keys = carried if keys is None else keys
        if keys is None:
            raise UsageError(
                "pass the keys to compute; only packed and flat graphs carry their own"
            )
        if not self._driver.uses_processes:
            return run(
                tasks,
                keys,
                scheduler=self.scheduler,
                num_workers=self.num_workers,
                callbacks=callbacks,
                data=data,
                **kwargs,
            )
        pool = self._workers()
        with pool.lease():
            self._check_open("while this computation waited for its worker processes")
            if pool.closed:  # replaced while this computation waited for it
                raise WorkerDiedError(
                    "the client's worker processes were stopped while this computation "
                    "waited for them (a worker died); compute again"
                )
            try:
                return run(
                    tasks,
                    keys,
                    scheduler=self.scheduler,
                    num_workers=self.num_workers,
                    callbacks=callbacks,
                    data=data,
                    pool=pool,
                    broadcast=broadcast,
                    **kwargs,
                )
            except BaseException:
                if not pool.alive():
                    self._drop_pool(pool)
                raise

    def _workers(self) -> ProcessPool:
        """Return the client's pool, starting it on first use (once, whatever the threads)."""
        with self._lock:
            self._check_open()
            if self._pool is None:
                self._pool = ProcessPool(self.num_workers or os.cpu_count() or 1)
            return self._pool

    def _drop_pool(self, pool: ProcessPool) -> None:
        # A broken pool: start a new one next time. Broadcast data lived in the old
        # workers, so it ships with each task from now on.
        with self._lock:
            if self._pool is pool:
                self._pool = None
                self._broadcast.clear()
        pool.close()

    def _check_open(self, during: str | None = None) -> None:
        state = self._state
        if state is ClientState.OPEN:
            return
        if during is not None:
            raise UsageError(f"this hlg.Client was closed {during}; create a new one")
        raise UsageError(f"this hlg.Client is {state.value}; create a new one")
