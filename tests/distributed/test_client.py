"""hlg graphs on a real dask.distributed cluster (scheduler and workers in their own processes)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from operator import add, mul
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest

import hlg
from hlg.layers.registry import get_layer_class

distributed = pytest.importorskip("distributed")
hd = pytest.importorskip("hlg.distributed")

from tests.distributed import helpers  # noqa: E402 - after the skips

_PATH = Path(__file__).resolve().parents[2] / "examples" / "chunked_array.py"
_spec = importlib.util.spec_from_file_location("hlg_examples_chunked_array", _PATH)
ca = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ca
_spec.loader.exec_module(ca)
# Loaded from a path here (the scheduler preloads the same file): functions travel by value.
cloudpickle.register_pickle_by_value(ca)

ROUTES = ["plugin", "expr"]
TIMEOUT = 60


def _load_table() -> Any:
    """The partitioned-table example (examples/table.py), loaded like the array example."""
    path = _PATH.parent / "table.py"
    if not path.exists():
        pytest.skip("examples/table.py is not in this checkout")
    spec = importlib.util.spec_from_file_location("hlg_examples_table", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return module


def _table_sums(table: Any) -> Any:
    rng = np.random.default_rng(0)
    t = table.from_arrays({"key": rng.integers(0, 5, 300), "value": rng.random(300)}, 6)
    return t.groupby("key").agg("sum")


def _array_sum():
    x = ca.from_numpy(np.arange(240.0).reshape(12, 20), chunks=(3, 5))
    return ((x + 1) * 2).sum()


def _as_lists(nested: Any) -> Any:
    """Nested tuples of blocks (as hlg.get returns them) as nested lists, for np.block."""
    return [_as_lists(x) for x in nested] if isinstance(nested, tuple) else nested


def _result(futures: Any) -> Any:
    if isinstance(futures, list):
        return [_result(f) for f in futures]
    return futures.result(timeout=TIMEOUT)


_BARRIERS = itertools.count()


def _settle(client: Any) -> None:
    """Wait until the scheduler has taken in every graph this client sent before.

    The client's messages reach the scheduler in order, on one stream, and
    each graph is taken in before the next message is read: once a graph sent
    now has a result, every earlier one has arrived. Graphs read by a scheduler
    that takes them concurrently are in its count of graph updates in flight.
    """
    key = f"barrier-{next(_BARRIERS)}"
    assert hd.compute({key: 0}, key, client, route="expr", timeout=TIMEOUT) == 0
    helpers.wait_until(lambda: client.run_on_scheduler(helpers.graph_updates) == 0, TIMEOUT)


def _forget(client: Any, keys: Any) -> None:
    """Wait until the scheduler holds none of ``keys`` (an earlier test computed them).

    A future released by an earlier computation is dropped by the client's
    event loop, later: a new future made before that shares the old one's
    state, done at once, while the scheduler still takes the new graph.
    """
    flat = list(hlg.graph.flatten_keys(keys))
    helpers.wait_until(lambda: not client.run_on_scheduler(helpers.holds_any, keys=flat), TIMEOUT)


@pytest.mark.parametrize("route", ROUTES)
def test_compute_array_example_equals_local_scheduler(client, route):
    total = _array_sum()
    keys = total.keys()
    expected = hlg.get(total, keys, scheduler="sync")
    _forget(client, keys)  # the other route computes the same keys
    got = hd.compute(hlg.optimize(total, keys), keys, client, route=route, timeout=TIMEOUT)
    assert type(got) is type(expected)
    np.testing.assert_allclose(np.block(_as_lists(got)), np.block(_as_lists(expected)))
    assert float(np.block(_as_lists(got)).sum()) == float(((np.arange(240.0) + 1) * 2).sum())


@pytest.mark.parametrize("route", ROUTES)
def test_compute_table_example_equals_local_scheduler(client, route):
    table = _load_table()
    sums = _table_sums(table)
    _forget(client, sums.keys())  # the other route computes the same keys
    parts = hd.compute(sums, sums.keys(), client, route=route, timeout=TIMEOUT)
    got = table.concat([table.empty_like(sums.dtypes), *parts])
    expected = sums.compute(scheduler="sync")
    assert set(got) == set(expected)
    for column in expected:
        np.testing.assert_array_equal(got[column], expected[column])


@pytest.mark.parametrize("route", ROUTES)
def test_submit_returns_futures_shaped_like_keys(client, route):
    # Keys of this route only: a future for a key the client still holds is done at
    # once, while the scheduler may still be taking the new graph.
    b, c = f"b-{route}", (f"c-{route}", 0)
    graph = {"a": 1, b: (add, "a", 1), c: (mul, b, 10)}
    futures = hd.submit(graph, [b, [c]], client, route=route)
    assert isinstance(futures[0], distributed.Future)
    assert _result(futures) == [2, [20]]
    # Packed bytes carry their keys.
    y = (f"y-{route}", 0)
    packed = hlg.pack({"x": 3, y: (mul, "x", 10)}, [y])
    assert _result(hd.submit(packed, client=client, route=route)) == [30]


def _count_layers_per_process(client: Any, graph: Any, keys: Any, route: str) -> dict[str, int]:
    """Compute ``graph`` and check where its layers were materialised; return the expected."""
    _forget(client, keys)  # other tests compute the same keys
    _settle(client)  # no earlier graph is counted
    client.run_on_scheduler(helpers.reset)
    client.run(helpers.reset)
    helpers.reset()
    helpers.count_materializations()
    hd.compute(graph, keys, client, route=route, timeout=TIMEOUT)
    client_counts = helpers.materializations()
    scheduler_counts = client.run_on_scheduler(helpers.materializations)
    worker_counts = client.run(helpers.materializations)
    # Expected: each layer of the packed graph, once, in the scheduler process.
    expected: dict[str, int] = {}
    for layer in hlg.unpack(hlg.pack(graph, keys)).layers:  # culled, as compute culls
        name = get_layer_class(layer.tag).__name__
        expected[name] = expected.get(name, 0) + 1
    assert client_counts == {}
    assert scheduler_counts == expected
    assert all(counts == {} for counts in worker_counts.values())
    return expected


@pytest.mark.parametrize("route", ROUTES)
def test_no_layer_is_materialised_in_the_client_only_in_the_scheduler(client, route):
    total = _array_sum()
    expected = _count_layers_per_process(client, total, total.keys(), route)
    assert expected["Blockwise"] >= 3
    assert expected["PartialReduce"] >= 1


@pytest.mark.parametrize("route", ROUTES)
def test_no_shuffle_layer_is_materialised_in_the_client(client, route):
    sums = _table_sums(_load_table())
    expected = _count_layers_per_process(client, sums, sums.keys(), route)
    assert sum(n for name, n in expected.items() if "Shuffle" in name) >= 1


def test_plugin_route_uses_the_plugin_and_expr_route_does_not(client):
    _settle(client)
    before = client.run_on_scheduler(helpers.on_scheduler_graphs)
    assert hd.compute({"by-expr": 1}, "by-expr", client, route="expr", timeout=TIMEOUT) == 1
    assert client.run_on_scheduler(helpers.on_scheduler_graphs) == before
    assert hd.compute({"by-plugin": 2}, "by-plugin", client, route="plugin", timeout=TIMEOUT) == 2
    assert client.run_on_scheduler(helpers.on_scheduler_graphs) == before + 1
    assert hd.route_of(client) == "plugin"


@pytest.mark.parametrize("route", ROUTES)
def test_scattered_futures_are_used_like_refs(client, route):
    [x] = client.scatter([np.arange(6.0)], hash=False)
    y = client.scatter(10, hash=False)
    graph = {"total": (np.sum, x), "scaled": (mul, "total", y)}
    assert hd.compute(graph, "scaled", client, route=route, timeout=TIMEOUT) == 150.0
    data = hlg.pack(graph, "scaled")
    assert b"\x93NUMPY" not in data and len(data) < 1000  # keys travel, not the data
    # In a Blockwise layer's constant arguments too.
    layer = hlg.blockwise(add, "shifted", "i", "src", "i", y, None, numblocks={"src": (3,)})
    src = hlg.MaterializedLayer({("src", i): i for i in range(3)}, name="src")
    graph2 = hlg.HighLevelGraph({"src": src, "shifted": layer}, {"src": set(), "shifted": {"src"}})
    keys = [("shifted", i) for i in range(3)]
    assert hd.compute(graph2, keys, client, route=route, timeout=TIMEOUT) == (10, 11, 12)


@pytest.mark.parametrize("route", ROUTES)
def test_retries_annotation_makes_a_flaky_task_succeed(client, route, tmp_path):
    marker = str(tmp_path / f"flaky-{route}")
    retried, plain_key = f"flaky-{route}", f"not-retried-{route}"
    with hlg.annotate(retries=2):
        layer = hlg.MaterializedLayer({retried: (helpers.fail_once, marker, 7)}, name=retried)
    assert hd.compute(layer, retried, client, route=route, timeout=TIMEOUT) == 7
    marker2 = str(tmp_path / f"not-retried-{route}")
    plain = hlg.MaterializedLayer({plain_key: (helpers.fail_once, marker2, 7)}, name=plain_key)
    with pytest.raises(ConnectionError, match="first attempt fails"):
        hd.compute(plain, plain_key, client, route=route, timeout=TIMEOUT)


@pytest.mark.parametrize("route", ROUTES)
def test_workers_and_resources_annotations_place_tasks(client, workers, route):
    tasks = {(f"where-{route}", i): (helpers.where, i) for i in range(4)}
    with hlg.annotate(workers=[workers["w1"]]):
        on_w1 = hlg.MaterializedLayer(tasks, name=f"where-{route}")
    places = hd.compute(on_w1, list(tasks), client, route=route, timeout=TIMEOUT)
    assert {address for address, _ in places} == {workers["w1"]}
    gpu_tasks = {(f"gpu-{route}", i): (helpers.where, i) for i in range(4)}
    with hlg.annotate(resources={"GPU": 1}):
        on_gpu = hlg.MaterializedLayer(gpu_tasks, name=f"gpu-{route}")
    places = hd.compute(on_gpu, list(gpu_tasks), client, route=route, timeout=TIMEOUT)
    assert {address for address, _ in places} == {workers["w0"]}


def _check_annotations_reach_tasks(client: Any, graph: Any, keys: Any, route: str) -> None:
    """Every annotation unpack expands per key is on that key's task state, and only there."""
    _forget(client, keys)  # other tests compute the same keys
    _settle(client)  # nothing recorded comes from an earlier graph
    client.run_on_scheduler(helpers.record_annotations)
    data = hlg.pack(graph, keys, cull=False)
    flat = hlg.unpack(data)
    expected = flat.annotations
    assert expected
    hd.compute(data, keys, client, route=route, timeout=TIMEOUT)
    annotations, priorities = client.run_on_scheduler(helpers.recorded)
    for name, by_key in expected.items():
        assert {k: annotations[name][k] for k in by_key} == by_key
    prioritised = expected.get("priority", {})
    for key in flat.tasks:
        if key in prioritised:
            assert priorities[key][0] == -prioritised[key]  # higher runs first
        else:
            assert key not in annotations.get("priority", {})


