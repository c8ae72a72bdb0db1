"""The task specification: what one key of a graph computes.

A graph maps keys to *nodes*:

- :class:`Task` calls a function on arguments. A :class:`TaskRef` among the
  arguments (also inside lists, tuples, dicts and sets) stands for the value of
  another key: a dependency.
- :class:`DataNode` holds a literal value.
- :class:`Alias` gives another key's value under a second name.

Every node knows its ``dependencies`` from construction, so schedulers never
rescan arguments. Calling a node with a mapping of dependency values computes
it: ``node(values)``.

Internally a :class:`Task` keeps the common case fast: a reference that is a
whole positional argument is stored as the bare key, and ``_refs`` lists those
positions, so running the task is one substitution per reference. Tasks with
references nested in containers, nested tasks or not-yet-decoded payloads set
``_deep`` and resolve their arguments recursively instead.

Graphs written dask-style, as dicts of tuples, are converted once by
:func:`hlg.convert.convert_graph`:

>>> from hlg.convert import convert_graph
>>> def inc(x):
...     return x + 1
>>> graph = convert_graph({"a": 1, "b": (inc, "a"), "c": "b", "d": ["a", (inc, "b")]})
>>> graph["b"]
Task(inc, TaskRef('a'))
>>> graph["c"], sorted(graph["d"].dependencies)
(Alias('b'), ['a', 'b'])
>>> graph["d"]({"a": 1, "b": 2})
[1, 3]
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Container, Hashable, Iterable, Mapping
from typing import Any, ClassVar

from hlg.errors import MissingDependencyError, TaskSpecError
from hlg.keys import Key, validate_key

__all__ = [
    "Alias",
    "DataNode",
    "GraphNode",
    "Opaque",
    "Ref",
    "SerializedFunction",
    "Task",
    "TaskRef",
    "apply",
    "is_remote",
    "register_remote_type",
    "remote_key",
]

# Values that can never hold a reference, checked by exact type for speed.
_LEAVES: frozenset[type] = frozenset({int, float, str, bytes, bool, type(None), complex})
# Scalars msgpack carries as they are; ints only within [INT_MIN, INT_END).
PLAIN_SCALARS: frozenset[type] = frozenset({str, float, bool, type(None), bytes})
INT_MIN, INT_END = -(1 << 63), 1 << 64
_EMPTY: frozenset[Key] = frozenset()
# Values whose hash is consistent with == across all of them, so DataNode hashes them.
_HASHED_VALUES: frozenset[type] = frozenset({int, float, str, bytes, bool, type(None)})


def apply(func: Callable[..., Any], args: Iterable[Any] = (), kwargs: Any = None) -> Any:
    """Call ``func(*args, **kwargs)``; the dask-style way to pass keyword arguments.

    In a dict graph, ``(apply, func, args, kwargs)`` becomes a :class:`Task`
    calling ``func`` with those keyword arguments.

    Examples
    --------
    >>> apply(pow, (2, 5))
    32
    >>> apply(int, ("ff",), {"base": 16})
    255
    """
    return func(*args, **(kwargs or {}))


class TaskRef:
    """A reference to the value of another key, used inside a task's arguments.

    Examples
    --------
    >>> TaskRef(("x", 0))
    TaskRef(('x', 0))
    >>> TaskRef("x") == TaskRef("x")
    True
    """

    __slots__ = ("key",)
    key: Key

    def __init__(self, key: Key) -> None:
        self.key = validate_key(key)

    def __repr__(self) -> str:
        return f"TaskRef({self.key!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is TaskRef and other.key == self.key

    def __hash__(self) -> int:
        return hash((TaskRef, self.key))

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskRef, (self.key,))


class Ref:
    """A reference to data held by a :class:`~hlg.Client` (see ``Client.scatter``).

    Use it as a task argument: the task receives the data. Packing a graph that
    holds refs ships their keys, never their data.

    Examples
    --------
    >>> ref = Ref("int-5f3a")
    >>> Task(abs, ref).dependencies
    frozenset({'int-5f3a'})
    >>> Task(abs, ref)({"int-5f3a": -3})
    3
    """

    __slots__ = ("key",)
    key: Key

    def __init__(self, key: Key) -> None:
        self.key = validate_key(key)

    @property
    def __hlg_remote_key__(self) -> Key:
        """The key under which the data is held remotely."""
        return self.key

    def __repr__(self) -> str:
        return f"<Ref {self.key!r}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is Ref and other.key == self.key

    def __hash__(self) -> int:
        return hash((Ref, self.key))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Ref, (self.key,))


# Types whose instances stand for data held remotely (a dask.distributed Future, say),
# each with the function that reads its key. Filled by register_remote_type only.
_REMOTE_TYPES: dict[type, Callable[[Any], Key]] = {}


def register_remote_type(cls: type, key_of: Callable[[Any], Key]) -> None:
    """Let instances of ``cls`` stand for remote data, as :class:`Ref` does.

    A task argument of that type becomes a dependency on ``key_of(obj)``, and
    packing ships that key, never the object.

    Examples
    --------
    >>> class Handle:
    ...     def __init__(self, name):
    ...         self.name = name
    >>> register_remote_type(Handle, lambda h: h.name)
    >>> Task(abs, Handle("x-1")).dependencies, remote_key(Handle("x-1"))
    (frozenset({'x-1'}), 'x-1')
    """
    if not isinstance(cls, type) or not callable(key_of):
        raise TaskSpecError(
            f"register_remote_type takes a class and a function; got {cls!r} and {key_of!r}"
        )
    _REMOTE_TYPES[cls] = key_of


def is_remote(obj: object) -> bool:
    """Return whether ``obj`` is of a type registered with :func:`register_remote_type`.

    Examples
    --------
    >>> is_remote(Ref("x")), is_remote("x")
    (False, False)
    """
    return type(obj) in _REMOTE_TYPES


def remote_key(obj: Any) -> Key | None:
    """Return the key of the remote data ``obj`` stands for, or None if it is not remote.

    Examples
    --------
    >>> remote_key(Ref("x")), remote_key("x")
    ('x', None)
    """
    key_of = _REMOTE_TYPES.get(type(obj))
    if key_of is not None:
        return validate_key(key_of(obj))
    key = getattr(obj, "__hlg_remote_key__", None)
    return None if key is None else validate_key(key)


class GraphNode:
    """Base class of the values of a graph: :class:`Task`, :class:`DataNode`, :class:`Alias`.

    Attributes
    ----------
    dependencies : frozenset
        The keys whose values this node needs.
    """

    __slots__ = ("dependencies",)
    dependencies: frozenset[Key]

    def __call__(self, values: Mapping[Key, Any]) -> Any:
        """Compute this node's value given its dependencies' values."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        assert isinstance(other, GraphNode)  # for mypy: same type as self
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        # Consistent with __eq__: equal nodes have equal hashes. Only parts whose
        # hash agrees with equality across types are hashed (1 == 1.0 == True hash
        # alike; a set and an equal frozenset would not), the rest by type alone.
        return hash((type(self), self._hash_part()))

    def _identity(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def _hash_part(self) -> object:
        raise NotImplementedError


class DataNode(GraphNode):
    """A literal value in a graph.

    Examples
    --------
    >>> DataNode([1, 2])({})
    [1, 2]
    """

    __slots__ = ("_deep", "value")
    value: Any
    # True when ``value`` holds payloads (Opaque) that are decoded when the node runs.
    _deep: bool

    def __init__(self, value: Any) -> None:
        self.value = value
        self.dependencies = _EMPTY
        self._deep = False

    def __call__(self, values: Mapping[Key, Any]) -> Any:
        """Return the value (decoding any payloads in it)."""
        return _resolve(self.value, values) if self._deep else self.value

    def __repr__(self) -> str:
        return f"DataNode({self.value!r})"

    def _identity(self) -> tuple[Any, ...]:
        return (self.value,)

    def _hash_part(self) -> object:
        return self.value if type(self.value) in _HASHED_VALUES else None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_data, (self.value, self._deep))


