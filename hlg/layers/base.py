"""The :class:`Layer` contract: a lazy mapping from output keys to tasks.

A layer stands for many tasks without holding them. A subclass provides:

- ``__iter__`` (its output keys, lazily) and ``__len__`` (without materialising);
- :meth:`Layer.materialize`: its tasks, each a :class:`~hlg.task.GraphNode`
  knowing its dependencies.

and may override, for speed, the methods whose defaults materialise:

- ``__contains__`` and ``__getitem__`` for single keys;
- :meth:`Layer.cull`: a smaller layer plus the keys it needs from other layers;
- :meth:`Layer.takes_box` and :meth:`Layer.cull_lazily`: culling to and from
  :class:`KeyBox` es, boxes of block keys that are never listed, so that a
  graph culls through contractions and reductions in time independent of the
  number of blocks;
- :meth:`Layer.pack_state` / :meth:`Layer.unpack_state`: a small msgpack state
  and the scheduler-side rebuild. A layer that does not override them is
  packed as its materialised tasks, so every layer can be shipped;
- :meth:`Layer.cost`: what materialising will create, computed without
  materialising, which the unpacker checks against its limits first.

Layers are immutable and compare by identity: two layers are the same layer
only if they are the same object.
"""

from __future__ import annotations

import copy
import math
import os
import types
from abc import abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from hlg.errors import MissingDependencyError, MissingKeyError, PackError, UsageError, counted
from hlg.keys import Key
from hlg.layers.annotate import current_annotations, validate_annotations
from hlg.limits import Cost
from hlg.presentation import presenter
from hlg.task import GraphNode

if TYPE_CHECKING:
    from hlg.packing.codec import Decoder, Encoder

__all__ = ["KeyBox", "Layer", "NeededKeys", "PendingKeys"]

MATERIALIZED_TAG = "hlg.materialized"


class TaskHolder(Protocol):
    """Builds a layer that holds ``tasks`` as they are: what the default cull returns."""

    def __call__(
        self, tasks: dict[Key, GraphNode], name: str, annotations: dict[str, Any]
    ) -> Layer: ...


# The one TaskHolder, set by hold_culled_tasks_with when hlg.layers.materialized is
# imported (hlg.layers imports it with this module), so that the base class need not
# import its subclass. Empty until then.
_TASK_HOLDER: list[TaskHolder] = []


def hold_culled_tasks_with(build: TaskHolder) -> None:
    """Make ``build`` hold the tasks that the default :meth:`Layer.cull` keeps.

    ``hlg.layers.materialized`` calls it once, with the constructor of a
    :class:`~hlg.MaterializedLayer` from task nodes.
    """
    _TASK_HOLDER[:] = [build]