@pytest.mark.parametrize("route", ROUTES)
def test_annotations_reach_each_task_state(client, route):
    with hlg.annotate(retries=1):
        a = hlg.MaterializedLayer(
            {(f"ann-{route}", i): (add, i, 1) for i in range(3)}, name=f"ann-{route}"
        )
        with hlg.annotate(priority=3, my_tag="x"):
            total = hlg.Task(sum, [hlg.TaskRef(k) for k in a])
            b = hlg.MaterializedLayer({f"ann-b-{route}": total}, name=f"ann-b-{route}")
    graph = hlg.HighLevelGraph({a.name: a, b.name: b}, {a.name: set(), b.name: {a.name}})
    _check_annotations_reach_tasks(client, graph, [f"ann-b-{route}"], route)


@pytest.mark.parametrize("route", ROUTES)
def test_per_role_annotations_reach_the_right_tasks(client, route):
    sums = _table_sums(_load_table())
    layers = [layer for layer in sums.graph.layers.values() if layer.role_annotations]
    assert layers  # shuffles annotate their split and piece tasks by default
    _check_annotations_reach_tasks(client, sums, sums.keys(), route)


@pytest.mark.parametrize("route", ROUTES)
def test_priority_annotation_higher_runs_first(client, workers, route):
    with hlg.annotate(workers=[workers["w1"]]):
        with hlg.annotate(priority=-5):
            low = hlg.MaterializedLayer({(f"low-{route}", i): (helpers.stamp, i) for i in range(6)})
        with hlg.annotate(priority=5):
            high = hlg.MaterializedLayer(
                {(f"high-{route}", i): (helpers.stamp, i) for i in range(6)}
            )
    graph = hlg.HighLevelGraph(
        {low.name: low, high.name: high}, {low.name: set(), high.name: set()}
    )
    keys = [*low, *high]
    got = hd.compute(graph, keys, client, route=route, timeout=TIMEOUT)
    stamps = dict(zip(keys, got, strict=True))
    assert max(stamps[k] for k in high) < min(stamps[k] for k in low)


