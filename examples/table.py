"""A partitioned table: each partition a dict of numpy columns, built from hlg layers.

A ``Table`` is ``npartitions`` partitions; partition ``i`` is the key
``(name, i)`` and holds ``{column: numpy array}``, every column the same
length. No pandas is needed.

- ``from_arrays`` / ``from_records`` / ``from_function`` make a table;
- ``map_partitions`` is a Blockwise layer;
- ``shuffle(on, npartitions)`` hash-partitions rows by a column through a
  multi-stage :class:`hlg.ShuffleLayer`: equal values end in one partition;
- ``groupby(on).agg(how)`` shuffles on ``on``, then aggregates each partition
  (``sum``, ``count``, ``mean``, ``min``, ``max`` of every other column);
- ``merge(other, on)`` hash-partitions both sides the same way, then joins
  them partition by partition (an inner join);
- ``sort_values(on)`` samples each partition, computes quantiles as partition
  boundaries, then range-shuffles and sorts each partition.

``compute()`` returns one dict of numpy columns, partitions in order. A table
is an hlg collection, so ``hlg.pack(table)`` and ``hlg.get(table, keys)`` work.

Run: python examples/table.py
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import hlg
from hlg.layers.blockwise import BlockIndex, blockwise
from hlg.layers.shuffle import ShuffleRoute

Partition = dict[str, np.ndarray]
AGGREGATIONS = ("sum", "count", "mean", "min", "max")


# --------------------------------------------------------------------------- partition functions


def empty_like(dtypes: Mapping[str, Any]) -> Partition:
    """An empty partition with these columns."""
    return {c: np.empty(0, dtype=d) for c, d in dtypes.items()}


def concat(parts: Sequence[Partition]) -> Partition:
    """Concatenate partitions that have the same columns."""
    if len(parts) == 1:
        return parts[0]
    return {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}


def take(part: Partition, index: np.ndarray) -> Partition:
    """Rows ``index`` of a partition."""
    return {c: v[index] for c, v in part.items()}


def hash_column(values: np.ndarray) -> np.ndarray:
    """A deterministic 64-bit hash of each value (the same in every process)."""
    kind = values.dtype.kind
    if kind in "iub":
        bits = values.astype(np.int64).view(np.uint64)
    elif kind == "f":
        bits = (values.astype(np.float64) + 0.0).view(np.uint64)  # -0.0 hashes as 0.0
    else:
        bits = np.array([zlib.crc32(str(v).encode()) for v in values], dtype=np.uint64)
    # splitmix64's finaliser spreads nearby values over all partitions.
    with np.errstate(over="ignore"):
        bits = (bits ^ (bits >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        bits = (bits ^ (bits >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return bits ^ (bits >> np.uint64(31))


def hash_destinations(part: Partition, on: str, npartitions: int) -> np.ndarray:
    """The output partition of each row when hash-partitioning on ``on``."""
    return (hash_column(part[on]) % np.uint64(npartitions)).astype(np.int64)


def split_by(part: Partition, destinations: np.ndarray, route: ShuffleRoute) -> list[Partition]:
    """Cut a partition into ``route.nsplits`` pieces by the group of each row's destination."""
    groups = route.group(destinations)
    order = np.argsort(groups, kind="stable")
    bounds = np.searchsorted(groups[order], np.arange(route.nsplits + 1))
    ordered = take(part, order)
    return [
        {c: v[bounds[g] : bounds[g + 1]] for c, v in ordered.items()} for g in range(route.nsplits)
    ]


def split_by_hash(part: Partition, route: ShuffleRoute, on: str) -> list[Partition]:
    """The split function of a hash shuffle."""
    return split_by(part, hash_destinations(part, on, route.npartitions), route)


def split_by_range(
    part: Partition, route: ShuffleRoute, on: str, boundaries: np.ndarray
) -> list[Partition]:
    """The split function of a range shuffle: row goes to the partition its value falls in."""
    destinations = np.searchsorted(boundaries, part[on], side="right").astype(np.int64)
    return split_by(part, destinations, route)


