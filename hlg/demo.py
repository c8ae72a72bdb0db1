"""The demo: a pipeline as a layered graph, then a million-task array expression.

Part one runs the load → clean → analyze → store pipeline on two threads. Part
two builds ``y = (x + 1) * 2`` over a 577 x 577 grid of blocks, about a
million tasks in three Blockwise layers, packs it without building a task,
culls it to a corner, fuses the chain, and computes that corner. Part three
groups a 10,000-partition table by key through a multi-stage shuffle, packs
it, and computes a few groups.

Run it with ``hlg demo`` or ``python -m hlg demo``.
"""

from __future__ import annotations

import operator
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hlg.errors import counted
from hlg.execute.callbacks import ProgressBar, TaskGroups
from hlg.execute.local import get
from hlg.graph import HighLevelGraph
from hlg.layers.blockwise import BlockIndex, blockwise
from hlg.layers.materialized import MaterializedLayer
from hlg.layers.shuffle import ShuffleLayer, ShuffleRoute
from hlg.materialize.unpack import unpack
from hlg.optimize import optimize
from hlg.packing.pack import pack
from hlg.visualize.describe import describe

__all__ = [
    "analyze",
    "build_array_expression",
    "build_groupby",
    "build_pipeline",
    "clean",
    "concat_rows",
    "format_layers",
    "load",
    "main",
    "make_rows",
    "one",
    "split_rows_by_key",
    "store",
    "sum_by_key",
]

FILES = ("myfile.a.data", "myfile.b.data", "myfile.c.data")


def load(filename: str) -> list[float]:
    """Pretend to read a file: a deterministic series of readings, some invalid.

    Examples
    --------
    >>> load("myfile.a.data")[:3]
    [2.0, 4.0, 6.0]
    """
    seed = sum(map(ord, filename))
    return [float((seed * i) % 11) if i % 4 else -1.0 for i in range(1, 25)]


def clean(data: Sequence[float]) -> list[float]:
    """Drop invalid (negative) readings.

    Examples
    --------
    >>> clean([1.0, -1.0, 2.0])
    [1.0, 2.0]
    """
    return [x for x in data if x >= 0]


def analyze(sequence_of_data: Sequence[Sequence[float]]) -> dict[str, float]:
    """Summarise all cleaned series together.

    Examples
    --------
    >>> analyze([[1.0, 3.0], [2.0]])
    {'count': 3, 'mean': 2.0, 'max': 3.0}
    """
    values = [x for data in sequence_of_data for x in data]
    return {"count": len(values), "mean": statistics.fmean(values), "max": max(values)}


def store(result: dict[str, float], directory: str) -> str:
    """Write the summary to ``directory/summary.txt`` and return the path."""
    path = Path(directory) / "summary.txt"
    path.write_text("".join(f"{k} = {v}\n" for k, v in result.items()))
    return str(path)


def build_pipeline(directory: str) -> HighLevelGraph:
    """Build the pipeline as four layers: load, clean, analyze, store.

    Examples
    --------
    >>> graph = build_pipeline("/tmp")
    >>> graph.topological_layers(), len(graph)
    (['load', 'clean', 'analyze', 'store'], 8)
    """
    n = len(FILES)
    loads = HighLevelGraph.from_dict(
        {f"load-{i}": (load, FILES[i - 1]) for i in range(1, n + 1)}, name="load"
    )
    cleans = HighLevelGraph.from_collections(
        "clean", {f"clean-{i}": (clean, f"load-{i}") for i in range(1, n + 1)}, [loads]
    )
    analysis = HighLevelGraph.from_collections(
        "analyze", {"analyze": (analyze, [f"clean-{i}" for i in range(1, n + 1)])}, [cleans]
    )
    stored = MaterializedLayer(
        {"store": (store, "analyze", directory)}, name="store", known_keys={"analyze"}
    )
    return HighLevelGraph.from_collections("store", stored, [analysis])


