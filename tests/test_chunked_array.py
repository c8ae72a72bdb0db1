"""The example collection against numpy, operation by operation."""

import importlib.util
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

import hlg

_PATH = Path(__file__).parent.parent / "examples" / "chunked_array.py"
_spec = importlib.util.spec_from_file_location("hlg_examples_chunked_array", _PATH)
ca = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ca
_spec.loader.exec_module(ca)
# Loaded from a path, not importable by worker processes: ship its functions by value.
cloudpickle.register_pickle_by_value(ca)

X = np.arange(42.0).reshape(6, 7)
Y = np.linspace(-1, 1, 42).reshape(6, 7)


@pytest.fixture
def x():
    return ca.from_numpy(X, chunks=(4, 3))


@pytest.fixture
def y():
    return ca.from_numpy(Y, chunks=(4, 3))


def test_from_numpy_round_trips(x):
    np.testing.assert_array_equal(x.compute(), X)
    assert x.numblocks == (2, 3) and x.shape == (6, 7)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (lambda x, y: x + y, X + Y),
        (lambda x, y: x - 2, X - 2),
        (lambda x, y: 3 - x, 3 - X),
        (lambda x, y: (x + 1) * 2, (X + 1) * 2),
        (lambda x, y: 2 * x / (y + 5), 2 * X / (Y + 5)),
        (lambda x, y: -x, -X),
        (lambda x, y: x.map_blocks(np.sqrt), np.sqrt(X)),
        (lambda x, y: x.T, X.T),
        (lambda x, y: x.T.T + y, X + Y),
    ],
)
def test_elementwise_operations_match_numpy(x, y, expr, expected):
    np.testing.assert_allclose(expr(x, y).compute(scheduler="sync"), expected)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_sum_and_mean_match_numpy(x, axis):
    np.testing.assert_allclose(
        x.sum(axis=axis, split_every=2).compute(), X.sum(axis=axis, keepdims=True)
    )
    np.testing.assert_allclose(x.mean(axis=axis).compute(), X.mean(axis=axis, keepdims=True))


def test_matmul_through_contraction_matches_numpy():
    a = np.arange(30.0).reshape(5, 6)
    b = np.arange(24.0).reshape(6, 4)
    result = (ca.from_numpy(a, (2, 4)) @ ca.from_numpy(b, (4, 3))).compute()
    np.testing.assert_allclose(result, a @ b)


def test_ones_and_random_are_reproducible():
    np.testing.assert_array_equal(ca.ones((5, 4), chunks=2).compute(), np.ones((5, 4)))
    r1 = ca.random((20, 30), chunks=(7, 8), seed=3).compute()
    r2 = ca.random((20, 30), chunks=(7, 8), seed=3).compute()
    np.testing.assert_array_equal(r1, r2)
    assert r1.shape == (20, 30) and r1.min() >= 0 and r1.max() < 1
    assert not np.array_equal(r1, ca.random((20, 30), chunks=(7, 8), seed=4).compute())


def test_a_region_computes_only_the_blocks_it_touches(x):
    calls = []

    class Count(hlg.Callback):
        def posttask(self, key, result, state, worker_id):
            calls.append(key)

    z = (x + 1) * 2
    with Count():
        region = z.compute(region=(slice(1, 3), slice(2, 5)), scheduler="sync")
    np.testing.assert_array_equal(region, ((X + 1) * 2)[1:3, 2:5])
    assert len(calls) == 2  # two blocks; slice, +1 and *2 fused into one task each


def test_every_array_layer_passes_the_conformance_check(x, y):
    from hlg.testing import check_layer

    for arr in ((x + y) * 2, x.T, x.sum(split_every=2)):
        for layer in arr.graph.layers.values():
            check_layer(layer)


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_arrays_compute_on_parallel_schedulers(x, scheduler):
    np.testing.assert_allclose(
        ((x + 1) * 2).sum().compute(scheduler=scheduler, num_workers=2), [[((X + 1) * 2).sum()]]
    )


def test_sum_of_a_million_blocks_culls_without_building_a_task(monkeypatch):
    built = []
    for cls in (ca.PartialReduce, hlg.Blockwise):
        monkeypatch.setattr(cls, "_task", lambda self, *block: built.append(block))
        monkeypatch.setattr(cls, "materialize", built.append)
        monkeypatch.setattr(cls, "materialize_with_references", built.append)
    total = ca.ones((1000, 1000), chunks=1).sum()
    graph = total.__hlg_graph__()
    culled = graph.cull(total.keys())
    assert built == []
    assert all(culled.layers[name] is layer for name, layer in graph.layers.items())
    assert len(hlg.pack(total, total.keys())) < 8_192


