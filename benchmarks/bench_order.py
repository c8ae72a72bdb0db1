"""``hlg.order(graph)`` against ``dask.order.order(graph)``: memory held and time, in one run.

Graphs: the shapes of dask's ordering tests that assert on memory (named after
the test), the shapes dask.array emits for common reductions, and large
synthetic shapes. Memory is dask's own measure, ``dask.order.diagnostics``: tasks
run one at a time in priority order, and the peak is the most results held (with
a dependent still to run) just before a task runs. It is a count, so it does not
depend on machine load; times do.

Budgets: hlg holds no more than dask at peak on every graph, and orders at least
4x faster. Both sides are timed on the call a user makes, ``hlg.order(dsk)`` and
``dask.order.order(dsk)`` on the same dict graph, so each side's time includes
reading the dependencies out of the dict's values. Each sample times enough
back-to-back calls to take a few milliseconds (one call of a graph of ten tasks
takes tens of microseconds, about what a clock reading and a cold cache after a
garbage collection cost), and gives the time per call. The two sides alternate
sample by sample and each keeps its best, so a burst of load on a shared machine
hits both sides alike.

Run: ``python benchmarks/bench_order.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from _common import print_table
from graphs import blockwise_reduce, fan, fan_in_out, tree

import hlg
from tests.execute.order_cases import CASES

BUDGET = 4


def synthetic() -> dict[str, Callable[[], dict[Any, Any]]]:
    return {
        "binary tree reduction, 20k": lambda: tree(20_000)[0],
        "8-ary tree reduction, 20k": lambda: tree(20_000, arity=8)[0],
        "fan-in: sum per 1000, total, 20k": lambda: fan(20_000)[0],
        "fan-in/fan-out (overlap 3), 5k wide": lambda: fan_in_out(5_000)[0],
        "blockwise then reduce, 5k blocks": lambda: blockwise_reduce(5_000)[0],
    }


SAMPLE = 0.005  # seconds: the least time one sample of back-to-back calls takes


def _calls_per_sample(func: Callable[[], Any]) -> int:
    """How many calls of ``func`` take at least :data:`SAMPLE` seconds."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            func()
        if time.perf_counter() - start >= SAMPLE:
            return number
        number *= 2


def side_by_side(
    first: Callable[[], Any], second: Callable[[], Any], repeat: int
) -> tuple[float, float]:
    """Best wall times per call of ``first`` and ``second``, in seconds, sampled alternately."""
    funcs = (first, second)
    numbers = [_calls_per_sample(func) for func in funcs]
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for i, func in enumerate(funcs):
            number = numbers[i]
            gc.collect()
            start = time.perf_counter()
            for _ in range(number):
                func()
            best[i] = min(best[i], (time.perf_counter() - start) / number)
    return best[0], best[1]


def main() -> None:
    import dask
    from dask.order import diagnostics
    from dask.order import order as dask_order

    rows = []
    missed = 0
    for name, build in {**CASES, **synthetic()}.items():
        dsk = build()
        theirs = max(diagnostics(dsk, o=dask_order(dsk))[1])
        ours = max(diagnostics(dsk, o=hlg.order(dsk))[1])
        repeat = 15 if len(dsk) < 1000 else 3
        t_dask, t_hlg = side_by_side(
            lambda dsk=dsk: dask_order(dsk), lambda dsk=dsk: hlg.order(dsk), repeat
        )
        ratio = t_dask / t_hlg
        ok = ours <= theirs and ratio >= BUDGET
        missed += not ok
        rows.append(
            [
                name,
                f"{len(dsk):,}",
                theirs,
                ours,
                f"{1e3 * t_dask:.2f}",
                f"{1e3 * t_hlg:.2f}",
                f"{ratio:.1f}x",
                "ok" if ok else "MISSED",
            ]
        )
    print(f"hlg {hlg.__version__}, dask {dask.__version__}")
    print_table(
        f"hlg.order(graph) vs dask.order.order(graph): peak results held "
        f"(dask.order.diagnostics) and time; budget: peak <= dask, >= {BUDGET}x faster",
        ["graph", "tasks", "dask peak", "hlg peak", "dask ms", "hlg ms", "dask/hlg", ""],
        rows,
    )
    print(f"\n{len(rows) - missed} of {len(rows)} graphs within budget")


if __name__ == "__main__":
    main()
