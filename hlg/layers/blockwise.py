"""Blockwise: one function applied block by block, described by index notation.

A chunked collection is a grid of blocks; block ``(i, j)`` of layer ``x`` has
the key ``("x", i, j)``. A Blockwise layer names each grid dimension with a
letter and says, einsum-style, which blocks of which inputs feed each output
block:

- ``out_ind="ij"``, input ``("x", "ij")``: block ``(i, j)`` of the output
  takes block ``(i, j)`` of ``x`` (elementwise);
- input ``("x", "ji")``: it takes block ``(j, i)`` (a transpose);
- ``out_ind="ik"``, inputs ``("x", "ij")`` and ``("y", "jk")``: the letter
  ``j`` is not in the output, so it is *contracted*: block ``(i, k)`` takes
  the list of blocks ``x[i, 0..]`` and the list ``y[0.., k]`` (or their
  concatenation with ``concatenate=True``);
- an input with one block along a letter is *broadcast*: every output block
  takes its block 0 there;
- an input without an index is passed whole to every task: a literal value,
  or (as a :class:`~hlg.TaskRef`) the value of a single key;
- a :class:`BlockwiseDep` input computes its value from the block index (the
  block's slice, a file name, a seed), so a layer reading 100 000 files packs
  to a pattern, not a list of names.

Everything is lazy: ``len``, the keys, ``in``, the dependencies of a key and
culling are computed from the indices, and the packed state is O(1) in the
number of blocks (culling adds the kept blocks, as a box of ranges when they
form one). :meth:`Blockwise.fuse` computes one layer inside another that
takes it block for block, and :func:`hlg.optimize.fuse_blockwise` uses it to
merge chains of elementwise Blockwise layers into one.

A layer holds its inputs as :class:`KeyInput`, :class:`ValueInput` and
:class:`DepInput` values (together, :data:`BlockwiseInput`), which
:func:`blockwise` builds from its ``input, index`` pairs.
"""

from __future__ import annotations

