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

A layer's tasks (:meth:`Encoder.tasks`) are stored column by column, which
decodes about twice as fast as one array per task::

    {"keys":   [k0, k1, ...],     # output keys
     "funcs":  [f0, f1, ...],     # function table index; -1 data node; -2 alias
     "args":   [a0, a1, ...],     # task: positional arguments; data: the value;
                                  # alias: the target key
     "refs":   [r0, r1, ...],     # task: positions of arguments that are bare keys
                                  # standing for those keys' values; else []
     "kwargs": {i: {...}},        # keyword arguments of task i (only if any)
     "deep":   [i, ...]}          # nodes whose arguments hold REF, TASK, FUNC or
                                  # OPAQUE values, resolved recursively by the
                                  # worker (their "refs" are then empty)

A task nested in an argument (TASK) is ``[func, args, kwargs]``, its
references all REF values.

The :class:`Decoder` never unpickles: functions become
:class:`~hlg.task.SerializedFunction` and OPAQUE values :class:`~hlg.task.Opaque`,
both decoded only where a task runs.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from itertools import chain
from typing import Any, Generic, TypeVar

import msgpack

from hlg._gc import gc_paused
from hlg.convert import convert_task, plain_refs
from hlg.errors import HlgError, LayerStateError, PackError, UnpackError, counted
from hlg.keys import Key, all_keys, is_key
from hlg.limits import COLLISION_LIMIT, NESTING_LIMIT, KeyCensus, check_distinct_hashes
from hlg.task import (
    INT_END,
    INT_MIN,
    PLAIN_SCALARS,
    Alias,
    DataNode,
    GraphNode,
    Opaque,
    SerializedFunction,
    Task,
    TaskRef,
    apply,
    build_tasks,
    callable_name,
    remote_key,
)

__all__ = ["Decoder", "Encoder", "PreEncoded"]

LIST, REF, TASK, FUNC, OPAQUE, SET, FROZENSET = range(1, 8)


def packb(obj: Any) -> bytes:
    """Encode msgpack-native ``obj`` (tuples as arrays, ExtType objects as they are)."""
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


_State = TypeVar("_State")


class PreEncoded(Generic[_State]):
    """A state already in wire form, passed through :meth:`Encoder.state` untouched.

    ``PreEncoded[S]`` holds a state of the declared type ``S``.
    """

    __slots__ = ("value",)

    def __init__(self, value: _State) -> None:
        self.value = value


