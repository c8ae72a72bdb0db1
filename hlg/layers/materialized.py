"""MaterializedLayer: a layer that holds its tasks in a dict.

Tasks given dask-style (tuples, keys, lists) stay as given until something
needs them as nodes. Culling does not: it reads the references of each kept
value straight from the tuple (:func:`hlg.convert.plain_refs`, the test the
converter and the packer use too, applied inline where the cull sweeps the
dict), so that ``pack(graph, keys)`` walks the dict once to cull it and once to
encode what is kept, and builds no task.

A culled layer lists its tasks in dependency order, each after the tasks of
the layer it needs, so that the unpacker proves them acyclic as it merges
them, without a separate sort.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Collection, Container, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from hlg.convert import KeyUnion, convert_graph, convert_task, plain_literal, plain_refs
from hlg.errors import MissingKeyError
from hlg.keys import Key, validate_keys
from hlg.layers.base import MATERIALIZED_TAG, Layer, cull_tasks, hold_culled_tasks_with
from hlg.layers.registry import register_layer
from hlg.task import INT_END, INT_MIN, PLAIN_SCALARS, GraphNode, apply

if TYPE_CHECKING:
    from hlg.packing.codec import Decoder, Encoder, PreEncoded

__all__ = ["MaterializedLayer", "MaterializedState"]


class _TaskColumns(TypedDict):
    # The fields of every MaterializedState: one entry per task in each.

    #: The output keys.
    keys: tuple[Key, ...]
    #: Function table index; -1 for a data node, -2 for an alias.
    funcs: tuple[int, ...]
    #: A task's positional arguments; a data node's value; an alias's target key.
    args: tuple[Any, ...]
    #: Positions in a task's arguments of bare keys standing for their values.
    refs: tuple[tuple[int, ...], ...]


class MaterializedState(_TaskColumns, total=False):
    """The packed state of a :class:`MaterializedLayer`: its tasks, column by column.

    The encoder writes it (:meth:`hlg.packing.codec.Encoder.tasks`); the
    decoder checks every column before it builds a task, since the state comes
    from untrusted bytes. ``docs/format.md`` describes each field.

    Examples
    --------
    >>> from operator import add
    >>> from hlg.packing.codec import Encoder
    >>> layer = MaterializedLayer({"a": 1, "b": (add, "a", 2)}, name="l")
    >>> state: MaterializedState = layer.pack_state(Encoder()).value
    >>> state["keys"], state["funcs"], state["refs"]
    (('a', 'b'), (-1, 0), ((), (0,)))
    """

    #: Keyword arguments, by task position, of the tasks that have any.
    kwargs: dict[int, dict[str, Any]]
    #: Positions of the nodes whose arguments hold nested references or tasks.
    deep: tuple[int, ...]


@register_layer(MATERIALIZED_TAG)
class MaterializedLayer(Layer):
    """A layer holding its tasks explicitly.

    Parameters
    ----------
    tasks
        Keys to tasks: :class:`~hlg.Task`/:class:`~hlg.DataNode`/:class:`~hlg.Alias`
        values, or dask-style values (tuples, keys, lists, literals). Dask-style
        values are converted once, when the tasks are first needed; packing
        encodes them directly, without building task objects.
    name
        The layer's name; a unique name is made up when omitted.
    annotations
        Scheduling hints for every task of the layer.
    known_keys
        Keys of other layers that dask-style values may refer to. Without it,
        only keys of this layer are recognised as references. It is read when
        the tasks are first converted or packed, and is not copied (it may be
        large): it must not change afterwards.
    copy
        Copy ``tasks`` (the default). With ``copy=False`` the layer keeps the
        dict it is given, which must then not be changed.

    Raises
    ------
    InvalidKeyError
        A key is not a ``str`` or a tuple starting with a ``str``.

    Examples
    --------
    >>> from operator import add
    >>> layer = MaterializedLayer({"x": 1, "y": (add, "x", 1)}, name="small")
    >>> len(layer), sorted(layer), layer["y"].dependencies
    (2, ['x', 'y'], frozenset({'x'}))
    """

    def __init__(
        self,
        tasks: Mapping[Any, Any],
        name: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        *,
        known_keys: Container[object] | None = None,
        copy: bool = True,
    ) -> None:
        super().__init__(name or f"materialized-{uuid.uuid4().hex[:12]}", annotations)
        raw = tasks if not copy and type(tasks) is dict else dict(tasks)
        validate_keys(raw, layer=self.name)
        # The tasks as given, until converted; then None. Guarded by _lock.
        self._raw: dict[Key, Any] | None = raw
        if isinstance(known_keys, KeyUnion) and not known_keys.parts:
            known_keys = None  # a union of nothing: no other layer's keys
        self._known_keys = known_keys
        # True when ``_known_keys`` holds this layer's own keys too (after a cull).
        self._known_all = False
        # After a cull: what plain_refs gave for each task of ``_raw``, in order.
        self._plain: list[tuple[int, ...] | None] | None = None
        # The converted tasks, once needed.
        self._nodes: dict[Key, GraphNode] | None = None
        # On the scheduler, until the tasks are needed: the packed state and its decoder.
        self._packed: tuple[Any, Decoder] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_nodes(
        cls, tasks: dict[Key, GraphNode], name: str, annotations: dict[str, Any]
    ) -> MaterializedLayer:
        """Hold ``tasks`` that are already task nodes, as they are.

        Unlike the constructor, nothing is converted or checked: the caller
        vouches that every value is a :class:`~hlg.task.GraphNode` and that the
        annotations are valid. The dict is held, not copied.

        Examples
        --------
        >>> from hlg.task import DataNode, Task, TaskRef
        >>> layer = MaterializedLayer.from_nodes(
        ...     {"a": DataNode(1), "b": Task(abs, TaskRef("a"))}, "ab", {}
        ... )
        >>> layer.name, sorted(layer), layer["b"]
        ('ab', ['a', 'b'], Task(abs, TaskRef('a')))
        """
        layer = cls.__new__(cls)
        layer.name = name
        layer.annotations = dict(annotations)
        layer._set_state(nodes=tasks)
        return layer

    def _set_state(
        self,
        *,
        nodes: dict[Key, GraphNode] | None = None,
        raw: dict[Key, Any] | None = None,
        known_keys: Container[object] | None = None,
        known_all: bool = False,
        plain: list[tuple[int, ...] | None] | None = None,
        packed: tuple[Any, Decoder] | None = None,
    ) -> None:
        # The private fields, as __init__ describes them, for layers built without it.
        self._raw = raw
        self._known_keys = known_keys
        self._known_all = known_all
        self._plain = plain
        self._nodes = nodes
        self._packed = packed
        self._lock = threading.Lock()

    def _culled_raw(
        self,
        raw: dict[Key, Any],
        plain: list[tuple[int, ...] | None],
        known: Container[object] | None,
        known_all: bool,
    ) -> MaterializedLayer:
        # This layer keeping the dask-style tasks ``raw``, whose references are all
        # among ``raw`` and ``known`` (or in ``known`` alone, with ``known_all``): after
        # a partial cull, the kept and external keys, membership in one set, checked
        # in C. ``plain``: what plain_refs gave for each task, kept for packing.
        layer = MaterializedLayer.from_nodes({}, self.name, self.annotations)
        layer._set_state(raw=raw, known_keys=known, known_all=known_all, plain=plain)
        return layer

    def _reference_keys(self, raw: dict[Key, Any]) -> Container[object]:
        # The keys that values of ``raw`` may refer to.
        known = self._known_keys
        if known is None:
            return raw
        return known if self._known_all else KeyUnion(raw, known)

    def __getstate__(self) -> dict[str, Any]:
        # The lock guards this process's lazy conversion; a copy gets its own.
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def _tasks(self) -> dict[Key, GraphNode]:
        nodes = self._nodes
        if nodes is None:
            with self._lock:
                if self._nodes is None and self._packed is not None:
                    state, decoder = self._packed
                    self._nodes = decoder.tasks(state, layer=self.name)
                    self._packed = None
                elif self._nodes is None:
                    assert self._raw is not None  # invariant: one of the three is set
                    self._nodes = convert_graph(self._raw, self._known_keys)
                    self._raw = None
                nodes = self._nodes
        return nodes

    def _keys(self) -> dict[Key, Any]:
        raw = self._raw
        return self._tasks if raw is None else raw

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys())

    def __len__(self) -> int:
        packed = self._packed
        if packed is not None:
            return len(packed[0]["keys"])  # checked by unpack_state
        return len(self._keys())

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._keys()
        except TypeError:
            return False

    def __getitem__(self, key: Key) -> GraphNode:
        try:
            return self._tasks[key]
        except (KeyError, TypeError):
            raise MissingKeyError(f"layer {self.name!r} has no key {key!r}") from None

    def materialize(self) -> Mapping[Key, GraphNode]:
        """Return the tasks.

        Examples
        --------
        >>> MaterializedLayer({"x": 1}, name="x").materialize()
        {'x': DataNode(1)}
        """
        return self._tasks

    def filter_keys(self, keys: Iterable[object]) -> Collection[Key]:
        """Return those of ``keys`` that this layer produces, intersected in C when possible."""
        mine = self._keys()
        if isinstance(keys, dict):
            if mine.keys() >= keys.keys():
                # All of them, listed in their given order: a cull then reads the
                # keys in the order they were made, which is faster than hash order.
                return list(keys)
            return keys.keys() & mine.keys()
        return super().filter_keys(keys)

    def cull(self, keys: Iterable[Key]) -> tuple[MaterializedLayer, set[Key]]:
        """Keep ``keys`` and what they need inside this layer, in dependency order.

        Dask-style tasks are culled as they are, without converting them.

        Examples
        --------
        >>> from operator import add
        >>> layer = MaterializedLayer({"a": 1, "b": (add, "a", "z"), "c": 3}, name="l",
        ...                           known_keys={"z"})
        >>> culled, external = layer.cull(["b"])
        >>> list(culled), external
        (['a', 'b'], {'z'})
        """
        raw = self._raw
        if raw is None:
            kept, external = cull_tasks(self.name, self._tasks, keys)
            return MaterializedLayer.from_nodes(kept, self.name, self.annotations), external
        kept_raw, plain, external = _cull_raw(self.name, raw, self._reference_keys(raw), keys)
        if kept_raw is raw:
            # Everything kept: the keys the references were found among stay the same.
            return self._culled_raw(raw, plain, self._known_keys, self._known_all), external
        return self._culled_raw(kept_raw, plain, external.union(kept_raw), True), external

    def pack_state(self, encoder: Encoder) -> PreEncoded[MaterializedState]:
        """Pack the tasks, each function once in the envelope's function table."""
        raw = self._raw
        if raw is not None:
            known = self._reference_keys(raw)
            return encoder.raw_tasks(raw, known, layer=self.name, plain=self._plain)
        return encoder.tasks(self._tasks, layer=self.name)

    @classmethod
    def unpack_state(
        cls, state: MaterializedState, decoder: Decoder, *, name: str, annotations: dict[str, Any]
    ) -> MaterializedLayer:
        """Rebuild the layer on the scheduler; its tasks are decoded when first needed.

        So the unpacker compares the layer's :meth:`cost` with its limits
        before decoding a single task. ``state`` should be what
        :meth:`pack_state` returned, but it comes from untrusted bytes: its
        columns are checked here, and each task as it is decoded.
        """
        decoder.check_tasks_state(state, layer=name)
        layer = cls.from_nodes(None, name, annotations)  # type: ignore[arg-type]
        layer._set_state(packed=(state, decoder))
        return layer


