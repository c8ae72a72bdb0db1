"""Block-dependent inputs of Blockwise layers.

A :class:`BlockwiseDep` computes an input's value from the block index: the
slices selecting a block, a file name, a seed. A layer that reads 100 000
files then packs to a pattern instead of 100 000 names. Deps are found on the
scheduler by registry tag, like layers, among the types registered with
:func:`register_blockwise_dep`; their states are msgpack-native and are never
unpickled.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import add, mul
from typing import Any, ClassVar

from hlg.errors import LayerStateError, PackError

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
        return cls(state["numblocks"])


@register_blockwise_dep("hlg.block-slices")
class BlockSlices(BlockwiseDep):
    """The slices that select a block, from the block sizes along each dimension.

    Examples
    --------
    >>> BlockSlices(((2, 2, 1), (3,)))[(2, 0)]
    (slice(4, 5, None), slice(0, 3, None))
    """

    def __init__(self, chunks: Sequence[Sequence[int]]) -> None:
        self._init_runs([_runs([int(c) for c in dim]) for dim in chunks])

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
                f"block index {index!r} has {len(index)} dimensions, not {len(self.runs)}"
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
        per_dim = []
        for d, column in enumerate(columns):
            distinct = list(set(column))
            if len(self.runs[d]) == 1:  # one block size: computed in C
                size = self.runs[d][0][0]
                starts = list(map(mul, distinct, repeat(size)))
                values: Iterable[slice] = map(slice, starts, map(add, starts, repeat(size)))
            else:
                values = map(self._slice, repeat(d), distinct)
            per_dim.append(map(dict(zip(distinct, values, strict=True)).__getitem__, column))
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
        dep = cls.__new__(cls)
        dep._init_runs(state["runs"])
        return dep


@register_blockwise_dep("hlg.block-pattern")
class BlockPattern(BlockwiseDep):
    """A string formatted with the block index, such as a file name.

    Examples
    --------
    >>> BlockPattern("part-{0:03d}.csv", (1000,))[(7,)]
    'part-007.csv'
    """

    def __init__(self, pattern: str, numblocks: Sequence[int]) -> None:
        self.pattern = pattern
        self.numblocks = tuple(numblocks)

    def __getitem__(self, index: tuple[int, ...]) -> str:
        return self.pattern.format(*index)

    def pack_state(self) -> Any:
        """Pack the pattern and the block counts."""
        return {"pattern": self.pattern, "numblocks": self.numblocks}

    @classmethod
    def unpack_state(cls, state: Any) -> BlockPattern:
        """Rebuild from the pattern and the block counts."""
        return cls(state["pattern"], state["numblocks"])


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
        return cls(state["seed"], state["numblocks"])


def _runs(sizes: Sequence[int]) -> tuple[tuple[int, int], ...]:
    runs: list[list[int]] = []
    for size in sizes:
        if runs and runs[-1][0] == size:
            runs[-1][1] += 1
        else:
            runs.append([size, 1])
    return tuple((size, count) for size, count in runs)


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
