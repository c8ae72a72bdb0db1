"""hlg nodes as dask task specs: what dask.distributed's scheduler holds and its workers run.

:func:`to_dask` turns a :class:`~hlg.FlatGraph` into a dict of dask task-spec
nodes (subclasses of ``dask._task_spec.GraphNode``), column by column:

- an :class:`~hlg.Alias` becomes dask's ``Alias``;
- a :class:`~hlg.DataNode` holding a plain scalar becomes dask's ``DataNode``;
- every other node is wrapped whole in :class:`HlgNode`, which reports the
  node's dependencies to dask and calls the node on the worker.

Wrapping instead of rewriting keeps hlg's meaning exact (references nested in
containers, nested tasks, arguments decoded only where the task runs) and
costs one small object per task. Only public attributes of hlg nodes are
read. A wrapped task's function travels as the bytes of the packed function
table (:class:`~hlg.task.SerializedFunction`), which each worker process
deserialises once, however many tasks call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dask._task_spec import Alias as DaskAlias
from dask._task_spec import DataNode as DaskDataNode
from dask._task_spec import GraphNode as DaskGraphNode
from dask._task_spec import TaskRef as DaskTaskRef

from hlg._gc import gc_paused
from hlg.errors import UsageError
from hlg.keys import Key
from hlg.materialize.flatgraph import FlatGraph
from hlg.task import Alias, DataNode, GraphNode, Task

__all__ = ["HlgNode", "RenamedHlgNode", "to_dask"]

# DataNode values dask may hold as they are: nothing in them is decoded on a worker.
_PLAIN_DATA: frozenset[type] = frozenset({int, float, str, bytes, bool, type(None), complex})


class HlgNode(DaskGraphNode):  # type: ignore[misc]  # dask ships no type information
    """One hlg node under dask's task-spec interface: dask schedules it, hlg runs it.

    Parameters
    ----------
    key
        The task's key.
    node
        The hlg :class:`~hlg.Task` (or other node) computing it.

    Examples
    --------
    >>> from hlg import Task, TaskRef
    >>> spec = HlgNode("y", Task(divmod, TaskRef("x"), 3))
    >>> spec.dependencies, spec({"x": 7})
    (frozenset({'x'}), (2, 1))
    """

    __slots__ = ("node",)
    node: GraphNode

    def __init__(self, key: Key, node: GraphNode) -> None:
        # Three slot writes and nothing else: to_dask makes one of these per task.
        self.key = key  # type: ignore[misc]  # a slot of dask's GraphNode
        self.node = node
        self._dependencies = node.dependencies  # type: ignore[misc]  # dask's slot

    def __call__(self, values: Mapping[Key, Any] = ()) -> Any:  # type: ignore[assignment]
        """Compute the node from its dependencies' ``values`` (on a worker)."""
        try:
            return self.node(values)
        except Exception as err:
            err.add_note(f"hlg: raised while computing key {self.key!r}")
            raise

    def __reduce__(self) -> tuple[Any, ...]:
        return (HlgNode, (self.key, self.node))

    def copy(self) -> HlgNode:
        """Return a shallow copy."""
        return HlgNode(self.key, self.node)

    def substitute(self, subs: dict[Key, Any], key: Key | None = None) -> HlgNode:
        """Rename dependencies (``old key -> new key``) and, with ``key``, the task itself.

        Raises
        ------
        UsageError
            ``subs`` replaces a dependency by a task instead of a key: inlining
            into an hlg node is not supported.
        """
        renamed = dict(self._renamed())
        changed = False
        for dep in self._dependencies & subs.keys():
            new = subs[dep]
            if isinstance(new, DaskTaskRef):
                new = new.key
            if isinstance(new, DaskGraphNode):
                raise UsageError(
                    f"task {self.key!r}: dask asked to inline a task for dependency {dep!r}; "
                    "hlg nodes take renamed keys only"
                )
            if new != dep:
                original = renamed.pop(dep, dep)
                if new != original:
                    renamed[new] = original
                changed = True
        if not changed and (key is None or key == self.key):
            return self
        key = self.key if key is None else key
        return RenamedHlgNode(key, self.node, renamed) if renamed else HlgNode(key, self.node)

    def _renamed(self) -> dict[Key, Key]:
        return {}

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("hlg", self.key, repr(self.node), tuple(sorted(self._renamed().items())))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HlgNode)
            and type(other) is type(self)
            and other.key == self.key
            and other.node == self.node
            and other._renamed() == self._renamed()
        )

    def __hash__(self) -> int:
        return hash((HlgNode, self.key))

    def __repr__(self) -> str:
        return f"<HlgNode {self.key!r} {self.node!r}>"