hold_culled_tasks_with(MaterializedLayer.from_nodes)


# What a cull of dask-style tasks returns: the kept values in dependency order,
# what plain_refs gave for each (None where the value is not a plain task), and the
# keys they need from outside.
_RawCull = tuple[dict[Key, Any], list[tuple[int, ...] | None], set[Key]]


def _cull_raw(
    name: str, raw: dict[Key, Any], known: Container[object], keys: Iterable[Key]
) -> _RawCull:
    """Keep ``keys`` of dask-style ``raw`` and what they need, each after its dependencies.

    ``known`` holds every key a value may refer to.

    A dict graph is nearly always written in dependency order; then one sweep
    from its end finds what is kept, and keeps the dict's order. The sweep is
    tried when the keys are many, and gives way to a walk from the keys when
    it finds a task written before one it needs, or a key that ``raw`` lacks.
    """
    wanted = list(keys)
    if len(wanted) * 8 >= len(raw):
        swept = _sweep_raw(raw, known, wanted)
        if swept is not None:
            return swept
    if not raw.keys() >= set(wanted):
        key = next(k for k in wanted if k not in raw)
        raise MissingKeyError(f"layer {name!r} has no key {key!r}")
    return _walk_raw(raw, known, wanted)


def _raw_dependencies(
    value: Any, known: Container[object]
) -> tuple[Iterable[Key], tuple[int, ...] | None]:
    # A value's dependencies, and what plain_refs gave for it (None: not plain).
    if type(value) is tuple and value and callable(value[0]) and value[0] is not apply:
        args = value[1:]
        refs = plain_refs(args, known)
        if refs is not None:
            return [args[i] for i in refs], refs
    return convert_task(value, known).dependencies, None