def combine_pieces(pieces: list[Partition], route: ShuffleRoute, position: int) -> Partition:
    """The combine function of a shuffle: concatenate."""
    return concat(pieces)


def combine_sorted(
    pieces: list[Partition], route: ShuffleRoute, position: int, on: str
) -> Partition:
    """Concatenate, and at the last stage sort by ``on``."""
    part = concat(pieces)
    if route.stage == route.nstages - 1:
        part = take(part, np.argsort(part[on], kind="stable"))
    return part


def aggregate(part: Partition, on: str, how: str) -> Partition:
    """Aggregate every column but ``on`` per distinct value of ``on``."""
    keys, inverse = np.unique(part[on], return_inverse=True)
    inverse = inverse.reshape(-1)
    n = len(keys)
    out: Partition = {on: keys}
    counts = np.bincount(inverse, minlength=n)
    for column, values in part.items():
        if column == on:
            continue
        if how == "count":
            out[column] = counts.astype(np.int64)
        elif how in ("sum", "mean"):
            sums = np.zeros(n, dtype=np.float64 if how == "mean" else _sum_dtype(values.dtype))
            np.add.at(sums, inverse, values)
            out[column] = sums / counts if how == "mean" else sums
        else:
            result = np.empty(n, dtype=values.dtype)
            if n:
                order = np.lexsort((values, inverse))
                firsts = np.searchsorted(inverse[order], np.arange(n), side="left")
                lasts = np.searchsorted(inverse[order], np.arange(n), side="right") - 1
                result = values[order][firsts if how == "min" else lasts]
            out[column] = result
    return out


def _sum_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.int64) if dtype.kind in "iub" else np.dtype(np.float64)