@pytest.mark.parametrize("route", ROUTES)
def test_task_exception_reaches_the_client_with_its_key(client, route):
    bad, after = (f"bad-{route}", 3), f"after-{route}"
    graph = {"a": 1, bad: (helpers.boom, "a"), after: (add, bad, 1)}
    with pytest.raises(ValueError, match="boom on 1") as info:
        hd.compute(graph, after, client, route=route, timeout=TIMEOUT)
    assert f"hlg: raised while computing key {bad!r}" in info.value.__notes__


@hlg.register_layer("tests.client-only")
class ClientOnlyLayer(hlg.Layer):
    """A layer type registered in the client process only, never on the scheduler."""

    def __iter__(self):
        return iter([self.name])

    def __len__(self):
        return 1

    def materialize(self):
        return {self.name: hlg.DataNode(1)}

    def cull(self, keys):
        return self, set()

    def pack_state(self, encoder):
        return {}

    @classmethod
    def unpack_state(cls, state, decoder, *, name, annotations):
        return cls(name)


@pytest.mark.parametrize("route", ROUTES)
def test_layer_tag_missing_on_the_scheduler_is_a_clear_error(client, route):
    layer = ClientOnlyLayer(f"client-only-{route}")
    with pytest.raises(hlg.UnknownLayerError, match="'tests.client-only'") as info:
        hd.compute(layer, layer.name, client, route=route, timeout=TIMEOUT)
    assert "Import the module that defines it ('tests', by its tag) on the scheduler" in str(
        info.value
    )


