"""Task shuffles, side by side with dask.dataframe, in one run.

Headline: ``Table.shuffle("key")`` (examples/table.py, a multi-stage
``hlg.ShuffleLayer`` with ``max_branch=32``) against dask.dataframe's
``df.shuffle("key", shuffle_method="tasks")``, at 100, 1,000 and 10,000
partitions of a table made by one function per partition (``from_map`` in
dask, a Blockwise layer in hlg). Measured:

- materialisation on the scheduler, CPU time per task (the machine running
  this is often shared; CPU time is what the work costs): hlg ``unpack(bytes)`` into a
  ``FlatGraph``, against what distributed's ``update_graph`` does with the
  expression a client sends: unpickle it, ``__dask_graph__()``,
  ``convert_legacy_graph``, dependencies and annotations (budget: >= 10x
  faster). dask's lowering (``expr.optimize()``, done by the client) is shown
  apart and not counted. A dask task holds its dependencies as a set built
  with it, while an hlg task builds that set from its reference positions
  when asked (``unpack`` has checked every dependency already); the "with
  deps" columns ask every hlg task for its set as well, the stricter
  comparison;
- what travels: hlg's packed bytes against dask's pickled lowered expression;
  packed size at 10,000 partitions within 1% of the size at 100, and under
  8 KB plus the function bytes;
- culling the 10,000-partition shuffle to 1%, 10% and 100% of its outputs:
  ``graph.cull(keys)`` time, the state that is left, and materialising it.

Run: ``python benchmarks/bench_shuffle.py`` (needs ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import gc
import importlib.util
import pickle
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from _common import best_of, print_table

import hlg
from hlg.packing.envelope import read_envelope

_PATH = Path(__file__).parent.parent / "examples" / "table.py"
_spec = importlib.util.spec_from_file_location("hlg_examples_table", _PATH)
table = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules[_spec.name] = table  # type: ignore[union-attr]
_spec.loader.exec_module(table)  # type: ignore[union-attr]

DTYPES = {"key": np.int64, "value": np.float64}


def make_partition(index: int) -> Any:
    """Partition ``index`` as a pandas frame, for dask."""
    import pandas as pd

    return pd.DataFrame(table.random_partition((index,)))


def hlg_table(n: int) -> Any:
    return table.from_function(table.random_partition, n, DTYPES).shuffle("key")


def dask_frame(n: int) -> Any:
    import dask.dataframe as dd
    import pandas as pd

    meta = pd.DataFrame({"key": np.empty(0, np.int64), "value": np.empty(0, np.float64)})
    df = dd.from_map(make_partition, range(n), meta=meta, enforce_metadata=False)
    return df.shuffle("key", shuffle_method="tasks")


def dask_client_side(frame: Any) -> bytes:
    """Lower the expression and pickle it: what a distributed client sends."""
    return pickle.dumps(frame.expr.optimize(), protocol=5)


def dask_scheduler_side(data: bytes) -> dict[Any, Any]:
    """What distributed's update_graph does with the expression it receives."""
    from dask._task_spec import convert_legacy_graph

    expr = pickle.loads(data)
    dsk = expr.__dask_graph__()
    annotations = expr.__dask_annotations__()
    tasks = convert_legacy_graph(dsk)
    dependencies = {key: task.dependencies for key, task in tasks.items()}
    del annotations, dependencies
    return tasks


def hlg_with_dependencies(data: bytes) -> None:
    """Unpack, then ask every task for its dependencies, as a scheduler will."""
    for node in hlg.unpack(data).tasks.values():
        node.dependencies  # noqa: B018 - built on demand; building it is what is timed


def cpu_best_of(func: Any, repeat: int) -> float:
    """Return the least process CPU time of ``repeat`` calls, in seconds.

    CPU time rather than wall time: on a machine shared with other work, a call's
    wall time grows with everything else running, its CPU time much less.
    """
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        func()
        best = min(best, time.process_time() - start)
    return best


def function_bytes(data: bytes) -> int:
    return sum(len(f.data) for f in read_envelope(data).functions)