import math
from collections.abc import (
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from itertools import chain, product, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict, cast

from hlg._gc import gc_paused_for
from hlg.errors import (
    LayerStateError,
    MissingKeyError,
    PackError,
    UsageError,
    counted,
)
from hlg.keys import Key
from hlg.layers.base import KeyBox, Layer, NeededKeys
from hlg.layers.blockdeps import (
    BlockIndex,
    BlockPattern,
    BlockSeeds,
    BlockSlices,
    BlockwiseDep,
    register_blockwise_dep,
)
from hlg.layers.blockgrid import (
    BoxColumns,
    PackedBlocks,
    box_ranges,
    grid,
    grid_columns,
    pack_blocks,
    unique_keys,
    unpack_blocks,
)
from hlg.layers.blockinputs import (
    BlockHint,
    BlockwiseInput,
    DepInput,
    FusedFunction,
    KeyInput,
    ValueInput,
    describe_input,
    input_index,
    relettered,
    unpack_input,
    well_formed,
)
from hlg.layers.registry import register_layer
from hlg.limits import Cost
from hlg.task import GraphNode, Task, build_tasks, scan_references, trusted_ref

if TYPE_CHECKING:
    from hlg.packing.codec import Decoder, Encoder

__all__ = [
    "BlockHint",
    "BlockIndex",
    "BlockPattern",
    "BlockSeeds",
    "BlockSlices",
    "Blockwise",
    "BlockwiseDep",
    "BlockwiseInput",
    "BlockwiseState",
    "DepInput",
    "FusedFunction",
    "KeyInput",
    "ValueInput",
    "blockwise",
    "concatenate_blocks",
    "register_blockwise_dep",
]


# --------------------------------------------------------------------------- the layer


def concatenate_blocks(blocks: Any, axes: Sequence[int]) -> Any:
    """Concatenate nested lists of numpy blocks along ``axes`` (the outermost list first).

    Examples
    --------
    >>> import numpy as np
    >>> concatenate_blocks([np.ones((1, 2)), np.zeros((1, 2))], [0]).shape
    (2, 2)
    """
    import numpy as np  # only where the task runs

    if not axes:
        return blocks
    if len(axes) == 1:
        return np.concatenate(blocks, axis=axes[0])
    return np.concatenate([concatenate_blocks(b, axes[1:]) for b in blocks], axis=axes[0])


# --------------------------------------------------------------------------- packed state

#: A packed input: ``("value", encoded value)``, ``("key", layer name, index or None)``
#: or ``("dep", registry tag, the dep's state, index)``.
PackedInput: TypeAlias = (
    tuple[Literal["value"], Any]
    | tuple[Literal["key"], str, str | None]
    | tuple[Literal["dep"], str, Any, str]
)


class _BlockwiseFields(TypedDict):
    # The fields of every BlockwiseState: the ones a whole layer packs.

    #: The function's index in the envelope's function table.
    func: int
    #: One distinct letter per output dimension.
    out_ind: str
    #: The inputs, in the order the function takes them.
    args: tuple[PackedInput, ...]
    #: Blocks per dimension of every indexed layer input.
    numblocks: dict[str, tuple[int, ...]]
    #: Blocks along output letters that no input has.
    new_axes: dict[str, int]
    #: Whether contracted inputs are concatenated into one block.
    concatenate: bool
    #: Keyword arguments of every task, encoded.
    kwargs: dict[str, Any]


class BlockwiseState(_BlockwiseFields, total=False):
    """The packed state of a :class:`Blockwise` layer: O(1) in its number of blocks.

    Every value is msgpack-native: the function is an index into the
    envelope's function table, and values and keyword arguments went through
    the encoder. :meth:`Blockwise.unpack_state` checks every field, since the
    state comes from untrusted bytes.

    Examples
    --------
    >>> from hlg.packing.codec import Encoder
    >>> layer = blockwise(abs, "y", "ij", "x", "ji", numblocks={"x": (3, 2)})
    >>> state: BlockwiseState = layer.pack_state(Encoder())
    >>> sorted(state)
    ['args', 'concatenate', 'func', 'kwargs', 'new_axes', 'numblocks', 'out_ind']
    >>> state["out_ind"], state["args"], state["numblocks"]
    ('ij', (('key', 'x', 'ji'),), {'x': (3, 2)})
    """

    #: The kept blocks of a culled layer; absent when it keeps every block.
    blocks: PackedBlocks


@register_layer("hlg.blockwise")
class Blockwise(Layer):
    """Tasks ``(name, *block) = func(*inputs for that block, **kwargs)``.

    Build one with :func:`blockwise`; see the module docstring for the notation.

    Examples
    --------
    >>> from operator import add
    >>> layer = blockwise(add, "z", "ij", "x", "ij", "y", "ji",
    ...                   numblocks={"x": (2, 3), "y": (3, 2)})
    >>> len(layer), layer[("z", 1, 2)]
    (6, Task(add, TaskRef(('x', 1, 2)), TaskRef(('y', 2, 1))))
    """

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        out_ind: str,
        args: Sequence[BlockwiseInput],
        numblocks: Mapping[str, Sequence[int]],
        *,
        new_axes: Mapping[str, int] | None = None,
        concatenate: bool = False,
        kwargs: Mapping[str, Any] | None = None,
        output_blocks: Sequence[tuple[int, ...]] | None = None,
        annotations: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, annotations)
        self.func = func
        self.out_ind = out_ind
        self.args = list(args)
        for arg in self.args:
            if not well_formed(arg):
                raise UsageError(
                    f"layer {name!r}: input {arg!r:.80} is not a KeyInput(str, str or None), "
                    "ValueInput(value) or DepInput(BlockwiseDep, str); build the layer with "
                    "hlg.layers.blockwise()"
                )
        self.numblocks = {k: tuple(v) for k, v in numblocks.items()}
        self.new_axes = dict(new_axes or {})
        self.concatenate = concatenate
        self.kwargs = dict(kwargs or {})
        self.dims = self._dims()
        letters = "".join(input_index(a) or "" for a in self.args)
        self.contracted = [c for c in dict.fromkeys(letters) if c not in out_ind]
        self.out_numblocks = tuple(self.dims[c] for c in out_ind)
        # The kept output blocks after culling, as one column of block numbers per
        # output dimension (None: every block), and how many there are.
        self._kept_columns: Sequence[Sequence[int]] | None = None
        self._kept_count = 0
        kwarg_deps: set[Key] = set()
        self._kwargs_deep = scan_references(self.kwargs, kwarg_deps)
        self._kwarg_deps = frozenset(kwarg_deps)
        self._simple = self._is_simple()
        # Per input, for each of its dimensions, the output dimension it follows.
        self._positions = [self._input_positions(arg) for arg in self.args]
        # Key inputs whose blocks map one to one onto output blocks (every output
        # dimension followed, no other input of that name): culling names distinct
        # blocks of them, and hints their layer with the columns.
        names = [arg.name for arg in self.args if isinstance(arg, KeyInput)]
        every = set(range(len(out_ind)))
        self._one_to_one = {
            p
            for p, (arg, positions) in enumerate(zip(self.args, self._positions, strict=True))
            if isinstance(arg, KeyInput)
            and names.count(arg.name) == 1
            and positions is not None
            and len(positions) == len(every)
            and set(positions) == every
        }
        if output_blocks is not None:
            blocks = list(dict.fromkeys(map(tuple, output_blocks)))
            columns = grid_columns(blocks, 0, self.out_numblocks)
            if columns is None:
                bad = next(b for b in blocks if grid_columns([b], 0, self.out_numblocks) is None)
                raise UsageError(
                    f"layer {name!r}: output block {bad!r} is not a block of the "
                    f"{self.out_numblocks} grid; give tuples of {len(out_ind)} block numbers"
                )
            self._kept_columns, self._kept_count = tuple(columns), len(blocks)

    def _dims(self) -> dict[str, int]:
        dims: dict[str, int] = {}
        for arg in self.args:
            if isinstance(arg, ValueInput) or arg.index is None:
                continue
            what = arg.name if isinstance(arg, KeyInput) else arg.dep
            if isinstance(arg, KeyInput) and arg.name not in self.numblocks:
                raise UsageError(
                    f"layer {self.name!r}: input {arg.name!r} has an index but no entry in "
                    "numblocks; give its number of blocks per dimension"
                )
            counts = self._counts(arg)
            if len(counts) != len(arg.index):
                raise UsageError(
                    f"layer {self.name!r}: input {what!r} has index {arg.index!r} but "
                    f"{counted(len(counts), 'dimension')} of blocks"
                )
            for letter, n in zip(arg.index, counts, strict=True):
                have = dims.get(letter, 1)
                if 1 not in (n, have) and n != have:
                    raise UsageError(
                        f"layer {self.name!r}: index {letter!r} has {counted(have, 'block')} "
                        f"in one input and {n} in {what!r}; inputs must agree or have 1 block "
                        "(broadcast)"
                    )
                dims[letter] = max(have, n)
        for letter, n in self.new_axes.items():
            dims[letter] = int(n)
        missing = [c for c in self.out_ind if c not in dims]
        if missing:
            raise UsageError(
                f"layer {self.name!r}: output index {missing[0]!r} appears in no input; "
                "give its number of blocks with new_axes"
            )
        return dims

    # -- blocks and keys -----------------------------------------------------------------

    @property
    def output_blocks(self) -> tuple[tuple[int, ...], ...] | None:
        """The blocks kept by culling, in the order first asked for; None when all are."""
        if self._kept_columns is None:
            return None
        return tuple(self._blocks())

    def _blocks(self) -> Iterable[tuple[int, ...]]:
        if self._kept_columns is None:
            return product(*(range(n) for n in self.out_numblocks))
        if not self._kept_columns:
            return [()] * self._kept_count
        return zip(*self._kept_columns, strict=True)

    def _block_columns(self) -> tuple[Sequence[Sequence[int]], int]:
        # Every output block as one column of block numbers per dimension, and the count.
        if self._kept_columns is not None:
            return self._kept_columns, self._kept_count
        return grid([range(n) for n in self.out_numblocks]), math.prod(self.out_numblocks)

    def __iter__(self) -> Iterator[Key]:
        if self._kept_columns is None:
            return map((self.name,).__add__, self._blocks())
        return zip(repeat(self.name, self._kept_count), *self._kept_columns, strict=True)

    def __len__(self) -> int:
        if self._kept_columns is not None:
            return self._kept_count
        return math.prod(self.out_numblocks)

    def __contains__(self, key: object) -> bool:
        if type(key) is not tuple or len(key) != len(self.out_ind) + 1 or key[0] != self.name:
            return False
        block = key[1:]
        kept = self._kept_columns
        if isinstance(kept, BoxColumns):
            return all(
                type(i) is int and i in r
                for i, r in zip(block, kept.ranges)  # noqa: B905 - lengths checked above
            )
        if kept is not None:
            return block in self._kept()
        for i, n in zip(block, self.out_numblocks):  # noqa: B905 - lengths checked above
            if type(i) is not int or not 0 <= i < n:
                return False
        return True

    def _kept(self) -> frozenset[tuple[int, ...]]:
        kept = self.__dict__.get("_kept_set")
        if kept is None:
            kept = self.__dict__["_kept_set"] = frozenset(self._blocks())
        return kept

    # -- one block -----------------------------------------------------------------------

    def _letter_values(self, block: tuple[int, ...]) -> dict[str, int]:
        return dict(zip(self.out_ind, block, strict=True))

    def _counts(self, arg: KeyInput | DepInput) -> tuple[int, ...]:
        # The blocks per dimension of an input.
        return self.numblocks[arg.name] if isinstance(arg, KeyInput) else arg.dep.numblocks

    def _input_block(self, arg: KeyInput | DepInput, values: Mapping[str, int]) -> tuple[int, ...]:
        # Runs per input per block on the block-by-block path: _counts is inlined.
        index = arg.index
        assert index is not None  # for mypy: callers pass indexed inputs only
        counts = self.numblocks[arg.name] if isinstance(arg, KeyInput) else arg.dep.numblocks
        return tuple(0 if n == 1 else values[c] for c, n in zip(index, counts, strict=True))

    def _key_input(self, arg: KeyInput, values: dict[str, int], contracted: list[str]) -> Any:
        # Nested lists over this input's contracted letters, in the order they appear.
        if not contracted:
            return trusted_ref((arg.name, *self._input_block(arg, values)))
        letter, rest = contracted[0], contracted[1:]
        out = []
        for v in range(self.dims[letter]):
            values[letter] = v
            out.append(self._key_input(arg, values, rest))
        del values[letter]
        return out

    def _task(self, block: tuple[int, ...]) -> Task:
        values = self._letter_values(block)
        args: list[Any] = []
        # Runs once per block of layers that are not simple: isinstance tests,
        # cheaper than a match statement's class patterns here.
        for arg in self.args:
            if isinstance(arg, ValueInput):
                args.append(arg.value)
            elif isinstance(arg, DepInput):
                args.append(arg.dep[self._input_block(arg, values)])
            elif arg.index is None:  # a whole key
                args.append(trusted_ref(arg.name))
            else:
                index = arg.index
                mine = [c for c in dict.fromkeys(index) if c in self.contracted]
                value = self._key_input(arg, values, mine)
                if mine and self.concatenate:
                    axes = [index.index(c) for c in mine]
                    value = Task(concatenate_blocks, value, axes)
                args.append(value)
        return Task(self.func, *args, **self.kwargs)

    def __getitem__(self, key: Key) -> GraphNode:
        if key not in self:
            raise MissingKeyError(f"layer {self.name!r} has no key {key!r}")
        return self._task(key[1:])  # type: ignore[arg-type, index]

    def get_dependencies(self, key: Key) -> frozenset[Key]:
        """Return the keys block ``key`` needs, computed from the indices."""
        return self[key].dependencies

    # -- all blocks ----------------------------------------------------------------------

    def _is_simple(self) -> bool:
        # Every input a non-contracted key, a dep, or a value holding no references:
        # then tasks are built column by column (see materialize).
        if self._kwargs_deep or self.contracted:
            return False
        for arg in self.args:
            if isinstance(arg, ValueInput) and scan_references(arg.value, set()):
                return False
            if isinstance(arg, KeyInput) and arg.index is None:
                return False
        return True

    def _input_positions(self, arg: BlockwiseInput) -> list[int | None] | None:
        # For each dimension of an indexed input, the output dimension whose block
        # number it takes, or None where the input has one block (broadcast); None
        # for an input without an index. Layers with contracted letters are built
        # block by block and do not use these.
        if isinstance(arg, ValueInput) or arg.index is None:
            return None
        return [
            None if n == 1 or c not in self.out_ind else self.out_ind.index(c)
            for c, n in zip(arg.index, self._counts(arg), strict=True)
        ]

    def materialize(self) -> dict[Key, GraphNode]:
        """Build every task.

        The common case (no contraction, no references in values or keyword
        arguments) is built column by column: output keys, then each input's
        keys, then the argument tuples, mostly by C-level iteration.
        """
        with gc_paused_for(len(self)):
            return self._materialize(references=False)[0]

    def materialize_with_references(
        self,
    ) -> tuple[dict[Key, GraphNode], Iterable[tuple[Key, Key]] | None]:
        """Build every task, and for a layer built column by column, every reference.

        A Blockwise task never needs a key of its own layer, so every
        ``(key, dependency)`` pair leaves the layer; they are given from the key
        columns the tasks were built from. None for a layer built block by block.

        Examples
        --------
        >>> layer = blockwise(abs, "y", "i", "x", "i", numblocks={"x": (2,)})
        >>> tasks, pairs = layer.materialize_with_references()
        >>> list(pairs)
        [(('y', 0), ('x', 0)), (('y', 1), ('x', 1))]
        """
        with gc_paused_for(len(self)):
            return self._materialize(references=True)

    def _materialize(
        self, references: bool
    ) -> tuple[dict[Key, GraphNode], Iterable[tuple[Key, Key]] | None]:
        # The pairs only when ``references``: materialize() drops them.
        if not self._simple:
            name = (self.name,)
            return {name + block: self._task(block) for block in self._blocks()}, None
        blocks, count = self._block_columns()
        out_keys = list(zip(repeat(self.name, count), *blocks, strict=True))
        columns, refs = self._columns(blocks, count)
        arg_tuples = zip(*columns, strict=True) if columns else repeat((), count)
        tasks = build_tasks(
            out_keys, repeat(self.func), arg_tuples, repeat(tuple(refs)), self.kwargs or None
        )
        if not references:
            return tasks, None  # type: ignore[return-value]  # as below
        pairs = chain.from_iterable(zip(out_keys, columns[i], strict=True) for i in refs)
        return tasks, pairs  # type: ignore[return-value]  # dict is invariant; tasks are nodes

    def _columns(
        self, blocks: Sequence[Sequence[int]], count: int
    ) -> tuple[list[Iterable[Any]], list[int]]:
        """Each input's argument for ``count`` blocks, and the positions of key inputs.

        ``blocks`` holds one column of block numbers per output dimension.
        """
        columns: list[Iterable[Any]] = []
        refs: list[int] = []
        for position, arg in enumerate(self.args):
            match arg:
                case KeyInput():
                    picked = self._pick(position, blocks, count)
                    columns.append(list(zip(repeat(arg.name, count), *picked, strict=True)))
                    refs.append(position)
                case ValueInput():
                    columns.append(repeat(arg.value, count))
                case DepInput():
                    columns.append(arg.dep.take(self._pick(position, blocks, count), count))
        return columns, refs

    def _pick(
        self, position: int, blocks: Sequence[Sequence[int]], count: int
    ) -> list[Sequence[int]]:
        # The block numbers of input ``position``, a column per input dimension: the
        # column of its letter in the output, or zeros where it has one block (broadcast).
        positions = self._positions[position]
        assert positions is not None  # for mypy: callers pass indexed inputs only
        return [[0] * count if p is None else blocks[p] for p in positions]

    # -- culling -------------------------------------------------------------------------

    def cull(self, keys: Iterable[Key]) -> tuple[Blockwise, set[Key]]:
        """Keep the blocks of ``keys``; cost proportional to the number kept.

        Raises
        ------
        MissingKeyError
            A key is not a block of this layer.

        Examples
        --------
        >>> layer = blockwise(abs, "y", "i", "x", "i", numblocks={"x": (1000,)})
        >>> culled, external = layer.cull([("y", 3)])
        >>> len(culled), external
        (1, {('x', 3)})
        """
        blocks, count = self._blocks_of(keys)
        return self._cull_columns(blocks, count)

    def takes_box(self, box: KeyBox) -> bool:
        """Take a box of this layer's own blocks, unless culling already dropped some.

        Examples
        --------
        >>> layer = blockwise(abs, "y", "ij", "x", "ij", numblocks={"x": (4, 4)})
        >>> layer.takes_box(KeyBox("y", (range(4), range(2)))), layer.takes_box(KeyBox("x", ()))
        (True, False)
        """
        return (
            box.name == self.name
            and self._kept_columns is None
            and box.fits(self.out_numblocks)
            and len(set(self.out_ind)) == len(self.out_ind)
        )

    def cull_lazily(self, keys: Collection[Key]) -> tuple[Blockwise, set[Key]]:
        """Cull as :meth:`cull` does, keeping boxes of blocks boxes.

        When the kept blocks form a box (a :class:`~hlg.layers.base.KeyBox`
        this layer took, or listed keys that fill one, as the single key of a
        full reduction does), the blocks each input must give form a box too:
        the kept range of each output letter, every block of a contracted
        letter, block 0 where the input broadcasts. Those boxes are returned
        in ``boxes``, unlisted, and a box of every block keeps the layer as it
        is. So culling a sum of a million blocks to its one output key costs
        the same as culling a sum of four.

        Examples
        --------
        >>> layer = blockwise(sum, "s", "i", "x", "ij", numblocks={"x": (1000, 1000)})
        >>> culled, needed = layer.cull_lazily([("s", 4), ("s", 5)])
        >>> len(culled), set(needed), needed.boxes
        (2, set(), [KeyBox('x', [4:6, 0:1000])])
        """
        if type(keys) is _OwnKeys and keys.layer is self:  # from filter_keys: the common case
            blocks, count = keys.columns, len(keys)
        elif isinstance(keys, KeyBox) and self.takes_box(keys):
            return self._cull_box(keys.ranges)
        else:
            blocks, count = self._blocks_of(keys)
        if not self._simple and self._kept_columns is None:
            ranges = box_ranges(blocks, count)
            if ranges is not None and len(set(self.out_ind)) == len(self.out_ind):
                return self._cull_box(ranges)
        return self._cull_columns(blocks, count)

    def _blocks_of(self, keys: Iterable[Key]) -> tuple[Sequence[Sequence[int]], int]:
        # The distinct blocks of ``keys``, one column per output dimension, and their count.
        if isinstance(keys, _OwnKeys) and keys.layer is self:
            return keys.columns, len(keys)
        unique = unique_keys(keys)
        found = self._key_columns(unique) if self._kept_columns is None else None
        if found is not None:
            return found, len(unique)
        for key in unique:
            if key not in self:
                raise MissingKeyError(
                    f"layer {self.name!r} has no key {key!r}; cull it only to keys it produces"
                )
        return self._split(unique), len(unique)

    def _cull_columns(
        self, blocks: Sequence[Sequence[int]], count: int
    ) -> tuple[Blockwise, NeededKeys]:
        # Keep the listed blocks and list every key they need.
        culled = self._with_columns(blocks, count)
        external = NeededKeys()
        if culled._simple:
            for position, arg in enumerate(culled.args):
                if isinstance(arg, KeyInput):
                    picked = culled._pick(position, blocks, count)
                    external.update(zip(repeat(arg.name, count), *picked, strict=True))
                    if position in self._one_to_one:
                        hint = BlockHint(self.numblocks[arg.name], picked, count)
                        external.hints[arg.name] = hint
        elif count:
            kept = list(culled._blocks())
            external.update(self._whole_deps())
            for arg in self.args:
                if isinstance(arg, KeyInput) and arg.index is not None:
                    external.update(self._input_keys(arg, kept))
        return culled, external

    def _cull_box(self, ranges: Sequence[range]) -> tuple[Blockwise, NeededKeys]:
        # Keep a box of blocks; give the needed blocks of each input as a box where
        # they form one (they do unless an input repeats a letter, as in "ii").
        count = math.prod(map(len, ranges))
        whole = all(len(r) == n for r, n in zip(ranges, self.out_numblocks, strict=True))
        if whole and self._kept_columns is None:
            culled = self
        else:
            culled = self._with_columns(BoxColumns(ranges), count)
        external = NeededKeys()
        if not count:
            return culled, external
        external.update(self._whole_deps())
        spans = dict(zip(self.out_ind, ranges, strict=True))
        for arg in self.args:
            if not isinstance(arg, KeyInput) or arg.index is None:
                continue
            counts = self.numblocks[arg.name]
            letters = [c for c, n in zip(arg.index, counts, strict=True) if n != 1]
            if len(set(letters)) != len(letters):
                external.update(self._input_keys(arg, product(*ranges)))
                continue
            box = [
                range(1) if n == 1 else spans.get(c, range(self.dims[c]))
                for c, n in zip(arg.index, counts, strict=True)
            ]
            external.boxes.append(KeyBox(arg.name, box))
        return culled, external

    def _whole_deps(self) -> set[Key]:
        # The keys every task needs: whole-key inputs, references in values and kwargs.
        deps = set(self._kwarg_deps)
        for arg in self.args:
            if isinstance(arg, KeyInput) and arg.index is None:
                deps.add(arg.name)
            elif isinstance(arg, ValueInput):
                scan_references(arg.value, deps)
        return deps

    def _input_keys(self, arg: KeyInput, blocks: Iterable[tuple[int, ...]]) -> Iterator[Key]:
        # The keys of indexed input ``arg`` that the tasks of ``blocks`` take, as _task
        # gives them, without building the tasks.
        assert arg.index is not None  # for mypy: callers pass indexed inputs only
        counts = self.numblocks[arg.name]
        mine = [c for c in dict.fromkeys(arg.index) if c in self.contracted]
        combos = list(product(*(range(self.dims[c]) for c in mine)))
        pairs = list(zip(arg.index, counts, strict=True))
        for block in blocks:
            values = self._letter_values(block)
            for combo in combos:
                values.update(zip(mine, combo, strict=True))
                yield (arg.name, *[0 if n == 1 else values[c] for c, n in pairs])

    def filter_keys(self, keys: Iterable[object]) -> Collection[Key]:
        """Return those of ``keys`` that are blocks of this layer, checked in bulk.

        When all of them are, the result remembers their block numbers, so that
        :meth:`cull` need not find them again.
        """
        if self._kept_columns is None:
            hinted = self._hinted_keys(keys)
            if hinted is not None:
                return hinted
        candidates = unique_keys(keys)
        if self._kept_columns is None:
            columns = self._key_columns(candidates)
            if columns is not None:
                return _OwnKeys(candidates, self, columns)
        mine = list(filter(self.__contains__, candidates))
        return _OwnKeys(mine, self, self._split(mine))

    def _hinted_keys(self, keys: Iterable[object]) -> _OwnKeys | None:
        """Return ``keys`` with their block numbers if a hint describes exactly them.

        The hint comes from the cull of a layer that takes this one block for
        block: the columns of blocks it needs, already in range of a grid whose
        shape it names. They are trusted only when that shape is this layer's
        and ``keys`` holds exactly the keys they give.
        """
        hint = getattr(keys, "hints", {}).get(self.name)
        # dict first: for a dict subclass, the ABC check of Mapping alone costs more
        # than the rest of this method for a few keys.
        if not isinstance(hint, BlockHint) or not isinstance(keys, (dict, Mapping)):
            return None
        columns, count = hint.columns, hint.count
        if tuple(hint.numblocks) != self.out_numblocks or len(keys) != count:
            return None
        candidates: list[Key] = list(zip(repeat(self.name, count), *columns, strict=True))
        if not all(map(keys.__contains__, candidates)):
            return None
        return _OwnKeys(candidates, self, columns)

    def _key_columns(self, keys: list[Any]) -> Sequence[Sequence[int]] | None:
        """Return the block numbers of ``keys`` by column, or None unless all are mine.

        Checked column by column in C: every key a tuple of this layer's name and
        one block number in range per dimension.
        """
        if not keys or set(map(type, keys)) != {tuple}:
            return None
        if set(map(len, keys)) != {len(self.out_ind) + 1}:
            return None
        columns = list(zip(*keys, strict=True))
        if columns[0].count(self.name) != len(keys):  # compares by identity first: fast
            return None
        for column, n in zip(columns[1:], self.out_numblocks, strict=True):
            if set(map(type, column)) != {int} or min(column) < 0 or max(column) >= n:
                return None
        return columns[1:]

    def _split(self, keys: list[Any]) -> list[list[int]]:
        # The block numbers of keys known to be this layer's, column by column.
        return [list(map(itemgetter(d), keys)) for d in range(1, len(self.out_ind) + 1)]

    def _with_columns(self, blocks: Sequence[Sequence[int]], count: int) -> Blockwise:
        # The same layer keeping only ``blocks`` (distinct, in range): a shallow copy,
        # since everything else was checked when this layer was built.
        new = object.__new__(type(self))
        new._copy_keeping(self, blocks, count)
        return new

    # -- fusion --------------------------------------------------------------------------

    def can_fuse(self, inner: Blockwise, position: int) -> bool:
        """Return whether :meth:`fuse` can compute ``inner`` inside this layer.

        Parameters
        ----------
        inner
            A layer this one reads.
        position
            The index in :attr:`args` of the input that reads ``inner``.

        Examples
        --------
        >>> from operator import add, neg
        >>> a = blockwise(neg, "a", "i", "x", "i", numblocks={"x": (4,)})
        >>> b = blockwise(add, "b", "i", "a", "i", 1, None, numblocks={"a": (4,)})
        >>> b.can_fuse(a, 0), b.can_fuse(a, 1)
        (True, False)
        >>> total = blockwise(sum, "t", "", "a", "i", numblocks={"a": (4,)})
        >>> total.can_fuse(a, 0)
        False
        """
        return self._fusion_refusal(inner, position) is None

    def fuse(self, inner: Blockwise, position: int) -> Blockwise:
        """Compute ``inner`` inline, as this layer's input at ``position``.

        The result has this layer's name, keys, kept blocks, keyword arguments
        and annotations. Its task for a block calls ``inner``'s function on
        ``inner``'s inputs for the same block, then this layer's function with
        that result in place of the block it took from ``inner``: one task per
        block instead of two, and ``inner``'s blocks are never stored. The
        inputs of ``inner`` take the place of input ``position``, their index
        letters renamed to this layer's.

        Parameters
        ----------
        inner
            A layer this one takes once, block for block, at ``position``.
        position
            The index in :attr:`args` of the input that reads ``inner``.

        Returns
        -------
        Blockwise
            The fused layer; ``inner`` and this layer are unchanged.

        Raises
        ------
        UsageError
            ``inner`` cannot be fused there (:meth:`can_fuse` is False): the
            input at ``position`` is not ``inner`` taken by an index of this
            layer's output letters, block for block; this layer reads
            ``inner`` elsewhere too; either layer contracts an index;
            ``inner``'s keyword arguments hold references; or the two layers'
            annotations differ. The message says which.

        Examples
        --------
        >>> import hlg
        >>> from operator import add, neg
        >>> a = blockwise(neg, "a", "i", "x", "i", numblocks={"x": (4,)})
        >>> b = blockwise(add, "b", "i", "a", "i", 1, None, numblocks={"a": (4,)})
        >>> fused = b.fuse(a, 0)
        >>> fused.args
        [KeyInput(name='x', index='i'), ValueInput(value=1)]
        >>> x = hlg.MaterializedLayer({("x", i): i for i in range(4)}, name="x")
        >>> graph = hlg.HighLevelGraph({"x": x, "b": fused}, {"b": {"x"}})
        >>> hlg.get(graph, [("b", i) for i in range(4)], scheduler="sync")
        (1, 0, -1, -2)
        """
        refusal = self._fusion_refusal(inner, position)
        if refusal is not None:
            raise UsageError(refusal)
        index = input_index(self.args[position])
        assert index is not None  # for mypy: _fusion_refusal checked the input
        letters = dict(zip(inner.out_ind, index, strict=True))
        moved = [relettered(arg, letters) for arg in inner.args]
        args = [*self.args[:position], *moved, *self.args[position + 1 :]]
        numblocks = {k: v for k, v in self.numblocks.items() if k != inner.name}
        numblocks.update(inner.numblocks)
        new_axes = dict(self.new_axes)
        new_axes.update({letters[c]: n for c, n in inner.new_axes.items()})
        fused = Blockwise(
            self.name,
            FusedFunction(self.func, inner.func, position, len(moved), inner.kwargs),
            self.out_ind,
            args,
            numblocks,
            new_axes=new_axes,
            concatenate=self.concatenate,
            kwargs=self.kwargs,
            annotations=self.annotations,
        )
        if self._kept_columns is None:
            return fused
        return fused._with_columns(self._kept_columns, self._kept_count)

    def _fusion_refusal(self, inner: Blockwise, position: int) -> str | None:
        # Why ``inner`` cannot be fused at input ``position``, or None when it can.
        where = f"cannot fuse layer {inner.name!r} into layer {self.name!r}"
        arg = self.args[position] if 0 <= position < len(self.args) else None
        if not isinstance(arg, KeyInput) or arg.name != inner.name or arg.index is None:
            return (
                f"{where}: input {position} of {self.name!r} is not {inner.name!r} taken by "
                f"an index; pass the position in args of that input"
            )
        if inner.contracted or self.contracted:
            return f"{where}: a layer contracting an index needs several blocks of its input"
        if inner._kwargs_deep:
            return f"{where}: the keyword arguments of {inner.name!r} hold references"
        if inner.annotations != self.annotations:
            return f"{where}: their annotations differ, and the fused layer would lose some"
        if self._reads_elsewhere(inner.name, position):
            return f"{where}: {self.name!r} reads {inner.name!r} through another input too"
        counts = self.numblocks.get(inner.name, ())
        index = arg.index
        if (
            len(index) != len(inner.out_ind)
            or len(set(index)) != len(index)
            or not all(
                letter in self.out_ind and n == self.dims[letter] == m
                for letter, n, m in zip(index, counts, inner.out_numblocks, strict=True)
            )
        ):
            return (
                f"{where}: index {index!r} does not take it block for block (each letter an "
                "output letter, once, with no broadcasting)"
            )
        return None

    def _reads_elsewhere(self, name: str, position: int) -> bool:
        # Whether an input other than ``position``, or a keyword argument, reads layer ``name``.
        found: set[Key] = set()
        for p, arg in enumerate(self.args):
            if p == position:
                continue
            if isinstance(arg, KeyInput) and arg.name == name:
                return True
            if isinstance(arg, ValueInput):
                scan_references(arg.value, found)
        scan_references(self.kwargs, found)
        return any(k == name or (type(k) is tuple and k[:1] == (name,)) for k in found)

    def _copy_keeping(self, source: Blockwise, blocks: Sequence[Sequence[int]], count: int) -> None:
        self.__dict__.update(source.__dict__)
        self.__dict__.pop("_kept_set", None)
        self._kept_columns, self._kept_count = blocks, count

    # -- packing -------------------------------------------------------------------------

    def pack_state(self, encoder: Encoder) -> BlockwiseState:
        """Pack function, indices, block counts and kept blocks: O(1) in the block count.

        Examples
        --------
        >>> from hlg.packing.codec import Encoder
        >>> layer = blockwise(round, "y", "i", "x", "i", 2, None, numblocks={"x": (4,)})
        >>> state = layer.pack_state(Encoder())
        >>> state["args"], state["numblocks"]
        ((('key', 'x', 'i'), ('value', 2)), {'x': (4,)})
        >>> layer.cull([("y", 1), ("y", 2)])[0].pack_state(Encoder())["blocks"]
        ('box', ((1, 3),))
        """
        args: list[PackedInput] = []
        for arg in self.args:
            match arg:
                case ValueInput():
                    args.append(("value", encoder.value(arg.value)))
                case KeyInput():
                    args.append(("key", arg.name, arg.index))
                case DepInput(dep=dep):
                    if dep.tag is None:
                        raise PackError(
                            f"layer {self.name!r}: {type(dep).__name__} is not registered; "
                            "decorate it with "
                            "@hlg.layers.blockwise.register_blockwise_dep('your.tag')"
                        )
                    args.append(("dep", dep.tag, dep.pack_state(), arg.index))
        state: BlockwiseState = {
            "func": encoder.function(self.func),
            "out_ind": self.out_ind,
            "args": tuple(args),
            "numblocks": self.numblocks,
            "new_axes": self.new_axes,
            "concatenate": self.concatenate,
            "kwargs": {k: encoder.value(v) for k, v in self.kwargs.items()},
        }
        if self._kept_columns is not None:
            state["blocks"] = pack_blocks(self._kept_columns, self._kept_count)
        return state

    @classmethod
    def unpack_state(
        cls, state: BlockwiseState, decoder: Decoder, *, name: str, annotations: dict[str, Any]
    ) -> Blockwise:
        """Rebuild the layer on the scheduler, checking every field of the state.

        ``state`` should be what :meth:`pack_state` returned, but it comes from
        untrusted bytes: any field of another type or shape raises
        :class:`~hlg.LayerStateError` naming the layer and the field. Deps are
        found by tag among registered types. Nothing is built: the unpacker
        asks :meth:`cost` first.
        """
        fields = _checked_state(state, name)
        args = [unpack_input(entry, name) for entry in fields["args"]]
        try:
            layer = cls(
                name,
                decoder.function(fields["func"]),
                fields["out_ind"],
                args,
                fields["numblocks"],
                new_axes=fields["new_axes"],
                concatenate=fields["concatenate"],
                kwargs=fields["kwargs"],
                annotations=annotations,
            )
        except UsageError as err:
            # The constructor's checks, met on the scheduler: the state is inconsistent.
            raise LayerStateError(str(err)) from None
        if "blocks" not in fields:
            return layer
        columns, count = unpack_blocks(fields["blocks"], layer.out_numblocks, name)
        return layer._with_columns(columns, count)

    def cost(self) -> Cost:
        """Count tasks, the references each builds, dep values and their text, from the indices.

        Examples
        --------
        >>> layer = blockwise(sum, "s", "i", "x", "ij", numblocks={"x": (2, 1000)})
        >>> layer.cost()
        Cost(tasks=2, references=2000, inputs=0, annotations=0, text=0)
        """
        count = (
            self._kept_count if self._kept_columns is not None else math.prod(self.out_numblocks)
        )
        references = len(self._kwarg_deps)
        inputs = text = 0
        for arg in self.args:
            match arg:
                case ValueInput():
                    found: set[Key] = set()
                    scan_references(arg.value, found)
                    references += len(found)
                case DepInput():
                    inputs += 1
                    text += arg.dep.text_per_block()
                case KeyInput(index=None):
                    references += 1
                case KeyInput(index=str(index)):
                    contracted = [c for c in dict.fromkeys(index) if c in self.contracted]
                    references += math.prod(self.dims[c] for c in contracted)
        return Cost(
            tasks=count,
            references=count * references,
            inputs=count * inputs,
            annotations=count * len(self.annotations),
            text=count * text,
        )

    def __repr__(self) -> str:
        return (
            f"<Blockwise {self.name!r}: {counted(len(self), 'task')}, {self.out_ind} <- "
            + ", ".join(f"{describe_input(a)}:{input_index(a) or '-'}" for a in self.args)
            + ">"
        )


