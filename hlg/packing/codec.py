"""The msgpack codec: values, tasks and layer states to msgpack and back.

msgpack has one array type; hlg needs two. Tuples (and so tuple keys) are
plain msgpack arrays, and decode as tuples; lists are the extension type
``LIST``. Everything else that msgpack cannot carry is an extension type too:

======  ==========  ====================================================
code    name        payload (itself msgpack)
======  ==========  ====================================================
1       LIST        array of encoded items
2       REF         a key: a reference nested inside an argument
3       TASK        a task node, as below: a task nested inside an argument
4       FUNC        int: index into the envelope's function table
5       OPAQUE      ``[serializer name, payload]``: decoded only by a worker
6       SET         array of encoded items
7       FROZENSET   array of encoded items
======  ==========  ====================================================

A task node is the array ``[0, func, args, refs, kwargs, deep]``: ``func``
indexes the function table; ``args`` are the positional arguments, where each
position listed in ``refs`` holds a bare key standing for that key's value;
``kwargs`` is a map or nil; ``deep`` is true when arguments hold REF, TASK,
FUNC or OPAQUE values that the worker resolves recursively (``refs`` is then
empty). A data node is ``[1, value, deep]`` and an alias ``[2, key]``.

The :class:`Decoder` never unpickles: functions become
:class:`~hlg.task.SerializedFunction` and OPAQUE values :class:`~hlg.task.Opaque`,
both decoded only where a task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from hlg.errors import LayerStateError, PackError, UnpackError
from hlg.keys import Key, is_key
from hlg.task import (
    Alias,
    DataNode,
    GraphNode,
    Opaque,
    SerializedFunction,
    Task,
    TaskRef,
    _callable_name,
    _scan,
)

__all__ = ["Decoder", "Encoder", "PreEncoded"]

LIST, REF, TASK, FUNC, OPAQUE, SET, FROZENSET = range(1, 8)
NODE_TASK, NODE_DATA, NODE_ALIAS = 0, 1, 2

# Exact types msgpack carries as they are (int is checked for range separately).
_SCALARS: frozenset[type] = frozenset({str, float, bool, type(None), bytes})
_INT_MIN, _INT_END = -(1 << 63), 1 << 64
_EMPTY: frozenset[Key] = frozenset()


def packb(obj: Any) -> bytes:
    """Encode msgpack-native ``obj`` (tuples as arrays, ExtType objects as they are)."""
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


class PreEncoded:
    """A state already in wire form, passed through :meth:`Encoder.state` untouched."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Encoder:
    """Turns layer states, tasks and values into msgpack-native objects.

    One encoder packs one envelope: it owns the function table, in which each
    distinct callable is serialised once.

    Examples
    --------
    >>> enc = Encoder()
    >>> enc.function(len) == enc.function(len), len(enc.functions)
    (True, 1)
    >>> enc.value(("x", 0)), type(enc.value([1, 2])).__name__
    (('x', 0), 'ExtType')
    """

    def __init__(self) -> None:
        # Function table: (name, cloudpickle bytes), in index order.
        self.functions: list[tuple[str, bytes]] = []
        # id(function) -> index; ``_alive`` keeps those objects alive so ids stay unique.
        self._by_id: dict[int, int] = {}
        self._alive: list[Any] = []
        # Serialised bytes -> index, so equal functions from distinct objects share one entry.
        self._by_bytes: dict[bytes, int] = {}
        # Keys of data held remotely that encoded values refer to.
        self.remote_keys: set[Key] = set()
        # Set when the value being encoded needs resolving on the worker.
        self._deep = False

    # -- functions -----------------------------------------------------------------------

    def function(self, func: Any) -> int:
        """Return the function table index of ``func``, serialising it on first sight."""
        index = self._by_id.get(id(func))
        if index is not None:
            return index
        if type(func) is SerializedFunction:
            name, data = func.name, func.data
        else:
            name, data = _callable_name(func), _pickle(func)
        index = self._by_bytes.get(data)
        if index is None:
            index = len(self.functions)
            self.functions.append((name, data))
            self._by_bytes[data] = index
        self._by_id[id(func)] = index
        self._alive.append(func)
        return index

    # -- values --------------------------------------------------------------------------

    def value(self, obj: Any) -> Any:
        """Encode an argument value; lists, sets, references and other objects become ExtTypes."""
        t = type(obj)
        if t in _SCALARS:
            return obj
        if t is int:
            return obj if _INT_MIN <= obj < _INT_END else self._opaque(obj)
        if t is tuple:
            for item in obj:
                if type(item) not in _SCALARS and type(item) is not int:
                    return tuple([self.value(x) for x in obj])
            return obj
        if t is list:
            return msgpack.ExtType(LIST, packb(tuple([self.value(x) for x in obj])))
        if t is dict:
            return {self.value(k): self.value(v) for k, v in obj.items()}
        if t is set or t is frozenset:
            code = SET if t is set else FROZENSET
            return msgpack.ExtType(code, packb(tuple([self.value(x) for x in obj])))
        if t is TaskRef:
            self._deep = True
            return msgpack.ExtType(REF, packb(obj.key))
        if t is Task:
            self._deep = True
            return msgpack.ExtType(TASK, packb(self._task(obj)))
        if t is Alias:
            self._deep = True
            return msgpack.ExtType(REF, packb(obj.target))
        if t is DataNode:
            return self.value(obj.value)
        if t is Opaque:
            self._deep = True
            return msgpack.ExtType(OPAQUE, packb((obj.serializer, obj.payload)))
        ref_key = getattr(obj, "__hlg_remote_key__", None)
        if ref_key is not None:
            # Data held remotely (a scattered Ref): ship its key, never its value.
            self.remote_keys.add(ref_key)
            self._deep = True
            return msgpack.ExtType(REF, packb(ref_key))
        if t is SerializedFunction or (callable(obj) and not _is_data(obj)):
            self._deep = True
            return msgpack.ExtType(FUNC, packb(self.function(obj)))
        return self._opaque(obj)

    def _opaque(self, obj: Any) -> msgpack.ExtType:
        from hlg.packing.serializers import dumps

        self._deep = True
        name, payload = dumps(obj)
        return msgpack.ExtType(OPAQUE, packb((name, payload)))

    # -- tasks ---------------------------------------------------------------------------

    def _task(self, task: Task) -> tuple[Any, ...]:
        func = self.function(task.func)
        outer, self._deep = self._deep, False
        value = self.value
        args = tuple([a if type(a) in _SCALARS else value(a) for a in task._args])
        kwargs = {k: value(v) for k, v in task.kwargs.items()} if task.kwargs else None
        refs = task._refs
        deep = task._deep or self._deep
        if deep and refs:
            # Payloads need the recursive pass, which also resolves references.
            args = tuple(
                msgpack.ExtType(REF, packb(a)) if i in refs else a for i, a in enumerate(args)
            )
            refs = ()
        self._deep = outer or deep
        return (NODE_TASK, func, args, refs, kwargs, deep)

    def node(self, node: GraphNode, *, layer: str, key: Key) -> tuple[Any, ...]:
        """Encode one graph node in wire form."""
        t = type(node)
        if t is Task:
            return self._task(node)  # type: ignore[arg-type]
        if t is DataNode:
            self._deep = False
            value = self.value(node.value)  # type: ignore[attr-defined]
            return (NODE_DATA, value, self._deep)
        if t is Alias:
            return (NODE_ALIAS, node.target)  # type: ignore[attr-defined]
        raise PackError(
            f"layer {layer!r}: key {key!r} holds {type(node).__name__}; layers map keys to "
            "Task, DataNode or Alias"
        )

    def tasks(self, tasks: Mapping[Key, GraphNode], *, layer: str) -> PreEncoded:
        """Encode a layer's tasks as a state: ``{"tasks": {key: node}}``."""
        node = self.node
        return PreEncoded(
            {"tasks": {key: node(n, layer=layer, key=key) for key, n in tasks.items()}}
        )

    # -- states --------------------------------------------------------------------------

    def state(self, obj: Any, *, layer: str) -> Any:
        """Check and encode a layer state: msgpack-native values, with lists kept as lists."""
        t = type(obj)
        if t in _SCALARS:
            return obj
        if t is int:
            if _INT_MIN <= obj < _INT_END:
                return obj
        elif t is tuple:
            return tuple([self.state(x, layer=layer) for x in obj])
        elif t is list:
            return msgpack.ExtType(LIST, packb(tuple([self.state(x, layer=layer) for x in obj])))
        elif t is dict:
            return {self.state(k, layer=layer): self.state(v, layer=layer) for k, v in obj.items()}
        elif t is msgpack.ExtType:
            return obj
        elif t is PreEncoded:
            return obj.value
        raise PackError(
            f"layer {layer!r}: the packed state holds {type(obj).__name__} {obj!r:.80}; a state "
            "holds only msgpack-native values: pass callables through encoder.function() and "
            "other objects through encoder.value()"
        )


