"""Block-dependent inputs of Blockwise layers.

A :class:`BlockwiseDep` computes an input's value from the block index: the
slices selecting a block, a file name, a seed. A layer that reads 100 000
files then packs to a pattern instead of 100 000 names. Deps are found on the
scheduler by registry tag, like layers, among the types registered with
:func:`register_blockwise_dep`; their states are msgpack-native and are never
unpickled.

A dep's state comes from untrusted bytes: ``unpack_state`` checks every field
and raises :class:`~hlg.LayerStateError`, and :meth:`BlockwiseDep.text_per_block`
bounds the text it generates, so the unpacker can refuse a layer before
building it.

**The block-pattern language.** A :class:`BlockPattern` is literal text with
fields ``{N}`` (block number ``N`` of the block index, in decimal) or
``{N:Wd}`` / ``{N:0Wd}`` (padded to width ``W`` <= 32 with spaces or zeros);
``{{`` and ``}}`` stand for braces. Nothing else: no attribute access,
indexing, conversions or other format specs, so formatting a pattern from
the bytes does nothing but write digits, and a block's text is at most the
literal text plus, per field, the larger of ``W`` and the digits of the
largest block number.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import groupby, repeat
from operator import add, mul
from typing import Any, ClassVar

from hlg.errors import LayerStateError, PackError, counted

__all__ = [
    "BlockIndex",
    "BlockPattern",
    "BlockSeeds",
    "BlockSlices",
    "BlockwiseDep",
    "get_blockwise_dep",
    "register_blockwise_dep",
]


class BlockwiseDep:
    """An input whose value for a block is computed from the block index.

    Subclass it, set ``numblocks`` (blocks per dimension), implement
    ``__getitem__(block_index)``, ``pack_state()`` (msgpack-native, small) and
    the classmethod ``unpack_state(state)``, and register the class with
    :func:`register_blockwise_dep`.
    """

    tag: ClassVar[str | None] = None
    numblocks: tuple[int, ...]

    def __getitem__(self, index: tuple[int, ...]) -> Any:
        """Return the value for the block at ``index``."""
        raise NotImplementedError

    def take(self, columns: Sequence[Sequence[int]], count: int) -> list[Any]:
        """Return the values for ``count`` blocks, given one column of indices per dimension.

        Block ``b`` is ``(columns[0][b], columns[1][b], ...)``. Layers call this
        when they build many tasks at once; the default asks ``self[index]`` for
        each block, and a dep that can compute values per dimension overrides it.

        Examples
        --------
        >>> BlockIndex((2, 3)).take([[0, 1], [2, 0]], 2)
        [(0, 2), (1, 0)]
        """
        if not columns:
            return [self[()]] * count
        return list(map(self.__getitem__, zip(*columns, strict=True)))

    def text_per_block(self) -> int:
        """Return the most characters of generated text one block's value holds.

        The unpacker charges it per block against ``Limits.text``. The default,
        0, suits deps whose values are numbers, slices or tuples of them; a dep
        that builds strings returns a bound.
        """
        return 0

    def pack_state(self) -> Any:
        """Return a small msgpack-native state."""
        raise NotImplementedError

    @classmethod
    def unpack_state(cls, state: Any) -> BlockwiseDep:
        """Rebuild from :meth:`pack_state`'s result, on the scheduler."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(numblocks={self.numblocks})"


_DEPS: dict[str, type[BlockwiseDep]] = {}


def register_blockwise_dep(tag: str) -> Callable[[type[BlockwiseDep]], type[BlockwiseDep]]:
    """Register a :class:`BlockwiseDep` type under ``tag``, so packed layers can use it."""

    def decorate(cls: type[BlockwiseDep]) -> type[BlockwiseDep]:
        existing = _DEPS.get(tag)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise PackError(f"blockwise dep tag {tag!r} is taken by {existing.__qualname__}")
        cls.tag = tag
        _DEPS[tag] = cls
        return cls

    return decorate


