"""Blockwise graphs, side by side with dask.array, in one run.

Graph: ``y = (x + 1) * 2`` over ``x = ones(...)``, three layers as dask builds
it, with 10 000, 100 000 and 1 000 000 tasks in all. Measured per task:

- materialisation on the client (``to_dict``) and through pack -> unpack,
  against dask's ``dict(graph)`` (budget: >= 10x faster) and against a plain
  dict comprehension building the same task tuples (the floor; budget: within 3x);
- packed size at 1 000 000 tasks against 10 000 (budget: within 1%, and under
  8 KB plus the function bytes);
- culling to 1% of the output blocks and materialising what is left, against
  dask doing the same (budget: >= 10x faster). Each library culls a graph it
  has just built, to its own keys for the same blocks, and must keep three
  tasks per block; building the graph is not timed. A sample culls freshly
  built graphs back to back, as many for each library as make hlg's sample take
  5 ms, and gives the time per call (as ``bench_order.py`` does: hlg's smallest
  case takes a quarter of a millisecond, about what a cold cache after the
  garbage collection before a lone call costs); the two libraries take turns;
- memory held per task by the scheduler's graph: RSS growth of ``hlg.unpack``
  of the 1 000 000-task expression (budget: <= 400 B per task), against RSS
  growth of dask's ``dict(graph)``, each measured in a fresh process.

And the sum of a 1 000 x 1 000-block array, a Blockwise contraction from
``"ij"`` to ``"i"`` and then to ``""`` (dask: ``ones(...).sum()``), culled to its
one output key with ``HighLevelGraph.cull`` (budget: < 50 ms), and packed for
that key (budget: the size of the whole graph packed, O(1)).

Run: ``python benchmarks/bench_blockwise.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from operator import add, mul
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import best_of, best_per_call_each, print_table

import hlg
from hlg.layers.blockwise import BlockSlices, blockwise


def ones_block(slices: tuple[slice, ...]) -> Any:
    import numpy as np

    return np.ones(tuple(s.stop - s.start for s in slices))


def hlg_graph(blocks: tuple[int, int]) -> hlg.HighLevelGraph:
    chunks = tuple((1,) * n for n in blocks)
    x = blockwise(ones_block, "ones", "ij", BlockSlices(chunks), "ij", numblocks={})
    a = blockwise(add, "add", "ij", "ones", "ij", 1, None, numblocks={"ones": blocks})
    y = blockwise(mul, "mul", "ij", "add", "ij", 2, None, numblocks={"add": blocks})
    return hlg.HighLevelGraph({"ones": x, "add": a, "mul": y}, {"add": {"ones"}, "mul": {"add"}})


def floor_dict(blocks: tuple[int, int]) -> dict[Any, Any]:
    chunks = BlockSlices(tuple((1,) * n for n in blocks))
    out: dict[Any, Any] = {}
    for i in range(blocks[0]):
        for j in range(blocks[1]):
            out[("ones", i, j)] = (ones_block, chunks[(i, j)])
            out[("add", i, j)] = (add, ("ones", i, j), 1)
            out[("mul", i, j)] = (mul, ("add", i, j), 2)
    return out


def dask_array(blocks: tuple[int, int]) -> Any:
    import dask.array as da

    x = da.ones(blocks, chunks=1)
    return (x + 1) * 2


def main() -> None:
    import dask

    print(f"hlg {hlg.__version__}, dask {dask.__version__}")
    rows, sizes, cull_rows = [], {}, []
    for total in (10_000, 100_000, 1_000_000):
        side = round(math.sqrt(total / 3))
        blocks = (side, side)
        n = 3 * side * side
        graph = hlg_graph(blocks)
        repeat = 3 if n < 500_000 else 1
        # A fresh dask array each time: dask caches a layer once it has materialised it.
        t_dask = best_of(lambda blocks=blocks: dict(dask_array(blocks).__dask_graph__()), repeat)
        t_floor = best_of(lambda blocks=blocks: floor_dict(blocks), repeat)
        t_hlg = best_of(lambda graph=graph: graph.to_dict(), repeat)
        data = hlg.pack(graph)
        sizes[n] = len(data)
        t_trip = best_of(lambda graph=graph: hlg.unpack(hlg.pack(graph)), repeat)
        per = 1e6 / n
        rows.append(
            [
                f"{n:,}",
                f"{t_dask * per:.2f}",
                f"{t_floor * per:.2f}",
                f"{t_hlg * per:.2f}",
                f"{t_trip * per:.2f}",
                f"{t_dask / t_hlg:.1f}x",
                f"{t_hlg / t_floor:.2f}x",
                f"{len(data):,}",
            ]
        )
        # Cull to 1% of the output blocks, then materialise.
        keep = [("mul", i, j) for i in range(side) for j in range(side)][::100]
        # Each call culls a freshly built graph, built outside the timing: both
        # libraries cache what a layer has culled or materialised. A sample runs
        # calls back to back, the same number for each side, enough for 5 ms of
        # hlg's (its smallest case takes a quarter of a millisecond); the sides
        # take turns.
        t_hlg_cull, t_dask_cull = best_per_call_each(
            [
                lambda graph, keep=keep: _hlg_cull(graph, keep),
                lambda prepared: _dask_cull(*prepared),
            ],
            [
                lambda blocks=blocks: hlg_graph(blocks),
                lambda blocks=blocks, keep=keep: _dask_prepare(dask_array(blocks), keep),
            ],
            repeat={10_000: 7, 100_000: 5}.get(total, 3),
        )
        cull_rows.append(
            [
                f"{n:,}",
                f"{len(keep):,}",
                f"{t_dask_cull * 1e3:.1f}",
                f"{t_hlg_cull * 1e3:.2f}",
                f"{t_dask_cull / t_hlg_cull:.1f}x",
            ]
        )
    print_table(
        "Materialising y = (x + 1) * 2, microseconds per task",
        [
            "tasks",
            "dask dict()",
            "plain dict",
            "hlg to_dict",
            "hlg pack+unpack",
            "dask/hlg (>=10x)",
            "hlg/plain (<=3x)",
            "packed bytes",
        ],
        rows,
    )
    small, large = sizes[min(sizes)], sizes[max(sizes)]
    func_bytes = len(_function_bytes())
    print(
        f"packed size at {max(sizes):,} tasks vs {min(sizes):,}: {large:,} vs {small:,} bytes "
        f"({(large - small) / small:.2%}); minus function bytes ({func_bytes:,}): "
        f"{large - func_bytes:,} (budget < 8,192)"
    )
    print_table(
        "Cull to 1% of the output blocks, then materialise (milliseconds per call, "
        "calls back to back)",
        ["tasks", "kept blocks", "dask", "hlg", "dask/hlg (>=10x)"],
        cull_rows,
    )


def sum_blocks(blocks: list[Any]) -> Any:
    return sum(blocks)


def hlg_sum(side: int) -> hlg.HighLevelGraph:
    """Sum of a ``side`` x ``side``-block array: "ij" to "i" to "", as Blockwise layers."""
    chunks = ((1,) * side, (1,) * side)
    x = blockwise(ones_block, "ones", "ij", BlockSlices(chunks), "ij", numblocks={})
    rows = blockwise(sum_blocks, "rows", "i", "ones", "ij", numblocks={"ones": (side, side)})
    total = blockwise(sum_blocks, "total", "", "rows", "i", numblocks={"rows": (side,)})
    layers = {"ones": x, "rows": rows, "total": total}
    return hlg.HighLevelGraph(layers, {"rows": {"ones"}, "total": {"rows"}})


def sum_table() -> None:
    """Cull and pack the sum of a million blocks for its one output key."""
    rows = []
    for side in (100, 1_000):
        t_cull = best_of(lambda graph: graph.cull([("total",)]), 5, setup=lambda s=side: hlg_sum(s))
        culled = hlg_sum(side).cull([("total",)])
        if len(culled) != side * side + side + 1:
            raise AssertionError(f"hlg kept {len(culled):,} tasks of the sum")
        # dask culls by materialising: a million blocks take minutes, so only the small case.
        t_dask = _dask_sum_cull(side) if side <= 100 else None
        rows.append(
            [
                f"{side * side:,}",
                "-" if t_dask is None else f"{t_dask * 1e3:,.1f}",
                f"{t_cull * 1e3:.2f}",
                "-" if t_dask is None else f"{t_dask / t_cull:,.0f}x",
                len(hlg.pack(hlg_sum(side), [("total",)])),
                len(hlg.pack(hlg_sum(side))),
            ]
        )
    print_table(
        "Sum of a block array, HighLevelGraph.cull to its one output key (milliseconds; "
        "budget: hlg < 50 ms at 1,000,000 blocks, packed size O(1))",
        ["blocks", "dask", "hlg", "dask/hlg", "hlg bytes packed for key", "hlg bytes, whole"],
        rows,
    )


def _dask_sum_cull(side: int) -> float:
    import dask.array as da
    from dask.core import flatten

    def prepare() -> tuple[Any, set[Any]]:
        dsum = da.ones((side, side), chunks=1).sum()
        return dsum.__dask_graph__(), set(flatten(dsum.__dask_keys__()))

    return best_of(lambda prepared: prepared[0].cull(prepared[1]), 3, setup=prepare)


def memory_table() -> None:
    """RSS per task of the 1M-task expression, each library in a fresh process."""
    per_task = {kind: _rss_in_child(kind) for kind in ("hlg", "dask")}
    print_table(
        "Memory held per task of the 1,000,000-task expression (RSS growth, bytes)",
        ["graph", "dask dict(graph)", "hlg unpack", "dask/hlg", "budget"],
        [
            ["y = (x + 1) * 2", f"{per_task['dask']:.0f}", f"{per_task['hlg']:.0f}",
             f"{per_task['dask'] / per_task['hlg']:.2f}x", "hlg <= 400"],
        ],
    )  # fmt: skip


def _rss_in_child(kind: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--rss", kind], check=True, capture_output=True, text=True
    )
    return float(out.stdout.split()[-1])


def _rss_child(kind: str) -> None:
    """Print the RSS growth per task of building the graph ``kind`` (in this process)."""
    import gc

    side = round(math.sqrt(1_000_000 / 3))
    n = 3 * side * side
    data = hlg.pack(hlg_graph((side, side))) if kind == "hlg" else None
    graph = dask_array((side, side)).__dask_graph__() if kind == "dask" else None
    gc.collect()
    before = _rss()
    held = hlg.unpack(data) if data is not None else dict(graph)  # type: ignore[arg-type]
    gc.collect()
    if len(held) != n:
        raise AssertionError(f"{kind} built {len(held):,} tasks, expected {n:,}")
    print((_rss() - before) / n)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _hlg_cull(graph: hlg.HighLevelGraph, keep: list[Any]) -> dict[Any, Any]:
    """Cull ``graph`` to ``keep`` and materialise what is left."""
    culled = graph.cull(keep).to_dict()
    if len(culled) != 3 * len(keep):
        raise AssertionError(f"hlg kept {len(culled)} tasks, expected {3 * len(keep)}")
    return culled


def _dask_prepare(dy: Any, keep: list[Any]) -> tuple[Any, set[Any]]:
    """Return dask's graph and its keys for the blocks ``keep`` names in hlg's graph."""
    return dy.__dask_graph__(), {(dy.name, *key[1:]) for key in keep}


def _dask_cull(graph: Any, wanted: set[Any]) -> dict[Any, Any]:
    """Cull dask's graph to ``wanted`` and materialise what is left."""
    culled = dict(graph.cull(wanted))
    if len(culled) != 3 * len(wanted):
        raise AssertionError(f"dask kept {len(culled)} tasks, expected {3 * len(wanted)}")
    return culled


def _function_bytes() -> bytes:
    import cloudpickle

    return b"".join(cloudpickle.dumps(f) for f in (ones_block, add, mul))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rss"]:
        _rss_child(sys.argv[2])
        sys.exit()
    start = time.perf_counter()
    main()
    sum_table()
    memory_table()
    print(f"({time.perf_counter() - start:.0f} s)")