def _rebuild_data(value: Any, deep: bool) -> DataNode:
    node = DataNode(value)
    node._deep = deep
    return node


class Alias(GraphNode):
    """Another key's value under a second name.

    Examples
    --------
    >>> Alias("x")({"x": 3})
    3
    """

    __slots__ = ("target",)
    target: Key

    def __init__(self, target: Key) -> None:
        self.target = validate_key(target)
        self.dependencies = frozenset((self.target,))

    def __call__(self, values: Mapping[Key, Any]) -> Any:
        """Return the target's value from ``values``."""
        try:
            return values[self.target]
        except KeyError:
            raise _missing(self.target) from None

    def __repr__(self) -> str:
        return f"Alias({self.target!r})"

    def _identity(self) -> tuple[Any, ...]:
        return (self.target,)

    def _hash_part(self) -> object:
        return self.target

    def __reduce__(self) -> tuple[Any, ...]:
        return (Alias, (self.target,))


class Task(GraphNode):
    """A call of a function on arguments, some of which refer to other keys.

    Parameters
    ----------
    func
        The callable.
    *args, **kwargs
        Its arguments. A :class:`TaskRef` stands for the value of that key; it
        may be nested in lists, tuples, dicts and sets. A nested :class:`Task`
        is computed inline.

    Examples
    --------
    >>> t = Task(divmod, TaskRef("x"), 3)
    >>> t.dependencies
    frozenset({'x'})
    >>> t({"x": 7})
    (2, 1)
    >>> Task(sum, [TaskRef("a"), TaskRef("b")], start=10)({"a": 1, "b": 2})
    13
    """

    __slots__ = ("_args", "_deep", "_refs", "func", "kwargs")
    func: Callable[..., Any]
    # Positional arguments; the positions in ``_refs`` hold bare keys, not TaskRefs.
    _args: tuple[Any, ...]
    # Positions of ``_args`` that are references. Empty whenever ``_deep`` is set.
    _refs: tuple[int, ...]
    kwargs: dict[str, Any] | None
    # True when arguments need a recursive pass: nested refs, nested tasks, payloads.
    _deep: bool

    def __init__(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        if not callable(func):
            raise TaskSpecError(
                f"a task's function must be callable; got {type(func).__name__} {func!r}"
            )
        self.func = func
        self.kwargs = kwargs or None
        # Scan every argument (no short-circuit): each one adds its references to deps.
        deps: set[Key] = set()
        deep = False
        for value in kwargs.values():
            if _scan(value, deps):
                deep = True
        refs: list[int] = []
        for i, arg in enumerate(args):
            if type(arg) is TaskRef:
                refs.append(i)
                deps.add(arg.key)
            elif _scan(arg, deps):
                deep = True
        if deep:
            # The recursive pass resolves every reference, whole arguments included.
            self._args = args
            self._refs = ()
        else:
            self._args = tuple(a.key if type(a) is TaskRef else a for a in args)
            self._refs = tuple(refs)
        self._deep = deep
        self.dependencies = frozenset(deps)

    @classmethod
    def _from_parts(  # noqa: PLR0917 - the wire form, positionally, for speed
        cls,
        func: Any,
        args: tuple[Any, ...],
        refs: tuple[int, ...],
        kwargs: dict[str, Any] | None,
        deep: bool,
        dependencies: frozenset[Key],
    ) -> Task:
        # The unpacker builds tasks from their wire form without rescanning.
        task = object.__new__(cls)
        task.func = func
        task._args = args
        task._refs = refs
        task.kwargs = kwargs
        task._deep = deep
        task.dependencies = dependencies
        return task

    @property
    def args(self) -> tuple[Any, ...]:
        """The positional arguments, with references as :class:`TaskRef`."""
        if not self._refs:
            return self._args
        args = list(self._args)
        for i in self._refs:
            args[i] = TaskRef(args[i])
        return tuple(args)

    def __call__(self, values: Mapping[Key, Any]) -> Any:
        """Call the function with references replaced by their ``values``."""
        args: Any = self._args
        kwargs = self.kwargs
        try:
            if self._refs:
                args = list(args)
                for i in self._refs:
                    args[i] = values[args[i]]
            elif self._deep:
                args = [_resolve(a, values) for a in args]
                if kwargs:
                    kwargs = {k: _resolve(v, values) for k, v in kwargs.items()}
        except KeyError as err:
            raise _missing(err.args[0]) from None
        func = self.func
        if type(func) is SerializedFunction:
            func = func.load()
        if kwargs:
            return func(*args, **kwargs)
        return func(*args)

    @property
    def func_name(self) -> str:
        """The function's name, known without loading a serialized function."""
        func = self.func
        if type(func) is SerializedFunction:
            return func.name
        return _callable_name(func)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in (self.kwargs or {}).items()]
        return f"Task({', '.join([self.func_name, *parts])})"

    def _identity(self) -> tuple[Any, ...]:
        return (self.func, self.args, self.kwargs)

    def _hash_part(self) -> object:
        try:
            return hash(self.func)
        except TypeError:  # an unhashable callable: tasks still hash, by type
            return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            Task._from_parts,
            (self.func, self._args, self._refs, self.kwargs, self._deep, self.dependencies),
        )


