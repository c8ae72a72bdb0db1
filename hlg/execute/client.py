"""Client: data kept between computations, and the local scheduler to compute with.

A :class:`Client` holds *scattered* data under keys. Graphs computed through
it may use that data: as :class:`~hlg.Ref` arguments, as :class:`~hlg.TaskRef`
to the key, or, in dask-style dicts, as the key itself. With the
``processes`` scheduler the client keeps one pool of worker processes for its
whole life; ``scatter(..., broadcast=True)`` copies data to every worker once,
so tasks that use it do not ship it again.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from hlg.convert import KeyUnion, convert_graph
from hlg.errors import MissingKeyError, UsageError
from hlg.execute.callbacks import Callback
from hlg.execute.local import SCHEDULERS, as_tasks, run
from hlg.execute.procpool import ProcessPool
from hlg.graph import HighLevelGraph
from hlg.keys import Key, tokenize, validate_key
from hlg.limits import Limits
from hlg.materialize.flatgraph import FlatGraph
from hlg.task import Ref

__all__ = ["Client"]


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
        if scheduler not in SCHEDULERS:
            raise UsageError(
                f"unknown scheduler {scheduler!r}; choose 'sync', 'threads' or 'processes'"
            )
        self.scheduler = scheduler
        self.num_workers = num_workers
        # Scattered values by key. Invariant: every key in _broadcast is in _data.
        self._data: dict[Key, Any] = {}
        self._broadcast: set[Key] = set()
        self._pool: ProcessPool | None = None
        self._closed = False

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

    def close(self) -> None:
        """Drop all data and stop worker processes."""
        self._data.clear()
        self._broadcast.clear()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._closed = True

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._data)} keys held"
        return f"<hlg.Client scheduler={self.scheduler!r}: {state}>"

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
        self._data[key] = value
        if broadcast and self.scheduler in ("processes", "multiprocessing"):
            self._workers().broadcast(("store", key, value))
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
            self._data.pop(key, None)
            if key in self._broadcast:
                self._broadcast.discard(key)
                if self._pool is not None:
                    self._pool.broadcast(("forget", key))

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
        if isinstance(graph, Mapping) and not isinstance(graph, HighLevelGraph | FlatGraph):
            tasks: Any = convert_graph(graph, KeyUnion(self._data))
        else:
            tasks = as_tasks(graph, keys, self._data, limits=limits, max_tasks=max_tasks)
        if isinstance(tasks, FlatGraph):
            keys = tasks.keys if keys is None else keys
            tasks = tasks.tasks
        if keys is None:
            raise UsageError(
                "pass the keys to compute; only packed and flat graphs carry their own"
            )
        pool = self._workers() if SCHEDULERS[self.scheduler] == "processes" else None
        try:
            return run(
                tasks,
                keys,
                scheduler=self.scheduler,
                num_workers=self.num_workers,
                callbacks=callbacks,
                data=self._data,
                pool=pool,
                broadcast=frozenset(self._broadcast),
                **kwargs,
            )
        except BaseException:
            if pool is not None and not all(p.is_alive() for p in pool.processes):
                # Broken: start a new pool next time. Broadcast data lived in the old
                # workers, so ship it with each task from now on.
                self._pool = None
                self._broadcast.clear()
            raise

    def _workers(self) -> ProcessPool:
        if self._pool is None:
            self._pool = ProcessPool(self.num_workers or os.cpu_count() or 1)
        return self._pool

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this hlg.Client is closed; create a new one")
