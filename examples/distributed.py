"""hlg graphs on a dask.distributed cluster: the client sends bytes, the scheduler unpacks.

Starts a LocalCluster on 127.0.0.1 (two worker processes, no dashboard, hlg's scheduler
plugin preloaded), runs the chunked-array example on it by both routes and through
dask's own ``client.compute``, and shuts the cluster down.

Run: python examples/distributed.py   (needs ``pip install 'hlg[distributed]'``)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
# Run as a script, this file's folder comes first on the path, and this file would hide
# the distributed package. Look for packages elsewhere; load sibling examples by path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import cloudpickle  # noqa: E402
import distributed  # noqa: E402
import numpy as np  # noqa: E402

import hlg  # noqa: E402
import hlg.distributed  # noqa: E402


def load_example(name: str) -> ModuleType | None:
    """Import ``examples/<name>.py``; its functions travel by value to worker processes."""
    path = HERE / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"hlg_examples_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return module


ca: Any = load_example("chunked_array")


def run_array(client: distributed.Client) -> None:
    """The array example, computed by the cluster and by the local scheduler."""
    x = ca.from_numpy(np.arange(24.0).reshape(4, 6), chunks=(2, 3))
    total = ((x + 1) * 2 - x).sum()
    keys = total.keys()
    data = hlg.pack(total, keys)
    local = hlg.get(total, keys, scheduler="sync")
    for route in ("plugin", "expr"):
        remote = hlg.distributed.compute(data, keys, client, route=route, timeout=120)
        print(f"array, {route} route: {_value(remote)} (local: {_value(local)})")
        assert _value(remote) == _value(local)
    # As a dask collection: client.compute runs np.block on a worker.
    c = hlg.distributed.collection(total, keys, finalize=_block)
    print("array, client.compute:", float(client.compute(c).result(timeout=120)[0, 0]))
    big = ((ca.ones((1000, 1000), chunks=1) + 1) * 2).sum()
    packed = hlg.pack(big, big.keys(), cull=False)
    print(f"a {len(big.graph):,}-task graph packs to {len(packed):,} bytes")


def run_table(client: distributed.Client) -> None:
    """The partitioned-table example (a groupby through a Shuffle layer), if it is here."""
    table: Any = load_example("table")
    if table is None:  # the table example is not in this checkout
        return
    rng = np.random.default_rng(0)
    t = table.from_arrays({"key": rng.integers(0, 5, 1000), "value": rng.random(1000)}, 7)
    sums = t.groupby("key").agg("sum")
    parts = hlg.distributed.compute(sums, sums.keys(), client, timeout=120)
    remote = table.concat([table.empty_like(sums.dtypes), *parts])
    local = sums.compute(scheduler="sync")
    same = all(np.array_equal(remote[c], local[c]) for c in local)
    print(f"table, groupby-sum of {len(remote['key'])} groups: equal to local: {same}")
    assert same


def _block(blocks: Any) -> Any:
    return np.block(blocks)


def _as_lists(nested: Any) -> Any:
    return [_as_lists(x) for x in nested] if isinstance(nested, tuple) else nested


def _value(nested: Any) -> float:
    return float(np.block(_as_lists(nested)).sum())


def main() -> None:
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # no dashboard; its HTTP port is free
            scheduler_kwargs={"dashboard": False, "preload": ["hlg.distributed"]},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        print("route:", hlg.distributed.route_of(client))
        run_array(client)
        run_table(client)
    print("cluster closed")


if __name__ == "__main__":
    main()
