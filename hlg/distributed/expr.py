"""The expression route: packed bytes inside a dask expression, unpacked by the scheduler.

Since 2025.4, dask.distributed's client sends a computation as one pickled
``dask._expr.Expr``; the scheduler unpickles it and calls its
``__dask_graph__()`` and ``__dask_annotations__()`` on its own thread. A
:class:`PackedGraph` expression holds only the packed bytes, the requested
keys and a token, so the pickle the client sends is the packed graph plus a
few hundred bytes, and ``__dask_graph__()`` (which runs :func:`hlg.unpack`
and :func:`~hlg.distributed.to_dask`) runs where the scheduler runs.

:class:`Collection` makes any hlg graph a dask collection, for
``client.compute``, ``client.persist``, ``dask.compute`` and ``dask.persist``.
Its finalize step (``finalize=``) travels as function-table bytes and runs on
a worker, never on the scheduler.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import dask.threaded
from dask._expr import Expr
from dask._task_spec import List as DaskList
from dask._task_spec import Task as DaskTask
from dask._task_spec import TaskRef as DaskTaskRef

from hlg.distributed.tasks import to_dask
from hlg.errors import UsageError, counted
from hlg.graph import HighLevelGraph, flatten_keys
from hlg.keys import Key, validate_key
from hlg.materialize.flatgraph import FlatGraph
from hlg.materialize.unpack import unpack
from hlg.packing.codec import Encoder
from hlg.packing.envelope import read_envelope
from hlg.packing.pack import pack
from hlg.task import SerializedFunction

__all__ = ["Collection", "PackedFinalize", "PackedGraph", "collection", "packed_keys"]


def _token(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def packed_keys(data: bytes) -> list[Key]:
    """Return the requested keys written in packed bytes, reading the envelope only.

    Raises
    ------
    UsageError
        The bytes were packed without requested keys.

    Examples
    --------
    >>> import hlg
    >>> packed_keys(hlg.pack({"a": 1, "b": (abs, "a")}, ["b"]))
    ['b']
    """
    keys = read_envelope(data).keys
    if keys is None:
        raise UsageError(
            "these packed bytes name no requested keys; pack with keys=... or pass keys"
        )
    return keys


class PackedGraph(Expr):  # type: ignore[misc]  # dask ships no type information
    """A packed hlg graph as a dask expression; the scheduler unpacks it.

    Parameters
    ----------
    data
        What :func:`hlg.pack` returned.
    keys
        The requested keys: a key, or (nested) lists of keys, the shape the
        results take.
    finalize
        None, or a :class:`~hlg.task.SerializedFunction` that a worker calls on
        the results when the graph is computed (not when it is persisted).

    Examples
    --------
    >>> import hlg
    >>> from operator import add
    >>> expr = PackedGraph(hlg.pack({"x": 1, "y": (add, "x", 1)}, ["y"]), ["y"])
    >>> expr.__dask_keys__()
    ['y']
    >>> sorted(expr.__dask_graph__())  # materialises: the scheduler does this
    ['x', 'y']
    """

    _parameters: ClassVar[list[str]] = ["data", "keys", "finalize"]
    _defaults: ClassVar[dict[str, Any]] = {"finalize": None}
    # The unpacked graph is cached on the expression, and must never travel with it.
    _pickle_functools_cache = False

    def __new__(
        cls,
        data: bytes,
        keys: Any,
        finalize: SerializedFunction | None = None,
        _determ_token: str | None = None,
    ) -> PackedGraph:
        """Check the operands; the expression is named by a token of the bytes."""
        if not isinstance(data, bytes):
            raise UsageError(f"PackedGraph takes the bytes hlg.pack returns; got {type(data)}")
        if finalize is not None and type(finalize) is not SerializedFunction:
            raise UsageError("PackedGraph's finalize is a SerializedFunction or None")
        if _determ_token is None:
            _determ_token = _token(data + (b"" if finalize is None else finalize.data))
        return super().__new__(cls, data, keys, finalize, _determ_token=_determ_token)  # type: ignore[no-any-return]

    @functools.cached_property
    def _funcname(self) -> str:
        return "hlg"

    def __dask_tokenize__(self) -> str:
        """Return the token of the packed bytes (and finalize function)."""
        return self.deterministic_token  # type: ignore[no-any-return]

    def _operands_for_repr(self) -> list[str]:
        data = self.operand("data")
        nkeys = len(list(flatten_keys(self.operand("keys"))))
        return [f"{len(data):,} bytes", counted(nkeys, "key")]

    def __dask_keys__(self) -> list[Any]:
        keys = self.operand("keys")
        return keys if isinstance(keys, list) else [keys]

    @functools.cached_property
    def flat(self) -> FlatGraph:
        """The unpacked graph (computed once, where it is first asked for)."""
        return unpack(self.operand("data"))

    @functools.cached_property
    def _dask_graph(self) -> dict[Key, Any]:
        return to_dask(self.flat)

    def _layer(self) -> dict[Key, Any]:
        return self._dask_graph

    def __dask_graph__(self) -> dict[Key, Any]:
        return self._dask_graph

    def __dask_annotations__(self) -> dict[str, dict[Key, Any]]:
        return {name: dict(by_key) for name, by_key in self.flat.annotations.items()}

    def finalize_compute(self) -> PackedFinalize:
        """Return the expression that collects the results into one (what compute runs)."""
        return PackedFinalize(self, _determ_token=self.deterministic_token)


class PackedFinalize(Expr):  # type: ignore[misc]  # dask ships no type information
    """One task that collects a :class:`PackedGraph`'s results, nested like its keys.

    A worker calls the graph's ``finalize`` function on them, if it has one.
    """

    _parameters: ClassVar[list[str]] = ["graph"]
    _pickle_functools_cache = False

    @functools.cached_property
    def _funcname(self) -> str:
        return "hlg-finalize"

    def _operands_for_repr(self) -> list[str]:
        return [repr(self.operand("graph"))]

    def __dask_keys__(self) -> list[Any]:
        return [self._name]

    def _layer(self) -> dict[Key, Any]:
        graph = self.operand("graph")
        keys = graph.operand("keys")
        arg = _as_dask_list(keys) if isinstance(keys, list) else DaskTaskRef(keys)
        finalize = graph.operand("finalize")
        func = _results if finalize is None else finalize
        return {self._name: DaskTask(self._name, func, arg)}

    def __dask_annotations__(self) -> dict[str, dict[Key, Any]]:
        return self.operand("graph").__dask_annotations__()  # type: ignore[no-any-return]


def _as_dask_list(keys: list[Any]) -> Any:
    return DaskList(*[_as_dask_list(k) if isinstance(k, list) else DaskTaskRef(k) for k in keys])


def _results(nested: Any) -> Any:
    """Return the results of a graph's keys, nested like the keys (the default finalize)."""
    return nested