def join(left: Partition, right: Partition, on: str) -> Partition:
    """Inner join of two partitions on ``on``; clashing right columns get ``_right``."""
    r_order = np.argsort(right[on], kind="stable")
    r_sorted = right[on][r_order]
    lo = np.searchsorted(r_sorted, left[on], side="left")
    hi = np.searchsorted(r_sorted, left[on], side="right")
    counts = hi - lo
    total = int(counts.sum())
    left_index = np.repeat(np.arange(len(counts)), counts)
    starts = np.repeat(lo, counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    right_index = r_order[starts + within]
    out = take(left, left_index)
    for column, values in right.items():
        if column != on:
            out[column + "_right" if column in left else column] = values[right_index]
    return out


def sample(part: Partition, on: str, size: int) -> np.ndarray:
    """Evenly spaced values of ``on`` after sorting: a sample for quantiles."""
    values = np.sort(part[on], kind="stable")
    if len(values) <= size:
        return values
    return values[np.linspace(0, len(values) - 1, size).astype(np.int64)]


def _apply(func: Callable[[Partition], Partition], part: Partition) -> Partition:
    return func(part)


# --------------------------------------------------------------------------- the collection


class Table:
    """A table of ``npartitions`` partitions, each a dict of numpy columns, computed lazily.

    Parameters
    ----------
    graph
        The graph holding the partitions.
    name
        The layer holding them: partition ``i`` is ``(name, i)``.
    npartitions
        How many partitions.
    dtypes
        Column name to numpy dtype.
    """

    def __init__(
        self, graph: hlg.HighLevelGraph, name: str, npartitions: int, dtypes: Mapping[str, Any]
    ) -> None:
        self.graph, self.name, self.npartitions = graph, name, npartitions
        self.dtypes = {c: np.dtype(d) for c, d in dtypes.items()}

    # the collection protocol
    def __hlg_graph__(self) -> hlg.HighLevelGraph:
        return self.graph

    def __hlg_layers__(self) -> tuple[str, ...]:
        return (self.name,)

    def __repr__(self) -> str:
        return (
            f"Table<{self.name}, {self.npartitions:,} partitions, columns={list(self.dtypes)}, "
            f"tasks={len(self.graph):,}>"
        )

    @property
    def columns(self) -> list[str]:
        return list(self.dtypes)

    def keys(self) -> list[Any]:
        """The keys of the partitions, in order."""
        return [(self.name, i) for i in range(self.npartitions)]

    def compute(self, scheduler: str = "threads", **get_kwargs: Any) -> dict[str, np.ndarray]:
        """Compute every partition and concatenate them in order."""
        parts = hlg.get(self, self.keys(), scheduler=scheduler, **get_kwargs)
        return concat([empty_like(self.dtypes), *parts])

    def _derive(self, layer: hlg.Layer, inputs: Sequence[Table], **kw: Any) -> Table:
        graph = hlg.HighLevelGraph.from_collections(layer.name, layer, inputs)
        npartitions = kw.pop("npartitions", self.npartitions)
        return Table(graph, layer.name, npartitions, kw.pop("dtypes", self.dtypes))

    # building
    def map_partitions(
        self, func: Callable[[Partition], Partition], dtypes: Mapping[str, Any] | None = None
    ) -> Table:
        """Apply ``func`` to every partition; its output columns are found by calling it
        on an empty partition unless ``dtypes`` gives them."""
        if dtypes is None:
            dtypes = {c: v.dtype for c, v in func(empty_like(self.dtypes)).items()}
        name = "map-" + hlg.tokenize(self.name, func)
        layer = blockwise(
            _apply,
            name,
            "i",
            func,
            None,
            self.name,
            "i",
            numblocks={self.name: (self.npartitions,)},
        )
        return self._derive(layer, [self], dtypes=dtypes)

    def _shuffle(
        self, split: Callable[..., Any], combine: Callable[..., Any], npartitions: int, token: Any
    ) -> Table:
        name = "shuffle-" + hlg.tokenize(self.name, token, npartitions)
        layer = hlg.ShuffleLayer(
            name,
            self.name,
            self.npartitions,
            split,
            combine,
            npartitions_out=npartitions,
            empty=empty_like(self.dtypes),
        )
        return self._derive(layer, [self], npartitions=npartitions)

    def shuffle(self, on: str, npartitions: int | None = None) -> Table:
        """Hash-partition rows by column ``on`` into ``npartitions`` (by default as many)."""
        self._check_column(on)
        n = self.npartitions if npartitions is None else npartitions
        if type(n) is not int or n < 1:
            raise hlg.UsageError(f"npartitions must be an int >= 1; got {n!r}")
        split = functools.partial(split_by_hash, on=on)
        return self._shuffle(split, combine_pieces, n, ("hash", on))

    def groupby(self, on: str) -> GroupBy:
        """Group rows by column ``on``; then call ``.agg(how)``."""
        self._check_column(on)
        return GroupBy(self, on)

    def merge(self, other: Table, on: str) -> Table:
        """Inner join with ``other`` on column ``on``, both hash-partitioned the same way."""
        self._check_column(on)
        other._check_column(on)
        n = max(self.npartitions, other.npartitions)
        left, right = self.shuffle(on, n), other.shuffle(on, n)
        name = "merge-" + hlg.tokenize(left.name, right.name, on)
        layer = blockwise(
            join,
            name,
            "i",
            left.name,
            "i",
            right.name,
            "i",
            numblocks={left.name: (n,), right.name: (n,)},
            on=on,
        )
        dtypes = join(empty_like(self.dtypes), empty_like(other.dtypes), on)
        return left._derive(
            layer, [left, right], npartitions=n, dtypes={c: v.dtype for c, v in dtypes.items()}
        )

    def sort_values(self, on: str, *, sample_size: int = 64, scheduler: str = "threads") -> Table:
        """Sort by ``on``: sample each partition (computed now), cut at quantiles, range-shuffle.

        Partition ``i`` of the result holds smaller values than partition ``i + 1``;
        rows with equal values keep no particular order.
        """
        self._check_column(on)
        sampled = self.map_partitions(
            functools.partial(_sample_partition, on=on, size=sample_size),
            dtypes={on: self.dtypes[on]},
        ).compute(scheduler=scheduler)[on]
        n = self.npartitions
        if len(sampled):
            quantiles = np.quantile(np.sort(sampled), np.arange(1, n) / n, method="nearest")
        else:
            quantiles = np.empty(0, dtype=self.dtypes[on])
        split = functools.partial(split_by_range, on=on, boundaries=quantiles)
        combine = functools.partial(combine_sorted, on=on)
        return self._shuffle(split, combine, n, ("range", on, hlg.tokenize(quantiles)))

    def _check_column(self, on: str) -> None:
        if on not in self.dtypes:
            raise hlg.UsageError(
                f"table {self.name!r} has no column {on!r}; its columns: {', '.join(self.dtypes)}"
            )


def _sample_partition(part: Partition, on: str, size: int) -> Partition:
    return {on: sample(part, on, size)}


class GroupBy:
    """Rows of a table grouped by one column; see :meth:`Table.groupby`."""

    def __init__(self, table: Table, on: str) -> None:
        self.table, self.on = table, on

    def agg(self, how: str) -> Table:
        """Aggregate every other column per group: sum, count, mean, min or max."""
        if how not in AGGREGATIONS:
            raise hlg.UsageError(f"agg(how) takes one of {', '.join(AGGREGATIONS)}; got {how!r}")
        shuffled = self.table.shuffle(self.on)
        return shuffled.map_partitions(functools.partial(aggregate, on=self.on, how=how))


# --------------------------------------------------------------------------- making tables


def from_arrays(columns: dict[str, np.ndarray], npartitions: int) -> Table:
    """A table of these columns cut into ``npartitions`` contiguous partitions."""
    if type(npartitions) is not int or npartitions < 1:
        raise hlg.UsageError(f"npartitions must be an int >= 1; got {npartitions!r}")
    arrays = {c: np.asarray(v) for c, v in columns.items()}
    lengths = {len(v) for v in arrays.values()}
    if len(lengths) > 1:
        raise hlg.UsageError(f"columns differ in length: {sorted(lengths)}")
    name = "from-arrays-" + hlg.tokenize(*arrays.items(), npartitions)
    index = np.array_split(np.arange(lengths.pop() if lengths else 0), npartitions)
    tasks = {(name, i): hlg.DataNode(take(arrays, part)) for i, part in enumerate(index)}
    graph = hlg.HighLevelGraph({name: hlg.MaterializedLayer(tasks, name=name)})
    return Table(graph, name, npartitions, {c: v.dtype for c, v in arrays.items()})


def from_records(records: Sequence[Mapping[str, Any]], npartitions: int) -> Table:
    """A table of dict-like rows, all with the same fields."""
    if not records:
        raise hlg.UsageError("from_records needs at least one record to know the columns")
    columns = {c: np.array([r[c] for r in records]) for c in records[0]}
    return from_arrays(columns, npartitions)


def from_function(
    func: Callable[[tuple[int]], Partition], npartitions: int, dtypes: Mapping[str, Any]
) -> Table:
    """A table whose partition ``i`` is ``func((i,))``: a Blockwise layer, never materialised."""
    name = "from-function-" + hlg.tokenize(func, npartitions)
    layer = blockwise(func, name, "i", BlockIndex((npartitions,)), "i", numblocks={})
    return Table(hlg.HighLevelGraph({name: layer}), name, npartitions, dtypes)


# --------------------------------------------------------------------------- demo


def random_partition(index: tuple[int], rows: int = 100, groups: int = 10) -> Partition:
    """Partition ``index`` (a block index ``(i,)``) of a reproducible random (key, value) table."""
    rng = np.random.default_rng(index[0])
    return {
        "key": rng.integers(0, groups, rows),
        "value": rng.random(rows),
    }


def main() -> None:
    rng = np.random.default_rng(0)
    table = from_arrays({"key": rng.integers(0, 5, 1000), "value": rng.random(1000)}, 7)
    print(table)
    means = table.groupby("key").agg("mean")
    print(means)
    result = means.compute(scheduler="threads")
    for key, mean in sorted(zip(result["key"], result["value"], strict=True)):
        print(f"  key {key}: mean value {mean:.3f}")
    data = hlg.pack(means)
    print(f"packed: {len(data):,} bytes; unpacked: {hlg.unpack(data)!r}")
    ordered = table.sort_values("value").compute()
    print("sorted:", bool(np.all(np.diff(ordered["value"]) >= 0)))


if __name__ == "__main__":
    main()