class _Columns:
    """The columns of a layer's tasks being encoded; see the module docstring."""

    __slots__ = ("args", "deep", "funcs", "kwargs", "refs")

    def __init__(self) -> None:
        self.funcs: list[int] = []
        self.args: list[Any] = []
        self.refs: list[tuple[int, ...]] = []
        self.kwargs: dict[int, dict[str, Any]] = {}
        self.deep: list[int] = []

    def state(self, keys: tuple[Key, ...]) -> dict[str, Any]:
        state: dict[str, Any] = {
            "keys": keys,
            "funcs": tuple(self.funcs),
            "args": tuple(self.args),
            "refs": tuple(self.refs),
        }
        if self.kwargs:
            state["kwargs"] = self.kwargs
        if self.deep:
            state["deep"] = tuple(self.deep)
        return state


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
            name, data = callable_name(func), pickle_function(func)
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
        """Encode an argument value; lists, sets, references and other objects become ExtTypes.

        Raises
        ------
        PackError
            ``obj`` nests more than :data:`~hlg.limits.NESTING_LIMIT` containers deep.
        """
        return self._value(obj, 0)

    def _value(self, obj: Any, depth: int) -> Any:
        # ``depth``: the containers (lists, tuples, dicts, sets, tasks) around ``obj``.
        t = type(obj)
        if t in PLAIN_SCALARS:
            return obj
        if t is int:
            return obj if INT_MIN <= obj < INT_END else self._opaque(obj)
        if depth >= NESTING_LIMIT and t in _NESTING:
            raise _too_deep()
        value = self._value
        depth += 1
        if t is tuple:
            if _plain(obj) and _flat_enough(obj, NESTING_LIMIT - depth):
                return obj
            return tuple([value(x, depth) for x in obj])
        if t is list:
            return msgpack.ExtType(LIST, packb(tuple([value(x, depth) for x in obj])))
        if t is dict:
            return {value(k, depth): value(v, depth) for k, v in obj.items()}
        if t is set or t is frozenset:
            code = SET if t is set else FROZENSET
            return msgpack.ExtType(code, packb(tuple([value(x, depth) for x in obj])))
        if t is TaskRef:
            self._deep = True
            return msgpack.ExtType(REF, packb(obj.key))
        if t is Task:
            self._deep = True
            return msgpack.ExtType(TASK, packb(self._task(obj, depth)))
        if t is Alias:
            self._deep = True
            return msgpack.ExtType(REF, packb(obj.target))
        if t is DataNode:
            return value(obj.value, depth - 1)
        if t is Opaque:
            self._deep = True
            return msgpack.ExtType(OPAQUE, packb((obj.serializer, obj.payload)))
        ref_key = remote_key(obj)
        if ref_key is not None:
            # Data held remotely (a scattered Ref): ship its key, never its value.
            self.remote_keys.add(ref_key)
            self._deep = True
            return msgpack.ExtType(REF, packb(ref_key))
        if t is SerializedFunction or (callable(obj) and not is_data_callable(obj)):
            self._deep = True
            return msgpack.ExtType(FUNC, packb(self.function(obj)))
        return self._opaque(obj)

    def _opaque(self, obj: Any) -> msgpack.ExtType:
        from hlg.serializers import dumps

        self._deep = True
        name, payload = dumps(obj)
        return msgpack.ExtType(OPAQUE, packb((name, payload)))

    # -- tasks ---------------------------------------------------------------------------

    def _task(self, task: Task, depth: int) -> tuple[Any, ...]:
        """Encode a task nested inside an argument: always resolved recursively."""
        func = self.function(task.func)
        # Its arguments sit in a tuple, and its keyword arguments in a dict.
        if depth >= NESTING_LIMIT and (task.args or task.kwargs):
            raise _too_deep()
        args = tuple([self._value(a, depth + 1) for a in task.args])
        kwargs = (
            {k: self._value(v, depth + 1) for k, v in task.kwargs.items()} if task.kwargs else None
        )
        self._deep = True
        return (func, args, kwargs)

    def _args(self, task: Task) -> tuple[tuple[Any, ...], tuple[int, ...], bool]:
        """Encode a task's positional arguments; return them, the ref positions, and deep."""
        parts = task.parts()
        args, refs = parts.args, parts.refs
        if _plain(args):
            return args, refs, parts.deep
        outer, self._deep = self._deep, False
        value = self.value
        encoded = tuple([value(a) for a in args])
        deep = parts.deep or self._deep
        if deep and refs:
            # Payloads need the recursive pass, which then resolves the references too.
            encoded = tuple(
                msgpack.ExtType(REF, packb(a)) if i in refs else a for i, a in enumerate(encoded)
            )
            refs = ()
        self._deep = outer or deep
        return encoded, refs, deep

    def tasks(self, tasks: Mapping[Key, GraphNode], *, layer: str) -> PreEncoded[Any]:
        """Encode a layer's tasks, column by column, as a layer state."""
        columns = _Columns()
        with gc_paused():
            for key, node in tasks.items():
                self._add_node(columns, key, node, layer)
            return PreEncoded(columns.state(tuple(tasks)))

    def raw_tasks(
        self,
        tasks: Mapping[Key, Any],
        known_keys: Container[object],
        *,
        layer: str,
        plain: Sequence[tuple[int, ...] | None] | None = None,
    ) -> PreEncoded[Any]:
        """Encode dask-style tasks straight into wire form, converting only unusual values.

        A plain task ``(func, *args)`` (see :func:`hlg.convert.plain_refs`) goes
        to the columns as it is; other values are converted to nodes first.
        ``plain``, when given, holds what ``plain_refs`` returned for each task
        in order (None for values that are not plain tasks), found already.
        """
        if plain is not None:
            return self._plain_tasks(tasks, known_keys, plain, layer)
        columns = _Columns()
        function = self.function
        funcs, args, refs = columns.funcs, columns.args, columns.refs
        # Consecutive tasks nearly always share a function: remember the last one.
        last_func: Any = None
        last_index = -1
        with gc_paused():
            for key, value in tasks.items():
                if type(value) is tuple and value and callable(value[0]) and value[0] is not apply:
                    a = value[1:]
                    positions = plain_refs(a, known_keys)
                    if positions is not None:
                        func = value[0]
                        if func is not last_func:
                            last_func, last_index = func, function(func)
                        funcs.append(last_index)
                        args.append(a)
                        refs.append(positions)
                        continue
                self._add_node(columns, key, convert_task(value, known_keys), layer)
            return PreEncoded(columns.state(tuple(tasks)))

    def _plain_tasks(
        self,
        tasks: Mapping[Key, Any],
        known_keys: Container[object],
        plain: Sequence[tuple[int, ...] | None],
        layer: str,
    ) -> PreEncoded[Any]:
        # raw_tasks with every plain task's reference positions given.
        columns = _Columns()
        funcs, args, refs = columns.funcs, columns.args, columns.refs
        by_id, function = self._by_id, self.function
        with gc_paused():
            for (key, value), positions in zip(tasks.items(), plain, strict=True):
                if positions is None:
                    self._add_node(columns, key, convert_task(value, known_keys), layer)
                    continue
                index = by_id.get(id(value[0]))
                funcs.append(function(value[0]) if index is None else index)
                args.append(value[1:])
                refs.append(positions)
            return PreEncoded(columns.state(tuple(tasks)))

    def _add_node(self, columns: _Columns, key: Key, node: GraphNode, layer: str) -> None:
        i = len(columns.funcs)
        t = type(node)
        self._deep = False
        if t is Task:
            task: Task = node  # type: ignore[assignment]
            index = self._by_id.get(id(task.func))
            columns.funcs.append(self.function(task.func) if index is None else index)
            a, r, deep = self._args(task)
            if task.kwargs:
                columns.kwargs[i] = {k: self.value(v) for k, v in task.kwargs.items()}
                if self._deep and r:
                    # Keyword payloads need the recursive pass, which resolves references too.
                    a = tuple(
                        msgpack.ExtType(REF, packb(x)) if j in r else x for j, x in enumerate(a)
                    )
                    r = ()
            columns.args.append(a)
            columns.refs.append(r)
            if deep or self._deep:
                columns.deep.append(i)
        elif t is DataNode:
            columns.funcs.append(-1)
            columns.args.append(self.value(node.value))  # type: ignore[attr-defined]
            columns.refs.append(())
            if self._deep:
                columns.deep.append(i)
        elif t is Alias:
            columns.funcs.append(-2)
            columns.args.append(node.target)  # type: ignore[attr-defined]
            columns.refs.append(())
        else:
            raise PackError(
                f"layer {layer!r}: key {key!r} holds {type(node).__name__}; layers map keys "
                "to Task, DataNode or Alias"
            )

    # -- states --------------------------------------------------------------------------

    def state(self, obj: Any, *, layer: str) -> Any:
        """Check and encode a layer state: msgpack-native values, with lists kept as lists."""
        t = type(obj)
        if t in PLAIN_SCALARS:
            return obj
        if t is int:
            if INT_MIN <= obj < INT_END:
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


