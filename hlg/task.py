"""The task specification: what one key of a graph computes.

A graph maps keys to *nodes*:

- :class:`Task` calls a function on arguments. A :class:`TaskRef` among the
  arguments (also inside lists, tuples, dicts and sets) stands for the value of
  another key: a dependency.
- :class:`DataNode` holds a literal value.
- :class:`Alias` gives another key's value under a second name.

Every node gives its ``dependencies`` without rescanning its arguments: they
are found once, when the node is built. Calling a node with a mapping of dependency values computes
it: ``node(values)``.

Internally a :class:`Task` keeps the common case fast and small: a reference
that is a whole positional argument is stored as the bare key, and ``refs``
lists those positions, so running the task is one substitution per reference,
and its ``dependencies`` are read from those positions when asked for rather
than held (a one-key frozenset would be the largest part of the task). Tasks
with references nested in containers, nested tasks or not-yet-decoded
payloads are *deep*: they resolve their arguments recursively and hold their
dependencies. This module alone knows that layout: other modules build tasks
with :meth:`Task.from_parts` or :func:`build_tasks` and read them with
:meth:`Task.parts`.

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
from typing import Any, ClassVar, NamedTuple

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
LEAVES: frozenset[type] = frozenset({int, float, str, bytes, bool, type(None), complex})
# Scalars msgpack carries as they are; ints only within [INT_MIN, INT_END).
PLAIN_SCALARS: frozenset[type] = frozenset({str, float, bool, type(None), bytes})
INT_MIN, INT_END = -(1 << 63), 1 << 64
# The dependencies of every node that has none: one shared empty frozenset.
NO_KEYS: frozenset[Key] = frozenset()
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

    __slots__ = ()

    @property
    def dependencies(self) -> frozenset[Key]:
        """The keys whose values this node needs."""
        raise NotImplementedError

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

    __slots__ = ("_deep", "dependencies", "value")
    value: Any
    dependencies: frozenset[Key]
    # True when ``value`` holds payloads (Opaque) that are decoded when the node runs.
    _deep: bool

    def __init__(self, value: Any) -> None:
        self.value = value
        self.dependencies = NO_KEYS
        self._deep = False

    @classmethod
    def from_parts(cls, value: Any, deep: bool) -> DataNode:
        """Build a data node whose ``value`` may hold payloads decoded when it runs.

        For the unpacker and for layers that build nodes from a packed form: with
        ``deep`` set, :class:`Opaque` and :class:`SerializedFunction` values
        inside ``value`` are decoded each time the node is computed.

        Examples
        --------
        >>> import pickle
        >>> node = DataNode.from_parts([Opaque("pickle", pickle.dumps(5))], deep=True)
        >>> node({})
        [5]
        >>> DataNode.from_parts([1], deep=False).parts()
        ([1], False)
        """
        node = cls(value)
        node._set_deep(deep)
        return node

    def _set_deep(self, deep: bool) -> None:
        self._deep = deep

    def parts(self) -> tuple[Any, bool]:
        """Return ``(value, deep)``, what :meth:`from_parts` takes."""
        return (self.value, self._deep)

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
        return (DataNode.from_parts, (self.value, self._deep))


class Alias(GraphNode):
    """Another key's value under a second name.

    Examples
    --------
    >>> Alias("x")({"x": 3})
    3
    """

    __slots__ = ("dependencies", "target")
    target: Key
    dependencies: frozenset[Key]

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


class TaskParts(NamedTuple):
    """A :class:`Task`'s internal form, as :meth:`Task.parts` returns it.

    :meth:`Task.from_parts` takes the same fields back.

    Examples
    --------
    >>> parts = Task(divmod, TaskRef("x"), 3).parts()
    >>> parts.func, parts.args, parts.refs, parts.kwargs, parts.deep, parts.dependencies
    (<built-in function divmod>, ('x', 3), (0,), None, False, None)
    """

    func: Any
    """The callable, or a :class:`SerializedFunction`."""
    args: tuple[Any, ...]
    """Positional arguments; those at ``refs`` are bare keys standing for their values."""
    refs: tuple[int, ...]
    """Positions of ``args`` that are references; empty when ``deep``."""
    kwargs: dict[str, Any] | None
    """Keyword arguments, or None."""
    deep: bool
    """Whether arguments need the recursive pass: nested references, nested tasks, payloads."""
    dependencies: frozenset[Key] | None
    """The dependencies of a deep task; None otherwise, where they follow from ``refs``."""


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

    __slots__ = ("_args", "_deep", "_deps", "_refs", "func", "kwargs")
    func: Callable[..., Any]
    # Positional arguments; the positions in ``_refs`` hold bare keys, not TaskRefs.
    _args: tuple[Any, ...]
    # Positions of ``_args`` that are references. Empty whenever ``_deep`` is set.
    _refs: tuple[int, ...]
    kwargs: dict[str, Any] | None
    # True when arguments need a recursive pass: nested refs, nested tasks, payloads.
    _deep: bool
    # The dependencies when they are held: always for deep tasks, NO_KEYS for tasks
    # without references. None means "the keys at ``_refs`` in ``_args``", read on
    # demand: a one-key frozenset costs 216 bytes, more than the rest of the task.
    _deps: frozenset[Key] | None

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
            if scan_references(value, deps):
                deep = True
        refs: list[int] = []
        for i, arg in enumerate(args):
            if type(arg) is TaskRef:
                refs.append(i)
                deps.add(arg.key)
            elif scan_references(arg, deps):
                deep = True
        if deep:
            # The recursive pass resolves every reference, whole arguments included.
            self._args = args
            self._refs = ()
            self._deps = frozenset(deps)
        else:
            self._args = tuple(a.key if type(a) is TaskRef else a for a in args)
            self._refs = tuple(refs)
            self._deps = None if refs else NO_KEYS
        self._deep = deep

    @classmethod
    def from_parts(  # noqa: PLR0917 - the internal form, field by field
        cls,
        func: Any,
        args: tuple[Any, ...],
        refs: tuple[int, ...] = (),
        kwargs: dict[str, Any] | None = None,
        deep: bool = False,
        dependencies: frozenset[Key] | None = None,
    ) -> Task:
        """Build a task from its internal form (see :class:`TaskParts`), without checks.

        For code that already knows the form: the unpacker, layers building
        tasks from block indices, a scheduler replacing the function. ``args``
        holds bare keys at the positions ``refs``. A deep task (``deep=True``)
        resolves its arguments recursively: its bare keys at ``refs``, if any,
        become :class:`TaskRef` arguments, and its ``dependencies`` are scanned
        from the arguments when not given. Nothing is validated: the caller
        vouches for the keys.

        Examples
        --------
        >>> t = Task.from_parts(divmod, ("x", 3), (0,))
        >>> t, t.dependencies, t({"x": 7})
        (Task(divmod, TaskRef('x'), 3), frozenset({'x'}), (2, 1))
        >>> Task.from_parts(*t.parts()) == t
        True
        >>> sorted(Task.from_parts(len, ([TaskRef("a"), TaskRef("b")],), deep=True).dependencies)
        ['a', 'b']
        >>> Task.from_parts(max, ("a", [TaskRef("b")]), (0,), deep=True)({"a": [1], "b": 2})
        [2]
        """
        task = object.__new__(cls)
        if deep:
            if refs:
                whole = list(args)
                for i in refs:
                    whole[i] = trusted_ref(whole[i])
                args = tuple(whole)
            if dependencies is None:
                found: set[Key] = set()
                scan_references((args, kwargs), found)
                dependencies = frozenset(found)
            task._set_parts(func, args, (), kwargs, True, dependencies)
        else:
            task._set_parts(func, args, refs, kwargs, False, None if refs else NO_KEYS)
        return task

    def _set_parts(  # noqa: PLR0917 - every slot, positionally
        self,
        func: Any,
        args: tuple[Any, ...],
        refs: tuple[int, ...],
        kwargs: dict[str, Any] | None,
        deep: bool,
        deps: frozenset[Key] | None,
    ) -> None:
        self.func = func
        self._args = args
        self._refs = refs
        self.kwargs = kwargs
        self._deep = deep
        self._deps = deps

    def parts(self) -> TaskParts:
        """Return the internal form, what :meth:`from_parts` takes back.

        Examples
        --------
        >>> parts = Task(max, TaskRef("a"), 0).parts()
        >>> parts.args, parts.refs, parts.deep
        (('a', 0), (0,), False)
        """
        deps = self._deps if self._deep else None
        return TaskParts(self.func, self._args, self._refs, self.kwargs, self._deep, deps)

    @property
    def dependencies(self) -> frozenset[Key]:
        """The keys whose values this task needs."""
        deps = self._deps
        if deps is not None:
            return deps
        args = self._args
        refs = self._refs
        if len(refs) == 1:
            return frozenset((args[refs[0]],))
        return frozenset([args[i] for i in refs])

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
        return callable_name(func)

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
        return (Task.from_parts, tuple(self.parts()))


def build_tasks(
    keys: Iterable[Key],
    funcs: Iterable[Any],
    arg_tuples: Iterable[tuple[Any, ...]],
    refs: Iterable[tuple[int, ...]],
    kwargs: dict[str, Any] | None = None,
) -> dict[Key, Task]:
    """Build many tasks, each with its references at whole argument positions.

    ``Task.from_parts(func, args, refs, kwargs)`` for each key and its
    function, argument tuple and reference positions, in one loop: the
    unpacker, :func:`hlg.convert.convert_graph` and a layer materialising a
    million blocks call this. Every iterable gives one item per key.

    Examples
    --------
    >>> from itertools import repeat
    >>> from operator import add
    >>> tasks = build_tasks(["b", "c"], repeat(add), [("a", 1), ("a", 2)], repeat((0,)))
    >>> tasks["c"], tasks["c"].dependencies, tasks["c"]({"a": 5})
    (Task(add, TaskRef('a'), 2), frozenset({'a'}), 7)
    """
    # The one place outside Task's methods that fills its slots: calling from_parts
    # per task made unpacking a packed 200,000-task dict graph about 15% slower, and
    # materialising a million-block Blockwise layer about 10% (two Python calls per
    # task), so the loop is inlined here, next to the slots it fills.
    new = object.__new__
    out: dict[Key, Task] = {}
    for key, func, args, positions in zip(keys, funcs, arg_tuples, refs):  # noqa: B905 - equal lengths
        task = new(Task)
        task.func = func
        task._args = args
        task._refs = positions
        task.kwargs = kwargs
        task._deep = False
        task._deps = None if positions else NO_KEYS
        out[key] = task
    return out


def numbered_dependencies(
    nodes: Iterable[GraphNode], number: Callable[[Key], int]
) -> list[list[int]]:
    """Return the dependencies of each of ``nodes``, each key as ``number(key)``.

    The same keys as each node's ``dependencies``, each once, for code that
    numbers a whole graph (the scheduler, the ordering): it reads them from
    where a task keeps them, rather than asking every task for a new
    frozenset. Each list is in ascending order, so it does not depend on the
    order a frozenset of keys iterates in, which varies with the hash seed.
    ``number`` must give distinct keys distinct numbers (a key's position in
    the graph, say); an exception it raises (a ``KeyError`` for a key it does
    not know) propagates.

    Examples
    --------
    >>> from operator import add
    >>> a, b = TaskRef("a"), TaskRef("b")
    >>> nodes = [DataNode(1), Task(add, b, b), Task(add, b, a)]
    >>> numbered_dependencies(nodes, {"a": 0, "b": 1}.__getitem__)
    [[], [1], [0, 1]]
    >>> numbered_dependencies([Task(len, [TaskRef("a")])], {"a": 0}.__getitem__)
    [[0]]
    """
    # Slots read directly (the layout is this module's) for plain tasks, the common
    # case: no property call and no frozenset per task. On 100,000 tasks of one
    # reference each this numbers them in half the time that reading ``dependencies``
    # took, and tasks of two references in a third of it.
    out: list[list[int]] = []
    append = out.append
    for node in nodes:
        keys: frozenset[Key]
        if type(node) is Task:
            held = node._deps
            if held is None:  # the keys at _refs, perhaps repeated
                refs = node._refs
                args = node._args
                if len(refs) == 1:
                    append([number(args[refs[0]])])
                elif len(refs) == 2:
                    a = number(args[refs[0]])
                    b = number(args[refs[1]])
                    append([a, b] if a < b else [b, a] if b < a else [a])
                else:
                    append(sorted({number(args[i]) for i in refs}))
                continue
            keys = held
        else:
            keys = node.dependencies
        append(sorted(map(number, keys)) if keys else [])
    return out


def _missing(key: object) -> MissingDependencyError:
    return MissingDependencyError(
        f"the value of {key!r} was not given to the task that needs it; "
        "compute it first or pass it among the known values"
    )


def callable_name(func: Any) -> str:
    """Return a readable name for a callable, looking through ``functools.partial``.

    Examples
    --------
    >>> from functools import partial
    >>> callable_name(len), callable_name(partial(max, 0)), callable_name(object())
    ('len', 'max', 'object')
    """
    inner = getattr(func, "func", None)  # functools.partial and friends
    if inner is not None and callable(inner):
        return callable_name(inner)
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else type(func).__name__


def scan_references(obj: Any, deps: set[Key]) -> bool:
    """Collect the references inside ``obj`` into ``deps``; return whether it needs resolving.

    A value needs resolving when it holds references, nested nodes or payloads
    anywhere but as a whole :class:`TaskRef` argument of a task.

    Examples
    --------
    >>> found = set()
    >>> scan_references([TaskRef("a"), (1, Ref("b"))], found), sorted(found)
    (True, ['a', 'b'])
    >>> scan_references((1, "x"), found)
    False
    """
    t = type(obj)
    if t in LEAVES:
        return False
    if t is TaskRef or t is Ref:
        deps.add(obj.key)
        return True
    if t is list or t is tuple or t is set or t is frozenset:
        deep = False
        for item in obj:
            if scan_references(item, deps):
                deep = True
        return deep
    if t is dict:
        deep = False
        for value in obj.values():
            if scan_references(value, deps):
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
    if t in LEAVES:
        return obj
    if t is TaskRef or t is Ref:
        return values[obj.key]
    if t is list:
        # Lists of references, as in (sum, [...]), resolved without a call per item.
        return [
            values[item.key] if type(item) is TaskRef else _resolve(item, values) for item in obj
        ]
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


def is_known_key(obj: Hashable, keys: Container[object]) -> bool:
    """Return whether ``obj`` is in ``keys``; False for unhashable values.

    Examples
    --------
    >>> is_known_key("a", {"a"}), is_known_key(("a", [1]), {"a"})
    (True, False)
    """
    try:
        return obj in keys
    except TypeError:  # a tuple holding unhashable items is never a key
        return False


def trusted_ref(key: Key) -> TaskRef:
    """Return a :class:`TaskRef` to ``key`` without validating it.

    For a key already known valid (a key of the graph being converted or of a
    layer's own output); :class:`TaskRef` itself checks its key.

    Examples
    --------
    >>> trusted_ref(("x", 0))
    TaskRef(('x', 0))
    """
    ref = object.__new__(TaskRef)
    ref.key = key
    return ref
