"""dask collections computed with dask's schedulers and with hlg's, in one run.

Each row times ``dask.compute(collection, scheduler=...)`` end to end: dask's
own graph optimisation and building (the same work for both), the scheduler
call, and finalising the result. Per workload, dask's ``get_sync`` against
``hlg.dask_scheduler("sync")``, and dask's threaded scheduler against
``hlg.dask_scheduler("threads")``, both with 2 workers. "cheap" workloads have
tasks of microseconds, where scheduling dominates.

Budget: hlg faster on every cheap workload; no workload more than 5% slower
(ratio = dask time / hlg time, so >= 1.00 means hlg is faster).

Run: ``python benchmarks/bench_dask_collections.py [WORKLOAD-SUBSTRING [REPEAT]]``
(needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import best_of, print_table

import hlg


def _inc(i: int) -> int:
    return i + 1


def _odd(i: int) -> bool:
    return i % 2 == 1


def _mod7(i: int) -> int:
    return i % 7


def _add(a: int, b: int) -> int:
    return a + b


def _double(block: Any) -> Any:
    return block * 2


def workloads() -> list[tuple[str, bool, Callable[[], Any]]]:
    """(name, cheap, build) for each workload; ``build`` makes a fresh collection."""
    import dask
    import dask.array as da
    import dask.bag as db
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd

    def array(n: int = 300, chunk: int = 10) -> Any:
        return da.ones((n, n), chunks=chunk)

    def frame() -> Any:
        df = pd.DataFrame({"a": np.arange(10_000) % 97, "b": np.arange(10_000.0)})
        return dd.from_pandas(df, npartitions=48)

    def delayed_tree(n: int = 1_000) -> Any:
        add = dask.delayed(_add)
        level = [dask.delayed(_inc)(i) for i in range(n)]
        while len(level) > 1:
            level = [add(a, b=b) for a, b in zip(level[::2], level[1::2], strict=False)]
        return level[0]

    return [
        ("array elementwise (900 blocks)", True, lambda: (array() + 1) * 2 - array().T),
        ("array sum", True, lambda: array().sum()),
        ("array x.T @ x", True, lambda: array(120).T @ array(120)),
        ("array rechunk", True, lambda: array().rechunk((20, 5))),
        ("array slicing", True, lambda: array()[3:297:2, ::3]),
        ("array map_overlap", True, lambda: array(200, 20).map_overlap(_double, depth=1)),
        ("bag map/filter (300 parts)", True, lambda: _bag(db).map(_inc).filter(_odd)),
        ("bag foldby", True, lambda: _bag(db).foldby(_mod7, _add, 0)),
        ("delayed tree (2,000 tasks)", True, delayed_tree),
        ("dataframe groupby-agg", False, lambda: frame().groupby("a").b.agg(["sum", "max"])),
        ("dataframe set_index", False, lambda: frame().set_index("b")),
        ("dataframe shuffle", False, lambda: frame().shuffle("a", shuffle_method="tasks")),
        (
            "dataframe merge",
            False,
            lambda: frame().merge(frame(), on="a", shuffle_method="tasks"),
        ),
    ]


def _bag(db: Any) -> Any:
    return db.from_sequence(range(3_000), npartitions=300)


def _alternating(
    run_dask: Callable[[], Any], run_hlg: Callable[[], Any], repeat: int
) -> tuple[float, float, float]:
    """Best times of the two runs, taken in turns so that load on the machine hits both."""
    t_dask = t_hlg = float("inf")
    for _ in range(repeat):
        t_dask = min(t_dask, best_of(run_dask, 1))
        t_hlg = min(t_hlg, best_of(run_hlg, 1))
    return t_dask, t_hlg, t_dask / t_hlg


def main(repeat: int = 5, only: str = "") -> None:
    import dask

    sync_hlg = hlg.dask_scheduler("sync")
    threads_hlg = hlg.dask_scheduler("threads", num_workers=2)
    print(
        f"hlg {hlg.__version__}, dask {dask.__version__}; end to end from dask.compute, "
        f"best of {repeat}"
    )
    rows = []
    over_budget = []
    for name, cheap, build in workloads():
        if only not in name:
            continue
        collection = build()
        try:
            dask.compute(collection, scheduler=sync_hlg)  # warm: imports, caches
        except hlg.HlgError as err:
            rows.append((name, "yes" if cheap else "no", "-", "-", "-", "-", "-", "-"))
            print(f"  {name}: hlg cannot run it here: {err}")
            continue
        times = [
            _alternating(
                lambda s=dask_scheduler, k=kwargs, c=collection: dask.compute(c, scheduler=s, **k),
                lambda s=hlg_scheduler, c=collection: dask.compute(c, scheduler=s),
                repeat,
            )
            for dask_scheduler, hlg_scheduler, kwargs in (
                ("sync", sync_hlg, {}),
                ("threads", threads_hlg, {"num_workers": 2}),
            )
        ]
        (sd, sh, sr), (td, th, tr) = times
        rows.append(
            (
                name,
                "yes" if cheap else "no",
                sd * 1e3,
                sh * 1e3,
                f"{sr:.2f}x",
                td * 1e3,
                th * 1e3,
                f"{tr:.2f}x",
            )
        )
        over_budget += [
            f"{name}: {ratio:.2f}x"
            for ratio in (sr, tr)
            if (cheap and ratio < 1.0) or ratio < 1 / 1.05
        ]
    print_table(
        "dask.compute(collection, scheduler=...): dask's scheduler vs hlg's (ms; ratio > 1: hlg"
        " faster)",
        [
            "workload",
            "cheap",
            "dask sync",
            "hlg sync",
            "ratio",
            "dask thr x2",
            "hlg thr x2",
            "ratio",
        ],
        rows,
    )
    print(
        "\nBudget: hlg faster on every cheap workload, none more than 5% slower: "
        + ("met" if not over_budget else "MISSED: " + "; ".join(over_budget))
    )


if __name__ == "__main__":
    # Optional: a substring of the workloads to run, and the number of repeats.
    main(
        repeat=int(sys.argv[2]) if len(sys.argv) > 2 else 5,
        only=sys.argv[1] if len(sys.argv) > 1 else "",
    )