@pytest.mark.parametrize(
    "keys",
    [
        lambda total, rows: total.keys(),
        lambda total, rows: [(rows.name, 0, 1), (rows.name, 0, 2)],
        lambda total, rows: [(rows.name, 0, 0), (rows.name, 0, 6)],
    ],
)
def test_sum_culls_to_the_tasks_a_materialized_cull_keeps(keys):
    a = ca.ones((13, 7), chunks=1)
    rows = a.sum(axis=0, split_every=3)
    total = rows.sum(axis=1, split_every=2)
    graph = total.__hlg_graph__()
    wanted = keys(total, rows)
    materialized = hlg.HighLevelGraph(
        {
            name: hlg.MaterializedLayer(layer.materialize(), name=name)
            for name, layer in graph.layers.items()
        },
        graph.dependencies,
    )
    assert graph.cull(wanted).to_dict() == materialized.cull(wanted).to_dict()


@pytest.mark.parametrize(
    ("numblocks", "axis", "split_every"),
    [((13, 7), 0, 3), ((13, 7), 1, 2), ((5,), 0, 5), ((4, 3, 2), 2, 4)],
)
def test_partial_reduce_cost_counts_the_references_it_builds(numblocks, axis, split_every):
    layer = ca.PartialReduce("r", ca._combine_sum, "a", numblocks, axis, split_every)
    every = list(layer)
    for candidate in (layer, layer.cull(every[-1:])[0], layer.cull(every[::2])[0]):
        tasks = candidate.materialize()
        cost = candidate.cost()
        assert cost.tasks == len(tasks)
        assert cost.references == sum(len(task.dependencies) for task in tasks.values())
    # every block of every level but the last is read once
    along, reads = numblocks[axis], 0
    while True:
        reads += along * np.prod(numblocks) // numblocks[axis]
        along = -(-along // split_every)
        if along == 1:
            break
    assert layer.cost().references == reads


def test_partial_reduce_reference_limit_refuses_the_packed_sum():
    total = ca.ones((13, 7), chunks=1).sum(axis=0, split_every=3)
    data = hlg.pack(total, total.keys())
    unpacked = hlg.unpack(data)
    references = sum(len(task.dependencies) for task in unpacked.tasks.values())
    assert len(hlg.unpack(data, limits=hlg.Limits(references=references)).tasks) == len(
        unpacked.tasks
    )
    with pytest.raises(hlg.ResourceLimitError, match="references"):
        hlg.unpack(data, limits=hlg.Limits(references=references - 1))


@pytest.mark.parametrize("side", [10, 100])
def test_a_sum_is_one_layer_per_axis_however_many_blocks(side):
    total = ca.ones((side, side), chunks=1).sum(split_every=4)
    graph = hlg.optimize(total, total.keys()).__hlg_graph__()
    reductions = [ly for ly in graph.layers.values() if isinstance(ly, ca.PartialReduce)]
    assert len(reductions) == 2
    assert len(graph.layers) == len(
        hlg.optimize(ca.ones((4, 4), chunks=1).sum()).__hlg_graph__().layers
    )


def test_partial_reduce_holds_every_level_and_outputs_the_last():
    from hlg.testing import check_layer

    layer = ca.PartialReduce("r", ca._combine_sum, "a", (9, 2), 0, 2)
    assert layer.sizes == (9, 5, 3, 2, 1)
    assert list(layer.output_keys()) == [("r", 0, 0), ("r", 0, 1)]
    assert ("r", 1, 4, 1) in layer and ("r", 1, 5, 1) not in layer and ("r", 4, 0, 0) not in layer
    assert layer[("r", 0, 1)].dependencies == {("r", 3, 0, 1), ("r", 3, 1, 1)}
    assert layer[("r", 1, 4, 0)].dependencies == {("a", 8, 0)}
    check_layer(layer)
    culled, external = layer.cull([("r", 2, 2, 1)])
    assert set(culled) == {("r", 1, 4, 1), ("r", 2, 2, 1)}
    assert external == {("a", 8, 1)}
    check_layer(culled)


def test_partial_reduce_refuses_bad_input_naming_the_layer():
    with pytest.raises(hlg.UsageError, match="layer 'r'.*split_every"):
        ca.PartialReduce("r", ca._combine_sum, "a", (9, 2), 0, 1)
    with pytest.raises(hlg.UsageError, match="layer 'r'.*axis 2"):
        ca.PartialReduce("r", ca._combine_sum, "a", (9, 2), 2, 4)
    with pytest.raises(hlg.UsageError, match="layer 'r'.*2 levels"):
        ca.PartialReduce("r", ca._combine_sum, "a", (9, 2), 0, 4, keep=[[(0, 0)]])