@register_blockwise_dep("hlg.block-index")
class BlockIndex(BlockwiseDep):
    """The block index itself.

    Examples
    --------
    >>> BlockIndex((2, 3))[(1, 2)]
    (1, 2)
    """

    def __init__(self, numblocks: Sequence[int]) -> None:
        self.numblocks = tuple(numblocks)

    def __getitem__(self, index: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(index)

    def take(self, columns: Sequence[Sequence[int]], count: int) -> list[Any]:
        """Return the block indices themselves, zipped from the columns."""
        if not columns:
            return [()] * count
        return list(zip(*columns, strict=True))

    def pack_state(self) -> Any:
        """Pack the block counts."""
        return {"numblocks": self.numblocks}

    @classmethod
    def unpack_state(cls, state: Any) -> BlockIndex:
        """Rebuild from the block counts."""
        return cls(_numblocks(_field(state, "numblocks", "block-index")))


@register_blockwise_dep("hlg.block-slices")
class BlockSlices(BlockwiseDep):
    """The slices that select a block, from the block sizes along each dimension.

    Examples
    --------
    >>> BlockSlices(((2, 2, 1), (3,)))[(2, 0)]
    (slice(4, 5, None), slice(0, 3, None))
    """

    def __init__(self, chunks: Sequence[Sequence[int]]) -> None:
        self._init_runs([_runs(dim) for dim in chunks])

    def _init_runs(self, runs: Sequence[Sequence[tuple[int, int]]]) -> None:
        # Per dimension: runs of equal block sizes, [size, count]; with the first block
        # number and first offset of every run. Slices are computed from these, never
        # expanded, so a grid of any size costs memory in its number of runs.
        self.runs = tuple(tuple((int(s), int(c)) for s, c in dim) for dim in runs)
        self._firsts: list[list[tuple[int, int]]] = []
        for dim in self.runs:
            firsts, block, offset = [], 0, 0
            for size, count in dim:
                if size < 0 or count < 1:
                    raise LayerStateError(
                        f"block sizes need size >= 0 and count >= 1; got {size} and {count}"
                    )
                firsts.append((block, offset))
                block, offset = block + count, offset + size * count
            self._firsts.append(firsts)
        self.numblocks = tuple(sum(c for _, c in dim) for dim in self.runs)

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """The block sizes along each dimension (expanded: for small grids)."""
        return tuple(tuple(s for s, c in dim for _ in range(c)) for dim in self.runs)

    def __getitem__(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        if len(index) != len(self.runs):
            raise IndexError(
                f"block index {index!r} has {counted(len(index), 'dimension')}, "
                f"not {len(self.runs)}"
            )
        return tuple(self._slice(d, i) for d, i in enumerate(index))

    def take(self, columns: Sequence[Sequence[int]], count: int) -> list[Any]:
        """Return the slices of many blocks, computing each distinct slice once per dimension.

        Examples
        --------
        >>> BlockSlices(((2, 2), (3, 3))).take([[0, 1], [1, 1]], 2)
        [(slice(0, 2, None), slice(3, 6, None)), (slice(2, 4, None), slice(3, 6, None))]
        """
        if not columns:
            return [()] * count
        per_dim: list[Iterable[slice]] = []
        for d, column in enumerate(columns):
            distinct = set(column)
            # Every block number once (few blocks kept, say): nothing to share, and
            # building each slice directly skips the table.
            numbers = column if len(distinct) == len(column) else list(distinct)
            runs = self.runs[d]
            if len(runs) == 1:  # one block size: computed in C
                size = runs[0][0]
                starts = list(map(mul, numbers, repeat(size)))
                values: Iterable[slice] = map(slice, starts, map(add, starts, repeat(size)))
            else:
                values = map(self._slice, repeat(d), numbers)
            if numbers is column:
                per_dim.append(values)
            else:
                per_dim.append(map(dict(zip(numbers, values, strict=True)).__getitem__, column))
        return list(zip(*per_dim, strict=True))

    def _slice(self, d: int, i: int) -> slice:
        dim = self.runs[d]
        if len(dim) == 1:
            size = dim[0][0]
            return slice(i * size, (i + 1) * size)
        firsts = self._firsts[d]
        run = bisect_right(firsts, (i, math.inf)) - 1
        block, offset = firsts[run]
        size = dim[run][0]
        start = offset + (i - block) * size
        return slice(start, start + size)

    def pack_state(self) -> Any:
        """Pack the block sizes as runs of equal sizes: O(1) for a regular grid."""
        return {"runs": self.runs}

    @classmethod
    def unpack_state(cls, state: Any) -> BlockSlices:
        """Rebuild from the runs of block sizes, without expanding them."""
        runs = _field(state, "runs", "block-slices")
        if type(runs) is not tuple or not all(
            type(dim) is tuple
            and all(type(r) is tuple and len(r) == 2 and set(map(type, r)) == {int} for r in dim)
            for dim in runs
        ):
            raise LayerStateError(
                f"a block-slices state's runs are {runs!r:.200}; expected an array per "
                "dimension of [size, count] int pairs"
            )
        dep = cls.__new__(cls)
        dep._init_runs(runs)
        return dep


@register_blockwise_dep("hlg.block-pattern")
class BlockPattern(BlockwiseDep):
    """A string formatted with the block index, such as a file name.

    The pattern holds literal text and fields ``{N}``, ``{N:Wd}`` or
    ``{N:0Wd}``; see the module docstring for the language.

    Raises
    ------
    PackError
        The pattern uses anything else, or a field names a dimension the
        block index does not have.

    Examples
    --------
    >>> BlockPattern("part-{0:03d}.csv", (1000,))[(7,)]
    'part-007.csv'
    >>> BlockPattern("{0.__class__}", (10,))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hlg.errors.PackError: block pattern '{0.__class__}': '{0.__class__}' is not a field; ...
    """

    def __init__(self, pattern: str, numblocks: Sequence[int]) -> None:
        self.numblocks = tuple(numblocks)
        try:
            self._text = _pattern_text(pattern, self.numblocks)
        except ValueError as err:
            raise PackError(f"block pattern {pattern!r:.200}: {err}") from None
        self.pattern = pattern

    def __getitem__(self, index: tuple[int, ...]) -> str:
        return self.pattern.format(*index)

    def text_per_block(self) -> int:
        """Return the longest text one block's name can have."""
        return self._text

    def pack_state(self) -> Any:
        """Pack the pattern and the block counts."""
        return {"pattern": self.pattern, "numblocks": self.numblocks}

    @classmethod
    def unpack_state(cls, state: Any) -> BlockPattern:
        """Rebuild from the pattern and the block counts, checking the pattern's language."""
        pattern = _field(state, "pattern", "block-pattern")
        numblocks = _numblocks(_field(state, "numblocks", "block-pattern"))
        if type(pattern) is not str:
            raise LayerStateError(f"a block pattern is {type(pattern).__name__}, not a str")
        try:
            return cls(pattern, numblocks)
        except PackError as err:
            raise LayerStateError(str(err)) from None


# One piece of a block pattern: literal text, an escaped brace, or a field.
_PATTERN_PIECE = re.compile(r"[^{}]+|\{\{|\}\}|\{(\d{1,3})(?::(0?)(\d{1,2})d)?\}")
_MAX_WIDTH = 32


def _pattern_text(pattern: str, numblocks: tuple[int, ...]) -> int:
    """Check ``pattern`` against the pattern language; return the most characters a block gets."""
    if type(pattern) is not str:
        raise ValueError(f"a pattern is a str, not {type(pattern).__name__}")
    size, at = 0, 0
    for match in _PATTERN_PIECE.finditer(pattern):
        if match.start() != at:
            break
        at = match.end()
        if match.group(1) is None:
            size += 1 if match.group(0) in ("{{", "}}") else len(match.group(0))
            continue
        dim = int(match.group(1))
        width = int(match.group(3) or 0)
        if dim >= len(numblocks):
            raise ValueError(
                f"field {match.group(0)!r} names block dimension {dim}, but blocks have "
                f"{counted(len(numblocks), 'dimension')}"
            )
        if width > _MAX_WIDTH:
            raise ValueError(f"field {match.group(0)!r} is wider than {_MAX_WIDTH}")
        size += max(width, len(str(max(numblocks[dim] - 1, 0))))
    if at != len(pattern):
        bad = re.match(r"\{[^{}]*\}?|\}", pattern[at:])
        piece = bad.group(0) if bad else pattern[at : at + 20]
        raise ValueError(
            f"{piece!r} is not a field; fields are {{N}}, {{N:Wd}} or {{N:0Wd}} with N a block "
            f"dimension and W <= {_MAX_WIDTH}, and braces are written {{{{ and }}}}"
        )
    return size


@register_blockwise_dep("hlg.block-seeds")
class BlockSeeds(BlockwiseDep):
    """A distinct, reproducible integer seed for every block.

    Examples
    --------
    >>> seeds = BlockSeeds(42, (10, 10))
    >>> seeds[(0, 1)] == BlockSeeds(42, (10, 10))[(0, 1)] != seeds[(1, 0)]
    True
    """

    def __init__(self, seed: int, numblocks: Sequence[int]) -> None:
        self.seed = int(seed)
        self.numblocks = tuple(numblocks)

    def __getitem__(self, index: tuple[int, ...]) -> int:
        flat = 0
        for i, n in zip(index, self.numblocks, strict=True):
            flat = flat * n + i
        # A 64-bit mix of the seed and the block's position (splitmix64).
        z = (self.seed * 0x9E3779B97F4A7C15 + flat + 1) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return (z ^ (z >> 31)) >> 1

    def pack_state(self) -> Any:
        """Pack the seed and the block counts."""
        return {"seed": self.seed, "numblocks": self.numblocks}

    @classmethod
    def unpack_state(cls, state: Any) -> BlockSeeds:
        """Rebuild from the seed and the block counts."""
        seed = _field(state, "seed", "block-seeds")
        if type(seed) is not int:
            raise LayerStateError(f"a block-seeds seed is {seed!r:.80}, not an int")
        return cls(seed, _numblocks(_field(state, "numblocks", "block-seeds")))


def _field(state: Any, name: str, kind: str) -> Any:
    if type(state) is not dict or name not in state:
        raise LayerStateError(f"a {kind} state is not a map with a {name!r} field")
    return state[name]


def _numblocks(value: Any) -> tuple[int, ...]:
    if type(value) is not tuple or not all(type(n) is int and n >= 0 for n in value):
        raise LayerStateError(
            f"block counts are {value!r:.200}; expected an array of ints >= 0, one per dimension"
        )
    return value


def _runs(sizes: Sequence[int]) -> tuple[tuple[int, int], ...]:
    # groupby walks the sizes in C: a dimension of a thousand equal blocks costs one run
    # here, not a thousand Python steps, so building a grid stays flat in its block count.
    # The sizes are made ints once per run, by _init_runs.
    return tuple((size, len(list(run))) for size, run in groupby(sizes))


def get_blockwise_dep(tag: str) -> type[BlockwiseDep] | None:
    """Return the dep type registered under ``tag``, or None.

    Examples
    --------
    >>> get_blockwise_dep("hlg.block-slices").__name__
    'BlockSlices'
    """
    return _DEPS.get(tag)


def known_dep_tags() -> list[str]:
    """Return the registered dep tags, sorted."""
    return sorted(_DEPS)