def _graph_with_unneeded_layer(name: str) -> hlg.HighLevelGraph:
    """Key ``name``, in a layer depending on a layer not installed on the scheduler.

    None of that layer's tasks are needed for ``name``: culled, it is not sent.
    """
    unused = ClientOnlyLayer(f"unused-{name}")
    used = hlg.MaterializedLayer({name: 3, f"other-{name}": (abs, unused.name)})
    return hlg.HighLevelGraph(
        {unused.name: unused, used.name: used}, {unused.name: set(), used.name: {unused.name}}
    )


@pytest.mark.parametrize("route", ROUTES)
def test_submit_culls_what_the_keys_do_not_need_by_default(client, route):
    culled = f"culled-{route}"
    graph = _graph_with_unneeded_layer(culled)
    assert hd.compute(graph, culled, client, route=route, timeout=TIMEOUT) == 3
    whole = f"whole-{route}"
    graph = _graph_with_unneeded_layer(whole)
    with pytest.raises(hlg.UnknownLayerError, match="'tests.client-only'"):
        hd.compute(graph, whole, client, route=route, cull=False, timeout=TIMEOUT)


@pytest.mark.parametrize("route", ROUTES)
def test_graph_needing_released_data_is_cancelled(client, route):
    future = client.scatter(41, hash=False)
    key = future.key
    data = hlg.pack({f"plus-{route}": (add, future, 1)}, f"plus-{route}")
    future.release()
    helpers.wait_until(lambda: not client.run_on_scheduler(helpers.holds, key=key), TIMEOUT)
    [plus] = hd.submit(data, [f"plus-{route}"], client, route=route)
    with pytest.raises(distributed.client.FutureCancelledError, match="lost dependencies"):
        plus.result(timeout=TIMEOUT)
    # Held data is found, and the collector runs again once the task states are built.
    y = client.scatter(1, hash=False)
    again = f"again-{route}"
    assert hd.compute({again: (add, y, 1)}, again, client, route=route, timeout=TIMEOUT) == 2
    assert client.run_on_scheduler(helpers.collector_enabled)


def test_plugin_route_survives_malformed_messages(client):
    for message in ({}, {"graph": "text", "keys": "k"}, {"keys": [["not", "a", "key"]]}):
        client._send_to_scheduler({"op": "hlg-update-graph", **message})
    # The connection is still up and the plugin still takes graphs.
    key = "after-malformed"
    assert hd.compute({key: 5}, key, client, route="plugin", timeout=TIMEOUT) == 5


def test_plugin_route_refuses_bytes_that_are_not_a_graph(client):
    future = distributed.Future("junk-key", client)
    client._send_to_scheduler(
        {"op": "hlg-update-graph", "graph": b"\x00junk", "keys": ["junk-key"]}
    )
    with pytest.raises(hlg.UnpackError, match="not an hlg packed graph"):
        future.result(timeout=TIMEOUT)


