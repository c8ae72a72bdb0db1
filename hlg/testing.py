"""Testing helpers for layer authors: the conformance check every layer type passes.

:func:`check_layer` checks a layer against the :class:`~hlg.Layer` contract:

1. its keys: valid, unique, as many as ``len`` says, each ``in`` the layer;
2. materialisation: the same keys, and ``layer[key]`` and
   ``get_dependencies`` agree with it;
3. packing: pack → bytes → unpack gives the same tasks and dependencies as
   direct materialisation, annotations expanded to every key, and per-role
   annotations to the keys of their role (``role_keys`` agreeing with
   ``role_size``);
4. culling: a cull to a few keys keeps them and exactly what they need, and
   the culled layer packs too;
5. the packed size, against an optional budget.

:class:`RangeLayer` is a small layer with an O(1) state, useful for testing
graphs of any size.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any, cast

from hlg.errors import LayerStateError, MissingKeyError, counted
from hlg.keys import Key, is_key, tokenize
from hlg.layers.base import Layer
from hlg.layers.registry import register_layer
from hlg.limits import Cost, check_distinct_hashes
from hlg.packing.codec import is_data_callable, pickle_function
from hlg.task import (
    Alias,
    DataNode,
    GraphNode,
    Opaque,
    Ref,
    SerializedFunction,
    Task,
    TaskRef,
)

if TYPE_CHECKING:
    from hlg.packing.codec import Decoder, Encoder

__all__ = ["LayerReport", "RangeLayer", "assert_same_node", "check_layer"]


@dataclasses.dataclass(frozen=True)
class LayerReport:
    """What :func:`check_layer` measured."""

    ntasks: int
    packed_bytes: int
    external_keys: frozenset[Key]
    culled_to: tuple[Key, ...]


def check_layer(
    layer: Layer, *, max_packed_bytes: int | None = None, cull_keys: Iterable[Key] | None = None
) -> LayerReport:
    """Check that ``layer`` keeps the :class:`~hlg.Layer` contract; raise AssertionError if not.

    Parameters
    ----------
    layer
        The layer to check. Keys it needs from other layers are treated as held
        remotely when it is packed on its own.
    max_packed_bytes
        Fail if the packed layer is larger.
    cull_keys
        Keys to cull to; by default the first, middle and last keys.

    Returns
    -------
    LayerReport

    Examples
    --------
    >>> report = check_layer(RangeLayer("r", abs, 0, 1000))
    >>> report.ntasks, report.packed_bytes < 500
    (1000, True)
    """
    keys = _check_keys(layer)
    tasks = layer.materialize()
    _assert(set(tasks) == set(keys), f"{layer!r}: materialize() gives other keys than iter()")
    for key in _sample(keys):
        assert_same_node(layer[key], tasks[key], f"{layer!r}: layer[{key!r}]")
        _assert(
            layer.get_dependencies(key) == tasks[key].dependencies,
            f"{layer!r}: get_dependencies({key!r}) differs from the task's dependencies",
        )
    outputs = layer.output_keys()
    if outputs is not None:
        given = list(islice(outputs, len(tasks) + 1))  # an endless iterable stops here
        _assert(len(given) <= len(tasks), f"{layer!r}: output_keys() gives more keys than tasks")
        stray = [k for k in given if k not in tasks]
        _assert(not stray, f"{layer!r}: output_keys() gives keys it does not build: {stray[:3]}")
    external = frozenset(d for node in tasks.values() for d in node.dependencies) - set(keys)
    packed = _check_round_trip(layer, tasks, external)
    if max_packed_bytes is not None:
        _assert(
            packed <= max_packed_bytes,
            f"{layer!r}: packs to {packed:,} bytes, over the budget of {max_packed_bytes:,}",
        )
    chosen = tuple(cull_keys) if cull_keys is not None else tuple(_ends(keys))
    if chosen:
        _check_cull(layer, tasks, chosen)
    return LayerReport(len(keys), packed, external, chosen)


def _assert(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _check_keys(layer: Layer) -> list[Key]:
    keys = list(layer)
    _assert(len(keys) == len(layer), f"{layer!r}: len() is {len(layer)}, iter() gives {len(keys)}")
    _assert(len(set(keys)) == len(keys), f"{layer!r}: iter() repeats keys")
    for key in keys:
        _assert(is_key(key), f"{layer!r}: {key!r} is not a valid key")
        _assert(key in layer, f"{layer!r}: {key!r} from iter() is not `in` the layer")
    _assert(("no such key", -1) not in layer, f"{layer!r}: `in` accepts a foreign key")
    return keys


def _check_round_trip(
    layer: Layer, tasks: Mapping[Key, GraphNode], external: frozenset[Key]
) -> int:
    from hlg.materialize.unpack import unpack
    from hlg.packing.pack import pack

    data = pack(layer, remote_keys=external)
    flat = unpack(data)
    _assert(set(flat.tasks) == set(tasks), f"{layer!r}: unpacking gives other keys")
    for key, node in tasks.items():
        assert_same_node(flat.tasks[key], node, f"{layer!r}: unpacked task {key!r}")
    roles = {role: set(layer.role_keys(role)) for role in layer.roles}
    for role, keys in roles.items():
        _assert(keys <= set(tasks), f"{layer!r}: role {role!r} names keys the layer lacks")
        _assert(
            len(keys) == layer.role_size(role),
            f"{layer!r}: role_size({role!r}) is {layer.role_size(role)}, "
            f"it has {counted(len(keys), 'key')}",
        )
    for name, value in layer.annotations.items():
        expanded = flat.annotations.get(name, {})
        _assert(
            all(expanded.get(k) == value for k in tasks if not _role_sets(layer, roles, name, k)),
            f"{layer!r}: annotation {name!r} is not expanded to every key",
        )
    for role, values in layer.role_annotations.items():
        for name, value in values.items():
            expanded = flat.annotations.get(name, {})
            _assert(
                all(expanded.get(k) == value for k in roles[role]),
                f"{layer!r}: annotation {name!r} of role {role!r} is not expanded to its keys",
            )
    return len(data)


def _role_sets(layer: Layer, roles: dict[str, set[Key]], name: str, key: Key) -> bool:
    # Whether a role annotation overrides annotation ``name`` at ``key``.
    return any(
        name in values and key in roles[role] for role, values in layer.role_annotations.items()
    )


def _check_cull(layer: Layer, tasks: Mapping[Key, GraphNode], chosen: tuple[Key, ...]) -> None:
    culled, external = layer.cull(chosen)
    kept = set(culled)
    _assert(set(chosen) <= kept, f"{layer!r}: cull({chosen!r}) lost requested keys")
    _assert(kept <= set(tasks), f"{layer!r}: cull({chosen!r}) invented keys")
    culled_tasks = culled.materialize()
    needed: set[Key] = set()
    for key in kept:
        assert_same_node(culled_tasks[key], tasks[key], f"{layer!r}: culled task {key!r}")
        needed |= tasks[key].dependencies
    _assert(
        needed - kept == set(external),
        f"{layer!r}: cull({chosen!r}) reports external keys {sorted(map(repr, external))}, "
        f"the kept tasks need {sorted(map(repr, needed - kept))}",
    )
    _assert(needed & set(tasks) <= kept, f"{layer!r}: cull dropped a key a kept task needs")
    _check_round_trip(culled, culled_tasks, frozenset(external))


def _sample(keys: list[Key], n: int = 50) -> list[Key]:
    step = max(1, len(keys) // n)
    return keys[::step]


def _ends(keys: list[Key]) -> list[Key]:
    if not keys:
        return []
    return list(dict.fromkeys([keys[0], keys[len(keys) // 2], keys[-1]]))


def assert_same_node(actual: GraphNode, expected: GraphNode, where: str = "node") -> None:
    """Assert two nodes compute the same thing, comparing functions by their serialised bytes.

    Examples
    --------
    >>> assert_same_node(Task(abs, TaskRef("x")), Task(abs, TaskRef("x")))
    >>> assert_same_node(Task(abs, 1), Task(abs, 2))
    Traceback (most recent call last):
    AssertionError: node: Task(abs, 1) differs from Task(abs, 2)
    """
    same = type(actual) is type(expected) and actual.dependencies == expected.dependencies
    if same:
        same = _normal(actual) == _normal(expected)
    _assert(same, f"{where}: {actual!r} differs from {expected!r}")


def _normal(obj: Any) -> Any:
    """Return a comparable form of a node or value, the same before and after packing."""
    t = type(obj)
    if t is Task:
        func = obj.func
        code = func.data if type(func) is SerializedFunction else _function_bytes(func)
        return ("task", code, _normal(obj.args), _normal(obj.kwargs or {}))
    if t is DataNode:
        return ("data", _normal(obj.value))
    if t is Alias:
        return ("alias", obj.target)
    if t is TaskRef or t is Ref:
        return ("ref", obj.key)
    if t is SerializedFunction:
        return ("function", obj.data)
    if t is Opaque:
        return _normal(obj.load())
    if t in (list, tuple):
        return (t.__name__, *[_normal(x) for x in obj])
    if t is dict:
        return ("dict", tuple(sorted((repr(k), _normal(v)) for k, v in obj.items())))
    if callable(obj) and not is_data_callable(obj):
        return ("function", _function_bytes(obj))
    return ("value", tokenize(obj))


@functools.lru_cache(maxsize=256)
def _function_bytes(func: Any) -> bytes:
    return pickle_function(func)


# --------------------------------------------------------------------------- RangeLayer


@register_layer("hlg.testing.range")
class RangeLayer(Layer):
    """Tasks ``(name, i): func(i)`` for ``i`` in a range; packs to an O(1) state.

    Parameters
    ----------
    name
        The layer's name and the first item of its keys.
    func
        Called with each index.
    start, stop
        The range of indices.
    indices
        After culling: the indices kept, if they are not a whole range.

    Examples
    --------
    >>> layer = RangeLayer("sq", abs, -2, 2)
    >>> list(layer), layer[("sq", -1)]
    ([('sq', -2), ('sq', -1), ('sq', 0), ('sq', 1)], Task(abs, -1))
    """

    def __init__(
        self,
        name: str,
        func: Callable[[int], Any],
        start: int,
        stop: int,
        *,
        indices: tuple[int, ...] | None = None,
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, annotations)
        self.func = func
        self.start = start
        self.stop = stop
        self.indices = indices

    def _range(self) -> Iterable[int]:
        return range(self.start, self.stop) if self.indices is None else self.indices

    def __iter__(self) -> Iterator[Key]:
        name = self.name
        return ((name, i) for i in self._range())

    def __len__(self) -> int:
        return len(self._range())  # type: ignore[arg-type]

    def __contains__(self, key: object) -> bool:
        return (
            type(key) is tuple
            and len(key) == 2
            and key[0] == self.name
            and type(key[1]) is int
            and key[1] in self._range()
        )

    def __getitem__(self, key: Key) -> GraphNode:
        if key not in self:
            raise MissingKeyError(f"layer {self.name!r} has no key {key!r}")
        return Task(self.func, key[1])  # type: ignore[index]

    def materialize(self) -> dict[Key, GraphNode]:
        """Build every task."""
        func, name = self.func, self.name
        return {(name, i): Task(func, i) for i in self._range()}

    def cull(self, keys: Iterable[Key]) -> tuple[RangeLayer, set[Key]]:
        """Keep the given keys: a contiguous run stays a range, others a list of indices."""
        wanted: list[int] = sorted({cast(int, k[1]) for k in keys if k in self})  # type: ignore[index]
        if wanted and wanted[-1] - wanted[0] + 1 == len(wanted):
            culled = RangeLayer(self.name, self.func, wanted[0], wanted[-1] + 1)
        else:
            culled = RangeLayer(self.name, self.func, 0, 0, indices=tuple(wanted))
        culled.annotations = dict(self.annotations)
        return culled, set()

    def pack_state(self, encoder: Encoder) -> Any:
        """Pack the function index and the range: O(1) in the number of tasks."""
        state: dict[str, Any] = {
            "func": encoder.function(self.func),
            "start": self.start,
            "stop": self.stop,
        }
        if self.indices is not None:
            state["indices"] = self.indices
        return state

    @classmethod
    def unpack_state(
        cls, state: Any, decoder: Decoder, *, name: str, annotations: dict[str, Any]
    ) -> RangeLayer:
        """Rebuild the layer around the serialised function, checking every field."""
        if type(state) is not dict or not {"func", "start", "stop"} <= state.keys():
            raise LayerStateError(
                f"layer {name!r}: the state is not a map with 'func', 'start' and 'stop' fields"
            )
        start, stop, indices = state["start"], state["stop"], state.get("indices")
        if type(start) is not int or type(stop) is not int:
            raise LayerStateError(
                f"layer {name!r}: start {start!r:.80} and stop {stop!r:.80} are not both ints"
            )
        if indices is not None:
            if type(indices) is not tuple or not all(type(i) is int for i in indices):
                raise LayerStateError(
                    f"layer {name!r}: indices {indices!r:.200} are not an array of ints"
                )
            check_distinct_hashes(indices, f"layer {name!r}: its indices")
            if len(set(indices)) != len(indices):
                raise LayerStateError(f"layer {name!r}: its indices repeat a number")
        layer = cls(name, decoder.function(state["func"]), start, stop, indices=indices)
        layer.annotations = annotations
        return layer

    def cost(self) -> Cost:
        """Count the tasks without building a range (which may hold more than ``sys.maxsize``)."""
        n = max(0, self.stop - self.start) if self.indices is None else len(self.indices)
        return Cost(tasks=n, annotations=n * len(self.annotations))