def _first_then(results: list[Any], finalize: Callable[..., Any] | None) -> Any:
    """Unwrap the one result of a single-key graph, then finalize it."""
    return results[0] if finalize is None else finalize(results[0])


def _then(results: list[Any], finalize: Callable[..., Any] | None) -> Any:
    return results if finalize is None else finalize(results)


class Collection:
    """An hlg graph as a dask collection, computed by the scheduler it is sent to.

    Build one with :func:`collection`. ``client.compute(c)``, ``dask.compute(c)``,
    ``client.persist(c)`` and ``dask.persist(c)`` take it; the graph travels
    packed and is unpacked where dask's scheduler runs.

    Attributes
    ----------
    data : bytes
        The packed graph.
    keys : key or list
        The requested keys, nested as the results will be.
    futures : dict
        After ``persist``: the futures holding the results, by key.
    """

    def __init__(
        self,
        data: bytes,
        keys: Any,
        finalize: SerializedFunction | None = None,
        futures: dict[Key, Any] | None = None,
    ) -> None:
        self.data = data
        self.keys = keys
        self.finalize = finalize
        # Keeps persisted results alive for as long as the collection is.
        self.futures = futures or {}
        self.expr = PackedGraph(data, keys, finalize)

    # Without a distributed client, dask runs the graph on its threaded scheduler.
    __dask_scheduler__ = staticmethod(dask.threaded.get)

    def __dask_graph__(self) -> dict[Key, Any]:
        # Materialises here: dask calls this only where it runs the graph itself.
        return self.expr.__dask_graph__()

    def __dask_keys__(self) -> list[Any]:
        return self.expr.__dask_keys__()

    def __dask_layers__(self) -> tuple[str, ...]:
        return (self.expr._name,)

    def __dask_tokenize__(self) -> str:
        return self.expr.deterministic_token  # type: ignore[no-any-return]

    def __dask_postcompute__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        step = _then if isinstance(self.keys, list) else _first_then
        return step, (self.finalize,)

    def __dask_postpersist__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _rebuild, (self.keys, self.finalize)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("an hlg Collection is not iterable; compute it first")

    def __repr__(self) -> str:
        state = f", {len(self.futures)} persisted" if self.futures else ""
        return f"<hlg.distributed.Collection: {len(self.data):,} bytes{state}>"


def _rebuild(futures: dict[Key, Any], keys: Any, finalize: SerializedFunction | None) -> Collection:
    # A persisted collection: no tasks, every key held remotely by the futures it keeps.
    flat_keys = list(flatten_keys(keys))
    data = pack(HighLevelGraph({}), flat_keys, remote_keys=flat_keys)
    return Collection(data, keys, finalize, dict(futures))


def collection(graph: Any, keys: Any, *, finalize: Callable[..., Any] | None = None) -> Collection:
    """Make an hlg graph a dask collection for ``client.compute``, ``dask.compute``, ``persist``.

    Parameters
    ----------
    graph
        Anything :func:`hlg.pack` takes, or packed bytes.
    keys
        The keys to compute: a key or (nested) lists of keys.
    finalize
        Called with the results, nested like ``keys``, to give the computed
        value. It runs on a worker, as a function of the packed function table;
        the scheduler never loads it. By default the results are returned as
        they are.

    Examples
    --------
    >>> import dask
    >>> from operator import add
    >>> c = collection({"x": 1, "y": (add, "x", 1)}, ["x", "y"], finalize=sum)
    >>> dask.compute(c, scheduler="sync")  # materialised here: no cluster
    (3,)
    """
    if not isinstance(keys, list):
        keys = validate_key(keys)
    flat_keys = [validate_key(k) for k in flatten_keys(keys)]
    data = graph if isinstance(graph, bytes) else pack(graph, flat_keys, cull=False)
    func = None if finalize is None else _serialized(finalize)
    return Collection(data, keys, func)


def _serialized(func: Callable[..., Any]) -> SerializedFunction:
    if not callable(func):
        raise UsageError(f"finalize must be callable; got {type(func).__name__}")
    encoder = Encoder()
    name, data = encoder.functions[encoder.function(func)]
    return SerializedFunction(name, data)
