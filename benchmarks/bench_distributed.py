"""hlg graphs on dask.distributed, side by side with dask.array, in one run.

Expression: ``((x + 1) * 2).sum()`` over ``x = ones(...)`` with one-element
blocks, at 10 000, 250 000 and 1 000 000 blocks: hlg's example array
(``examples/chunked_array.py``, its Blockwise layers fused by ``hlg.optimize``,
then culled to the sum's key by ``hlg.distributed.submit``, as it does by
default) against dask.array (which fuses its own). Each measurement gets a
fresh ``dask scheduler`` process on 127.0.0.1 (hlg's plugin and the example's
layer type preloaded); the graph is held, then cancelled. Only the smallest
size also runs to completion, on two worker processes, and checks the result.

Columns:

- ``client ms``: from building the collection until the submit call returns
  (budget for hlg: < 50 ms, within 10% from 10 000 to 1 000 000 blocks); the route
  (plugin or not) is asked once per client before, and not timed;
- ``client cpu ms``: CPU time of the client's calling thread over the same span,
  which other processes on a shared machine do not inflate;
- ``sent``: bytes of the graph the client sends (hlg: packed bytes, or the
  pickled expression on the expression route; dask: its pickled expression);
- ``held s``: from building the collection until the scheduler holds every
  task state (budget: dask / hlg-plugin >= 3, dask / hlg-expr > 1);
- ``sched cpu s``: CPU seconds the scheduler process spent meanwhile; on a
  shared machine its ratio to dask's is steadier than the wall-clock one;
- ``B/task``: growth of the scheduler process's resident memory, per task held.

Run: ``python benchmarks/bench_distributed.py`` (needs ``pip install -e '.[bench,distributed]'``).
Pass sizes in blocks, or variants, to run fewer:
``python benchmarks/bench_distributed.py 1000000 "hlg plugin"``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import cloudpickle
import dask
import dask.array as da
import distributed
import psutil
from _common import print_table
from distributed.protocol import serialize, to_serialize
from distributed.utils import nbytes

import hlg
import hlg.distributed as hd

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "chunked_array.py"
DASK = Path(sys.executable).parent / "dask"
SIZES = (10_000, 250_000, 1_000_000)
VARIANTS = ("hlg plugin", "hlg expr", "dask.array")

_spec = importlib.util.spec_from_file_location("hlg_examples_chunked_array", EXAMPLE)
ca = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules[_spec.name] = ca  # type: ignore[union-attr]
_spec.loader.exec_module(ca)  # type: ignore[union-attr]
cloudpickle.register_pickle_by_value(ca)


class Scheduler:
    """A ``dask scheduler`` process (and, optionally, two workers) for one measurement."""

    def __init__(self, workers: bool) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - the processes' shared log
        self.procs = [
            self._start(
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
                "--preload",
                "hlg.distributed",
                "--preload",
                str(EXAMPLE),
            )
        ]
        if workers:
            for i in range(2):
                self.procs.append(
                    self._start(
                        "worker",
                        self.address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                    )
                )

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(DASK), *args], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def rss(self) -> int:
        return int(psutil.Process(self.procs[0].pid).memory_info().rss)

    def cpu(self) -> float:
        times = psutil.Process(self.procs[0].pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        for proc in self.procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _state(dask_scheduler: Any) -> tuple[int, int]:
    return len(dask_scheduler.tasks), dask_scheduler._active_graph_updates


def _wait_until_held(client: distributed.Client, timeout: float = 1800) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ntasks, updating = client.run_on_scheduler(_state)
        if ntasks and not updating:
            return int(ntasks)
        time.sleep(0.05)
    raise TimeoutError("the scheduler did not take the graph in time")


def _side(blocks: int) -> int:
    side = round(blocks**0.5)
    assert side * side == blocks
    return side


def _hlg_graph(side: int) -> tuple[hlg.HighLevelGraph, Any]:
    # Fused as dask.array fuses its graph: one task per block, then the reduction tree.
    total = ((ca.ones((side, side), chunks=1) + 1) * 2).sum()
    keys = total.keys()
    return hlg.optimize(total, keys, cull=False), keys


def _submit_hlg(side: int, client: distributed.Client, route: str) -> Any:
    graph, keys = _hlg_graph(side)
    return hd.submit(graph, keys, client, route=route)


def _hlg_sent(side: int, route: str) -> int:
    graph, keys = _hlg_graph(side)
    data = hlg.pack(graph, keys)  # culled, as submit does by default
    if route == "plugin":
        return len(data)
    header, frames = serialize(to_serialize(hd.PackedGraph(data, keys)), on_error="raise")
    return sum(map(nbytes, [header, *frames]))


def _dask_array(side: int) -> Any:
    x = da.ones((side, side), chunks=1)
    return ((x + 1) * 2).sum()


def _dask_sent(side: int) -> int:
    from dask._expr import FinalizeCompute
    from dask.base import collections_to_expr

    expr = FinalizeCompute(collections_to_expr([_dask_array(side)])).optimize()
    header, frames = serialize(to_serialize(expr), on_error="raise")
    return sum(map(nbytes, [header, *frames]))


def measure(blocks: int, variant: str) -> dict[str, Any]:
    side = _side(blocks)
    run = blocks == SIZES[0]
    cluster = Scheduler(workers=run)
    try:
        with distributed.Client(cluster.address, timeout=60, set_as_default=False) as client:
            if run:
                client.wait_for_workers(2, timeout=60)
            if variant != "dask.array":
                hd.route_of(client)  # asked once per client, when it is new: not timed
            rss0 = cluster.rss()
            cpu0 = cluster.cpu()
            client_cpu0 = time.thread_time()
            start = time.perf_counter()
            if variant == "dask.array":
                future = client.compute(_dask_array(side))
            else:
                future = _submit_hlg(side, client, variant.split()[1])
            submitted = time.perf_counter() - start
            client_cpu = time.thread_time() - client_cpu0
            ntasks = _wait_until_held(client)
            held = time.perf_counter() - start
            cpu = cluster.cpu() - cpu0
            rss1 = cluster.rss()
            value = None
            if run:
                value = float(_value(future))
            client.cancel(future if isinstance(future, distributed.Future) else _flat(future))
    finally:
        cluster.stop()
    sent = _dask_sent(side) if variant == "dask.array" else _hlg_sent(side, variant.split()[1])
    return {
        "client": submitted,
        "client_cpu": client_cpu,
        "held": held,
        "cpu": cpu,
        "sent": sent,
        "ntasks": ntasks,
        "per_task": (rss1 - rss0) / ntasks,
        "value": value,
    }


def _flat(nested: Any) -> list[Any]:
    return list(hlg.graph.flatten_keys(nested)) if isinstance(nested, list) else [nested]


def _value(future: Any) -> Any:
    if isinstance(future, distributed.Future):
        return future.result(timeout=600)
    block = future
    while isinstance(block, list):
        block = block[0]
    return block.result(timeout=600)[0, 0]


def main(sizes: tuple[int, ...], variants: tuple[str, ...] = VARIANTS) -> None:
    # Stopped with SIGTERM, still stop the cluster processes (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    dask.config.set({"distributed.admin.large-graph-warning-threshold": "1GB"})
    # Warm up both libraries' code paths, so that no measurement pays for first imports.
    _hlg_sent(10, "plugin")
    _dask_sent(10)
    rows = []
    results: dict[tuple[int, str], dict[str, Any]] = {}
    for blocks in sizes:
        for variant in variants:
            r = measure(blocks, variant)
            results[blocks, variant] = r
            print(
                f"  {blocks:>9,} blocks  {variant:<10}  client {r['client'] * 1e3:8.1f} ms  "
                f"(cpu {r['client_cpu'] * 1e3:7.1f} ms)  "
                f"sent {r['sent']:>11,} B  held {r['held']:8.2f} s  cpu {r['cpu']:8.2f} s  "
                f"{r['ntasks']:>9,} tasks  "
                f"{int(r['per_task']):>5} B/task",
                flush=True,
            )
    for blocks in sizes:
        base = results.get((blocks, "dask.array"))
        for variant in variants:
            r = results[blocks, variant]
            rows.append(
                [
                    f"{blocks:,}",
                    variant,
                    r["ntasks"],
                    r["client"] * 1e3,
                    r["client_cpu"] * 1e3,
                    r["sent"],
                    r["held"],
                    "" if base is None else base["held"] / r["held"],
                    r["cpu"],
                    "" if base is None else base["cpu"] / r["cpu"],
                    int(r["per_task"]),
                    "" if r["value"] is None else f"{r['value']:.0f}",
                ]
            )
    print_table(
        "client.compute / hlg.distributed.submit of ((x + 1) * 2).sum(), scheduler in its "
        "own process",
        [
            "blocks",
            "route",
            "tasks held",
            "client ms",
            "client cpu ms",
            "sent B",
            "held s",
            "dask/this held",
            "sched cpu s",
            "dask/this cpu",
            "B/task",
            "result",
        ],
        rows,
    )
    if "hlg plugin" in variants and len(sizes) > 1:
        first, last = results[sizes[0], "hlg plugin"], results[sizes[-1], "hlg plugin"]
        print(
            "\nhlg plugin client time, largest / smallest size: "
            f"{last['client'] / first['client']:.2f} wall, "
            f"{last['client_cpu'] / first['client_cpu']:.2f} cpu"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = tuple(a for a in args if a in VARIANTS) or VARIANTS
    main(tuple(int(a) for a in args if a not in VARIANTS) or SIZES, chosen)