@pytest.mark.parametrize("route", ROUTES)
def test_scheduler_task_groups_are_named_as_hlg_names_them(client, route):
    graph = {
        ("x-1a2b3c4d", 0): 1,
        ("x-1a2b3c4d", 1): 2,
        "total-5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b": (add, ("x-1a2b3c4d", 0), ("x-1a2b3c4d", 1)),
        ("sum-aggregate-3f2a1b9c", 0): (add, "total-5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", 1),
        "hello-world-1": (add, ("sum-aggregate-3f2a1b9c", 0), 1),
        # Strings spelling a tuple or a repr, a 32-digit token, a word read as a token.
        "('x-2', 1)": (add, "hello-world-1", 1),
        "<mod.Point object at 0x7f>": (add, "('x-2', 1)", 0),
        "0123456789abcdef0123456789abcdef": 1,
        "load-features-1": (add, "0123456789abcdef0123456789abcdef", 0),
    }
    keys = list(graph)  # held while the scheduler is asked, so no group is forgotten
    _forget(client, keys)  # the other route computes the same keys
    data = hlg.pack(graph, keys)
    futures = hd.submit(data, keys, client, route=route)
    assert _result(futures)[-1] == 1
    groups, prefixes = client.run_on_scheduler(helpers.on_scheduler_groups)
    del futures
    flat = hlg.unpack(data)
    for name, group in flat.groups.items():
        assert groups[name] == group.prefix
    assert set(flat.prefixes) <= set(prefixes)
    assert {"x-1a2b3c4d", "x-2", "Point", "data", "load", "sum-aggregate-3f2a1b9c"} <= set(groups)


@pytest.mark.parametrize("route", ROUTES)
def test_functions_are_loaded_once_per_worker_process(client, route):
    client.run(helpers.reset)
    func = helpers.CountedLoad(f"inc-{route}")
    tasks = {(f"inc-{route}", i): (func, i) for i in range(40)}
    got = hd.compute(tasks, list(tasks), client, route=route, timeout=TIMEOUT)
    assert got == tuple(range(1, 41))
    loads = client.run(helpers.function_loads)
    assert all(counts.get(f"inc-{route}", 0) <= 1 for counts in loads.values())
    assert sum(counts.get(f"inc-{route}", 0) for counts in loads.values()) >= 1


def test_collection_takes_part_in_client_and_dask_compute_and_persist(client):
    import dask

    total = _array_sum()
    keys = total.keys()
    expected = float(np.block(_as_lists(hlg.get(total, keys, scheduler="sync"))).sum())
    c = hd.collection(hlg.optimize(total, keys), keys, finalize=_block_sum)
    future = client.compute(c)
    assert future.result(timeout=TIMEOUT) == expected
    finalized = future.key
    future.release()
    _forget(client, [finalized, *hlg.graph.flatten_keys(keys)])  # dask.compute asks again
    with dask.config.set(scheduler=client):
        assert dask.compute(c)[0] == expected
    _forget(client, keys)  # persist builds the blocks again, not dask.compute's results
    persisted = client.persist(c)
    assert len(persisted.futures) == len(list(hlg.graph.flatten_keys(keys)))
    assert all(f.result(timeout=TIMEOUT) is not None for f in persisted.futures.values())
    assert client.compute(persisted).result(timeout=TIMEOUT) == expected
    one = hd.collection({"a": 20, "b": (add, "a", 1)}, "b")
    assert client.compute(one).result(timeout=TIMEOUT) == 21


def _block_sum(blocks: Any) -> float:
    return float(np.block(blocks).sum())


def test_auto_route_falls_back_when_the_plugin_is_absent():
    # A scheduler started without the plugin (in this process: only routes are checked).
    with (
        distributed.LocalCluster(
            n_workers=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        assert hd.route_of(c) == "expr"
        assert hd.compute({"a": 1, "b": (add, "a", 1)}, "b", c, timeout=TIMEOUT) == 2
        with pytest.raises(hlg.UsageError, match="no hlg plugin"):
            hd.submit({"a": 1}, "a", c, route="plugin")
        hd.install(c)
        assert hd.route_of(c) == "plugin"
        assert hd.compute({"a": 1, "b": (add, "a", 2)}, "b", c, timeout=TIMEOUT) == 3
        assert cluster.scheduler.plugins["hlg"].graphs == 1
        with pytest.raises(hlg.UsageError, match="unknown route 'fast'"):
            hd.route_of(c, "fast")