def _is_data(obj: Any) -> bool:
    # Callable objects that are data rather than code go to serializers, not the table.
    return type(obj).__module__.split(".")[0] in ("numpy", "pandas")


def _pickle(obj: Any) -> bytes:
    import cloudpickle  # deferred: the scheduler side never needs it

    try:
        return bytes(cloudpickle.dumps(obj, protocol=5))
    except Exception as err:
        raise PackError(
            f"function {_callable_name(obj)!r} cannot be serialised with cloudpickle: {err}"
        ) from err


class Decoder:
    """Turns msgpack back into values and tasks on the scheduler, unpickling nothing.

    Parameters
    ----------
    functions
        The envelope's function table.
    """

    def __init__(self, functions: list[SerializedFunction]) -> None:
        self.functions = functions

    def function(self, index: Any) -> SerializedFunction:
        """Return function table entry ``index``."""
        if type(index) is not int or not 0 <= index < len(self.functions):
            raise LayerStateError(
                f"function index {index!r} is outside the function table "
                f"({len(self.functions)} entries)"
            )
        return self.functions[index]

    def unpackb(self, data: bytes) -> Any:
        """Decode msgpack ``data`` with hlg's extension types."""
        return msgpack.unpackb(
            data, use_list=False, strict_map_key=False, raw=False, ext_hook=self.ext_hook
        )

    def ext_hook(self, code: int, data: bytes) -> Any:
        """Decode one extension value (called by msgpack)."""
        if code == LIST:
            return list(self.unpackb(data))
        if code == REF:
            key = self.unpackb(data)
            if not is_key(key):
                raise UnpackError(f"a reference holds {key!r}, which is not a key")
            return TaskRef(key)
        if code == TASK:
            return self.node(self.unpackb(data))
        if code == FUNC:
            return self.function(self.unpackb(data))
        if code == OPAQUE:
            name, payload = self.unpackb(data)
            return Opaque(name, payload)
        if code == SET:
            return set(self.unpackb(data))
        if code == FROZENSET:
            return frozenset(self.unpackb(data))
        raise UnpackError(f"unknown msgpack extension type {code}")

    def node(self, wire: Any) -> GraphNode:
        """Build a node from its wire form."""
        kind = wire[0]
        if kind == NODE_TASK:
            _, func, args, refs, kwargs, deep = wire
            if type(args) is not tuple or (kwargs is not None and type(kwargs) is not dict):
                raise LayerStateError("a task's arguments are malformed")
            if deep:
                deps: set[Key] = set()
                _scan(args, deps)
                if kwargs:
                    _scan(kwargs, deps)
                return Task._from_parts(
                    self.function(func), args, (), kwargs, True, frozenset(deps)
                )
            dependencies = frozenset([args[i] for i in refs]) if refs else _EMPTY
            return Task._from_parts(self.function(func), args, refs, kwargs, False, dependencies)
        if kind == NODE_DATA:
            _, value, deep = wire
            node = DataNode(value)
            node._deep = bool(deep)
            return node
        if kind == NODE_ALIAS:
            _, target = wire
            return Alias(target)
        raise LayerStateError(f"unknown node kind {kind!r}")

    def tasks(self, state: Any, *, layer: str) -> dict[Key, GraphNode]:
        """Rebuild the tasks that :meth:`Encoder.tasks` encoded."""
        try:
            wires = state["tasks"]
        except (KeyError, TypeError, IndexError):
            raise LayerStateError(
                f"layer {layer!r}: the state has no 'tasks' map; it was not written by "
                "Encoder.tasks"
            ) from None
        if type(wires) is not dict:
            raise LayerStateError(f"layer {layer!r}: 'tasks' is {type(wires).__name__}, not a map")
        functions = self.functions
        nfunctions = len(functions)
        make = Task._from_parts
        out: dict[Key, GraphNode] = {}
        key: Any = None
        try:
            for key, wire in wires.items():
                # The common case inline: a task whose references are whole arguments.
                if wire[0] == NODE_TASK and not wire[5]:
                    _, func, args, refs, kwargs, _ = wire
                    if type(func) is not int or not 0 <= func < nfunctions:
                        raise LayerStateError(f"function index {func!r} is out of range")
                    if type(args) is not tuple or (kwargs is not None and type(kwargs) is not dict):
                        raise LayerStateError("its arguments are malformed")
                    deps = frozenset([args[i] for i in refs]) if refs else _EMPTY
                    out[key] = make(functions[func], args, refs, kwargs, False, deps)
                else:
                    out[key] = self.node(wire)
        except LayerStateError as err:
            raise LayerStateError(f"layer {layer!r}: task {key!r}: {err}") from None
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as err:
            raise LayerStateError(
                f"layer {layer!r}: task {key!r} is malformed in the packed state ({err}); "
                "the data is corrupt or was not written by hlg"
            ) from None
        for key in out:
            if not is_key(key):
                raise LayerStateError(f"layer {layer!r}: {key!r} is not a valid key")
        return out
