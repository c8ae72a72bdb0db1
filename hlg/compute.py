"""Computing and persisting hlg collections: the collection protocol.

A collection (a chunked array, a partitioned table) is computable when it
defines four methods; the fifth makes it persistable:

``__hlg_graph__()``
    its :class:`~hlg.HighLevelGraph`;
``__hlg_layers__()``
    the names of the layers holding its outputs;
``__hlg_keys__()``
    its output keys: one key, or nested lists of keys (a 2-d array's blocks
    as a list of rows);
``__hlg_postcompute__()``
    ``(finalize, extra)``: the result is ``finalize(values, *extra)``, where
    ``values`` are the keys' values nested the same way, in lists;
``__hlg_postpersist__()``
    ``(rebuild, extra)``: the persisted collection is ``rebuild(graph, *extra)``,
    where ``graph`` holds the computed values under the same keys, in layers of
    the same names.

:func:`compute` runs the graphs of several collections as one graph, so shared
inputs are computed once; :func:`persist` does the same and returns
collections whose graphs hold the values. A collection's ``compute`` method is
usually ``return hlg.compute(self, **kwargs)[0]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from hlg.errors import UsageError, article
from hlg.execute.client import Client
from hlg.execute.local import get
from hlg.graph import HighLevelGraph, HlgCollection, flatten_keys
from hlg.keys import Key
from hlg.layers.materialized import MaterializedLayer
from hlg.optimize import optimize
from hlg.task import DataNode, GraphNode

__all__ = ["Computable", "compute", "is_computable", "persist"]


@runtime_checkable
class Computable(HlgCollection, Protocol):
    """A collection :func:`compute` can compute (``__hlg_postpersist__`` is optional)."""

    def __hlg_keys__(self) -> Any:
        """Return the output keys: a key, or nested lists of keys."""

    def __hlg_postcompute__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """Return ``(finalize, extra)``; the result is ``finalize(values, *extra)``."""


def is_computable(obj: object) -> bool:
    """Return whether ``obj`` takes part in :func:`compute` (has ``__hlg_keys__``).

    Examples
    --------
    >>> is_computable(42), is_computable(HighLevelGraph.from_dict({"x": 1}))
    (False, False)
    """
    return callable(getattr(obj, "__hlg_keys__", None))


def compute(
    *args: Any,
    scheduler: str | Client | Callable[..., Any] = "threads",
    optimize_graph: bool = True,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Compute several collections at once, and return their results.

    Parameters
    ----------
    *args
        Collections (see the module docstring); any other value is returned as
        it is.
    scheduler
        ``"sync"``, ``"threads"`` or ``"processes"``; a :class:`~hlg.Client`;
        or a function called as ``scheduler(graph, keys, **kwargs)`` like
        :func:`hlg.get`.
    optimize_graph
        Cull the merged graph to the requested keys and fuse Blockwise chains
        (:func:`hlg.optimize`) first.
    **kwargs
        Passed on to the scheduler (``num_workers``, ``callbacks``, ...).

    Returns
    -------
    tuple
        One result per argument.

    Raises
    ------
    UsageError
        A collection has ``__hlg_keys__`` but not the rest of the protocol.

    Examples
    --------
    >>> from operator import add
    >>> class Total:
    ...     def __init__(self, graph, key):
    ...         self.graph, self.key = graph, key
    ...     def __hlg_graph__(self):
    ...         return self.graph
    ...     def __hlg_layers__(self):
    ...         return tuple(self.graph.layers)
    ...     def __hlg_keys__(self):
    ...         return [self.key]
    ...     def __hlg_postcompute__(self):
    ...         return sum, ()
    >>> graph = HighLevelGraph.from_dict({"x": 1, "y": (add, "x", 41)}, name="t")
    >>> compute(Total(graph, "y"), "not a collection", scheduler="sync")
    (42, 'not a collection')
    """
    collections = [a for a in args if is_computable(a)]
    if not collections:
        return args
    graph, keys = _merged(collections, optimize_graph)
    values = iter(_run(scheduler, graph, keys, kwargs))
    results = []
    for arg in args:
        if not is_computable(arg):
            results.append(arg)
            continue
        finalize, extra = _part(arg, "__hlg_postcompute__")
        try:
            results.append(finalize(_as_lists(next(values)), *extra))
        except Exception as err:
            err.add_note(f"hlg: raised while finalizing {article(type(arg).__name__)}")
            raise
    return tuple(results)