# The types that nest: each counts one level towards NESTING_LIMIT.
_NESTING = frozenset({tuple, list, dict, set, frozenset, Task})


def _too_deep() -> PackError:
    return PackError(
        f"a value nests more than {NESTING_LIMIT} containers deep (lists, tuples, dicts, sets "
        "and tasks inside each other); unpack refuses deeper values, so hlg does not pack "
        "them: flatten the value, or pass it as one object whose type msgpack does not know "
        "(it is then pickled)"
    )


def _flat_enough(obj: tuple[Any, ...], room: int) -> bool:
    """Return whether tuples nest at most ``room`` deep inside ``obj``, without recursion."""
    stack = [(obj, room)]
    while stack:
        items, left = stack.pop()
        for item in items:
            if type(item) is tuple:
                if left <= 0:
                    return False
                stack.append((item, left - 1))
    return True


def is_data_callable(obj: Any) -> bool:
    """Return whether the callable ``obj`` is data (a numpy or pandas object), not code.

    Such callables are packed as values, by a serializer, rather than into the
    function table.

    Examples
    --------
    >>> is_data_callable(len)
    False
    """
    return type(obj).__module__.split(".")[0] in ("numpy", "pandas")


def pickle_function(obj: Any) -> bytes:
    """Return the bytes the function table holds for ``obj``: cloudpickle's, protocol 5.

    Raises
    ------
    PackError
        cloudpickle cannot serialise ``obj``; the message names it.

    Examples
    --------
    >>> import pickle
    >>> pickle.loads(pickle_function(len)) is len
    True
    """
    import cloudpickle  # deferred: the scheduler side never needs it

    try:
        return bytes(cloudpickle.dumps(obj, protocol=5))
    except Exception as err:
        raise PackError(
            f"function {callable_name(obj)!r} cannot be serialised with cloudpickle: {err}"
        ) from err


