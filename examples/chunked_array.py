"""A small chunked numpy array, built only from hlg layers.

An ``Array`` is a grid of numpy blocks: block ``(i, j)`` is the key
``(name, i, j)`` of its graph. Elementwise arithmetic, ``map_blocks``,
``transpose`` and ``matmul`` are Blockwise layers; ``sum``/``mean`` are a
blockwise partial sum followed by a tree reduction, a custom layer
(``PartialReduce``) that holds every level of the tree and packs to a few
integers.

Run: python examples/chunked_array.py

(Not "array.py": as a script, that name would shadow the standard library's array module.)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from itertools import product
from typing import Any

import numpy as np

import hlg
from hlg.layers import KeyBox, NeededKeys
from hlg.layers.blockwise import BlockSeeds, BlockSlices, blockwise

Chunks = tuple[tuple[int, ...], ...]


def normalize_chunks(shape: Sequence[int], chunks: int | Sequence[int]) -> Chunks:
    """Block sizes per dimension for ``shape``, from one size or one per dimension."""
    sizes = [chunks] * len(shape) if isinstance(chunks, int) else list(chunks)
    out = []
    for n, size in zip(shape, sizes, strict=True):
        full, rest = divmod(n, size)
        out.append((size,) * full + ((rest,) if rest else ()))
    return tuple(out)


# --------------------------------------------------------------------------- block functions


def _take(array: np.ndarray, slices: tuple[slice, ...]) -> np.ndarray:
    return array[slices]


def _ones(slices: tuple[slice, ...], dtype: str) -> np.ndarray:
    return np.ones(tuple(s.stop - s.start for s in slices), dtype=dtype)


def _random(slices: tuple[slice, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(tuple(s.stop - s.start for s in slices))


def _matmul_blocks(left: list[np.ndarray], right: list[np.ndarray]) -> np.ndarray:
    return sum((a @ b for a, b in zip(left, right, strict=True)), start=np.zeros(()))


def _partial_sum(block: np.ndarray, axis: int) -> np.ndarray:
    return np.sum(block, axis=axis, keepdims=True)


def _combine_sum(blocks: list[np.ndarray], axis: int) -> np.ndarray:
    return np.sum(np.concatenate(blocks, axis=axis), axis=axis, keepdims=True)


# --------------------------------------------------------------------------- a custom layer


@hlg.register_layer("examples.partial-reduce")
class PartialReduce(hlg.Layer):
    """A tree reduction along one axis, every level of it in one layer.

    Level 0 is the source's grid of ``numblocks`` blocks. Block ``b`` of level
    ``l`` combines blocks ``b[axis] * split_every`` up to
    ``(b[axis] + 1) * split_every`` (exclusive) of level ``l - 1`` along
    ``axis``, others equal; the levels go on until one block is left along
    ``axis``. The last level's blocks are the results, keyed ``(name, *b)``;
    a block of an earlier level ``l`` is keyed ``(name, l, *b)``. The levels
    follow from ``numblocks[axis]`` and ``split_every``, so the layer packs to
    a few integers however deep the tree is.

    ``keep``, when given, lists the kept blocks of each level, from level 1 to
    the last (a culled layer).
    """

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        source: str,
        numblocks: Sequence[int],
        axis: int,
        split_every: int,
        keep: Sequence[Sequence[Sequence[int]]] | None = None,
    ) -> None:
        super().__init__(name)
        if type(split_every) is not int or split_every < 2:
            raise hlg.UsageError(
                f"layer {name!r}: split_every must be an int of at least 2; got {split_every!r}"
            )
        if not 0 <= axis < len(numblocks):
            raise hlg.UsageError(
                f"layer {name!r}: axis {axis!r} is not an axis of a grid of "
                f"{len(numblocks)} dimensions; pass 0 to {len(numblocks) - 1}"
            )
        self.func, self.source, self.axis, self.split_every = func, source, axis, split_every
        self.in_numblocks = tuple(numblocks)
        sizes = [self.in_numblocks[axis]]
        while len(sizes) == 1 or sizes[-1] > 1:
            sizes.append(math.ceil(sizes[-1] / split_every))
        #: Blocks along ``axis`` per level, level 0 being the source.
        self.sizes = tuple(sizes)
        self.levels = len(sizes) - 1
        self.out_numblocks = self._numblocks(self.levels)
        if keep is None:
            self.keep: tuple[tuple[tuple[int, ...], ...], ...] | None = None
        else:
            if len(keep) != self.levels:
                raise hlg.UsageError(
                    f"layer {name!r}: keep gives blocks for {len(keep)} levels, but the "
                    f"reduction has {self.levels} levels; give one list of blocks per level, "
                    "from level 1 to the last"
                )
            self.keep = tuple(tuple(sorted({tuple(b) for b in level})) for level in keep)
        self._kept = None if self.keep is None else tuple(map(frozenset, self.keep))

    def _numblocks(self, level: int) -> tuple[int, ...]:
        out = list(self.in_numblocks)
        out[self.axis] = self.sizes[level]
        return tuple(out)

    def _key(self, level: int, block: tuple[int, ...]) -> hlg.Key:
        if level == 0:
            return (self.source, *block)
        if level == self.levels:
            return (self.name, *block)
        return (self.name, level, *block)

    def _blocks(self, level: int) -> Iterable[tuple[int, ...]]:
        if self.keep is not None:
            return self.keep[level - 1]
        return product(*(range(n) for n in self._numblocks(level)))

    def _level_len(self, level: int) -> int:
        if self.keep is not None:
            return len(self.keep[level - 1])
        return math.prod(self._numblocks(level))

    def __iter__(self) -> Iterator[hlg.Key]:
        for level in range(1, self.levels + 1):
            yield from (self._key(level, b) for b in self._blocks(level))

    def __len__(self) -> int:
        return sum(self._level_len(level) for level in range(1, self.levels + 1))

    def output_keys(self) -> Iterable[hlg.Key]:
        """Return the keys of the last level's blocks, the reduction's results.

        Examples
        --------
        >>> layer = PartialReduce("r", _combine_sum, "a", (9, 2), 0, 4)
        >>> len(layer), list(layer.output_keys())
        (8, [('r', 0, 0), ('r', 0, 1)])
        """
        return (self._key(self.levels, b) for b in self._blocks(self.levels))

    def _split(self, key: object) -> tuple[int, tuple[int, ...]] | None:
        """The level and block of ``key`` if it is one of this layer's keys, else None."""
        if type(key) is not tuple or not key or key[0] != self.name:
            return None
        ndim = len(self.in_numblocks)
        if len(key) == ndim + 1:
            level, block = self.levels, key[1:]
        elif len(key) == ndim + 2 and type(key[1]) is int and 1 <= key[1] < self.levels:
            level, block = key[1], key[2:]
        else:
            return None
        if self._kept is not None:
            return (level, block) if block in self._kept[level - 1] else None
        numblocks = self._numblocks(level)
        if all(type(i) is int and 0 <= i < n for i, n in zip(block, numblocks, strict=True)):
            return level, block
        return None

    def __contains__(self, key: object) -> bool:
        return self._split(key) is not None

    def _inputs(self, level: int, block: tuple[int, ...]) -> list[hlg.Key]:
        start = block[self.axis] * self.split_every
        stop = min(start + self.split_every, self.sizes[level - 1])
        before, after = block[: self.axis], block[self.axis + 1 :]
        return [self._key(level - 1, (*before, i, *after)) for i in range(start, stop)]

    def _task(self, level: int, block: tuple[int, ...]) -> hlg.Task:
        inputs = self._inputs(level, block)
        return hlg.Task(self.func, [hlg.TaskRef(k) for k in inputs], self.axis)

    def __getitem__(self, key: hlg.Key) -> hlg.GraphNode:
        found = self._split(key)
        if found is None:
            raise hlg.MissingKeyError(f"layer {self.name!r} has no key {key!r}")
        return self._task(*found)

    def materialize(self) -> dict[hlg.Key, hlg.GraphNode]:
        return {
            self._key(level, b): self._task(level, b)
            for level in range(1, self.levels + 1)
            for b in self._blocks(level)
        }

    def cost(self) -> hlg.Cost:
        # A block of level l refers to the blocks of level l - 1 it combines along the
        # axis: split_every of them, fewer in the last block. Whole, that is every block
        # of every level but the last once; culled, it is summed over the kept blocks.
        n = len(self)
        if self.keep is None:
            references = sum(math.prod(self._numblocks(level)) for level in range(self.levels))
        else:
            references = sum(
                max(
                    0,
                    min(self.split_every, self.sizes[level - 1] - b[self.axis] * self.split_every),
                )
                for level in range(1, self.levels + 1)
                for b in self.keep[level - 1]
            )
        return hlg.Cost(tasks=n, references=references, annotations=n * len(self.annotations))

    def cull(self, keys: Iterable[hlg.Key]) -> tuple[PartialReduce, set[hlg.Key]]:
        wanted: list[set[tuple[int, ...]]] = [set() for _ in range(self.levels + 1)]
        for key in keys:
            found = self._split(key)
            if found is not None:
                wanted[found[0]].add(found[1])
        external: set[hlg.Key] = set()
        for level in range(self.levels, 0, -1):
            for block in wanted[level]:
                needed = self._inputs(level, block)
                if level == 1:
                    external.update(needed)
                else:
                    wanted[level - 1].update(k[2:] for k in needed)
        culled = self._keeping([sorted(wanted[level]) for level in range(1, self.levels + 1)])
        return culled, external

    def _keeping(self, keep: Sequence[Sequence[Sequence[int]]]) -> PartialReduce:
        """The same reduction, keeping only these blocks of each level."""
        return PartialReduce(
            self.name,
            self.func,
            self.source,
            self.in_numblocks,
            self.axis,
            self.split_every,
            keep,
        )

    # Culling a whole reduction to its one output key asks for every block of every
    # level. These two methods take a box of the last level's blocks and ask for a box
    # of the source's blocks, never listing either.

    def takes_box(self, box: KeyBox) -> bool:
        return box.name == self.name and self.keep is None and box.fits(self.out_numblocks)

    def cull_lazily(self, keys: Collection[hlg.Key]) -> tuple[PartialReduce, set[hlg.Key]]:
        if isinstance(keys, KeyBox) and self.takes_box(keys):
            ranges = list(keys.ranges)
        else:
            ndim = len(self.in_numblocks)
            blocks = {k[1:] for k in keys if len(k) == ndim + 1 and k in self}  # type: ignore[arg-type]
            ranges = _box_of(blocks, ndim) if len(blocks) == len(keys) else None
            if ranges is None or self.keep is not None:
                return self.cull(keys)
        boxes = [ranges]
        for level in range(self.levels, 0, -1):
            ranges = list(ranges)
            along = ranges[self.axis]
            stop = min(along.stop * self.split_every, self.sizes[level - 1])
            ranges[self.axis] = range(along.start * self.split_every, stop)
            boxes.append(ranges)
        boxes.reverse()  # boxes[l] holds the blocks of level l
        if all(
            len(r) == n
            for level in range(1, self.levels + 1)
            for r, n in zip(boxes[level], self._numblocks(level), strict=True)
        ):
            culled = self
        else:
            culled = self._keeping(
                [list(product(*boxes[level])) for level in range(1, self.levels + 1)]
            )
        needed = NeededKeys()
        if all(boxes[0]):
            needed.boxes.append(KeyBox(self.source, boxes[0]))
        return culled, needed

    def pack_state(self, encoder: Any) -> Any:
        state = {
            "func": encoder.function(self.func),
            "source": self.source,
            "numblocks": self.in_numblocks,
            "axis": self.axis,
            "split_every": self.split_every,
        }
        if self.keep is not None:
            state["keep"] = self.keep
        return state

    @classmethod
    def unpack_state(
        cls, state: Any, decoder: Any, *, name: str, annotations: dict[str, Any]
    ) -> PartialReduce:
        return cls(
            name,
            decoder.function(state["func"]),
            state["source"],
            state["numblocks"],
            state["axis"],
            state["split_every"],
            state.get("keep"),
        )