def _sweep_raw(raw: dict[Key, Any], known: Container[object], wanted: list[Key]) -> _RawCull | None:
    # From the last task to the first; None if a task needs one written after it, or if
    # a wanted key is not in ``raw``. plain_refs is inlined for the plain tasks, nearly
    # every task, so that each argument that may be a key is looked up once, in
    # ``state`` (``known`` holds the keys of ``raw``, so ``state`` answers for them).
    # Each key of ``raw``, in its order -> 0: not needed; 1: needed; 2: passed and kept.
    state = dict.fromkeys(raw, 0)
    state.update(dict.fromkeys(wanted, 1))
    if len(state) != len(raw):
        return None  # a wanted key not in ``raw``
    look = state.get
    # Keys beyond those of ``raw`` that values may refer to.
    other = None if known is raw else known
    found_refs: list[tuple[int, ...] | None] = []
    external: set[Key] = set()
    checked_func: Any = _UNCHECKED  # the last function found callable and not apply
    # The sweep reads each key's state as it passes it: the states of keys not reached
    # yet change as their dependents mark them needed, but never the dict's size.
    for (key, value), needed in zip(reversed(raw.items()), reversed(state.values()), strict=True):
        if not needed:
            continue
        refs: list[int] | None = None
        if type(value) is tuple and value:
            func = value[0]
            if func is checked_func or (callable(func) and func is not apply):
                checked_func = func
                refs = []
                i = -2  # the position among the arguments, value[1:]
                try:
                    for arg in value:
                        i += 1
                        t = type(arg)
                        if t in _KEY_TYPES and (t is not int or INT_MIN <= arg < INT_END):
                            s = look(arg)  # TypeError: a tuple holding unhashable values
                            if s is None:
                                if other is not None and arg in other:
                                    external.add(arg)
                                elif t is not tuple or plain_literal(arg):
                                    continue  # a literal
                                else:
                                    refs = None
                                    break
                            elif s == 0:
                                state[arg] = 1
                            elif s == 2:
                                return None  # a dependency written after its dependent
                            refs.append(i)
                        elif i >= 0 and t not in PLAIN_SCALARS:
                            refs = None
                            break
                except TypeError:
                    refs = None
        if refs is None:
            if not _mark_converted(value, known, state, external):
                return None
            found_refs.append(None)
        else:
            found_refs.append(tuple(refs))
        state[key] = 2
    if 1 in state.values():
        return None  # a dependency written after its dependent, and passed unneeded
    found_refs.reverse()
    if len(found_refs) == len(raw):
        return raw, found_refs, external  # all kept, in the same order
    kept = {key: value for (key, value), s in zip(raw.items(), state.values(), strict=True) if s}
    return kept, found_refs, external