class _Held:
    """An extension value read but not decoded yet: its type code and payload."""

    __slots__ = ("code", "data")

    def __init__(self, code: int, data: bytes) -> None:
        self.code = code
        self.data = data


def _pairs(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    # Every msgpack map is built here, so that keys chosen to collide are refused
    # before a dict spends quadratic time on them.
    if len(pairs) > COLLISION_LIMIT:
        check_distinct_hashes([k for k, _ in pairs], "a map")
    return dict(pairs)


def _read(data: bytes, ext_hook: Any = _Held) -> Any:
    """Decode one payload, leaving the extension values inside it as :class:`_Held`."""
    return msgpack.unpackb(
        data,
        use_list=False,
        strict_map_key=False,
        raw=False,
        ext_hook=ext_hook,
        object_pairs_hook=_pairs,
    )


def _no_ext(code: int, data: bytes) -> Any:
    # For payloads that hold plain msgpack only: keys, function indices, opaque payloads.
    raise UnpackError(f"an extension value of type {code} sits where only plain values may")


# Frame kinds of Decoder._resolve besides the extension codes.
_TUPLE, _DICT = -1, -2
# Values that make a payload need the explicit-stack pass.
_NESTED = frozenset({tuple, dict, _Held})
_HELD = frozenset({_Held})
# Payloads whose root array holds the container's items.
_CONTAINERS = frozenset({LIST, SET, FROZENSET, TASK})


class Decoder:
    """Turns msgpack back into values and tasks on the scheduler, unpickling nothing.

    Extension values are decoded without recursion: msgpack hands each
    payload over undecoded (:class:`_Held`), and :meth:`_resolve` walks nested
    payloads with an explicit stack, refusing values nested more than
    :data:`~hlg.limits.NESTING_LIMIT` containers deep. Every map is built by a
    hook that refuses keys chosen to collide.

    Parameters
    ----------
    functions
        The envelope's function table.
    """

    def __init__(self, functions: list[SerializedFunction]) -> None:
        self.functions = functions
        # For each task dict built by tasks(): the (key, dependency) pairs whose
        # dependency was not decoded before its dependent. The dict itself is kept,
        # so that it is matched by identity. See take_unseen().
        self._unseen: list[tuple[dict[Key, GraphNode], list[tuple[Key, Key]]]] = []
        # The hashes of every task key decoded or merged in this unpack.
        self.census = KeyCensus()

    def take_unseen(self, tasks: Mapping[Key, GraphNode]) -> list[tuple[Key, Key]] | None:
        """Return (and forget) the dependencies of ``tasks`` not decoded before their dependent.

        Only for a dict that :meth:`tasks` built; None for any other mapping. Every
        other dependency of such a dict is a key decoded earlier in the same dict,
        so an unpacker needs to check only these. The keys of such a dict are
        already counted in :attr:`census`.
        """
        for n, (built, unseen) in enumerate(self._unseen):
            if built is tasks:
                del self._unseen[n]
                return unseen
        return None

    def function(self, index: Any) -> SerializedFunction:
        """Return function table entry ``index``."""
        if type(index) is not int or not 0 <= index < len(self.functions):
            raise LayerStateError(
                f"function index {index!r} is outside the function table "
                f"({counted(len(self.functions), 'entry', 'entries')})"
            )
        return self.functions[index]

    def unpack_options(self) -> dict[str, Any]:
        """Return the keyword arguments for ``msgpack.Unpacker`` that read hlg documents."""
        return {
            "use_list": False,
            "strict_map_key": False,
            "raw": False,
            "ext_hook": self.ext_hook,
            "object_pairs_hook": _pairs,
        }

    def unpackb(self, data: bytes) -> Any:
        """Decode msgpack ``data`` with hlg's extension types."""
        return msgpack.unpackb(data, **self.unpack_options())

    def ext_hook(self, code: int, data: bytes) -> Any:
        """Decode one extension value (called by msgpack), nested ones without recursion."""
        if code not in _CONTAINERS:
            return self._leaf(code, data)
        items = _read(data)
        if type(items) is not tuple:
            raise UnpackError(f"an extension value of type {code} does not hold an array")
        if code != TASK:
            nested = _NESTED.intersection(map(type, items))
            if not nested:
                return self._build(code, list(items))  # the common case: scalars only
            if nested == _HELD:
                # The next most common: items that are references or flat lists.
                shallow = self._shallow(items)
                if shallow is not None:
                    return self._build(code, shallow)
        return self._resolve(code, items)

    def _shallow(self, items: tuple[Any, ...]) -> list[Any] | None:
        """Decode items whose extension values hold no containers; None if one does."""
        out = []
        for item in items:
            if type(item) is not _Held:
                out.append(item)
            elif item.code not in _CONTAINERS:
                out.append(self._leaf(item.code, item.data))
            elif item.code == TASK:
                return None
            else:
                inner = _read(item.data)
                if type(inner) is not tuple or _NESTED.intersection(map(type, inner)):
                    return None
                out.append(self._build(item.code, list(inner)))
        return out

    def _leaf(self, code: int, data: bytes) -> Any:
        # Extension values that hold no other extension values.
        if code == REF:
            key = _read(data, _no_ext)
            if not is_key(key):
                raise UnpackError(f"a reference holds {key!r:.200}, which is not a key")
            return TaskRef(key)
        if code == FUNC:
            return self.function(_read(data, _no_ext))
        if code == OPAQUE:
            wire = _read(data, _no_ext)
            if type(wire) is not tuple or len(wire) != 2 or type(wire[0]) is not str:
                raise UnpackError("an opaque value is not a [serializer name, payload] pair")
            return Opaque(wire[0], wire[1])
        raise UnpackError(f"unknown msgpack extension type {code}")

    def _resolve(self, code: int, items: tuple[Any, ...]) -> Any:
        """Decode an extension value whose payload holds containers, with an explicit stack."""
        # A frame: [kind (an extension code, _TUPLE or _DICT), items, next item,
        # the values decoded so far, depth]. Invariant: depth <= NESTING_LIMIT.
        stack: list[list[Any]] = [[code, items, 0, [], 1]]
        while True:
            frame = stack[-1]
            items = frame[1]
            i = frame[2]
            if i < len(items):
                frame[2] = i + 1
                item = items[i]
                t = type(item)
                if t is not tuple and t is not dict and t is not _Held:
                    frame[3].append(item)
                    continue
                depth = frame[4] + 1
                if depth > NESTING_LIMIT:
                    raise UnpackError(
                        f"a value is nested more than {NESTING_LIMIT} containers deep "
                        "(lists, tuples, dicts, sets and tasks inside each other); "
                        "hlg packs nothing deeper"
                    )
                if t is tuple:
                    stack.append([_TUPLE, item, 0, [], depth])
                elif t is dict:
                    pairs = tuple(chain.from_iterable(item.items()))
                    stack.append([_DICT, pairs, 0, [], depth])
                elif item.code in _CONTAINERS:
                    payload = _read(item.data)
                    if type(payload) is not tuple:
                        raise UnpackError(
                            f"an extension value of type {item.code} does not hold an array"
                        )
                    stack.append([item.code, payload, 0, [], depth])
                else:
                    frame[3].append(self._leaf(item.code, item.data))
                continue
            stack.pop()
            value = self._build(frame[0], frame[3])
            if not stack:
                return value
            stack[-1][3].append(value)

    def _build(self, kind: int, values: list[Any]) -> Any:
        # The value of a frame of _resolve, from its decoded items.
        if kind == LIST:
            return values
        if kind == _TUPLE:
            return tuple(values)
        if kind == _DICT:
            return _pairs(list(zip(values[::2], values[1::2], strict=True)))
        if kind in (SET, FROZENSET):
            check_distinct_hashes(values, "a set")
            try:
                return set(values) if kind == SET else frozenset(values)
            except TypeError as err:
                raise UnpackError(f"a set holds an unhashable value ({err})") from None
        if len(values) != 3:
            raise LayerStateError("a nested task is not a [function, arguments, kwargs] array")
        return self.node(values)

    def node(self, wire: Any) -> Task:
        """Build a task nested in an argument from its wire form."""
        func, args, kwargs = wire
        if (
            type(args) is not tuple
            or (kwargs is not None and type(kwargs) is not dict)
            or (kwargs and not all(type(k) is str for k in kwargs))
        ):
            raise LayerStateError(
                "a nested task's arguments are malformed: expected an array of arguments "
                "and a map from str names to keyword arguments"
            )
        return _deep_task(self.function(func), args, kwargs)

    def check_tasks_state(self, state: Any, *, layer: str) -> int:
        """Check the columns of a tasks state without decoding a task; return the task count."""
        try:
            return len(_columns(state)[0])
        except LayerStateError as err:
            raise LayerStateError(f"layer {layer!r}: {err}") from None

    def tasks(self, state: Any, *, layer: str) -> dict[Key, GraphNode]:
        """Rebuild the tasks that :meth:`Encoder.tasks` encoded."""
        try:
            with gc_paused():
                return self._tasks(state, layer)
        except HlgError as err:
            raise type(err)(f"layer {layer!r}: {err}") from None
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as err:
            raise LayerStateError(
                f"layer {layer!r}: its packed tasks are malformed ({type(err).__name__}: {err}); "
                "the data is corrupt or was not written by hlg"
            ) from None

    def _tasks(self, state: Any, layer: str) -> dict[Key, GraphNode]:
        keys, funcs, args, refs = _columns(state)
        if not all_keys(keys):
            bad = next(k for k in keys if not is_key(k))
            raise LayerStateError(f"{bad!r} is not a valid key")
        self.census.add(keys, "its keys")
        n = len(keys)
        # Each key's position: a reference to a key at an earlier position was seen
        # before its dependent; all others go to ``unseen`` for the unpacker's check.
        position = dict(zip(keys, range(n), strict=True))
        if len(position) != n:
            raise LayerStateError("the state lists some key twice")
        nfuncs = len(self.functions)
        unseen: list[tuple[Key, Key]] = []
        others: list[int] = []  # positions of data nodes and aliases
        columns = zip(keys, funcs, args, refs)  # noqa: B905 - lengths checked above
        for i, (key, f, a, r) in enumerate(columns):
            if f >= 0:
                # The common case: a task whose references are whole arguments.
                if f >= nfuncs:
                    raise LayerStateError(f"task {key!r}: function index {f!r} is out of range")
                if type(a) is not tuple:
                    raise LayerStateError(f"task {key!r}: its arguments are not an array")
                nrefs = len(r)
                if nrefs == 1:
                    d = a[r[0]]
                    if position.get(d, i) >= i:
                        unseen.append((key, d))
                elif nrefs:
                    if nrefs > COLLISION_LIMIT:
                        check_distinct_hashes([a[j] for j in r], f"task {key!r}: its references")
                    for j in r:
                        if position.get(a[j], i) >= i:
                            unseen.append((key, a[j]))  # noqa: PERF401 - rare; no generator per task
            elif f == -1:
                others.append(i)
            elif f == -2:
                if not is_key(a):
                    raise LayerStateError(f"alias {key!r} targets {a!r}, which is not a key")
                if position.get(a, i) >= i:
                    unseen.append((key, a))
                others.append(i)
            else:
                raise LayerStateError(f"task {key!r}: function index {f!r} is out of range")
        # Index -1 and -2 (data nodes, aliases) give placeholders, replaced below in place.
        table = (*self.functions, None, None)
        out: dict[Key, GraphNode] = build_tasks(keys, map(table.__getitem__, funcs), args, refs)  # type: ignore[assignment]
        for i in others:
            a = args[i]
            out[keys[i]] = DataNode(a) if funcs[i] == -1 else Alias(a)
        self._fix_sparse(state, keys, out, unseen)
        self._unseen.append((out, unseen))
        return out

    def _fix_sparse(
        self,
        state: dict[Any, Any],
        keys: tuple[Any, ...],
        out: dict[Key, Any],
        unseen: list[tuple[Key, Key]],
    ) -> None:
        # Keyword arguments and deep nodes are rare: patch them in after the fast loop.
        kwargs = state.get("kwargs") or {}
        if type(kwargs) is not dict:
            raise LayerStateError("the state's 'kwargs' is not a map")
        for i, kw in kwargs.items():
            task = out[keys[i]]
            if (
                type(task) is not Task
                or type(kw) is not dict
                or not all(type(k) is str for k in kw)
            ):
                raise LayerStateError(f"task {keys[i]!r}: its keyword arguments are malformed")
            out[keys[i]] = Task.from_parts(*task.parts()._replace(kwargs=kw))
        deep = state.get("deep") or ()
        position = {key: i for i, key in enumerate(keys)} if deep else {}
        for i in deep:
            node = out[keys[i]]
            if type(node) is Task:
                parts = node.parts()
                node = out[keys[i]] = _deep_task(parts.func, parts.args, parts.kwargs)
                unseen.extend((keys[i], d) for d in node.dependencies if position.get(d, i) >= i)
            elif type(node) is DataNode:
                found = _references(node.value)
                if found:
                    raise LayerStateError(
                        f"data node {keys[i]!r} holds a reference to {found[0]!r}; "
                        "a data node is a literal value, so references belong in a task"
                    )
                out[keys[i]] = DataNode.from_parts(node.value, deep=True)
            else:
                raise LayerStateError(f"alias {keys[i]!r} cannot be marked deep")


def _columns(state: Any) -> list[tuple[Any, ...]]:
    """Return the keys, funcs, args and refs columns of a tasks state, checked."""
    if type(state) is not dict:
        raise LayerStateError(f"the state is {type(state).__name__}, not a map")
    columns = []
    for name in ("keys", "funcs", "args", "refs"):
        column = state.get(name)
        if type(column) is not tuple:
            raise LayerStateError(f"the state's {name!r} column is missing or not an array")
        columns.append(column)
    if len({len(c) for c in columns}) != 1:
        raise LayerStateError("the state's columns differ in length")
    return columns


def _deep_task(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Task:
    found = _references((args, kwargs) if kwargs else args)
    if len(found) > COLLISION_LIMIT:
        check_distinct_hashes(found, "a task's references")
    return Task.from_parts(func, args, (), kwargs, True, frozenset(found))


def _references(value: Any) -> list[Key]:
    """Return the keys that decoded ``value`` refers to, with repeats, without recursion."""
    found: list[Key] = []
    stack = [value]
    while stack:
        obj = stack.pop()
        t = type(obj)
        if t is TaskRef:
            found.append(obj.key)
        elif t is tuple or t is list or t is set or t is frozenset:
            stack.extend(obj)
        elif t is dict:
            stack.extend(obj.values())
        elif t is Task:
            found.extend(obj.dependencies)
    return found


def _plain(args: tuple[Any, ...]) -> bool:
    """Return whether msgpack carries ``args`` as they are: scalars and tuples of them."""
    return plain_refs(args, ()) is not None