def _missing(key: object) -> MissingDependencyError:
    return MissingDependencyError(
        f"the value of {key!r} was not given to the task that needs it; "
        "compute it first or pass it among the known values"
    )


def _callable_name(func: Any) -> str:
    inner = getattr(func, "func", None)  # functools.partial and friends
    if inner is not None and callable(inner):
        return _callable_name(inner)
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else type(func).__name__


def _scan(obj: Any, deps: set[Key]) -> bool:
    """Collect the references inside ``obj`` into ``deps``; return whether it needs resolving."""
    t = type(obj)
    if t in _LEAVES:
        return False
    if t is TaskRef or t is Ref:
        deps.add(obj.key)
        return True
    if t is list or t is tuple or t is set or t is frozenset:
        deep = False
        for item in obj:
            if _scan(item, deps):
                deep = True
        return deep
    if t is dict:
        deep = False
        for value in obj.values():
            if _scan(value, deps):
                deep = True
        return deep
    if isinstance(obj, GraphNode):
        deps.update(obj.dependencies)
        return True
    if t in _REMOTE_TYPES:
        deps.add(validate_key(_REMOTE_TYPES[t](obj)))
        return True
    return t is Opaque or t is SerializedFunction


def _resolve(obj: Any, values: Mapping[Key, Any]) -> Any:
    """Replace references, nested nodes and payloads in ``obj`` by their values."""
    t = type(obj)
    if t in _LEAVES:
        return obj
    if t is TaskRef or t is Ref:
        return values[obj.key]
    if t is list:
        return [_resolve(item, values) for item in obj]
    if t is tuple:
        return tuple(_resolve(item, values) for item in obj)
    if t is dict:
        return {k: _resolve(v, values) for k, v in obj.items()}
    if t is set or t is frozenset:
        return t(_resolve(item, values) for item in obj)
    if t is Opaque or t is SerializedFunction:
        return obj.load()
    if isinstance(obj, GraphNode):
        return obj(values)
    if t in _REMOTE_TYPES:
        return values[_REMOTE_TYPES[t](obj)]
    return obj


