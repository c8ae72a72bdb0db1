"""Memory under hlg's ordering and dask's, side by side, in one run.

For each graph shape, tasks run one at a time in priority order; a result is
held from when its task runs until its last dependent has run. The table gives
the peak number of results held. Budget: hlg holds no more than dask at peak on
every shape.

Run: ``python benchmarks/bench_order.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table
from graphs import blockwise_reduce, fan, fan_in_out, tree

import hlg


def peak_held(dsk: dict[Any, Any], priority: dict[Any, int]) -> int:
    tasks = hlg.convert_graph(dsk)
    remaining = dict.fromkeys(tasks, 0)
    for node in tasks.values():
        for d in node.dependencies:
            remaining[d] += 1
    held = peak = 0
    for key in sorted(tasks, key=priority.__getitem__):
        held += 1
        peak = max(peak, held)
        for d in tasks[key].dependencies:
            remaining[d] -= 1
            if remaining[d] == 0:
                held -= 1
    return peak


def main() -> None:
    import dask
    from dask.order import order as dask_order

    shapes = [
        ("binary tree reduction", tree(20_000)),
        ("8-ary tree reduction", tree(20_000, arity=8)),
        ("fan-in (sum per 1000, total)", fan(20_000)),
        ("fan-in/fan-out (overlap 3)", fan_in_out(5_000)),
        ("blockwise then reduce", blockwise_reduce(5_000)),
    ]
    rows = []
    for name, (dsk, _) in shapes:
        ours = peak_held(dsk, hlg.order(dsk))
        theirs = peak_held(dsk, dask_order(dsk))
        rows.append([name, f"{len(dsk):,}", theirs, ours, "ok" if ours <= theirs else "MISSED"])
    print(f"hlg {hlg.__version__}, dask {dask.__version__}")
    print_table(
        "Peak results held in memory, running in priority order",
        ["graph", "tasks", "dask.order", "hlg.order", "hlg <= dask"],
        rows,
    )


if __name__ == "__main__":
    main()