def main() -> None:
    import dask

    print(f"hlg {hlg.__version__}, dask {dask.__version__}, max_branch=32")
    rows, sizes = [], {}
    for n in (100, 1_000, 10_000):
        # The small graphs take milliseconds: more calls give a steadier least time.
        repeat = {100: 15, 1_000: 3}.get(n, 2)
        t = hlg_table(n)
        data = hlg.pack(t)
        ntasks = len(hlg.unpack(data))
        t_pack = best_of(lambda t=t: hlg.pack(t), repeat)
        t_unpack = cpu_best_of(lambda data=data: hlg.unpack(data), repeat)
        t_deps = cpu_best_of(lambda data=data: hlg_with_dependencies(data), repeat)
        sizes[n] = (len(data), function_bytes(data))
        frame = dask_frame(n)
        t_lower = best_of(lambda n=n: dask_client_side(dask_frame(n)), 1)
        sent = dask_client_side(frame)
        dask_tasks = len(dask_scheduler_side(sent))
        t_dask = cpu_best_of(lambda sent=sent: dask_scheduler_side(sent), repeat)
        per_hlg, per_dask = t_unpack / ntasks * 1e6, t_dask / dask_tasks * 1e6
        per_deps = t_deps / ntasks * 1e6
        rows.append(
            [
                f"{n:,}",
                f"{dask_tasks:,}",
                f"{ntasks:,}",
                f"{per_dask:.2f}",
                f"{per_hlg:.2f}",
                f"{per_dask / per_hlg:.1f}x",
                f"{per_deps:.2f}",
                f"{per_dask / per_deps:.1f}x",
                f"{t_lower * 1e3:,.0f}",
                f"{t_pack * 1e3:.2f}",
                f"{len(sent):,}",
                f"{len(data):,}",
                f"{len(sent) / len(data):.0f}x",
            ]
        )
    print_table(
        'Table.shuffle("key") vs dask df.shuffle("key", shuffle_method="tasks"): '
        "materialising on the scheduler (CPU us per task) and the bytes sent",
        [
            "partitions",
            "dask tasks",
            "hlg tasks",
            "dask us/task",
            "hlg us/task",
            "dask/hlg (>=10x)",
            "hlg with deps",
            "dask/hlg with deps",
            "dask lower ms",
            "hlg pack ms",
            "dask bytes",
            "hlg bytes",
            "dask/hlg bytes",
        ],
        rows,
    )
    (small, _), (large, funcs) = sizes[100], sizes[10_000]
    print(
        f"packed size at 10,000 partitions vs 100: {large:,} vs {small:,} bytes "
        f"({(large - small) / small:+.2%}, budget within 1%); minus function bytes "
        f"({funcs:,}): {large - funcs:,} (budget < 8,192)"
    )
    cull_part()


def cull_part() -> None:
    n = 10_000
    t = hlg_table(n)
    graph = t.__hlg_graph__()
    full = len(graph)
    rows = []
    for fraction in (0.01, 0.1, 1.0):
        step = round(1 / fraction)
        keys = [(t.name, i) for i in range(0, n, step)]
        contiguous = [(t.name, i) for i in range(len(keys))]
        for label, wanted in ((f"every {step}th", keys), (f"first {len(keys)}", contiguous)):
            if fraction == 1.0 and wanted is contiguous:
                continue
            t_cull = best_of(lambda wanted=wanted: graph.cull(wanted), 3)
            culled = graph.cull(wanted)
            state = len(hlg.pack(culled.layers[t.name], cull=False))
            data = hlg.pack(culled, wanted)
            t_unpack = cpu_best_of(lambda data=data: hlg.unpack(data), 1)
            kept = len(culled)
            rows.append(
                [
                    f"{fraction:.0%}",
                    label,
                    f"{t_cull * 1e3:.2f}",
                    f"{state:,}",
                    f"{kept:,}",
                    f"{kept / full:.0%}",
                    f"{t_unpack * 1e3:,.0f}",
                    f"{t_unpack / kept * 1e6:.2f}",
                ]
            )
    print_table(
        f"Culling the {n:,}-partition Table.shuffle to some outputs "
        f"(every output needs every input, so every input is still split; {full:,} tasks in all)",
        [
            "outputs",
            "which",
            "cull ms",
            "shuffle layer bytes",
            "tasks kept",
            "of all",
            "unpack CPU ms",
            "us/task",
        ],
        rows,
    )


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(
        f"({time.perf_counter() - start:.0f} s; timings are best of a few runs on a shared machine)"
    )