def format_layers(graph: HighLevelGraph) -> str:
    """Return the graph's layer table (see :func:`hlg.describe`).

    Examples
    --------
    >>> print(format_layers(build_pipeline("/tmp")))
    HighLevelGraph: 4 layers, 8 tasks
    layer    type               tag               tasks  depends on
    -------  -----------------  ----------------  -----  ----------
    load     MaterializedLayer  hlg.materialized      3
    clean    MaterializedLayer  hlg.materialized      3  load
    analyze  MaterializedLayer  hlg.materialized      1  clean
    store    MaterializedLayer  hlg.materialized      1  analyze
    """
    return describe(graph, sizes=False).to_text()


def one(index: tuple[int, ...]) -> float:
    """Make the block at ``index`` of an array of ones (blocks here are single numbers)."""
    return 1.0


def build_array_expression(side: int = 577) -> HighLevelGraph:
    """Build ``y = (x + 1) * 2`` over ``x = ones`` on a ``side`` x ``side`` grid of blocks.

    Examples
    --------
    >>> graph = build_array_expression(10)
    >>> len(graph), get(graph, ("y", 3, 4), scheduler="sync")
    (300, 4.0)
    """
    grid = (side, side)
    x = blockwise(one, "x", "ij", BlockIndex(grid), "ij", numblocks={})
    plus = blockwise(operator.add, "x_plus_1", "ij", "x", "ij", 1.0, None, numblocks={"x": grid})
    y = blockwise(
        operator.mul, "y", "ij", "x_plus_1", "ij", 2.0, None, numblocks={"x_plus_1": grid}
    )
    return HighLevelGraph(
        {"x": x, "x_plus_1": plus, "y": y}, {"x_plus_1": {"x"}, "y": {"x_plus_1"}}
    )


def array_part() -> None:
    """Part two: a million-task expression that is never materialised on the client."""
    graph = build_array_expression()
    print("\nA Blockwise expression: y = (x + 1) * 2 on a 577 x 577 grid of blocks\n")
    print(format_layers(graph))
    start = time.perf_counter()
    data = pack(graph)
    elapsed = 1e3 * (time.perf_counter() - start)
    print(f"\n{len(graph):,} tasks pack to {len(data):,} bytes in {elapsed:.1f} ms.")
    corner = [[("y", i, j) for j in range(3)] for i in range(2)]
    culled = graph.cull(corner)
    shown = f"{counted(len(culled), 'task')} in {counted(len(culled.layers), 'layer')}"
    print(f"Culled to y[0:2, 0:3]: {shown}.")
    fused = optimize(culled, corner)
    shown = f"{counted(len(fused), 'task')} in {counted(len(fused.layers), 'layer')}"
    print(f"Fused: {shown} ({', '.join(fused.layers)}).")
    values = get(unpack(pack(fused, corner)), corner, scheduler="threads", num_workers=2)
    print("Computed through pack and unpack:")
    for row in values:
        print("  " + "  ".join(f"{v:.1f}" for v in row))


def make_rows(index: tuple[int, ...]) -> list[tuple[int, int]]:
    """Make partition ``index`` of the demo table: 20 ``(key, value)`` rows, keys below 100,000.

    Examples
    --------
    >>> make_rows((3,))[:3]
    [(23757, 3), (28486, 4), (33215, 5)]
    """
    i = index[0]
    return [((i * 7919 + j * 4729) % 100_000, (i + j) % 10) for j in range(20)]


def split_rows_by_key(rows: list[tuple[int, int]], route: ShuffleRoute) -> list[list[Any]]:
    """Cut rows into ``route.nsplits`` pieces by the group of their destination, ``key % n``.

    Examples
    --------
    >>> route = ShuffleRoute(stage=0, nstages=1, nsplits=2, divisor=1, npartitions=2)
    >>> split_rows_by_key([(1, 10), (2, 20), (3, 30)], route)
    [[(2, 20)], [(1, 10), (3, 30)]]
    """
    pieces: list[list[Any]] = [[] for _ in range(route.nsplits)]
    for row in rows:
        pieces[route.group(row[0] % route.npartitions)].append(row)
    return pieces


def concat_rows(pieces: list[list[Any]], route: ShuffleRoute, position: int) -> list[Any]:
    """Join pieces into one partition.

    Examples
    --------
    >>> concat_rows([[(1, 2)], [], [(3, 4)]], None, 0)
    [(1, 2), (3, 4)]
    """
    return [row for piece in pieces for row in piece]