class RenamedHlgNode(HlgNode):
    """An :class:`HlgNode` whose dependencies dask renamed (see :meth:`HlgNode.substitute`).

    ``renamed`` maps each new dependency key to the key the hlg node was built with.
    """

    __slots__ = ("renamed",)
    # New dependency key -> the key the node knows it by. Never empty.
    renamed: dict[Key, Key]

    def __init__(self, key: Key, node: GraphNode, renamed: dict[Key, Key]) -> None:
        super().__init__(key, node)
        self.renamed = renamed
        back = {old: new for new, old in renamed.items()}
        deps = frozenset(back.get(d, d) for d in node.dependencies)
        self._dependencies = deps  # type: ignore[misc]  # dask's slot

    def __call__(self, values: Mapping[Key, Any] = ()) -> Any:  # type: ignore[assignment]
        """Compute the node, giving it the renamed dependencies under its own keys."""
        renamed = self.renamed
        return super().__call__({renamed.get(k, k): v for k, v in dict(values).items()})

    def __reduce__(self) -> tuple[Any, ...]:
        return (RenamedHlgNode, (self.key, self.node, self.renamed))

    def copy(self) -> RenamedHlgNode:
        """Return a shallow copy."""
        return RenamedHlgNode(self.key, self.node, dict(self.renamed))

    def _renamed(self) -> dict[Key, Key]:
        return self.renamed


def to_dask(flat: FlatGraph) -> dict[Key, Any]:
    """Turn a flat graph into dask task specs, ready for dask.distributed's scheduler.

    Parameters
    ----------
    flat
        What :func:`hlg.unpack` returned.

    Returns
    -------
    dict
        Key to a ``dask._task_spec`` node: ``Alias``, ``DataNode`` for plain
        literal values, and :class:`HlgNode` for everything else. Each node's
        ``dependencies`` are the hlg node's.

    Examples
    --------
    >>> import hlg
    >>> from operator import add
    >>> flat = hlg.unpack(hlg.pack({"x": 1, "y": (add, "x", 10), "z": "y"}, "z"))
    >>> dsk = to_dask(flat)
    >>> [type(dsk[k]).__name__ for k in ("x", "y", "z")]
    ['DataNode', 'HlgNode', 'Alias']
    >>> dsk["y"]({"x": 1})
    11
    """
    if not isinstance(flat, FlatGraph):
        raise UsageError(
            f"to_dask takes the FlatGraph that hlg.unpack returns; got {type(flat).__name__}"
        )
    tasks = flat.tasks
    with gc_paused():  # a million new objects, none of them garbage
        # Column-wise: wrap every node in one pass driven by C (dict, zip, map), then
        # replace the few nodes that have a native dask form.
        out: dict[Key, Any] = dict(zip(tasks, map(HlgNode, tasks, tasks.values()), strict=True))
        for key, node in tasks.items():
            t = type(node)
            if t is Task:
                continue
            if t is Alias:
                out[key] = DaskAlias(key, node.target)  # type: ignore[attr-defined]
            elif t is DataNode and type(node.value) in _PLAIN_DATA:  # type: ignore[attr-defined]
                out[key] = DaskDataNode(key, node.value)  # type: ignore[attr-defined]
    return out