def _checked_state(state: object, name: str) -> BlockwiseState:
    """Return a packed Blockwise state, its fields checked to be of the types the layer needs.

    The inputs in ``args``, ``func`` and ``blocks`` are checked where they are read.
    """

    def bad(field: str, expected: str) -> LayerStateError:
        value = state.get(field) if type(state) is dict else None
        return LayerStateError(
            f"layer {name!r}: the state's {field!r} is {value!r:.200}; expected {expected}"
        )

    if type(state) is not dict:
        raise LayerStateError(f"layer {name!r}: the state is {type(state).__name__}, not a map")
    out_ind = state.get("out_ind")
    if type(out_ind) is not str or len(set(out_ind)) != len(out_ind):
        raise bad("out_ind", "a str of distinct letters")
    if type(state.get("args")) is not tuple:
        raise bad("args", "an array of inputs")
    numblocks = state.get("numblocks")
    if type(numblocks) is not dict or not all(
        type(k) is str and type(v) is tuple and all(type(n) is int and n >= 0 for n in v)
        for k, v in numblocks.items()
    ):
        raise bad("numblocks", "a map from layer names to arrays of block counts >= 0")
    new_axes = state.get("new_axes")
    if type(new_axes) is not dict or not all(
        type(k) is str and len(k) == 1 and type(v) is int and v >= 0 for k, v in new_axes.items()
    ):
        raise bad("new_axes", "a map from letters to block counts >= 0")
    if type(state.get("concatenate")) is not bool:
        raise bad("concatenate", "a bool")
    kwargs = state.get("kwargs")
    if type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
        raise bad("kwargs", "a map from str names to values")
    if "func" not in state:
        raise bad("func", "a function table index")
    return cast("BlockwiseState", state)