def sum_by_key(rows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sum the values of each key, sorted by key.

    Examples
    --------
    >>> sum_by_key([(2, 1), (1, 5), (2, 3)])
    [(1, 5), (2, 4)]
    """
    sums: dict[int, int] = {}
    for key, value in rows:
        sums[key] = sums.get(key, 0) + value
    return sorted(sums.items())


def build_groupby(npartitions: int = 10_000) -> HighLevelGraph:
    """Build ``rows.groupby(key).sum()``: rows, a multi-stage shuffle by key, per-partition sums.

    Examples
    --------
    >>> graph = build_groupby(10)
    >>> sorted(graph.layers), len(graph)
    (['rows', 'shuffle', 'sums'], 140)
    >>> get(graph, ("sums", 3), scheduler="sync")[:2]
    [(2723, 7), (5913, 7)]
    """
    rows = blockwise(make_rows, "rows", "i", BlockIndex((npartitions,)), "i", numblocks={})
    shuffle = ShuffleLayer("shuffle", "rows", npartitions, split_rows_by_key, concat_rows)
    sums = blockwise(sum_by_key, "sums", "i", "shuffle", "i", numblocks={"shuffle": (npartitions,)})
    return HighLevelGraph(
        {"rows": rows, "shuffle": shuffle, "sums": sums},
        {"shuffle": {"rows"}, "sums": {"shuffle"}},
    )


def groupby_part() -> None:
    """Part three: a groupby through a multi-stage shuffle of 10,000 partitions."""
    graph = build_groupby()
    shuffle = graph.layers["shuffle"]
    assert isinstance(shuffle, ShuffleLayer)
    print("\nA groupby-sum through a shuffle: 10,000 partitions of (key, value) rows\n")
    print(format_layers(graph))
    print(
        f"\nThe shuffle routes rows in {shuffle.nstages} stages of {shuffle.plan.nsplits} groups "
        f"({len(shuffle):,} tasks, not the {10_000**2:,} pieces of a one-stage shuffle)."
    )
    start = time.perf_counter()
    data = pack(graph)
    elapsed = 1e3 * (time.perf_counter() - start)
    print(f"{len(graph):,} tasks pack to {len(data):,} bytes in {elapsed:.1f} ms.")
    wanted = [("sums", i) for i in range(3)]
    culled = graph.cull(wanted)
    print(f"Culled to 3 output partitions: {len(culled):,} tasks (every input is still split).")
    flat = unpack(pack(culled, wanted))
    values = get(flat, wanted, scheduler="threads", num_workers=2)
    print("Computed through pack and unpack; the first groups of each partition:")
    for (_, i), groups in zip(wanted, values, strict=True):
        print(f"  partition {i}: " + ", ".join(f"key {k}: {v}" for k, v in groups[:4]))


def main() -> int:
    """Run the demo and print what happens at each step."""
    pipeline_part()
    array_part()
    groupby_part()
    return 0


def pipeline_part() -> None:
    """Part one: the load → clean → analyze → store pipeline."""
    with tempfile.TemporaryDirectory() as directory:
        graph = build_pipeline(directory)
        print("The pipeline as a layered graph:\n")
        print(format_layers(graph))
        data = pack(graph, "store")
        size = f"{len(data):,} bytes, {counted(len(graph), 'task')} in "
        size += counted(len(graph.layers), "layer")
        print(f"\nPacked for a scheduler: {size}.")
        flat = unpack(data)
        print(f"Unpacked on the scheduler side: {flat!r}")
        with TaskGroups() as groups:
            path, summary = get(
                flat.tasks,
                ["store", "analyze"],
                scheduler="threads",
                num_workers=2,
                callbacks=[ProgressBar()],
            )
        print(f"\nRan on 2 threads. analyze -> {summary}")
        print(f"store   -> wrote {Path(path).name}:")
        print("  " + Path(path).read_text().strip().replace("\n", "\n  "))
        print("\nTask groups after the run:\n")
        print(groups.table())
