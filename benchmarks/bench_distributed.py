"""hlg graphs on dask.distributed, side by side with dask.array, in one run.

Headline: ``hlg.distributed.submit(((x + 1) * 2).sum())`` against
``client.compute`` of the same dask.array expression. ``x = ones(...)`` has
one-element blocks; sizes 10 000, 250 000 and 1 000 000 blocks. hlg's array is
the example's (``examples/chunked_array.py``), its Blockwise layers fused by
``hlg.optimize`` as dask.array fuses its own, then culled to the sum's key by
``submit``, as it does by default. Each size and route gets a fresh
``dask scheduler`` process on 127.0.0.1 (hlg's plugin and the example's layer
type preloaded). The graph is held, then cancelled. At the smallest size the
cluster also has two worker processes, which start on the tasks as the scheduler
takes them, and the plugin route's graph runs to completion: its result is checked.

Columns:

- ``client ms``: from building the collection until the submit call returns
  (budget for hlg: < 50 ms, within 10% from 10 000 to 1 000 000 blocks). On the
  plugin route, the median of ``--reps`` submissions (51 by default): the first
  is held; the scheduler then holds the keys of the others already, so it takes
  them without unpacking, and they cost the client what the first did. Other
  routes: one submission. The route is asked once per client before, not timed;
- ``client cpu ms``: CPU time of the client's calling thread over the same span
  (same samples), which other processes on a shared machine do not inflate;
- ``sent B``: bytes of the graph the client sends (hlg: packed bytes, or the
  pickled expression on the expression route; dask: its pickled expression);
- ``held s``: from building the collection until the scheduler holds every
  task state (budget: dask / hlg-plugin >= 3, dask / hlg-expr > 1);
- ``sched cpu s``: CPU seconds the scheduler process spent meanwhile; on a
  shared machine its ratio to dask's is steadier than the wall-clock one;
- ``B/task``: growth of the scheduler process's resident memory, per task held.

By default, at 1 000 000 blocks only hlg's plugin route is held: the other two
take from 20 minutes (hlg's expression route) to most of an hour (dask.array)
here. Their client columns are measured as usual (the scheduler is stopped
right after the submission); their ``held s`` and ``sched cpu s`` are
extrapolated linearly in the block count from the two smaller sizes, marked
``est.`` and never printed as measurements. ``--hold-all`` holds every route at
every size.

Run: ``python benchmarks/bench_distributed.py`` (needs ``pip install -e '.[bench,distributed]'``).
Pass sizes in blocks, or variants, to run fewer:
``python benchmarks/bench_distributed.py 1000000 "hlg plugin" --reps 101``.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import signal
import socket
import statistics
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
# From this many blocks on, only hlg's plugin route is held, unless --hold-all.
HOLD_LIMIT = 1_000_000
VARIANTS = ("hlg plugin", "hlg expr", "dask.array")

_spec = importlib.util.spec_from_file_location("hlg_examples_chunked_array", EXAMPLE)
ca = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules[_spec.name] = ca  # type: ignore[union-attr]
_spec.loader.exec_module(ca)  # type: ignore[union-attr]
cloudpickle.register_pickle_by_value(ca)


class Scheduler:
    """A ``dask scheduler`` process (and, when asked, two workers) for one measurement."""

    def __init__(self) -> None:
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

    def add_workers(self) -> None:
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


def measure(blocks: int, variant: str, reps: int, hold: bool) -> dict[str, Any]:
    side = _side(blocks)
    # At the smallest size the cluster has workers, which start on the tasks as the
    # scheduler takes them; the plugin route's graph runs to completion and is checked.
    workers = blocks == SIZES[0]
    run = workers and variant == "hlg plugin"
    cluster = Scheduler()
    if workers:
        cluster.add_workers()
    result: dict[str, Any] = {"value": None, "held": None, "cpu": None, "per_task": None}
    try:
        with distributed.Client(cluster.address, timeout=60, set_as_default=False) as client:
            if workers:
                client.wait_for_workers(2, timeout=60)
            if variant != "dask.array":
                hd.route_of(client)  # asked once per client, when it is new: not timed
            rss0, cpu0 = cluster.rss(), cluster.cpu()
            future, submitted, client_cpu = _submit(variant, side, client)
            times, cpus = [submitted], [client_cpu]
            if hold:
                ntasks = _wait_until_held(client)
                result["held"] = time.perf_counter() - _START[0]
                result["cpu"] = cluster.cpu() - cpu0
                result["per_task"] = (cluster.rss() - rss0) / ntasks
                result["ntasks"] = ntasks
                if run:
                    result["value"] = float(_value(future))
                if variant == "hlg plugin":
                    for n in range(1, reps):
                        gc.collect()
                        _, again, again_cpu = _submit(variant, side, client)
                        times.append(again)
                        cpus.append(again_cpu)
                        _wait_until_taken(client, n)
            client.cancel(future if isinstance(future, distributed.Future) else _flat(future))
    finally:
        cluster.stop()
    sent = _dask_sent(side) if variant == "dask.array" else _hlg_sent(side, variant.split()[1])
    result.update(
        client=statistics.median(times),
        client_cpu=statistics.median(cpus),
        samples=len(times),
        sent=sent,
    )
    return result


# perf_counter() when the last submission started building its collection.
_START = [0.0]


def _submit(variant: str, side: int, client: distributed.Client) -> tuple[Any, float, float]:
    """Build the collection and submit it; return the futures, wall and thread-CPU seconds."""
    cpu0 = time.thread_time()
    _START[0] = start = time.perf_counter()
    if variant == "dask.array":
        future = client.compute(_dask_array(side))
    else:
        future = _submit_hlg(side, client, variant.split()[1])
    return future, time.perf_counter() - start, time.thread_time() - cpu0


def _held_again(dask_scheduler: Any) -> tuple[int, int]:
    return dask_scheduler.plugins["hlg"].held_again, dask_scheduler._active_graph_updates


def _wait_until_taken(client: distributed.Client, count: int, timeout: float = 600) -> None:
    # The scheduler has taken the count-th graph whose keys it held already.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        taken, updating = client.run_on_scheduler(_held_again)
        if taken >= count and not updating:
            return
        time.sleep(0.005)
    raise TimeoutError("the scheduler did not take the graph again in time")


def _flat(nested: Any) -> list[Any]:
    return list(hlg.graph.flatten_keys(nested)) if isinstance(nested, list) else [nested]


def _value(future: Any) -> Any:
    if isinstance(future, distributed.Future):
        return future.result(timeout=600)
    block = future
    while isinstance(block, list):
        block = block[0]
    return block.result(timeout=600)[0, 0]


def _extrapolate(results: dict[tuple[int, str], dict[str, Any]], blocks: int, variant: str) -> None:
    """Fill an unheld row's ``held`` and ``cpu`` from the two smallest held sizes, marked."""
    known = sorted(b for (b, v), r in results.items() if v == variant and r["held"] is not None)
    row = results[blocks, variant]
    if len(known) < 2:
        return
    (b0, b1) = known[:2]
    for field in ("held", "cpu"):
        y0, y1 = results[b0, variant][field], results[b1, variant][field]
        row[field] = y0 + (y1 - y0) * (blocks - b0) / (b1 - b0)
    row["estimated"] = True