class Layer(Mapping[Key, GraphNode]):
    """A lazy mapping from output keys to tasks; the unit a graph is made of.

    Parameters
    ----------
    name
        The layer's name, unique within a graph. By convention the first item
        of tuple keys.
    annotations
        Scheduling hints for every task of the layer; merged over those of any
        enclosing :func:`hlg.annotate` block.

    Attributes
    ----------
    tag : str or None
        The registry tag under which the layer type packs (set by
        :func:`hlg.register_layer`).
    """

    tag: ClassVar[str | None] = None
    #: The roles this layer type's tasks take (see :meth:`role_keys`); none by default.
    roles: ClassVar[tuple[str, ...]] = ()
    #: Role -> annotations for the tasks of that role; set per instance, never mutated.
    role_annotations: Mapping[str, Mapping[str, Any]] = types.MappingProxyType({})

    def __init__(self, name: str, annotations: Mapping[str, Any] | None = None) -> None:
        if type(name) is not str or not name:
            raise UsageError(f"a layer's name must be a non-empty str; got {name!r}")
        self.name = name
        merged = current_annotations()
        if annotations:
            merged.update(validate_annotations(annotations, layer=name))
        self.annotations: dict[str, Any] = merged

    # -- the required part ---------------------------------------------------------------

    @abstractmethod
    def __iter__(self) -> Iterator[Key]:
        """Iterate over the output keys without materialising tasks."""

    @abstractmethod
    def __len__(self) -> int:
        """Return the number of output keys without materialising."""

    @abstractmethod
    def materialize(self) -> Mapping[Key, GraphNode]:
        """Return every task of the layer, by key. Do not mutate the result."""

    # -- defaults a subclass may make faster ---------------------------------------------

    def __contains__(self, key: object) -> bool:
        try:
            return any(k == key for k in self)
        except TypeError:
            return False

    def __getitem__(self, key: Key) -> GraphNode:
        tasks = self.materialize()
        try:
            return tasks[key]
        except (KeyError, TypeError):
            raise MissingKeyError(f"layer {self.name!r} has no key {key!r}") from None

    def outside_references(self) -> Iterable[tuple[Key, Key]] | None:
        """After :meth:`materialize`, the ``(key, dependency)`` pairs leaving the build order.

        A layer that builds each task after every task of its own that it needs
        may give the pairs whose dependency is not a key it built earlier (its
        keys from other layers), so that the unpacker checks those instead of
        every dependency of every task. The pairs (a list, or any iterable read
        once) must be exact, and the dict :meth:`materialize` returned must be a
        new one: the unpacker may adopt it.
        The default, ``None``, means the layer cannot say.
        """
        return None

    def materialize_with_references(
        self,
    ) -> tuple[Mapping[Key, GraphNode], Iterable[tuple[Key, Key]] | None]:
        """Build every task, and give :meth:`outside_references` with them.

        The unpacker calls this. The default is :meth:`materialize`, then
        :meth:`outside_references`; a layer that knows its references while
        building may override it to hand them over without keeping them on
        the layer.
        """
        tasks = self.materialize()
        return tasks, self.outside_references()

    def output_keys(self) -> Iterable[Key] | None:
        """Return the keys of the layer's results, or ``None`` when every task is one.

        When bytes are packed without requested keys, the unpacker computes the
        results of the layers no other layer depends on. A layer whose tasks
        include intermediate steps (a shuffle's splits and pieces) names its
        results here, so that a scheduler does not hold every intermediate
        value as a result. Each key must be one of the layer's tasks. It must
        not need the tasks built.

        Examples
        --------
        >>> from hlg.testing import RangeLayer
        >>> RangeLayer("r", abs, 0, 3).output_keys() is None  # each of its tasks is a result
        True
        """
        return None

    def filter_keys(self, keys: Iterable[object]) -> Collection[Key]:
        """Return those of ``keys`` that this layer produces, each once.

        The default asks ``in`` for each key; layers that can answer for many keys
        at once (Blockwise does, column by column) override it to make culling fast.
        The graph passes the result straight to :meth:`cull`, so it may carry what
        ``cull`` would otherwise compute again.
        """
        return set(filter(self.__contains__, keys))  # type: ignore[arg-type]

    def get_dependencies(self, key: Key) -> frozenset[Key]:
        """Return the keys the task at ``key`` needs."""
        return self[key].dependencies

    def cull(self, keys: Iterable[Key]) -> tuple[Layer, set[Key]]:
        """Return a layer with only what ``keys`` need, and the keys needed from other layers.

        The default materialises and returns a :class:`~hlg.MaterializedLayer`;
        layers that can cull symbolically override it.

        Parameters
        ----------
        keys
            Output keys of this layer that must be kept.

        Returns
        -------
        layer : Layer
            Holds at least ``keys`` and what they need from inside this layer.
        external : set
            Keys of other layers that the kept tasks need. A :class:`NeededKeys`
            may carry hints for the layers that produce them.
        """
        if not _TASK_HOLDER:
            raise UsageError(
                f"layer {self.name!r}: culling a {type(self).__name__} needs "
                "hlg.layers.materialized, which holds the kept tasks; import hlg.layers"
            )
        tasks = self.materialize()
        kept, external = cull_tasks(self.name, tasks, keys)
        return _TASK_HOLDER[0](kept, self.name, self.annotations), external

    def takes_box(self, box: KeyBox) -> bool:
        """Return whether :meth:`cull_lazily` takes ``box`` as it is, without listing its keys.

        A layer says yes only if every key of the box is one of its keys. The
        default says no: the graph then lists the box's keys for this layer.
        """
        return False

    def cull_lazily(self, keys: Collection[Key]) -> tuple[Layer, set[Key]]:
        """Return what :meth:`cull` does, where boxes of keys may stand for lists of them.

        A graph culls through this method. ``keys`` is either distinct keys of
        this layer or a :class:`KeyBox` that :meth:`takes_box` accepted; the
        returned keys may be a :class:`NeededKeys` whose ``boxes`` hold needed
        keys that are not listed in the set. The default calls :meth:`cull`.
        Layers that cull by block index (Blockwise, tree reductions) override
        both methods, so that culling a reduction to its one output key never
        lists the million blocks that it reads.
        """
        return self.cull(keys)

    # -- packing -------------------------------------------------------------------------

    def pack_state(self, encoder: Encoder) -> Any:
        """Return this layer's packed state: msgpack-native and small.

        The default packs the materialised tasks. A layer with an O(1) state
        overrides this and :meth:`unpack_state`, and registers a tag with
        :func:`hlg.register_layer`. Use ``encoder.function(f)`` for callables and
        ``encoder.value(v)`` for arbitrary argument values.
        """
        return encoder.tasks(self.materialize(), layer=self.name)

    @classmethod
    def unpack_state(
        cls, state: Any, decoder: Decoder, *, name: str, annotations: dict[str, Any]
    ) -> Layer:
        """Rebuild a layer on the scheduler from what :meth:`pack_state` returned.

        Runs inside the scheduler: it must not unpickle, and functions arrive as
        :class:`~hlg.task.SerializedFunction` (``decoder.function(i)``).
        """
        raise NotImplementedError(f"{cls.__name__} does not implement unpack_state")

    def cost(self) -> Cost:
        """Return what :meth:`materialize` will create, computed without materialising.

        The unpacker calls it on a layer rebuilt by :meth:`unpack_state` and
        refuses the graph if the total crosses its :class:`~hlg.Limits`, so it
        must be cheap and must not under-count. The default counts ``len(self)``
        tasks and one annotation entry per annotation and task. A layer whose
        tasks hold references or computed values it generates (rather than
        reads from its state) overrides it and counts them too; see
        ``docs/writing-a-layer.md``.

        Examples
        --------
        >>> from hlg import MaterializedLayer
        >>> MaterializedLayer({"x": 1, "y": 2}, name="xy", annotations={"retries": 1}).cost()
        Cost(tasks=2, references=0, inputs=0, annotations=2, text=0)
        """
        n = len(self)
        return Cost(tasks=n, annotations=n * len(self.annotations))

    def packed_tag(self) -> str:
        """Return the registry tag this layer packs under."""
        if type(self).pack_state is Layer.pack_state:
            return MATERIALIZED_TAG
        tag = type(self).tag
        if tag is None:
            raise PackError(
                f"layer {self.name!r}: {type(self).__name__} overrides pack_state but has no "
                "registry tag; decorate the class with @hlg.register_layer('your-package.name')"
            )
        return tag

    # -- per-role annotations ------------------------------------------------------------

    def role_keys(self, role: str) -> Iterable[Key]:
        """Return the keys of the tasks that have ``role``, one of :attr:`roles`.

        A layer whose tasks play different parts (a shuffle's splits and
        combines) names them in :attr:`roles` and overrides this and
        :meth:`role_size`; ``role_annotations`` then apply to those keys only,
        expanded per key on the scheduler. It must not need the tasks built.
        """
        raise UsageError(f"layer {self.name!r} ({type(self).__name__}) has no role {role!r}")

    def role_size(self, role: str) -> int:
        """Return how many tasks have ``role``, without building them."""
        raise UsageError(f"layer {self.name!r} ({type(self).__name__}) has no role {role!r}")

    def check_role_annotations(
        self, role_annotations: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        """Check role names against :attr:`roles` and values as annotations; return a copy."""
        out: dict[str, dict[str, Any]] = {}
        for role, values in role_annotations.items():
            if role not in self.roles:
                known = ", ".join(map(repr, self.roles)) or "none"
                raise UsageError(
                    f"layer {self.name!r}: {type(self).__name__} has no task role {role!r}; "
                    f"its roles: {known}"
                )
            if not isinstance(values, Mapping):
                raise UsageError(
                    f"layer {self.name!r}: the annotations of role {role!r} must be a mapping "
                    f"of name to value; got {type(values).__name__}"
                )
            if values:
                out[role] = validate_annotations(values, layer=self.name)
        return out

    def with_role_annotations(self, role: str, **annotations: Any) -> Layer:
        """Return a copy of the layer with ``annotations`` added for the tasks of ``role``.

        Raises
        ------
        UsageError
            The layer type has no such role, or a value is not a valid annotation.

        Examples
        --------
        >>> import hlg
        >>> layer = hlg.ShuffleLayer("s", "x", 10, dict, list)
        >>> layer.with_role_annotations("output", retries=2).role_annotations["output"]
        {'retries': 2}
        >>> layer.with_role_annotations("nope", retries=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        hlg.errors.UsageError: layer 's': ShuffleLayer has no task role 'nope'; its roles: ...
        """
        new = copy.copy(self)
        merged = {**self.role_annotations.get(role, {}), **annotations}
        new.role_annotations = {
            **self.role_annotations,
            **self.check_role_annotations({role: merged}),
        }
        return new

    def annotation_entries(self) -> int:
        """Return how many per-key annotation entries unpacking this layer writes.

        Layer annotations for every key, then role annotations for their role's keys
        (a role's value for a name the layer also sets overwrites it, so this bounds
        the entries held from above). Computed from :meth:`__len__` and
        :meth:`role_size`, without building tasks, so that an unpacker can check it
        against a budget first.

        Examples
        --------
        >>> import hlg
        >>> layer = hlg.ShuffleLayer("s", "x", 100, dict, list, annotations={"retries": 1})
        >>> len(layer), layer.role_size("split"), layer.role_size("piece")
        (2400, 200, 2000)
        >>> layer.annotation_entries() == 2400 + 200 + 2000
        True
        """
        total = len(self) * len(self.annotations)
        for role, values in self.role_annotations.items():
            total += self.role_size(role) * len(values)
        return total

    # -- conveniences --------------------------------------------------------------------

    def with_annotations(self, **annotations: Any) -> Layer:
        """Return a copy of the layer with ``annotations`` added.

        Examples
        --------
        >>> from hlg import MaterializedLayer
        >>> MaterializedLayer({"x": 1}, name="x").with_annotations(priority=5).annotations
        {'priority': 5}
        """
        new = copy.copy(self)
        new.annotations = {**self.annotations, **validate_annotations(annotations, layer=self.name)}
        return new

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {counted(len(self), 'task')}>"

    # -- display -------------------------------------------------------------------------

    def describe(self, *, sizes: bool = True) -> Any:
        """Return this layer's row of the layer table, without materialising it.

        See :func:`hlg.describe`.

        Examples
        --------
        >>> import hlg
        >>> layer = hlg.blockwise(abs, "y", "ij", "x", "ij", numblocks={"x": (20, 50)})
        >>> row = layer.describe().layers[0]
        >>> row.tasks, row.blocks
        (1000, '20 x 50 blocks')
        """
        return presenter().describe(self, sizes=sizes)

    def visualize(self, filename: str | os.PathLike[str] = "hlg.svg") -> Path:
        """Draw this layer as a one-box picture; see :meth:`hlg.HighLevelGraph.visualize`."""
        return presenter().visualize(self, filename)

    def to_dot(self) -> str:
        """Return this layer as Graphviz DOT text (needs nothing installed).

        Examples
        --------
        >>> from hlg import MaterializedLayer
        >>> "<b>x</b>" in MaterializedLayer({"x": 1}, name="x").to_dot()
        True
        """
        return presenter().to_dot(self)

    def _repr_html_(self) -> str:
        return presenter().to_html(self)


class KeyBox(Collection[Key]):
    """The keys ``(name, *block)`` of every block in a box of block ranges, never listed.

    Parameters
    ----------
    name
        The first item of every key: by convention the producing layer's name.
    ranges
        The block numbers along each dimension.

    Examples
    --------
    >>> box = KeyBox("x", (range(2), range(1, 3)))
    >>> len(box), ("x", 1, 2) in box, ("x", 0, 0) in box, list(box)[:2]
    (4, True, False, [('x', 0, 1), ('x', 0, 2)])
    """

    __slots__ = ("name", "ranges")

    def __init__(self, name: str, ranges: Sequence[range]) -> None:
        self.name = name
        self.ranges = tuple(ranges)

    def __len__(self) -> int:
        return math.prod(map(len, self.ranges))

    def __iter__(self) -> Iterator[Key]:
        return map((self.name,).__add__, product(*self.ranges))

    def __contains__(self, key: object) -> bool:
        if type(key) is not tuple or len(key) != len(self.ranges) + 1 or key[0] != self.name:
            return False
        return all(
            type(i) is int and i in r
            for i, r in zip(key[1:], self.ranges)  # noqa: B905 - length checked
        )

    def fits(self, numblocks: Sequence[int]) -> bool:
        """Return whether the box lies inside a grid of ``numblocks`` blocks per dimension.

        Examples
        --------
        >>> KeyBox("x", (range(2, 4),)).fits((4,)), KeyBox("x", (range(2, 5),)).fits((4,))
        (True, False)
        """
        return len(numblocks) == len(self.ranges) and all(
            r.step == 1 and 0 <= r.start <= r.stop <= n
            for r, n in zip(self.ranges, numblocks, strict=True)
        )

    def __repr__(self) -> str:
        spans = ", ".join(f"{r.start}:{r.stop}" for r in self.ranges)
        return f"KeyBox({self.name!r}, [{spans}])"


class NeededKeys(set[Key]):
    """The external keys :meth:`Layer.cull` returns, with hints for the layers producing them.

    ``hints`` maps a layer name to anything that layer's type understands (for
    Blockwise: the block numbers of the keys, column by column). The graph does
    not read hints: it hands each one to the ``filter_keys`` of the layer of
    that name, as the ``hints`` of the :class:`PendingKeys` it passes, unless
    two layers gave one for the same name. A hint only saves work; a layer must
    check that it describes exactly the keys it is given before relying on it.

    ``boxes`` holds further needed keys as :class:`KeyBox` es, not listed in
    the set. Only :meth:`Layer.cull_lazily` returns boxes; :meth:`Layer.cull`
    lists every key.

    Examples
    --------
    >>> import hlg
    >>> y = hlg.blockwise(abs, "y", "i", "x", "i", numblocks={"x": (10,)})
    >>> culled, needed = y.cull([("y", 4), ("y", 7)])
    >>> sorted(needed), list(needed.hints)
    ([('x', 4), ('x', 7)], ['x'])
    """

    __slots__ = ("boxes", "hints")

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        super().__init__(keys)
        self.hints: dict[str, Any] = {}
        self.boxes: list[KeyBox] = []

    def __repr__(self) -> str:
        return repr(set(self))


class PendingKeys(dict[Key, Any]):
    """The keys a graph still has to cull, as passed to :meth:`Layer.filter_keys`.

    ``hints`` holds what :class:`NeededKeys` gave for each layer name.

    Examples
    --------
    >>> pending = PendingKeys.of([("x", 4), ("x", 7)])
    >>> pending, pending.hints
    ({('x', 4): None, ('x', 7): None}, {})
    """

    __slots__ = ("hints",)

    def __init__(self) -> None:
        super().__init__()
        self.hints: dict[str, Any] = {}

    @classmethod
    def of(cls, keys: Iterable[Key]) -> PendingKeys:
        """Return the keys, each needed by no layer yet (``None``), without hints."""
        return cast(PendingKeys, cls.fromkeys(keys))  # dict.fromkeys builds a cls


def cull_tasks(
    name: str, tasks: Mapping[Key, GraphNode], keys: Iterable[Key]
) -> tuple[dict[Key, GraphNode], set[Key]]:
    """Keep ``keys`` of ``tasks`` and, transitively, what they need within ``tasks``.

    Returns the kept tasks, each after the tasks it needs (so that an unpacker
    proves them acyclic as it merges them), and the keys they need from outside.
    A task is kept when it is met a second time, its dependencies then kept; a
    cycle leaves an order that is not a dependency order, which unpacking checks.
    """
    kept: dict[Key, GraphNode] = {}
    external: set[Key] = set()
    entered: set[Key] = set()  # tasks whose dependencies were pushed
    stack = list(keys)
    while stack:
        key = stack[-1]
        if key in kept:
            stack.pop()
            continue
        try:
            node = tasks[key]
        except KeyError:
            raise MissingKeyError(f"layer {name!r} has no key {key!r}") from None
        if key in entered:
            stack.pop()
            kept[key] = node
            continue
        pushed = False
        for dep in node.dependencies:
            if dep in tasks:
                if dep not in kept:
                    stack.append(dep)
                    pushed = True
            else:
                external.add(dep)
        if pushed:
            entered.add(key)
        else:
            stack.pop()
            kept[key] = node
    return kept, external


def missing_dependency(layer: str, key: Key, dep: Key) -> MissingDependencyError:
    """Build the error for a task whose dependency nobody produces."""
    return MissingDependencyError(
        f"layer {layer!r}: task {key!r} needs {dep!r}, which no layer produces; "
        "add that layer, or name the key as data held elsewhere (remote_keys= of hlg.pack, "
        "held= of HighLevelGraph.cull)"
    )
