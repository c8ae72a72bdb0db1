"""Local scheduler overhead, side by side with dask, in one run.

Per-task overhead = wall time of the whole call / number of tasks, for trivial
tasks, so it is nearly all scheduling. Graphs: a 100 000-task chain of inc;
100 000 independent incs plus a sum per 1 000 plus a total; a 100 000-task
binary tree reduction. Both sides get the same dict graph and key and do the
same work: convert, order, run, release. The headline rows are the calls users
make, ``hlg.get(graph, key, scheduler=...)`` against dask's ``get_sync`` and
threaded ``get``. Budgets: sync at most 1/10 of dask's get_sync, threads
(2 workers) at most 1/8 of dask's threaded get, ordering at most 1/4 of
dask.order.order.

Run: ``python benchmarks/bench_scheduler.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import best_of_each, print_table
from graphs import chain, fan, tree

import hlg


def cases(
    dsk: dict[Any, Any], key: Any
) -> list[tuple[str, Callable[[], Any], Callable[[], Any], int]]:
    """(step, dask run, hlg run, budget ratio) for one graph."""
    from dask.local import get_sync
    from dask.order import order as dask_order
    from dask.threaded import get as dask_threaded

    return [
        ("sync", lambda: get_sync(dsk, key), lambda: hlg.get(dsk, key, scheduler="sync"), 10),
        (
            "threads x2",
            lambda: dask_threaded(dsk, key, num_workers=2),
            lambda: hlg.get(dsk, key, scheduler="threads", num_workers=2),
            8,
        ),
        ("order", lambda: dask_order(dsk), lambda: hlg.order(dsk), 4),
    ]


def main(n: int = 100_000, repeat: int = 3) -> None:
    import dask

    print(
        f"hlg {hlg.__version__}, dask {dask.__version__}; {n:,}-task graphs, best of {repeat}, "
        "the two sides sampled in turn"
    )
    rows = []
    for name, build in (("chain", chain), ("fan", fan), ("tree", tree)):
        dsk, key = build(n)
        ntasks = len(dsk)
        for what, run_dask, run_hlg, budget in cases(dsk, key):
            t_dask, t_hlg = best_of_each([run_dask, run_hlg], repeat)
            ratio = t_dask / t_hlg
            rows.append(
                [
                    name,
                    what,
                    f"{1e6 * t_dask / ntasks:.1f}",
                    f"{1e6 * t_hlg / ntasks:.1f}",
                    f"{ratio:.1f}x",
                    f">= {budget}x",
                    "ok" if ratio >= budget else "MISSED",
                ]
            )
    print_table(
        "Per-task overhead, microseconds",
        ["graph", "step", "dask us/task", "hlg us/task", "dask/hlg", "budget", ""],
        rows,
    )


if __name__ == "__main__":
    main()