# --------------------------------------------------------------------------- payloads


class SerializedFunction:
    """A function as it travels: cloudpickle bytes, loaded on first call.

    The unpacker never loads it; a worker loads each distinct function once and
    keeps it, however many tasks call it.

    Parameters
    ----------
    name
        The function's name, for display without loading it.
    data
        Its cloudpickle bytes.

    Examples
    --------
    >>> import pickle
    >>> f = SerializedFunction("len", pickle.dumps(len))
    >>> f.load()("abc")
    3
    """

    __slots__ = ("_func", "_lock", "data", "name")
    # Worker-side cache shared by every SerializedFunction in this process, so that a
    # function arriving once per task through a process pool is loaded only once.
    _CACHE: ClassVar[dict[bytes, Callable[..., Any]]] = {}
    # Bounded by the bytes of the functions held (a closure may be megabytes).
    _CACHE_LIMIT: ClassVar[int] = 64 << 20
    _cache_bytes: ClassVar[int] = 0

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data
        self._func: Callable[..., Any] | None = None
        self._lock = threading.Lock()

    def load(self) -> Callable[..., Any]:
        """Return the function, deserialising it on first use."""
        func = self._func
        if func is not None:
            return func
        with self._lock:
            if self._func is None:
                cached = self._CACHE.get(self.data)
                if cached is None:
                    cached = _load_callable(self.name, self.data)
                    cls = SerializedFunction
                    if cls._cache_bytes + len(self.data) > cls._CACHE_LIMIT:
                        cls._CACHE.clear()
                        cls._cache_bytes = 0
                    if len(self.data) <= cls._CACHE_LIMIT:
                        cls._CACHE[self.data] = cached
                        cls._cache_bytes += len(self.data)
                self._func = cached
            return self._func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Load the function and call it."""
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<SerializedFunction {self.name} ({len(self.data)} bytes)>"

    def __eq__(self, other: object) -> bool:
        return type(other) is SerializedFunction and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SerializedFunction, (self.name, self.data))


def _load_callable(name: str, data: bytes) -> Callable[..., Any]:
    from hlg.errors import TaskExecutionError

    try:
        func = pickle.loads(data)
    except Exception as err:
        raise TaskExecutionError(
            f"function {name!r} could not be loaded on this worker: {err}; install the "
            "modules it needs here, or define it in a module that is importable"
        ) from err
    if not callable(func):
        raise TaskExecutionError(f"function table entry {name!r} is {type(func).__name__}")
    return func  # type: ignore[no-any-return]


class Opaque:
    """A task argument serialised on the client, decoded only where the task runs.

    Parameters
    ----------
    serializer
        The registered serializer's name (see :func:`hlg.packing.register_serializer`).
    payload
        What that serializer's ``dumps`` produced.
    """

    __slots__ = ("payload", "serializer")

    def __init__(self, serializer: str, payload: Any) -> None:
        self.serializer = serializer
        self.payload = payload

    def load(self) -> Any:
        """Decode the value with its serializer."""
        from hlg.serializers import loads  # deferred: workers only

        return loads(self.serializer, self.payload)

    def __repr__(self) -> str:
        return f"<Opaque {self.serializer}>"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is Opaque
            and other.serializer == self.serializer
            and other.payload == self.payload
        )

    def __hash__(self) -> int:
        return hash((self.serializer, repr(self.payload)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Opaque, (self.serializer, self.payload))


def _is_ref(obj: Hashable, keys: Container[object]) -> bool:
    try:
        return obj in keys
    except TypeError:  # a tuple holding unhashable items is never a key
        return False


def _ref(key: Key) -> TaskRef:
    # A TaskRef to a key already known valid (a key of the graph being converted).
    ref = object.__new__(TaskRef)
    ref.key = key
    return ref
