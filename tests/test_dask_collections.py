"""Today's dask collections computed on hlg's scheduler give dask's results.

Each workload is built here with the installed dask (2025 or later, task-spec
graphs) and computed with dask's synchronous scheduler and with hlg's: on sync,
threads and processes, and through pack -> bytes -> unpack.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import hlg
from hlg.daskspec import dask_graph

dask = pytest.importorskip("dask", minversion="2024.12", reason="needs dask's task-spec graphs")
da = pytest.importorskip("dask.array")
db = pytest.importorskip("dask.bag")
dd = pytest.importorskip("dask.dataframe", reason="needs pandas and pyarrow")
pd = pytest.importorskip("pandas")


def _inc(i: int) -> int:
    return i + 1


def _odd(i: int) -> bool:
    return i % 2 == 1


def _mod3(i: int) -> int:
    return i % 3


def _add(a: int, b: int) -> int:
    return a + b


def _double(block: Any) -> Any:
    return block * 2


def _scale(a: float, b: float = 1.0, *, offset: float = 0.0) -> float:
    return a * b + offset


def _array() -> Any:
    return da.from_array(np.arange(600.0).reshape(20, 30) % 17, chunks=(5, 10))


def _frame() -> Any:
    df = pd.DataFrame({"a": np.arange(60) % 7, "b": np.arange(60.0), "c": np.arange(60) % 5})
    return dd.from_pandas(df, npartitions=4)


def _delayed() -> Any:
    scale = dask.delayed(_scale)
    a = scale(2.0, b=3.0)
    b = scale(a, offset=1.0)
    return scale(a, b=b, offset=scale(1.0, offset=0.5))


WORKLOADS: dict[str, Callable[[], Any]] = {
    "array-elementwise": lambda: (_array() + 1) * 2 - _array().T.T,
    "array-sum": lambda: _array().sum(axis=0) + _array().mean(),
    "array-xtx": lambda: _array().T @ _array(),
    "array-rechunk": lambda: _array().rechunk((4, 15)),
    "array-slicing": lambda: _array()[3:17:2, ::-3],
    "array-map_overlap": lambda: _array().map_overlap(_double, depth=1, boundary="reflect"),
    "bag-map-filter": lambda: db.from_sequence(range(50), npartitions=5).map(_inc).filter(_odd),
    "bag-foldby": lambda: db.from_sequence(range(50), npartitions=5).foldby(_mod3, _add, 0),
    "dataframe-groupby-agg": lambda: _frame().groupby("a").agg({"b": "sum", "c": "max"}),
    "dataframe-set_index": lambda: _frame().set_index("b"),
    "dataframe-shuffle": lambda: _frame().shuffle("a", shuffle_method="tasks"),
    "dataframe-merge": lambda: _frame().merge(
        _frame().rename(columns={"b": "b2"}), on=["a", "c"], shuffle_method="tasks"
    ),
    # More than 32 partitions: the task shuffle runs in stages, keys like ("s", 0, (0, 0)).
    "dataframe-shuffle-staged": lambda: dd.from_pandas(
        pd.DataFrame({"a": np.arange(200) % 13, "b": np.arange(200.0)}), npartitions=40
    ).shuffle("a", shuffle_method="tasks"),
    "delayed-kwargs": _delayed,
}


def _normal(value: Any) -> Any:
    """A form of a result that compares equal however the partitions came out."""
    if isinstance(value, pd.DataFrame | pd.Series):
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        return frame.reset_index().sort_values(list(frame.reset_index().columns))
    if isinstance(value, list):
        return sorted(value)
    return value


def assert_same(expected: Any, actual: Any) -> None:
    expected, actual = _normal(expected), _normal(actual)
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(
            expected.reset_index(drop=True), actual.reset_index(drop=True)
        )
    elif isinstance(expected, np.ndarray):
        np.testing.assert_allclose(actual, expected)
    else:
        assert actual == expected


def _via_bytes(graph: Any, keys: list[Any], **kwargs: Any) -> Any:
    # What a remote scheduler does: the client packs, the scheduler unpacks and runs.
    data = hlg.pack(dask_graph(graph), keys)
    assert isinstance(data, bytes)
    return hlg.get(hlg.unpack(data), keys, scheduler="sync")


@pytest.fixture(scope="module")
def process_client() -> Iterator[hlg.Client]:
    # One pool of worker processes for every workload, kept up between computations.
    with hlg.Client(scheduler="processes", num_workers=2) as client:
        yield client


@pytest.fixture(params=sorted(WORKLOADS))
def workload(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    collection = WORKLOADS[request.param]()
    (expected,) = dask.compute(collection, scheduler="sync")
    return collection, expected


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_dask_compute_on_hlg_get_matches_dask(workload: tuple[Any, Any], scheduler: str) -> None:
    collection, expected = workload
    (actual,) = dask.compute(collection, scheduler=functools.partial(hlg.get, scheduler=scheduler))
    assert_same(expected, actual)


def test_dask_compute_on_hlg_processes_matches_dask(
    workload: tuple[Any, Any], process_client: hlg.Client
) -> None:
    collection, expected = workload
    (actual,) = dask.compute(collection, scheduler=hlg.dask_scheduler(process_client))
    assert_same(expected, actual)


def test_dask_compute_through_pack_and_unpack_matches_dask(workload: tuple[Any, Any]) -> None:
    collection, expected = workload
    (actual,) = dask.compute(collection, scheduler=_via_bytes)
    assert_same(expected, actual)


def test_hlg_get_as_the_configured_dask_scheduler() -> None:
    x = WORKLOADS["array-sum"]()
    with dask.config.set(scheduler=hlg.get):
        np.testing.assert_allclose(x.compute(), x.compute(scheduler="sync"))


def test_collection_compute_with_hlg_get_and_dask_kwargs() -> None:
    bag = WORKLOADS["bag-foldby"]()
    expected = sorted(bag.compute(scheduler="sync"))
    actual = bag.compute(scheduler=hlg.get, num_workers=2, optimize_graph=True, cache={})
    assert sorted(actual) == expected


def test_hlg_get_processes_runs_a_dask_array() -> None:
    x = WORKLOADS["array-xtx"]()
    scheduler = functools.partial(hlg.get, scheduler="processes", num_workers=1)
    np.testing.assert_allclose(x.compute(scheduler=scheduler), x.compute(scheduler="sync"))


def test_dask_persist_on_hlg_holds_the_values() -> None:
    x = WORKLOADS["array-elementwise"]()
    (held,) = dask.persist(x, scheduler=hlg.dask_scheduler("sync"))
    graph = dict(held.__dask_graph__())
    assert all(isinstance(v, np.ndarray) for v in graph.values())  # values, no tasks
    np.testing.assert_allclose(held.compute(scheduler=hlg.get), x.compute(scheduler="sync"))


@pytest.mark.parametrize(
    "name", ["array-xtx", "bag-map-filter", "dataframe-groupby-agg", "delayed-kwargs"]
)
def test_dask_persist_on_hlg_matches_dask(name: str) -> None:
    collection = WORKLOADS[name]()
    (expected,) = dask.compute(collection, scheduler="sync")
    (held,) = dask.persist(collection, scheduler=hlg.get)
    assert_same(expected, held.compute(scheduler="sync"))


def test_dask_delayed_keyword_arguments_reach_the_function() -> None:
    total = _delayed()
    assert dask.compute(total, scheduler=hlg.dask_scheduler("sync")) == (
        dask.compute(total, scheduler="sync")
    )
    expected = _scale(6.0, b=_scale(6.0, offset=1.0), offset=_scale(1.0, offset=0.5))
    assert dask.compute(total, scheduler="sync") == (expected,)


def test_hlg_get_takes_a_dask_collection_directly() -> None:
    x = WORKLOADS["array-rechunk"]()
    blocks = hlg.get(x.__dask_graph__(), x.__dask_keys__()[0][0], scheduler="sync")
    np.testing.assert_array_equal(blocks, x.blocks[0, 0].compute(scheduler="sync"))
    assert hlg.get(x, x.__dask_keys__()[1][1], scheduler="sync").shape == (4, 15)
