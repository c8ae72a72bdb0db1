"""Converting dask's task-spec nodes (``dask._task_spec``) into hlg nodes, once.

Since 2024.12 dask builds graphs from node objects instead of tuples. Each
converts to the hlg node that computes the same value:

============================  =================================================
dask node                     hlg node
============================  =================================================
``Task(key, f, *a, **kw)``    ``Task(f, *a, **kw)``, arguments converted
``DataNode(key, v)``          ``DataNode(v)`` (inside arguments: ``v`` itself)
``Alias(key, target)``        ``Alias(target)`` (inside arguments: a reference)
``TaskRef(k)``                ``TaskRef(k)`` (as a whole value: ``Alias(k)``)
``List``/``Tuple``            a list/tuple of converted items
``Set``                       a nested task building a set of converted items
``Dict``                      a dict of converted values
fused ``_execute_subgraph``   a task calling a :class:`Subgraph` of hlg nodes
============================  =================================================

dask evaluates nodes only where they stand as a task's argument, keyword
argument or container item; a plain list or dict holding nodes is passed to the
function as it is. The conversion follows the same rule, so it walks exactly
what dask walks and never looks inside literal data.

A fused task (dask's ``Task.fuse``: ``_execute_subgraph(inner, outkey, inkeys,
*deps)``) becomes a task calling a :class:`Subgraph`, which holds the inner
nodes converted and topologically ordered once; running it is one loop over
them, with no per-call graph analysis.

Nothing here imports dask: a dask node exists only if ``dask._task_spec`` was
imported already, so :func:`task_spec` looks it up in ``sys.modules``. Node
types dask may add later (any other subclass of its ``GraphNode``) raise
:class:`~hlg.TaskSpecError` instead of travelling on as data. A subclass of
its ``TaskRef`` (a dask.distributed ``Future``) becomes a :class:`~hlg.Ref`
to its key: data held remotely, whose key travels when the graph is packed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from hlg.errors import CycleError, TaskSpecError, UsageError, counted
from hlg.keys import Key
from hlg.task import Alias, DataNode, GraphNode, Ref, Task, TaskRef
from hlg.toposort import toposort

__all__ = [
    "DASK_SCHEDULER_KWARGS",
    "MAX_DEPTH",
    "Subgraph",
    "check_scheduler_kwargs",
    "convert_dask_node",
    "dask_graph",
    "is_dask_node",
    "task_spec",
]

#: How deeply dask nodes may nest (containers in tasks, fused graphs in fused graphs).
MAX_DEPTH = 200

#: Keyword arguments dask's schedulers take that :func:`hlg.get` accepts and ignores,
#: each with the reason (``num_workers`` and ``rerun_exceptions_locally`` are honoured).
DASK_SCHEDULER_KWARGS: dict[str, str] = {
    "cache": "hlg keeps results itself and releases them as soon as they are used",
    "pool": "hlg runs its own threads or worker processes",
    "chunksize": "hlg hands tasks to workers one at a time",
    "optimize_graph": "dask has optimised the graph before it calls the scheduler",
    "get_id": "worker ids are hlg's own",
    "pack_exception": "exceptions are re-raised with their type, traceback and key",
    "raise_exception": "exceptions are re-raised with their type, traceback and key",
    "dumps": "hlg serialises with cloudpickle",
    "loads": "hlg serialises with cloudpickle",
    "func_dumps": "hlg serialises with cloudpickle",
    "func_loads": "hlg serialises with cloudpickle",
    "initializer": "hlg starts its worker processes itself",
}


def task_spec() -> ModuleType | None:
    """Return ``dask._task_spec`` if it is imported, else None; never imports it.

    Examples
    --------
    >>> import sys
    >>> (task_spec() is None) == ("dask._task_spec" not in sys.modules)
    True
    """
    return sys.modules.get("dask._task_spec")


def is_dask_node(obj: object) -> bool:
    """Return whether ``obj`` is one of dask's task-spec nodes or references.

    Examples
    --------
    >>> is_dask_node(("x", 0)), is_dask_node(Task(len, "abc"))
    (False, False)
    """
    converter = _converter()
    return converter is not None and isinstance(obj, converter.roots)


def convert_dask_node(node: Any) -> GraphNode:
    """Convert one of dask's nodes, the value of a graph's key, to an hlg node.

    Parameters
    ----------
    node
        A ``dask._task_spec`` ``Task``, ``DataNode``, ``Alias``, ``List``,
        ``Tuple``, ``Set``, ``Dict`` or ``TaskRef``.

    Returns
    -------
    GraphNode
        An hlg :class:`~hlg.Task`, :class:`~hlg.DataNode` or :class:`~hlg.Alias`
        with the same dependencies, computing the same value.

    Raises
    ------
    TaskSpecError
        ``node`` is not a dask node, or holds a node type hlg does not know
        (a later dask's), or nests deeper
        than :data:`MAX_DEPTH`.

    Examples
    --------
    >>> from dask._task_spec import Task as DaskTask, TaskRef as DaskRef, List
    >>> node = convert_dask_node(DaskTask("z", max, List(DaskRef("x"), 3), default=0))
    >>> node, sorted(node.dependencies)
    (Task(max, [TaskRef('x'), 3], default=0), ['x'])
    >>> node({"x": 7})
    7
    """
    converter = _converter()
    if converter is None or not isinstance(node, converter.roots):
        raise TaskSpecError(f"expected one of dask's task-spec nodes; got {type(node).__name__}")
    return converter.node(node, 0)


class Subgraph:
    """A fused dask task's inner graph, converted to hlg nodes and ordered once.

    Calling it with the values of ``inputs`` runs the nodes in order and returns
    the value of ``output``.

    Parameters
    ----------
    steps
        ``(key, node)`` pairs in an order where each node follows its dependencies.
    output
        The key whose value is returned.
    inputs
        The keys the positional arguments' values are known under.

    Examples
    --------
    >>> from operator import add
    >>> sub = Subgraph([("y", Task(add, TaskRef("x"), 1)), ("z", Task(abs, TaskRef("y")))],
    ...                "z", ("x",))
    >>> sub(-5)
    4
    """

    __slots__ = ("__name__", "inputs", "output", "steps")

    def __init__(
        self, steps: list[tuple[Key, GraphNode]], output: Key, inputs: tuple[Key, ...]
    ) -> None:
        self.steps = steps
        self.output = output
        self.inputs = inputs
        last = steps[-1][1] if steps else None
        # Shown as the task's function name: the function that makes the output.
        self.__name__ = last.func_name if isinstance(last, Task) else "subgraph"

    def __call__(self, *values: Any) -> Any:
        """Run the inner nodes on the inputs' ``values``; return the output's value."""
        known = dict(zip(self.inputs, values, strict=True))
        for key, node in self.steps:
            known[key] = node(known)
        return known[self.output]

    def __repr__(self) -> str:
        return f"<Subgraph {self.__name__}: {counted(len(self.steps), 'task')} -> {self.output!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Subgraph, (self.steps, self.output, self.inputs))


def dask_graph(obj: Any) -> Mapping[Any, Any] | None:
    """Return the task graph of a dask collection or expression, or None for anything else.

    Whatever has ``__dask_graph__`` and is neither a mapping nor an hlg
    collection counts: ``dask.compute`` hands schedulers an expression, and
    :func:`hlg.get` also takes dask collections directly.

    Examples
    --------
    >>> dask_graph({"x": 1}) is None
    True
    """
    if isinstance(obj, Mapping) or hasattr(obj, "__hlg_graph__"):
        return None
    method = getattr(obj, "__dask_graph__", None)
    if method is None or not callable(method):
        return None
    graph = method()
    if not isinstance(graph, Mapping):
        raise TaskSpecError(
            f"{type(obj).__name__}.__dask_graph__() returned {type(graph).__name__}; "
            "expected a mapping of keys to tasks"
        )
    return graph


def check_scheduler_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Accept the keyword arguments dask passes to schedulers; refuse any other.

    Raises
    ------
    UsageError
        A name is not among :data:`DASK_SCHEDULER_KWARGS`.

    Examples
    --------
    >>> check_scheduler_kwargs({"cache": {}, "optimize_graph": True})
    >>> check_scheduler_kwargs({"num_wrokers": 2})
    Traceback (most recent call last):
    hlg.errors.UsageError: hlg.get got an unexpected keyword argument 'num_wrokers'; ...
    """
    for name in kwargs:
        if name not in DASK_SCHEDULER_KWARGS:
            raise UsageError(
                f"hlg.get got an unexpected keyword argument {name!r}; it takes scheduler, "
                "num_workers, callbacks, rerun_exceptions_locally, and ignores these of "
                f"dask's: {', '.join(sorted(DASK_SCHEDULER_KWARGS))}"
            )


# The converter for the dask that is imported, made when first needed (a benign race:
# two threads may each make one, and either is right).
_CONVERTERS: list[_Converter] = []


def _converter() -> _Converter | None:
    if _CONVERTERS:
        return _CONVERTERS[0]
    spec = task_spec()
    if spec is None:
        return None
    converter = _Converter(spec)
    _CONVERTERS.append(converter)
    return converter


class _Converter:
    """dask's node types, looked up once, and the conversion of each."""

    def __init__(self, spec: ModuleType) -> None:
        self.spec = spec
        # The base types every dask node and reference derives from.
        self.roots: tuple[type, ...] = (spec.GraphNode, spec.TaskRef)
        self.subgraph_func = spec._execute_subgraph
        self.containers: dict[type, Callable[[list[Any]], Any]] = {
            spec.List: list,
            spec.Tuple: tuple,
        }
        self.known = {spec.Task, spec.DataNode, spec.Alias, spec.TaskRef, spec.Set, spec.Dict}
        self.known.update(self.containers)

    def node(self, obj: Any, depth: int) -> GraphNode:
        """Convert a whole graph value (a key's node)."""
        spec = self.spec
        t = self._check(obj, depth)
        if t is spec.DataNode:
            return DataNode(obj.value)
        if t is spec.Alias:
            return Alias(obj.target)
        if t is spec.TaskRef:
            return Alias(obj.key)
        if t is Ref:
            return Task(_identity, Ref(obj.key))
        if t is spec.Task:
            return self.task(obj, depth)
        # A container as a whole value: a task that builds it.
        value = self.arg(obj, depth)
        if isinstance(value, Task):
            return value
        return Task(_identity, value)

    def task(self, obj: Any, depth: int) -> Task:
        if obj.func is self.subgraph_func:
            return self.subgraph(obj, depth)
        # Most arguments are literals: test for a node here, without a call per argument.
        roots, arg, inner = self.roots, self.arg, depth + 1
        args = [arg(a, inner) if isinstance(a, roots) else a for a in obj.args]
        kwargs = obj.kwargs
        if kwargs:
            kwargs = {k: arg(v, inner) if isinstance(v, roots) else v for k, v in kwargs.items()}
            return Task(obj.func, *args, **kwargs)
        return Task(obj.func, *args)

    def arg(self, value: Any, depth: int) -> Any:
        """Convert what dask evaluates in place: an argument or a container's item."""
        if not isinstance(value, self.roots):
            return value
        obj: Any = value
        spec = self.spec
        t = self._check(obj, depth)
        if t is spec.TaskRef:
            return TaskRef(obj.key)
        if t is Ref:
            return Ref(obj.key)
        if t is spec.DataNode:
            return obj.value
        if t is spec.Alias:
            return TaskRef(obj.target)
        if t is spec.Task:
            return self.task(obj, depth)
        items = [self.arg(a, depth + 1) for a in obj.args]
        build = self.containers.get(t)
        if build is not None:
            return build(items)
        if t is spec.Set:
            return Task(set, items)
        # Dict: its items alternate keys and values.
        pairs = list(zip(items[::2], items[1::2], strict=True))
        if any(isinstance(k, GraphNode | TaskRef) for k, _ in pairs):
            return Task(dict, [list(p) for p in pairs])
        return dict(pairs)

    def subgraph(self, obj: Any, depth: int) -> Task:
        args = obj.args
        if (
            len(args) < 3
            or not isinstance(args[0], Mapping)
            or not isinstance(args[2], tuple | list)
        ):
            raise TaskSpecError(
                "a fused dask task (_execute_subgraph) holds (graph, output key, input keys, "
                f"*inputs); got ({', '.join(type(a).__name__ for a in args)})"
            )
        inner, output, inputs, *deps = args
        nodes = {k: self.node(v, depth + 1) for k, v in inner.items()}
        if output not in nodes:
            raise TaskSpecError(
                f"a fused dask task's output key {output!r} is not in its inner graph"
            )
        return Task(
            Subgraph(_ordered(nodes), output, tuple(inputs)),
            *[self.arg(d, depth + 1) for d in deps],
        )

    def _check(self, obj: Any, depth: int) -> type:
        t = type(obj)
        if t not in self.known:
            if isinstance(obj, self.spec.TaskRef):
                # A dask.distributed Future: data held remotely under its key.
                return Ref
            raise TaskSpecError(
                f"dask's task-spec node type {t.__module__}.{t.__name__} is not one hlg "
                "converts (Task, DataNode, Alias, TaskRef, List, Tuple, Set, Dict); "
                "compute this graph with dask's scheduler, or use a dask hlg supports"
            )
        if depth > MAX_DEPTH:
            raise TaskSpecError(
                f"dask nodes nest more than {MAX_DEPTH} levels deep; split the computation "
                "into several keys"
            )
        return t


def _ordered(nodes: dict[Key, GraphNode]) -> list[tuple[Key, GraphNode]]:
    """Return ``nodes`` as (key, node) pairs, each after the nodes it depends on."""
    items = list(nodes.items())
    # dask's fused graphs are usually in order already, or in reverse order: check both
    # in one pass each before sorting.
    for candidate in (items, items[::-1]):
        done: set[Key] = set()
        for key, node in candidate:
            if any(d in nodes and d not in done for d in node.dependencies):
                break
            done.add(key)
        else:
            return candidate
    try:
        order = toposort({k: n.dependencies for k, n in items})
    except CycleError as err:
        raise TaskSpecError(f"a fused dask task's inner graph has a cycle: {err}") from err
    return [(k, nodes[k]) for k in order]


def _identity(value: Any) -> Any:
    return value