def _cell(value: float | None, estimated: bool) -> Any:
    if value is None:
        return "-"
    return f"{value:,.1f} est." if estimated else value


def _ratio(base: dict[str, Any] | None, r: dict[str, Any], field: str) -> Any:
    if base is None or base[field] is None or r[field] is None:
        return "-"
    ratio = base[field] / r[field]
    return f"{ratio:.2f} est." if base.get("estimated") or r.get("estimated") else ratio


def main(
    sizes: tuple[int, ...],
    variants: tuple[str, ...] = VARIANTS,
    reps: int = 51,
    hold_all: bool = False,
) -> None:
    # Stopped with SIGTERM, still stop the cluster processes (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    dask.config.set({"distributed.admin.large-graph-warning-threshold": "1GB"})
    # Warm up both libraries' code paths, so that no measurement pays for first imports.
    _hlg_sent(10, "plugin")
    _dask_sent(10)
    results: dict[tuple[int, str], dict[str, Any]] = {}
    for blocks in sizes:
        for variant in variants:
            hold = hold_all or blocks < HOLD_LIMIT or variant == "hlg plugin"
            r = measure(blocks, variant, reps, hold)
            results[blocks, variant] = r
            held = "not held" if r["held"] is None else f"held {r['held']:8.2f} s"
            print(
                f"  {blocks:>9,} blocks  {variant:<10}  client {r['client'] * 1e3:8.1f} ms  "
                f"(cpu {r['client_cpu'] * 1e3:7.1f} ms, median of {r['samples']})  "
                f"sent {r['sent']:>11,} B  {held}",
                flush=True,
            )
    for (blocks, variant), r in results.items():
        if r["held"] is None:
            _extrapolate(results, blocks, variant)
    _print_results(sizes, variants, results, reps)


