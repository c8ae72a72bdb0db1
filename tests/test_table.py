"""The partitioned-table example against plain Python on random data.

Every operation runs on the sync and threads schedulers and through
pack -> unpack, for partition counts 1, a prime, and differing input and
output counts.
"""

import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

import hlg

_PATH = Path(__file__).parent.parent / "examples" / "table.py"
_spec = importlib.util.spec_from_file_location("hlg_examples_table", _PATH)
table = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = table
_spec.loader.exec_module(table)
# Loaded from a path, not importable by worker processes: ship its functions by value.
cloudpickle.register_pickle_by_value(table)

MODES = ["sync", "threads", "packed"]


def run(t: table.Table, mode: str) -> dict[str, np.ndarray]:
    if mode != "packed":
        return t.compute(scheduler=mode)
    flat = hlg.unpack(hlg.pack(t, t.keys()))
    parts = hlg.get(flat, t.keys(), scheduler="threads")
    return table.concat([table.empty_like(t.dtypes), *parts])


def run_parts(t: table.Table, mode: str) -> list[dict[str, np.ndarray]]:
    graph = hlg.unpack(hlg.pack(t, t.keys())) if mode == "packed" else t
    return list(hlg.get(graph, t.keys(), scheduler="threads" if mode == "packed" else mode))


def random_columns(seed: int, n: int = 300, groups: int = 13) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "key": rng.integers(-groups // 2, groups, n),
        "value": rng.random(n),
        "count": rng.integers(0, 100, n),
    }


def rows(columns: dict[str, np.ndarray]) -> list[tuple]:
    names = sorted(columns)
    return sorted(zip(*(columns[c].tolist() for c in names), strict=True))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("n_in", "n_out"), [(1, 1), (7, 7), (7, 3), (4, 11), (1, 5)])
def test_table_shuffle_keeps_rows_and_puts_equal_keys_together(mode, n_in, n_out):
    columns = random_columns(n_in * 10 + n_out)
    t = table.from_arrays(columns, n_in)
    shuffled = t.shuffle("key", npartitions=n_out)
    assert shuffled.npartitions == n_out
    parts = run_parts(shuffled, mode)
    assert len(parts) == n_out
    seen: dict[int, int] = {}
    for i, part in enumerate(parts):
        assert (table.hash_destinations(part, "key", n_out) == i).all()
        for key in part["key"].tolist():
            assert seen.setdefault(key, i) == i
    assert rows(table.concat(parts)) == rows(columns)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", table.AGGREGATIONS)
@pytest.mark.parametrize("npartitions", [1, 7, 12])
def test_table_groupby_agg_matches_the_reference(mode, how, npartitions):
    columns = random_columns(npartitions + len(how))
    result = run(table.from_arrays(columns, npartitions).groupby("key").agg(how), mode)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(columns["key"].tolist()):
        groups[key].append(i)
    assert sorted(result["key"].tolist()) == sorted(groups)
    reducers = {
        "sum": sum,
        "count": len,
        "mean": lambda v: sum(v) / len(v),
        "min": min,
        "max": max,
    }
    for column in ("value", "count"):
        got = dict(zip(result["key"].tolist(), result[column].tolist(), strict=True))
        for key, index in groups.items():
            expected = reducers[how]([columns[column][i].item() for i in index])
            assert got[key] == pytest.approx(expected), (column, key)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("n_left", "n_right"), [(1, 1), (7, 7), (3, 5)])
def test_table_merge_matches_a_nested_loop_join(mode, n_left, n_right):
    left_cols = random_columns(1, n=120, groups=20)
    rng = np.random.default_rng(2)
    right_cols = {
        "key": rng.integers(0, 25, 80),
        "value": rng.random(80),
        "tag": rng.integers(0, 9, 80),
    }
    left = table.from_arrays(left_cols, n_left)
    right = table.from_arrays(right_cols, n_right)
    merged = left.merge(right, on="key")
    assert merged.npartitions == max(n_left, n_right)
    result = run(merged, mode)
    assert sorted(result) == ["count", "key", "tag", "value", "value_right"]
    lk, rk = left_cols["key"].tolist(), right_cols["key"].tolist()
    expected = [
        (
            left_cols["count"][i].item(),
            lk[i],
            right_cols["tag"][j].item(),
            left_cols["value"][i].item(),
            right_cols["value"][j].item(),
        )
        for i in range(len(lk))
        for j in range(len(rk))
        if lk[i] == rk[j]
    ]
    assert rows(result) == sorted(expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("npartitions", [1, 7, 10])
def test_table_sort_values_orders_rows_across_partitions(mode, npartitions):
    columns = random_columns(npartitions)
    sorted_table = table.from_arrays(columns, npartitions).sort_values("value")
    result = run(sorted_table, mode)
    assert result["value"].tolist() == sorted(columns["value"].tolist())
    assert rows(result) == rows(columns)
    ints = table.from_arrays(columns, npartitions).sort_values("key")
    assert run(ints, mode)["key"].tolist() == sorted(columns["key"].tolist())


@pytest.mark.parametrize("mode", MODES)
def test_table_map_partitions_applies_to_every_partition(mode):
    columns = random_columns(3)

    def double(part):
        return {**part, "value": part["value"] * 2}

    result = run(table.from_arrays(columns, 7).map_partitions(double), mode)
    assert result["value"].tolist() == (columns["value"] * 2).tolist()


def test_table_from_records_and_from_function():
    records = [{"key": i % 3, "value": float(i)} for i in range(10)]
    t = table.from_records(records, 4)
    assert t.npartitions == 4 and t.columns == ["key", "value"]
    assert run(t, "sync")["value"].tolist() == [float(i) for i in range(10)]
    lazy = table.from_function(table.random_partition, 5, {"key": np.int64, "value": np.float64})
    assert len(run(lazy, "sync")["key"]) == 500


def test_table_packs_small_at_ten_thousand_partitions():
    dtypes = {"key": np.int64, "value": np.float64}
    sizes = {}
    for n in (100, 10_000):
        t = table.from_function(table.random_partition, n, dtypes).groupby("key").agg("sum")
        sizes[n] = len(hlg.pack(t))
    assert abs(sizes[10_000] - sizes[100]) <= 0.01 * sizes[100]


def test_table_refuses_unknown_columns_and_aggregations():
    t = table.from_arrays(random_columns(0), 3)
    with pytest.raises(hlg.UsageError, match="no column 'nope'"):
        t.shuffle("nope")
    with pytest.raises(hlg.UsageError, match="agg"):
        t.groupby("key").agg("median")
    with pytest.raises(hlg.UsageError, match="npartitions"):
        t.shuffle("key", npartitions=0)
    with pytest.raises(hlg.UsageError, match="differ in length"):
        table.from_arrays({"a": np.arange(3), "b": np.arange(4)}, 2)