def persist(
    *args: Any,
    scheduler: str | Client | Callable[..., Any] = "threads",
    optimize_graph: bool = True,
    **kwargs: Any,
) -> tuple[Any, ...]:
    """Compute collections and return equal ones whose graphs hold the computed values.

    Takes the same arguments as :func:`compute`. Each collection's graph is
    replaced by one holding its output keys' values (a
    :class:`~hlg.MaterializedLayer` per output layer, of
    :class:`~hlg.DataNode` values), so computing it again runs no task of the
    old graph.

    Raises
    ------
    UsageError
        A collection lacks ``__hlg_postpersist__``.

    Examples
    --------
    >>> from operator import add
    >>> class Value:
    ...     def __init__(self, graph):
    ...         self.graph = graph
    ...     def __hlg_graph__(self):
    ...         return self.graph
    ...     def __hlg_layers__(self):
    ...         return ("v",)
    ...     def __hlg_keys__(self):
    ...         return ("v", 0)
    ...     def __hlg_postcompute__(self):
    ...         return (lambda value: value), ()
    ...     def __hlg_postpersist__(self):
    ...         return Value, ()
    >>> v = Value(HighLevelGraph.from_dict({"x": 1, ("v", 0): (add, "x", 1)}, name="v"))
    >>> (p,) = persist(v, scheduler="sync")
    >>> p.graph[("v", 0)], compute(p, scheduler="sync")
    (DataNode(2), (2,))
    """
    collections = [a for a in args if is_computable(a)]
    if not collections:
        return args
    rebuilds = {id(c): _part(c, "__hlg_postpersist__") for c in collections}
    graph, keys = _merged(collections, optimize_graph)
    values = iter(_run(scheduler, graph, keys, kwargs))
    results = []
    for arg in args:
        if not is_computable(arg):
            results.append(arg)
            continue
        arg_keys = arg.__hlg_keys__()
        flat = dict(
            zip(flatten_keys(arg_keys), _flatten_values(arg_keys, next(values)), strict=True)
        )
        rebuild, extra = rebuilds[id(arg)]
        results.append(rebuild(_held(arg, flat), *extra))
    return tuple(results)


def _merged(collections: list[Any], optimize_graph: bool) -> tuple[HighLevelGraph, list[Any]]:
    for c in collections:
        if not isinstance(c, HlgCollection):
            raise UsageError(
                f"{type(c).__name__} has __hlg_keys__ but not __hlg_graph__ and "
                "__hlg_layers__; a collection defines all of them"
            )
    graph = HighLevelGraph.merge(*[c.__hlg_graph__() for c in collections])
    keys = [c.__hlg_keys__() for c in collections]
    if optimize_graph:
        graph = optimize(graph, keys)
    return graph, keys


def _run(
    scheduler: str | Client | Callable[..., Any],
    graph: HighLevelGraph,
    keys: list[Any],
    kwargs: dict[str, Any],
) -> Any:
    if isinstance(scheduler, str):
        return get(graph, keys, scheduler=scheduler, **kwargs)
    if isinstance(scheduler, Client):
        return scheduler.compute(graph, keys, **kwargs)
    if callable(scheduler):
        return scheduler(graph, keys, **kwargs)
    raise UsageError(
        f"scheduler must be 'sync', 'threads', 'processes', an hlg.Client or a function "
        f"like hlg.get; got {type(scheduler).__name__}"
    )


def _part(collection: Any, name: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    method = getattr(collection, name, None)
    if method is None:
        raise UsageError(
            f"{type(collection).__name__} has no {name}(); a collection returns "
            "(function, extra arguments) from it (see hlg.compute)"
        )
    func, extra = method()
    return func, tuple(extra)


def _as_lists(values: Any) -> Any:
    # hlg.get nests values in tuples where the keys were nested in lists.
    if type(values) is tuple:
        return [_as_lists(v) for v in values]
    return values


def _flatten_values(keys: Any, values: Any) -> list[Any]:
    if type(keys) is not list:
        return [values]
    out: list[Any] = []
    for k, v in zip(keys, values, strict=True):
        out.extend(_flatten_values(k, v))
    return out


def _held(collection: Any, values: dict[Key, Any]) -> HighLevelGraph:
    """Return a graph holding ``values``, one layer per output layer of ``collection``."""
    layers = collection.__hlg_graph__().layers
    names = list(collection.__hlg_layers__())
    if not names:
        raise UsageError(
            f"{type(collection).__name__}.__hlg_layers__() names no layer; a collection "
            "names the layers that hold its outputs"
        )
    outputs = [layers[n] for n in names if n in layers]
    parts: dict[str, dict[Key, GraphNode]] = {name: {} for name in names}
    for key, value in values.items():
        layer = next((lyr for lyr in outputs if key in lyr), None)
        parts[layer.name if layer is not None else names[0]][key] = DataNode(value)
    return HighLevelGraph(
        {name: MaterializedLayer(tasks, name=name) for name, tasks in parts.items() if tasks}
    )
