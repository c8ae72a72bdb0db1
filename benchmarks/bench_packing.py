"""Packing and unpacking, side by side with dask, in one run.

1. Packed size of an O(1)-state layer does not grow with its task count
   (hlg RangeLayer; dask, which has no pack protocol since 2023, ships the
   pickled materialised graph).
2. A 200 000-task dict graph (100 000 ``inc`` and 100 000 ``add`` with tuple
   keys), client to FlatGraph. The headline row is the path a user takes:
   ``hlg.pack(HighLevelGraph.from_collections("g", dsk), keys=<the 100 000
   add keys>)`` then ``hlg.unpack``, against dask's ``pickle.dumps`` on the
   client then ``pickle.loads``, ``dask._task_spec.convert_legacy_graph`` and
   ``dask.optimization.cull`` to the same keys on the scheduler (budget:
   >= 3x). A second row packs the whole dict without keys, against dask
   without the cull.

Run: ``python benchmarks/bench_packing.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import best_of, print_table

import hlg
from hlg.testing import RangeLayer


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def dict_graph(n: int) -> dict:
    graph: dict = {("inc", i): (inc, i) for i in range(n)}
    graph.update({("add", i): (add, ("inc", i), ("inc", (i + 1) % n)) for i in range(n)})
    return graph


def size_table() -> None:
    rows = []
    sizes = {}
    for n in (1_000, 10_000, 100_000, 1_000_000):
        layer = RangeLayer("inc", inc, 0, n)
        data = hlg.pack(layer)
        sizes[n] = len(data)
        t_pack = best_of(lambda layer=layer: hlg.pack(layer), 3)
        dask_bytes = len(pickle.dumps({("inc", i): (inc, i) for i in range(n)}))
        rows.append([n, len(data), t_pack * 1e3, dask_bytes, f"{dask_bytes / len(data):,.0f}x"])
    print_table(
        "Packed size of an O(1)-state layer (hlg RangeLayer) vs dask's pickled graph",
        ["tasks", "hlg bytes", "hlg pack ms", "dask bytes", "dask/hlg"],
        rows,
    )
    growth = (sizes[1_000_000] - sizes[1_000]) / sizes[1_000]
    print(f"hlg size growth from 1,000 to 1,000,000 tasks: {growth:.2%} (budget < 1%)")


def round_trip_table() -> None:
    from dask._task_spec import convert_legacy_graph
    from dask.optimization import cull

    n = 100_000
    graph = dict_graph(n)
    keys = [("add", i) for i in range(n)]

    def hlg_keys() -> None:
        hlg.unpack(hlg.pack(hlg.HighLevelGraph.from_collections("g", graph), keys=keys))

    def dask_keys() -> None:
        cull(convert_legacy_graph(pickle.loads(pickle.dumps(graph))), keys)

    def hlg_whole() -> None:
        hlg.unpack(hlg.pack(graph))

    def dask_whole() -> None:
        convert_legacy_graph(pickle.loads(pickle.dumps(graph)))

    flat = hlg.unpack(hlg.pack(hlg.HighLevelGraph.from_collections("g", graph), keys=keys))
    assert len(flat.tasks) == 2 * n
    assert flat.keys == keys
    rows = []
    for path, hlg_path, dask_path in [
        (
            "pack(HighLevelGraph, keys=100k keys) + unpack  vs  dask + cull",
            hlg_keys,
            dask_keys,
        ),
        ("pack(dict) + unpack, no keys  vs  dask without cull", hlg_whole, dask_whole),
    ]:
        t_hlg = best_of(hlg_path)
        t_dask = best_of(dask_path)
        rows.append([path, t_dask, t_hlg, f"{t_dask / t_hlg:.2f}x"])
    print_table(
        f"{2 * n:,}-task dict graph, client to scheduler graph, best of 5 (seconds)",
        ["path", "dask", "hlg", "dask/hlg (budget >= 3x)"],
        rows,
    )
    print(
        f"hlg packed bytes: {len(hlg.pack(graph)):,}; dask pickled bytes: "
        f"{len(pickle.dumps(graph)):,}"
    )


if __name__ == "__main__":
    import dask

    print(f"hlg {hlg.__version__}, dask {dask.__version__}, python {sys.version.split()[0]}")
    size_table()
    round_trip_table()
