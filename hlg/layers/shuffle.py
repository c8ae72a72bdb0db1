"""Shuffle layers: all-to-all repartitioning, packed as a few integers.

A shuffle moves every row of ``n_in`` input partitions (keys
``(input_name, i)``) to one of ``n_out`` output partitions (keys
``(name, j)``), its *destination*, computed from the row by the user's
function. Two user functions describe it, and neither ever sees the graph:

``split(part, route)``
    Cut ``part`` into ``route.nsplits`` pieces: a mapping or sequence with a
    piece for every group ``0 .. nsplits - 1``, a row with destination ``d``
    going to ``route.group(d)``.
``combine(pieces, route, position)``
    Join a list of pieces into one partition, at ``position`` of the stage
    (at the last stage, the output partition number).

:class:`SimpleShuffleLayer` does it in one stage: ``n_in`` splits, one piece
per input and output, ``n_out`` combines. :class:`ShuffleLayer` does it in
``S`` stages of about ``n ** (1 / S)`` groups each (see
:mod:`hlg.layers.shuffleplan`), so tasks grow like ``n * S * n ** (1 / S)``
rather than ``n ** 2``. Both are the same user functions, with the stage and
its group count passed in the :class:`ShuffleRoute`.

The layer's keys, for stage ``s``::

    ("split-" + name, s, p)          split the partition at position p
    ("piece-" + name, s, p, j)       group j of that split
    ("combine-" + name, s, t)        join the pieces whose target is t (s < S - 1)
    (name, t)                        the last stage's combines: the outputs
    "empty-" + name                  the empty partition, when some combine has no input

Each task has a *role* (``split``, ``piece``, ``combine``, ``output``,
``empty``), and per-role annotations (:attr:`hlg.Layer.role_annotations`)
are expanded per key on the scheduler. By default split and piece tasks get
``priority=1``, so that a scheduler that honours priorities cuts data up
before it joins it. The packed state is the function table indices, the
counts, and the kept outputs as ranges: O(1) for a whole shuffle, O(ranges
kept) for a culled one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from hlg._gc import gc_paused_for
from hlg.errors import LayerStateError, MissingKeyError, UsageError, counted
from hlg.keys import Key
from hlg.layers.base import Layer, NeededKeys
from hlg.layers.blockwise import BlockHint
from hlg.layers.registry import register_layer
from hlg.layers.shuffleplan import (
    MAX_STAGES,
    Ranges,
    ShufflePlan,
    in_ranges,
    intersect_ranges,
    normalize_ranges,
    plan_stages,
    ranges_of,
)
from hlg.limits import Cost
from hlg.task import DataNode, GraphNode, Task, build_tasks, scan_references, trusted_ref

if TYPE_CHECKING:
    from hlg.packing.codec import Decoder, Encoder

__all__ = [
    "ShuffleLayer",
    "ShuffleRoute",
    "ShuffleState",
    "SimpleShuffleLayer",
    "combine_pieces",
    "take_piece",
]

ROLES = ("split", "piece", "combine", "output", "empty")
# Where each role's count sits in ShufflePlan.role_counts (the empty task is the layer's).
_ROLE_INDEX = {"split": 0, "piece": 1, "combine": 2, "output": 3}
DEFAULT_ROLE_ANNOTATIONS: dict[str, dict[str, Any]] = {
    "split": {"priority": 1},
    "piece": {"priority": 1},
}
# More partitions than this cannot come from a real collection: refuse the state.
MAX_PARTITIONS = 1 << 40
_NO_EMPTY = object()
# The keys of split and piece tasks: (prefix, stage, position) and (prefix, stage, position, group).
_SplitKey = tuple[str, int, int]
_PieceKey = tuple[str, int, int, int]


@functools.lru_cache(maxsize=1024)
def _piece_positions(count: int) -> tuple[int, ...]:
    # Where a combine task's ``count`` pieces sit among its arguments:
    # combine_pieces(combine, route, target, *pieces). Each piece is a whole
    # argument, so the task needs no TaskRef per piece and no recursive pass, and
    # combines with as many pieces share one tuple.
    return tuple(range(3, 3 + count))


@dataclasses.dataclass(frozen=True, slots=True)
class ShuffleRoute:
    """What a split or combine task is told about its stage.

    Attributes
    ----------
    stage, nstages
        This stage and how many there are.
    nsplits
        The groups a split makes at every stage.
    divisor
        ``nsplits ** (nstages - 1 - stage)``.
    npartitions
        The output partitions: destinations are ``0 .. npartitions - 1``.

    Examples
    --------
    >>> route = ShuffleRoute(stage=0, nstages=2, nsplits=4, divisor=4, npartitions=10)
    >>> [route.group(d) for d in range(10)]
    [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    """

    stage: int
    nstages: int
    nsplits: int
    divisor: int
    npartitions: int

    def group(self, destination: Any) -> Any:
        """Return the group of a destination (an int, or a numpy array of them)."""
        return (destination // self.divisor) % self.nsplits


def combine_pieces(
    combine: Callable[..., Any], route: ShuffleRoute, position: int, *pieces: Any
) -> Any:
    """Call ``combine(list(pieces), route, position)``; what a combine task runs.

    Examples
    --------
    >>> combine_pieces(lambda pieces, route, position: sum(pieces) + position, None, 10, 1, 2)
    13
    """
    return combine(list(pieces), route, position)


def take_piece(pieces: Any, group: int) -> Any:
    """Return group ``group`` of a split's result; what a piece task runs.

    Examples
    --------
    >>> take_piece({0: "a", 1: "b"}, 1), take_piece(["a", "b"], 0)
    ('b', 'a')
    """
    try:
        return pieces[group]
    except (KeyError, IndexError, TypeError):
        raise UsageError(
            f"a shuffle's split function returned {type(pieces).__name__} with no piece for "
            f"group {group}; return a mapping or sequence with a piece for every group "
            "0 .. route.nsplits - 1 (an empty piece where no row goes)"
        ) from None


class _Columns:
    """The tasks of a layer as columns, built by one :func:`~hlg.task.build_tasks` call.

    One call builds one dict: building a dict per stage and role and merging
    them took about 4% more CPU time for a 100-partition shuffle.
    """

    __slots__ = ("args", "funcs", "keys", "refs")

    def __init__(self) -> None:
        # Invariant: funcs, args and refs each give one item per key, in key order.
        self.keys: list[Key] = []
        self.funcs: list[Iterable[Any]] = []
        self.args: list[Iterable[tuple[Any, ...]]] = []
        self.refs: list[Iterable[tuple[int, ...]]] = []

    def add(
        self,
        keys: Sequence[Key],
        func: Any,
        args: Iterable[tuple[Any, ...]],
        refs: Iterable[tuple[int, ...]],
    ) -> None:
        """Add tasks calling ``func``: one argument tuple and reference positions per key."""
        self.keys += keys
        self.funcs.append(repeat(func, len(keys)))
        self.args.append(args)
        self.refs.append(refs)

    def build(self) -> dict[Key, Task]:
        """Build every task added, in the order added."""
        return build_tasks(
            self.keys,
            chain.from_iterable(self.funcs),
            chain.from_iterable(self.args),
            chain.from_iterable(self.refs),
        )


class _ShuffleFields(TypedDict):
    # The fields of every ShuffleState: the ones a whole shuffle packs.

    #: The input partitions are the keys ``(input, i)`` for ``i < n_in``.
    input: str
    #: Function table indices of ``split`` and ``combine``.
    split: int
    combine: int
    #: Input and output partitions, and the number of stages (1 for a simple shuffle).
    n_in: int
    n_out: int
    stages: int


class ShuffleState(_ShuffleFields, total=False):
    """The packed state of a :class:`ShuffleLayer` or :class:`SimpleShuffleLayer`.

    A few integers and function table indices, O(1) in the partition count;
    a culled layer adds its kept outputs as ranges. The unpacker checks
    every field, since the state comes from untrusted bytes.

    Examples
    --------
    >>> from hlg.packing.codec import Encoder
    >>> layer = ShuffleLayer("s", "x", 1_000, dict, list, max_branch=32)
    >>> state: ShuffleState = layer.pack_state(Encoder())
    >>> sorted(state.items())
    [('combine', 1), ('input', 'x'), ('n_in', 1000), ('n_out', 1000), ('split', 0), ('stages', 2)]
    >>> layer.cull([("s", 7)])[0].pack_state(Encoder())["outputs"]
    ((7, 8),)
    """

    #: The kept outputs of a culled layer: sorted, disjoint ``(lo, hi)`` ranges.
    outputs: tuple[tuple[int, int], ...]
    #: The partition, encoded, that a stage-0 combine gets when no input reaches it.
    empty: Any
    #: Instead of ``empty``: the function table index of a function returning it.
    empty_func: int


class _ShuffleBase(Layer):
    """What both shuffle layers share: keys, tasks, culling and packing from a plan."""

    roles: ClassVar[tuple[str, ...]] = ROLES

    def __init__(
        self,
        name: str,
        input_name: str,
        split: Callable[..., Any],
        combine: Callable[..., Any],
        plan: ShufflePlan,
        *,
        empty: Any = _NO_EMPTY,
        empty_func: Callable[[], Any] | None = None,
        annotations: Mapping[str, Any] | None = None,
        role_annotations: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(name, annotations)
        if type(input_name) is not str or not input_name:
            raise UsageError(f"layer {name!r}: input_name must be a non-empty str")
        for label, func in (("split", split), ("combine", combine)):
            if not callable(func):
                raise UsageError(f"layer {name!r}: {label} must be callable; got {func!r}")
        if empty is not _NO_EMPTY and empty_func is not None:
            raise UsageError(f"layer {name!r}: give empty or empty_func, not both")
        if empty_func is not None and not callable(empty_func):
            raise UsageError(f"layer {name!r}: empty_func must be callable; got {empty_func!r}")
        self.input_name = input_name
        self.split = split
        self.combine = combine
        self.plan = plan
        self.empty = empty
        self.empty_func = empty_func
        self.role_annotations = self.check_role_annotations(
            DEFAULT_ROLE_ANNOTATIONS if role_annotations is None else role_annotations
        )
        self.split_name = "split-" + name
        self.piece_name = "piece-" + name
        self.combine_name = "combine-" + name
        self.empty_key = "empty-" + name
        # Keys by role, filled when the layer materialises (the scheduler then asks
        # for them to expand per-role annotations without building keys again).
        self._role_keys: dict[str, list[Key]] | None = None

    # -- the plan ------------------------------------------------------------------------

    @property
    def npartitions_in(self) -> int:
        """Input partitions."""
        return self.plan.n_in

    @property
    def npartitions(self) -> int:
        """Output partitions (before culling)."""
        return self.plan.n_out

    @property
    def nstages(self) -> int:
        """Stages."""
        return self.plan.stages

    @property
    def output_partitions(self) -> tuple[int, ...]:
        """The output partitions this layer keeps, in order."""
        return tuple(i for lo, hi in self.plan.outputs for i in range(lo, hi))

    def _route(self, stage: int) -> ShuffleRoute:
        plan = self.plan
        return ShuffleRoute(stage, plan.stages, plan.nsplits, plan.divisor(stage), plan.n_out)

    def _has_empty(self) -> bool:
        return self.plan.nempty_combines > 0 and (
            self.empty is not _NO_EMPTY or self.empty_func is not None
        )

    def _stage_key(self, stage: int, position: int) -> Key:
        # The key holding the data at ``position`` when ``stage`` starts.
        if stage == 0:
            return (self.input_name, position)
        if stage == self.plan.stages:
            return (self.name, position)
        return (self.combine_name, stage - 1, position)

    def _combine_key(self, stage: int, target: int) -> Key:
        return self._stage_key(stage + 1, target)

    # -- keys ----------------------------------------------------------------------------

    def role_size(self, role: str) -> int:
        """Return how many tasks have ``role``, computed from the plan."""
        index = _ROLE_INDEX.get(role)
        if index is not None:
            return self.plan.role_counts[index]
        if role == "empty":
            return 1 if self._has_empty() else 0
        raise UsageError(f"layer {self.name!r} has roles {', '.join(ROLES)}; got {role!r}")

    def cost(self) -> Cost:
        """Count tasks, references and annotation entries from the plan, building nothing.

        Every split refers to the partition it cuts and every piece to its
        split; each combine refers to the pieces it joins, and every piece is
        joined by exactly one kept combine, so the combines hold as many
        references as there are pieces. A stage-0 combine that no input feeds
        refers to the empty partition instead, when the layer has one.
        Per-role annotations are charged by the unpacker from :meth:`role_size`.

        Examples
        --------
        >>> layer = ShuffleLayer("s", "x", 3, dict, list, npartitions_out=20, stages=2, empty=[])
        >>> layer.cost(), layer.plan.nempty_combines
        (Cost(tasks=176, references=255, inputs=0, annotations=0, text=0), 8)
        >>> sum(len(task.dependencies) for task in layer.materialize().values())
        255
        """
        n = len(self)
        empty = self.plan.nempty_combines if self._has_empty() else 0
        references = self.role_size("split") + 2 * self.role_size("piece") + empty
        return Cost(tasks=n, references=references, annotations=n * len(self.annotations))

    def role_keys(self, role: str) -> Iterable[Key]:
        """Return the keys of the tasks with ``role``."""
        self.role_size(role)  # checks the role
        if self._role_keys is not None:
            return self._role_keys[role]
        return self._keys_of(role)

    def _keys_of(self, role: str) -> Iterator[Key]:
        plan = self.plan
        for s in range(plan.stages):
            if role == "split":
                for lo, hi in plan.sources(s):
                    yield from ((self.split_name, s, p) for p in range(lo, hi))
            elif role == "piece":
                for lo, hi in plan.sources(s):
                    for p in range(lo, hi):
                        yield from ((self.piece_name, s, p, j) for j in plan.piece_groups(s, p))
            elif (role == "combine" and s < plan.stages - 1) or (
                role == "output" and s == plan.stages - 1
            ):
                for lo, hi in plan.targets(s):
                    yield from (self._combine_key(s, t) for t in range(lo, hi))
        if role == "empty" and self._has_empty():
            yield self.empty_key

    def output_keys(self) -> Iterable[Key]:
        """Return the keys of the kept output partitions, without building tasks.

        Examples
        --------
        >>> layer = ShuffleLayer("s", "x", 4, dict, list, npartitions_out=3, stages=2)
        >>> list(layer.output_keys())
        [('s', 0), ('s', 1), ('s', 2)]
        """
        return self.role_keys("output")

    def __iter__(self) -> Iterator[Key]:
        for role in ROLES:
            yield from self._keys_of(role)

    def __len__(self) -> int:
        return sum(self.plan.role_counts) + self._has_empty()

    def __contains__(self, key: object) -> bool:
        if type(key) is str:
            return key == self.empty_key and self._has_empty()
        if type(key) is not tuple or not key or not all(type(i) is int for i in key[1:]):
            return False
        plan, head, n = self.plan, key[0], len(key)
        if head == self.name and n == 2:
            return in_ranges(plan.outputs, key[1])
        if n < 3 or not 0 <= key[1] < plan.stages:
            return False
        stage = key[1]
        if head == self.split_name and n == 3:
            return in_ranges(plan.sources(stage), key[2])
        if head == self.combine_name and n == 3:
            return stage < plan.stages - 1 and in_ranges(plan.targets(stage), key[2])
        if head == self.piece_name and n == 4:
            position, group = key[2], key[3]
            return (
                in_ranges(plan.sources(stage), position)
                and 0 <= group < plan.nsplits
                and in_ranges(plan.targets(stage), plan.target(stage, position, group))
            )
        return False

    # -- tasks ---------------------------------------------------------------------------

    def __getitem__(self, key: Key) -> GraphNode:
        if key not in self:
            raise MissingKeyError(f"layer {self.name!r} has no key {key!r}")
        if key == self.empty_key:
            return self._empty_task()
        parts: tuple[Any, ...] = key  # type: ignore[assignment]  # a tuple, checked by `in`
        head, stage = parts[0], parts[1]
        if head == self.split_name:
            source = self._stage_key(stage, parts[2])
            return Task(self.split, trusted_ref(source), self._route(stage))
        if head == self.piece_name:
            return Task(take_piece, trusted_ref((self.split_name, stage, parts[2])), parts[3])
        if head == self.name:
            return self._combine_task(self.plan.stages - 1, stage)
        return self._combine_task(stage, parts[2])

    def _empty_task(self) -> GraphNode:
        if self.empty_func is not None:
            return Task(self.empty_func)
        return DataNode.from_parts(self.empty, scan_references(self.empty, set()))

    def _combine_pieces(self, stage: int, target: int) -> list[Key]:
        # The keys of the pieces the combine at ``target`` joins.
        group = (target // self.plan.divisor(stage)) % self.plan.nsplits
        name = self.piece_name
        keys: list[Key] = [
            (name, stage, p, group) for p in self.plan.source_positions(stage, target)
        ]
        if not keys and self._has_empty():
            keys.append(self.empty_key)
        return keys

    def _combine_task(self, stage: int, target: int) -> Task:
        pieces = tuple(self._combine_pieces(stage, target))
        return self._combine_node(self._route(stage), target, pieces)

    def _combine_node(self, route: ShuffleRoute, target: int, pieces: tuple[Key, ...]) -> Task:
        refs = _piece_positions(len(pieces))
        return Task.from_parts(combine_pieces, (self.combine, route, target, *pieces), refs)

    def materialize(self) -> dict[Key, GraphNode]:
        """Build every task, stage by stage; see the module docstring for the keys."""
        with gc_paused_for(len(self)):
            return self._materialize()

    def _materialize(self) -> dict[Key, GraphNode]:
        plan = self.plan
        out = _Columns()
        roles: dict[str, list[Key]] = {role: [] for role in ROLES}
        empty: tuple[Key, ...] = ()
        if self._has_empty():
            roles["empty"].append(self.empty_key)
            empty = (self.empty_key,)
        for s in range(plan.stages):
            splits = self._split_tasks(s, out, roles["split"])
            targets, joined = self._piece_tasks(s, splits, out, roles["piece"])
            combines = roles["output" if s == plan.stages - 1 else "combine"]
            self._combine_tasks(s, targets, [p or empty for p in joined], out, combines)
        self._role_keys = roles
        tasks: dict[Key, GraphNode] = out.build()  # type: ignore[assignment]  # invariant dict
        if empty:
            return {self.empty_key: self._empty_task(), **tasks}
        return tasks

    # Tasks are made a column at a time (keys, functions, argument tuples, reference
    # positions) by hlg.task.build_tasks: a 10,000-partition shuffle has 700,000 of
    # them, and building each through Task() would scan its arguments again. A
    # combine's pieces are a slice of the column of piece keys, so each piece key is
    # built once and shared by its task and its combine's arguments.

    def _split_tasks(self, s: int, out: _Columns, split_keys: list[Key]) -> list[_SplitKey]:
        # The splits of stage ``s``.
        positions = [p for lo, hi in self.plan.sources(s) for p in range(lo, hi)]
        count = len(positions)
        sources: list[Key] = (
            list(zip(repeat(self.input_name, count), positions, strict=True))
            if s == 0
            else list(zip(repeat(self.combine_name, count), repeat(s - 1), positions))
        )
        keys: list[_SplitKey] = list(zip(repeat(self.split_name, count), repeat(s), positions))
        out.add(keys, self.split, zip(sources, repeat(self._route(s))), repeat((0,), count))
        split_keys.extend(keys)
        return keys

    def _piece_tasks(
        self,
        s: int,
        splits: list[_SplitKey],
        out: _Columns,
        piece_keys: list[Key],
    ) -> tuple[list[int], list[list[_PieceKey]]]:
        # The pieces of stage ``s``, block by block; returns the stage's combine
        # targets and, for each, the keys of the pieces it joins. A block's pieces
        # are all joined by the block's own combines: at stage 0 the block is every
        # input, later each aligned run of ``m * k`` positions (which differ only in
        # the digits routed from stage ``s`` on). Within a block, pieces go group by
        # group; the combine at offset ``r`` of group g's ``m`` targets joins the
        # pieces of splits r, r + m, r + 2m, ... of the block: a slice.
        plan, name = self.plan, self.piece_name
        m = plan.divisor(s)
        targets: list[int] = []
        joined: list[list[_PieceKey]] = []
        keys: list[_PieceKey] = []
        args: list[tuple[_SplitKey, int]] = []
        for start, size, groups in self._blocks(s):
            block = splits[start : start + size]
            first = block[0][2] if s else 0
            column = [(name, s, split[2], g) for g in groups for split in block]
            args += [(split, g) for g in groups for split in block]
            for i, g in enumerate(groups):
                targets += range(first + g * m, first + (g + 1) * m)
                joined += [column[i * size + r : (i + 1) * size : m] for r in range(m)]
            keys += column
        out.add(keys, take_piece, args, repeat((0,), len(keys)))
        piece_keys += keys
        return targets, joined

    def _blocks(self, s: int) -> Iterator[tuple[int, int, list[int]]]:
        # The blocks of stage ``s``: (index of the first split, splits in the block,
        # the groups kept).
        plan = self.plan
        if s == 0:
            yield 0, plan.nsplit_tasks(0), [g for lo, hi in plan.groups(0) for g in range(lo, hi)]
            return
        size, start = plan.divisor(s) * plan.nsplits, 0
        for lo, hi in plan.sources(s):
            for first in range(lo, hi, size):
                yield start, size, list(plan.piece_groups(s, first))
                start += size

    def _combine_tasks(
        self,
        s: int,
        targets: list[int],
        joined: Sequence[Sequence[Key]],
        out: _Columns,
        combine_keys: list[Key],
    ) -> None:
        keys = (
            list(zip(repeat(self.name), targets))
            if s == self.plan.stages - 1
            else list(zip(repeat(self.combine_name), repeat(s), targets))
        )
        combine, route = self.combine, self._route(s)
        args = [(combine, route, t, *pieces) for t, pieces in zip(targets, joined, strict=True)]
        refs = [_piece_positions(len(pieces)) for pieces in joined]
        out.add(keys, combine_pieces, args, refs)
        combine_keys += keys

    def outside_references(self) -> list[tuple[Key, Key]] | None:
        """After :meth:`materialize`: each stage-0 split and the input partition it reads.

        Every other task is built after the tasks it needs, so the unpacker need
        only check these.
        """
        roles = self._role_keys
        if roles is None:
            return None
        n = self.plan.n_in if self.plan.outputs else 0
        inputs = zip(repeat(self.input_name, n), range(n), strict=False)
        return list(zip(roles["split"][:n], inputs, strict=True))

    # -- culling -------------------------------------------------------------------------

    def _reach(self, key: Key) -> Ranges:
        # The output partitions a key of this layer feeds, as ranges.
        plan = self.plan
        if key == self.empty_key:
            return plan.outputs
        parts: tuple[Any, ...] = key  # type: ignore[assignment]  # a tuple, checked by `in`
        head, stage = parts[0], parts[1]
        if head == self.name:
            return ((stage, stage + 1),)
        if head == self.split_name:
            if stage == 0:
                return plan.outputs
            width = plan.divisor(stage) * plan.nsplits
            low = parts[2] // width * width
        else:
            target = parts[2]
            if head == self.piece_name:
                target = plan.target(stage, parts[2], parts[3])
            width = plan.divisor(stage)
            low = target // width * width
        return ((low, min(low + width, plan.n_out)),)

    def cull(self, keys: Iterable[Key]) -> tuple[_ShuffleBase, set[Key]]:
        """Keep the outputs ``keys`` feed and what they need; cost O(keys + ranges kept).

        Raises
        ------
        MissingKeyError
            A key is not one of this layer's.

        Examples
        --------
        >>> layer = SimpleShuffleLayer("s", "x", 3, dict, list, npartitions_out=4)
        >>> culled, external = layer.cull([("s", 1), ("s", 2)])
        >>> culled.output_partitions, len(culled), sorted(external)
        ((1, 2), 11, [('x', 0), ('x', 1), ('x', 2)])
        """
        outputs: list[int] = []
        ranges: list[tuple[int, int]] = []
        name = self.name
        for key in keys:
            if type(key) is tuple and len(key) == 2 and key[0] == name and key in self:
                outputs.append(key[1])  # type: ignore[arg-type]
            elif key in self:
                ranges.extend(r for r in self._reach(key) if r[0] < r[1])
            else:
                raise MissingKeyError(
                    f"layer {self.name!r} has no key {key!r}; cull it only to keys it produces"
                )
        kept = normalize_ranges([*ranges_of(outputs), *ranges])
        kept = intersect_ranges(kept, self.plan.outputs)
        culled = self._with_outputs(kept)
        external = NeededKeys()
        if kept:
            n_in = self.plan.n_in
            external.update(zip([self.input_name] * n_in, range(n_in), strict=True))
            # A Blockwise input maps its 1-d blocks one to one: tell it they are all of them.
            external.hints[self.input_name] = BlockHint((n_in,), [range(n_in)], n_in)
        return culled, external

    def _with_outputs(self, outputs: Ranges) -> _ShuffleBase:
        new = object.__new__(type(self))
        new._copy_keeping(self, outputs)
        return new

    def _copy_keeping(self, source: _ShuffleBase, outputs: Ranges) -> None:
        self.__dict__.update(source.__dict__)
        self.plan = dataclasses.replace(source.plan, outputs=outputs)
        self._role_keys = None

    # -- packing -------------------------------------------------------------------------

    def pack_state(self, encoder: Encoder) -> ShuffleState:
        """Pack functions, counts and kept outputs: O(1), or O(ranges) when culled."""
        plan = self.plan
        state: ShuffleState = {
            "input": self.input_name,
            "split": encoder.function(self.split),
            "combine": encoder.function(self.combine),
            "n_in": plan.n_in,
            "n_out": plan.n_out,
            "stages": plan.stages,
        }
        if plan.outputs != ((0, plan.n_out),):
            state["outputs"] = tuple(plan.outputs)
        if self.empty_func is not None:
            state["empty_func"] = encoder.function(self.empty_func)
        elif self.empty is not _NO_EMPTY:
            state["empty"] = encoder.value(self.empty)
        return state

    @classmethod
    def unpack_state(
        cls, state: ShuffleState, decoder: Decoder, *, name: str, annotations: dict[str, Any]
    ) -> _ShuffleBase:
        """Rebuild the layer on the scheduler from its integers; nothing is unpickled.

        ``state`` should be what :meth:`pack_state` returned, but it comes from
        untrusted bytes: a field of another type or out of range raises
        :class:`~hlg.LayerStateError` naming the layer and the field.
        """
        where = f"layer {name!r}"
        if type(state) is not dict:
            raise LayerStateError(f"{where}: the shuffle state is not a map")
        ints = {}
        for field in ("n_in", "n_out", "stages"):
            value = state.get(field)
            if type(value) is not int or not 1 <= value <= MAX_PARTITIONS:
                raise LayerStateError(
                    f"{where}: shuffle field {field!r} is {value!r}, not an int in "
                    f"[1, {MAX_PARTITIONS}]"
                )
            ints[field] = value
        if ints["stages"] > MAX_STAGES or (cls is SimpleShuffleLayer and ints["stages"] != 1):
            raise LayerStateError(
                f"{where}: {counted(ints['stages'], 'stage')} is not a valid plan"
            )
        outputs = state.get("outputs", ((0, ints["n_out"]),))
        if type(outputs) is not tuple or not all(type(r) is tuple and len(r) == 2 for r in outputs):
            raise LayerStateError(f"{where}: kept outputs are not [lo, hi) pairs")
        input_name = state.get("input")
        if type(input_name) is not str or not input_name:
            raise LayerStateError(f"{where}: the shuffle's input name is not a str")
        try:
            plan = ShufflePlan(ints["n_in"], ints["n_out"], ints["stages"], outputs)
        except UsageError as err:
            raise LayerStateError(f"{where}: {err}") from None
        try:
            split, combine = (
                decoder.function(state.get("split")),
                decoder.function(state.get("combine")),
            )
            empty_kw: dict[str, Any] = {}
            if "empty_func" in state:
                empty_kw["empty_func"] = decoder.function(state["empty_func"])
            elif "empty" in state:
                empty_kw["empty"] = state["empty"]
        except LayerStateError as err:
            raise LayerStateError(f"{where}: {err}") from None
        layer = object.__new__(cls)
        _ShuffleBase.__init__(
            layer,
            name,
            input_name,
            split,
            combine,
            plan,
            annotations=annotations,
            role_annotations={},
            **empty_kw,
        )
        return layer

    def __repr__(self) -> str:
        plan = self.plan
        return (
            f"<{type(self).__name__} {self.name!r}: {counted(len(self), 'task')}, "
            f"{plan.n_in:,} -> {counted(plan.n_out, 'partition')} in "
            f"{counted(plan.stages, 'stage')}>"
        )


@register_layer("hlg.shuffle.simple")
class SimpleShuffleLayer(_ShuffleBase):
    """One-stage all-to-all shuffle: ``n_in`` splits into ``n_out`` pieces each.

    Parameters
    ----------
    name
        The layer's name; outputs are ``(name, j)``.
    input_name
        The input partitions are ``(input_name, i)`` for ``i < npartitions_in``.
    npartitions_in
        Input partitions.
    split, combine
        The user functions; see the module docstring.
    npartitions_out
        Output partitions; by default as many as the input has.
    empty, empty_func
        The partition a combine gets when no input feeds it (never with one stage).
    annotations, role_annotations
        For every task, and per role (``split``, ``piece``, ``combine``,
        ``output``, ``empty``); role annotations default to ``priority=1``
        for split and piece tasks.

    Examples
    --------
    >>> def split(rows, route):
    ...     pieces = [[] for _ in range(route.nsplits)]
    ...     for row in rows:
    ...         pieces[route.group(row % route.npartitions)].append(row)
    ...     return pieces
    >>> def combine(pieces, route, position):
    ...     return sorted(r for piece in pieces for r in piece)
    >>> import hlg
    >>> data = hlg.MaterializedLayer({("x", 0): [0, 1, 2], ("x", 1): [3, 4, 5]}, name="x")
    >>> layer = SimpleShuffleLayer("s", "x", 2, split, combine, npartitions_out=3)
    >>> graph = hlg.HighLevelGraph({"x": data, "s": layer}, {"s": {"x"}})
    >>> hlg.get(graph, [("s", 0), ("s", 1), ("s", 2)], scheduler="sync")
    ([0, 3], [1, 4], [2, 5])
    >>> len(layer), layer.role_size("piece")
    (11, 6)
    """

    def __init__(
        self,
        name: str,
        input_name: str,
        npartitions_in: int,
        split: Callable[..., Any],
        combine: Callable[..., Any],
        *,
        npartitions_out: int | None = None,
        empty: Any = _NO_EMPTY,
        empty_func: Callable[[], Any] | None = None,
        annotations: Mapping[str, Any] | None = None,
        role_annotations: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        n_out = npartitions_in if npartitions_out is None else npartitions_out
        plan = _plan(name, npartitions_in, n_out, 1)
        super().__init__(
            name,
            input_name,
            split,
            combine,
            plan,
            empty=empty,
            empty_func=empty_func,
            annotations=annotations,
            role_annotations=role_annotations,
        )


@register_layer("hlg.shuffle")
class ShuffleLayer(_ShuffleBase):
    """Multi-stage task shuffle: ``S`` stages of about ``n ** (1 / S)`` groups each.

    Parameters
    ----------
    name, input_name, npartitions_in, split, combine, npartitions_out
        As for :class:`SimpleShuffleLayer`.
    max_branch
        The most groups a split makes: the stage count is the fewest that keeps
        ``nsplits <= max_branch`` for ``n = max(npartitions_in, npartitions_out)``.
    stages
        The stage count, instead of deriving it from ``max_branch``.
    empty, empty_func
        The partition (a value, or a function called with no arguments) that a
        stage-0 combine gets when no input reaches it, which happens when there
        are fewer inputs than ``nsplits ** (stages - 1)``. Without either, such a
        combine gets an empty list.
    annotations, role_annotations
        As for :class:`SimpleShuffleLayer`.

    Examples
    --------
    >>> layer = ShuffleLayer("s", "x", 1_000, dict, list, max_branch=32)
    >>> layer.nstages, layer.plan.nsplits, len(layer)
    (2, 32, 68048)
    >>> import hlg
    >>> len(hlg.pack(layer, remote_keys=[("x", i) for i in range(1_000)])) < 20_000
    True
    """

    def __init__(
        self,
        name: str,
        input_name: str,
        npartitions_in: int,
        split: Callable[..., Any],
        combine: Callable[..., Any],
        *,
        npartitions_out: int | None = None,
        max_branch: int = 32,
        stages: int | None = None,
        empty: Any = _NO_EMPTY,
        empty_func: Callable[[], Any] | None = None,
        annotations: Mapping[str, Any] | None = None,
        role_annotations: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        n_out = npartitions_in if npartitions_out is None else npartitions_out
        for label, value in (("npartitions_in", npartitions_in), ("npartitions_out", n_out)):
            if type(value) is not int or value < 1:
                raise UsageError(f"layer {name!r}: {label} must be an int >= 1; got {value!r}")
        if stages is None:
            stages = plan_stages(max(npartitions_in, n_out), max_branch)
        plan = _plan(name, npartitions_in, n_out, stages)
        super().__init__(
            name,
            input_name,
            split,
            combine,
            plan,
            empty=empty,
            empty_func=empty_func,
            annotations=annotations,
            role_annotations=role_annotations,
        )


def _plan(name: str, n_in: Any, n_out: Any, stages: Any) -> ShufflePlan:
    for label, value in (("npartitions_in", n_in), ("npartitions_out", n_out), ("stages", stages)):
        if type(value) is not int or value < 1:
            raise UsageError(f"layer {name!r}: {label} must be an int >= 1; got {value!r}")
    try:
        return ShufflePlan(n_in, n_out, stages, ((0, n_out),))
    except UsageError as err:
        raise UsageError(f"layer {name!r}: {err}") from None