def _mark_converted(
    value: Any, known: Container[object], state: dict[Key, int], external: set[Key]
) -> bool:
    # _sweep_raw for a value that is not a plain task: mark its dependencies, found by
    # converting it, needed. False if one was passed already. Those that _sweep_raw
    # marked before it found the value not plain are among them.
    for dep in convert_task(value, known).dependencies:
        s = state.get(dep)
        if s is None:
            external.add(dep)
        elif s == 0:
            state[dep] = 1
        elif s == 2:
            return False  # a dependency written after its dependent
    return True


# The types of keys that are not tuples, and tuples: the arguments that may be keys.
_KEY_TYPES = frozenset({tuple, str, bytes, int, float})


# Stands for no function yet in _sweep_raw: nothing in a graph is this object.
_UNCHECKED = object()


def _walk_raw(raw: dict[Key, Any], known: Container[object], wanted: list[Key]) -> _RawCull:
    # Depth first from the wanted keys. A task is kept when it is met a second time,
    # its dependencies then kept; a cycle leaves an order that is not a dependency
    # order, which the unpacker finds and checks.
    kept: dict[Key, Any] = {}
    kept_refs: list[tuple[int, ...] | None] = []
    external: set[Key] = set()
    entered: dict[Key, tuple[int, ...] | None] = {}  # tasks whose dependencies were pushed
    stack = wanted[::-1]
    while stack:
        key = stack[-1]
        if key in kept:
            stack.pop()
            continue
        value = raw[key]
        if key in entered:
            stack.pop()
            kept[key] = value
            kept_refs.append(entered[key])
            continue
        deps, refs = _raw_dependencies(value, known)
        pushed = False
        for dep in deps:
            if dep in raw:
                if dep not in kept:
                    stack.append(dep)
                    pushed = True
            else:
                external.add(dep)
        if pushed:
            entered[key] = refs
        else:
            stack.pop()
            kept[key] = value
            kept_refs.append(refs)
    return kept, kept_refs, external