def _box_of(blocks: set[tuple[int, ...]], ndim: int) -> list[range] | None:
    """The ranges of the box that ``blocks`` fill, or None if they fill none."""
    if not blocks:
        return None
    ranges = [range(min(b[d] for b in blocks), max(b[d] for b in blocks) + 1) for d in range(ndim)]
    return ranges if math.prod(map(len, ranges)) == len(blocks) else None


# --------------------------------------------------------------------------- the collection


class Array:
    """A chunked n-dimensional array of numpy blocks, computed lazily."""

    def __init__(self, graph: hlg.HighLevelGraph, name: str, chunks: Chunks, dtype: Any) -> None:
        self.graph, self.name, self.chunks, self.dtype = graph, name, chunks, np.dtype(dtype)

    # the collection protocol: what hlg.compute and hlg.persist call
    def __hlg_graph__(self) -> hlg.HighLevelGraph:
        return self.graph

    def __hlg_layers__(self) -> tuple[str, ...]:
        return (self.name,)

    def __hlg_keys__(self) -> list[Any]:
        return self.keys()

    def __hlg_postcompute__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _concatenate, ()

    def __hlg_postpersist__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return Array, (self.name, self.chunks, self.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(sum(c) for c in self.chunks)

    @property
    def numblocks(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.chunks)

    @property
    def ndim(self) -> int:
        return len(self.chunks)

    def _index(self) -> str:
        return "ijklmn"[: self.ndim]

    def __repr__(self) -> str:
        return (
            f"Array<{self.name}, shape={self.shape}, blocks={self.numblocks}, "
            f"tasks={len(self.graph):,}>"
        )

    # computing
    def keys(self) -> list[Any]:
        """Block keys, as nested lists in grid order."""

        def nest(prefix: tuple[int, ...]) -> list[Any]:
            depth = len(prefix)
            if depth == self.ndim - 1:
                return [(self.name, *prefix, i) for i in range(self.numblocks[depth])]
            return [nest((*prefix, i)) for i in range(self.numblocks[depth])]

        return nest(()) if self.ndim else [(self.name,)]

    def compute(self, region: Sequence[slice] | None = None, **kwargs: Any) -> np.ndarray:
        """Compute the array, or only the blocks overlapping ``region`` and then that region.

        Keyword arguments go to :func:`hlg.compute` (``scheduler=``, ``num_workers=``).
        """
        if region is None:
            (result,) = hlg.compute(self, **kwargs)
            return result  # type: ignore[no-any-return]
        ranges, offsets = [], []
        for sl, dim in zip(region, self.chunks, strict=True):
            start, stop, _ = sl.indices(sum(dim))
            bounds = [0, *np.cumsum(dim)]
            first = int(np.searchsorted(bounds, start, side="right") - 1)
            last = int(np.searchsorted(bounds, stop, side="left"))
            ranges.append(range(first, last))
            offsets.append(slice(start - bounds[first], stop - bounds[first]))
        from itertools import product

        keys = [(self.name, *b) for b in product(*ranges)]
        values = hlg.get(hlg.optimize(self, keys), keys, **kwargs)
        grid = np.empty([len(r) for r in ranges], dtype=object)
        for block, value in zip(product(*(range(len(r)) for r in ranges)), values, strict=True):
            grid[block] = value
        return np.block(grid.tolist())[tuple(offsets)]

    def persist(self, **kwargs: Any) -> Array:
        """Compute the blocks and return an array whose graph holds them."""
        (result,) = hlg.persist(self, **kwargs)
        return result  # type: ignore[no-any-return]

    # building
    def _new(
        self, name: str, layer: hlg.Layer, inputs: Sequence[Array], chunks: Chunks, dtype: Any
    ) -> Array:
        graph = hlg.HighLevelGraph.from_collections(name, layer, inputs)
        return Array(graph, name, chunks, dtype)

    def map_blocks(
        self, func: Callable[..., Any], *others: Any, dtype: Any = None, **kwargs: Any
    ) -> Array:
        """Apply ``func`` block by block to this array and ``others`` (arrays or scalars)."""
        ind = self._index()
        arrays = [self, *[o for o in others if isinstance(o, Array)]]
        for other in arrays[1:]:
            if other.chunks != self.chunks:
                raise ValueError(f"chunks differ: {self.chunks} and {other.chunks}")
        pairs: list[Any] = [self.name, ind]
        for other in others:
            pairs += [other.name, ind] if isinstance(other, Array) else [other, None]
        token = hlg.tokenize(func, self.name, *[getattr(o, "name", o) for o in others], kwargs)
        name = f"{getattr(func, '__name__', 'map')}-{token}"
        layer = blockwise(
            func, name, ind, *pairs, numblocks={a.name: a.numblocks for a in arrays}, **kwargs
        )
        return self._new(name, layer, arrays, self.chunks, dtype or self.dtype)

    def _elementwise(
        self, op: Callable[[Any, Any], Any], other: Any, reverse: bool = False
    ) -> Array:
        if reverse:
            return self.map_blocks(_reversed(op), other)
        return self.map_blocks(op, other)

    def __add__(self, other: Any) -> Array:
        return self._elementwise(operator.add, other)

    def __radd__(self, other: Any) -> Array:
        return self._elementwise(operator.add, other, reverse=True)

    def __sub__(self, other: Any) -> Array:
        return self._elementwise(operator.sub, other)

    def __rsub__(self, other: Any) -> Array:
        return self._elementwise(operator.sub, other, reverse=True)

    def __mul__(self, other: Any) -> Array:
        return self._elementwise(operator.mul, other)

    def __rmul__(self, other: Any) -> Array:
        return self._elementwise(operator.mul, other, reverse=True)

    def __truediv__(self, other: Any) -> Array:
        return self._elementwise(operator.truediv, other)

    def __neg__(self) -> Array:
        return self.map_blocks(operator.neg)

    @property
    def T(self) -> Array:  # noqa: N802 - numpy's name
        return self.transpose()

    def transpose(self) -> Array:
        """Reverse the axes: block ``(j, i)`` of the result is block ``(i, j)`` transposed."""
        ind = self._index()
        name = f"transpose-{hlg.tokenize(self.name)}"
        layer = blockwise(
            np.transpose, name, ind[::-1], self.name, ind, numblocks={self.name: self.numblocks}
        )
        return self._new(name, layer, [self], self.chunks[::-1], self.dtype)

    def __matmul__(self, other: Array) -> Array:
        """Matrix product through contraction over the shared index ``j``."""
        if self.chunks[1] != other.chunks[0]:
            raise ValueError("inner block sizes differ")
        name = f"matmul-{hlg.tokenize(self.name, other.name)}"
        layer = blockwise(
            _matmul_blocks,
            name,
            "ik",
            self.name,
            "ij",
            other.name,
            "jk",
            numblocks={self.name: self.numblocks, other.name: other.numblocks},
        )
        return self._new(name, layer, [self, other], (self.chunks[0], other.chunks[1]), self.dtype)

    def sum(self, axis: int | None = None, split_every: int = 4) -> Array:
        """Sum over ``axis`` (all axes if None) with a tree reduction; dimensions are kept."""
        if axis is None:
            out = self
            for a in range(self.ndim):
                out = out.sum(axis=a, split_every=split_every)
            return out
        partial = self.map_blocks(_partial_sum, axis=axis)
        chunks = list(partial.chunks)
        chunks[axis] = (1,) * len(chunks[axis])
        current = Array(partial.graph, partial.name, tuple(chunks), self.dtype)
        if current.numblocks[axis] == 1:
            return current
        # One layer for the whole tree, however many levels it has.
        name = f"sum-{hlg.tokenize(current.name, axis, split_every)}"
        layer = PartialReduce(
            name, _combine_sum, current.name, current.numblocks, axis, split_every
        )
        chunks[axis] = (1,)
        return current._new(name, layer, [current], tuple(chunks), self.dtype)

    def mean(self, axis: int | None = None) -> Array:
        """Mean over ``axis`` (all axes if None)."""
        count = self.shape[axis] if axis is not None else math.prod(self.shape)
        return self.sum(axis) / count


def _reversed(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return _Flipped(op)


class _Flipped:
    def __init__(self, op: Callable[[Any, Any], Any]) -> None:
        self.op = op
        self.__name__ = f"r{op.__name__}"

    def __call__(self, a: Any, b: Any) -> Any:
        return self.op(b, a)


def _as_lists(nested: Any) -> Any:
    """Turn the nested tuples hlg.get returns for nested lists of keys into lists."""
    return [_as_lists(x) for x in nested] if isinstance(nested, tuple) else nested


def _concatenate(blocks: list[Any]) -> np.ndarray:
    """Join the computed blocks, nested in lists like the keys, into one array."""
    return np.block(blocks)


# --------------------------------------------------------------------------- constructors


def from_numpy(array: np.ndarray, chunks: int | Sequence[int]) -> Array:
    """Split a numpy array into blocks; the array travels once, each task takes its slice."""
    chunks_ = normalize_chunks(array.shape, chunks)
    ind = "ijklmn"[: array.ndim]
    name = f"array-{hlg.tokenize(array)}"
    layer = blockwise(_take, name, ind, array, None, BlockSlices(chunks_), ind, numblocks={})
    return Array(hlg.HighLevelGraph({name: layer}), name, chunks_, array.dtype)


def ones(shape: Sequence[int], chunks: int | Sequence[int], dtype: str = "float64") -> Array:
    """An array of ones, each block made where it is needed."""
    chunks_ = normalize_chunks(shape, chunks)
    ind = "ijklmn"[: len(shape)]
    slices = BlockSlices(chunks_)
    # The slices' runs of equal block sizes name the chunks in a few integers.
    name = f"ones-{hlg.tokenize(tuple(shape), slices.runs, dtype)}"
    layer = blockwise(_ones, name, ind, slices, ind, dtype, None, numblocks={})
    return Array(hlg.HighLevelGraph({name: layer}), name, chunks_, dtype)


def random(shape: Sequence[int], chunks: int | Sequence[int], seed: int = 0) -> Array:
    """Uniform random numbers in [0, 1), reproducible per block from ``seed``."""
    chunks_ = normalize_chunks(shape, chunks)
    ind = "ijklmn"[: len(shape)]
    slices = BlockSlices(chunks_)
    name = f"random-{hlg.tokenize(tuple(shape), slices.runs, seed)}"
    seeds = BlockSeeds(seed, tuple(len(c) for c in chunks_))
    layer = blockwise(_random, name, ind, slices, ind, seeds, ind, numblocks={})
    return Array(hlg.HighLevelGraph({name: layer}), name, chunks_, "float64")


if __name__ == "__main__":
    x = from_numpy(np.arange(24.0).reshape(4, 6), chunks=(2, 3))
    y = (x + 1) * 2 - x.T.T
    print(
        y,
        "->",
        y.compute(scheduler="sync").sum(),
        "==",
        ((np.arange(24.0) + 1) * 2 - np.arange(24.0)).sum(),
    )
    r = random((300, 200), chunks=(50, 50), seed=1)
    print("mean of random:", round(float(r.mean().compute()[0, 0]), 3))
    m = ones((40, 30), chunks=10) @ ones((30, 20), chunks=10)
    print("matmul:", m.compute()[0, 0], "== 30.0")
    held = m.persist(scheduler="sync")
    print("persisted:", held, "->", held.compute(scheduler="sync")[0, 0])
    low, high = hlg.compute(r.sum(axis=0), r.sum(axis=1), scheduler="threads")
    print("two sums in one run:", round(float(low.sum()), 3), "==", round(float(high.sum()), 3))
    from hlg.testing import check_layer

    total = r.sum()
    report = check_layer(total.graph.layers[total.name])
    print(
        f"PartialReduce passes check_layer: tasks {report.ntasks}, "
        f"packed bytes {report.packed_bytes:,}"
    )