def _print_results(
    sizes: tuple[int, ...],
    variants: tuple[str, ...],
    results: dict[tuple[int, str], dict[str, Any]],
    reps: int,
) -> None:
    rows = []
    for blocks in sizes:
        base = results.get((blocks, "dask.array"))
        for variant in variants:
            r = results[blocks, variant]
            est = bool(r.get("estimated"))
            call = "client.compute" if variant == "dask.array" else "hlg.distributed.submit"
            rows.append(
                [
                    f"{blocks:,}",
                    f"{call}, {variant}",
                    r.get("ntasks", "-"),
                    r["client"] * 1e3,
                    r["client_cpu"] * 1e3,
                    r["samples"],
                    r["sent"],
                    _cell(r["held"], est),
                    _ratio(base, r, "held"),
                    _cell(r["cpu"], est),
                    _ratio(base, r, "cpu"),
                    "-" if r["per_task"] is None else int(r["per_task"]),
                    "" if r["value"] is None else f"{r['value']:.0f}",
                ]
            )
    print_table(
        "headline: hlg.distributed.submit(((x + 1) * 2).sum()) against client.compute of "
        "the dask.array expression; scheduler in its own process",
        [
            "blocks",
            "call, route",
            "tasks held",
            "client ms",
            "client cpu ms",
            "samples",
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
    if any(r.get("estimated") for r in results.values()):
        print(
            "est.: not measured; extrapolated linearly in the block count from the two "
            "smaller sizes (pass --hold-all to measure)"
        )
    if "hlg plugin" in variants and len(sizes) > 1:
        first, last = results[sizes[0], "hlg plugin"], results[sizes[-1], "hlg plugin"]
        print(
            f"hlg plugin client time, {sizes[-1]:,} / {sizes[0]:,} blocks (medians of "
            f"{reps}): {last['client'] / first['client']:.2f} wall, "
            f"{last['client_cpu'] / first['client_cpu']:.2f} cpu (budget <= 1.10)"
        )


def _arguments(args: list[str]) -> tuple[tuple[int, ...], tuple[str, ...], int, bool]:
    reps = 51
    if "--reps" in args:
        at = args.index("--reps")
        reps = int(args[at + 1])
        del args[at : at + 2]
    hold_all = "--hold-all" in args
    args = [a for a in args if a != "--hold-all"]
    chosen = tuple(a for a in args if a in VARIANTS) or VARIANTS
    sizes = tuple(int(a) for a in args if a not in VARIANTS) or SIZES
    return sizes, chosen, max(reps, 1), hold_all


if __name__ == "__main__":
    main(*_arguments(sys.argv[1:]))