class _OwnKeys(list):  # type: ignore[type-arg]
    """Distinct keys of one Blockwise layer, with their block numbers column by column."""

    __slots__ = ("columns", "layer")

    def __init__(self, keys: list[Key], layer: Blockwise, columns: Sequence[Sequence[int]]) -> None:
        super().__init__(keys)
        self.layer = layer
        self.columns = columns


# --------------------------------------------------------------------------- building


def blockwise(
    func: Callable[..., Any],
    out_name: str,
    out_ind: str,
    *args_and_indices: Any,
    numblocks: Mapping[str, Sequence[int]],
    new_axes: Mapping[str, int] | None = None,
    concatenate: bool = False,
    annotations: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Blockwise:
    """Build a :class:`Blockwise` layer from inputs and their indices.

    Parameters
    ----------
    func
        Called once per output block.
    out_name
        The layer's name and the first item of its keys.
    out_ind
        One letter per output dimension, such as ``"ij"``.
    *args_and_indices
        Pairs ``input, index``: a layer name (str) with an index string, a
        :class:`BlockwiseDep` with an index string, or anything with index
        ``None``, passed whole to every task (a :class:`~hlg.TaskRef` is the
        value of that key).
    numblocks
        Blocks per dimension of every indexed layer input.
    new_axes
        Blocks along output letters that no input has.
    concatenate
        Give contracted inputs as one concatenated numpy block instead of a list.
    annotations
        Scheduling hints for every task.
    **kwargs
        Keyword arguments for every task (values may be :class:`~hlg.TaskRef`).

    Returns
    -------
    Blockwise
        The layer, its inputs as :class:`KeyInput`, :class:`ValueInput` and
        :class:`DepInput` values in :attr:`Blockwise.args`.

    Raises
    ------
    UsageError
        The inputs do not come in pairs, an index is not a str, an indexed
        input is neither a layer name nor a :class:`BlockwiseDep`, or the
        indices and block counts do not fit together. The message names the
        layer and the input.

    Examples
    --------
    >>> from operator import add
    >>> layer = blockwise(add, "y", "ij", "x", "ij", 10, None, numblocks={"x": (2, 2)})
    >>> sorted(layer)[:2], layer[("y", 0, 1)]
    ([('y', 0, 0), ('y', 0, 1)], Task(add, TaskRef(('x', 0, 1)), 10))
    >>> layer.args
    [KeyInput(name='x', index='ij'), ValueInput(value=10)]
    """
    if len(args_and_indices) % 2:
        raise UsageError(
            f"layer {out_name!r}: inputs come in pairs (input, index); got an odd number "
            f"({len(args_and_indices)})"
        )
    args: list[BlockwiseInput] = []
    for value, index in zip(args_and_indices[::2], args_and_indices[1::2], strict=True):
        if index is not None and not isinstance(index, str):
            raise UsageError(f"layer {out_name!r}: the index of {value!r} must be a str or None")
        if isinstance(value, BlockwiseDep):
            if index is None:
                raise UsageError(
                    f"layer {out_name!r}: {value!r} is a BlockwiseDep, computed per block, "
                    "so it needs an index; give one letter per dimension of its blocks"
                )
            args.append(DepInput(value, index))
        elif index is not None:
            if not isinstance(value, str):
                raise UsageError(
                    f"layer {out_name!r}: an indexed input must be a layer name; got {value!r}"
                )
            args.append(KeyInput(value, index))
        else:
            args.append(ValueInput(value))
    return Blockwise(
        out_name,
        func,
        out_ind,
        args,
        numblocks,
        new_axes=new_axes,
        concatenate=concatenate,
        kwargs=kwargs,
        annotations=annotations,
    )
