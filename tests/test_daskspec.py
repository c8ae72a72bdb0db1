"""dask's task-spec nodes converted to hlg nodes: every node type, and every entry point."""

from __future__ import annotations

import subprocess
import sys
import threading
from operator import add, mul
from typing import Any

import pytest

import hlg
from hlg.daskspec import MAX_DEPTH, Subgraph, convert_dask_node, is_dask_node

ts = pytest.importorskip("dask._task_spec", reason="needs dask 2024.12 or later")


def _kw(a: int, b: int = 0, *, c: int = 0) -> tuple[int, int, int]:
    return a, b, c


def _spec_graph() -> dict[Any, Any]:
    # Every node type, keys of each shape, keyword arguments, nesting.
    return {
        "a": ts.DataNode("a", 2),
        ("b", 0): ts.Task(("b", 0), add, ts.TaskRef("a"), 10),
        ("b", 1): ts.Alias(("b", 1), ("b", 0)),
        "c": ts.Task("c", _kw, ts.TaskRef("a"), b=ts.TaskRef(("b", 1)), c=ts.DataNode(None, 5)),
        "d": ts.List(ts.TaskRef("a"), ts.Tuple(ts.TaskRef(("b", 0)), 1), 3),
        "e": ts.Task("e", sorted, ts.Set(ts.TaskRef("a"), 7)),
        "f": ts.Dict({"x": ts.TaskRef("a"), "y": ts.Task(None, mul, ts.TaskRef("a"), 3)}),
        "g": ts.TaskRef("c"),
        "h": ts.Task("h", len, [ts.TaskRef("a")]),  # a plain list: dask passes it as it is
    }


EXPECTED = {
    "a": 2,
    ("b", 0): 12,
    ("b", 1): 12,
    "c": (2, 12, 5),
    "d": [2, (12, 1), 3],
    "e": [2, 7],
    "f": {"x": 2, "y": 6},
    "g": (2, 12, 5),
    "h": 1,
}


def test_convert_graph_runs_every_dask_node_type_like_dask() -> None:
    graph = _spec_graph()
    converted = hlg.convert_graph(graph)
    assert list(converted) == list(graph)  # keys kept exactly, tuple keys stay tuples
    assert all(isinstance(v, hlg.GraphNode) for v in converted.values())
    keys = list(EXPECTED)
    assert dict(zip(keys, hlg.get(graph, keys, scheduler="sync"), strict=True)) == EXPECTED
    from dask.local import get_sync

    assert get_sync(graph, keys) == tuple(EXPECTED.values())  # dask agrees


def test_convert_dask_node_keeps_dependencies_and_keyword_arguments() -> None:
    converted = hlg.convert_graph(_spec_graph())
    assert converted["c"].dependencies == {"a", ("b", 1)}
    assert converted["c"].kwargs is not None and set(converted["c"].kwargs) == {"b", "c"}
    assert converted[("b", 1)] == hlg.Alias(("b", 0))
    assert converted["g"] == hlg.Alias("c")
    assert converted["a"] == hlg.DataNode(2)
    assert converted["d"].dependencies == {"a", ("b", 0)}
    assert converted["h"].dependencies == frozenset()


def test_convert_dask_node_dict_with_node_keys() -> None:
    node = ts.Dict([(ts.TaskRef("k"), 1), ("z", ts.TaskRef("v"))])
    converted = convert_dask_node(node)
    assert converted.dependencies == {"k", "v"}
    assert converted({"k": "key", "v": 9}) == {"key": 1, "z": 9}


def test_convert_dask_node_fused_subgraph_runs_inner_nodes_once() -> None:
    calls: list[int] = []

    def record(x: int) -> int:
        calls.append(x)
        return x + 1

    inner = [
        ts.Task("p", record, ts.TaskRef("in")),
        ts.Task("q", mul, ts.TaskRef("p"), ts.TaskRef("p")),
        ts.Task("out", add, ts.TaskRef("q"), ts.TaskRef("other")),
    ]
    fused = ts.Task.fuse(*inner, key="out")
    graph = {"in": ts.DataNode("in", 3), "other": ts.DataNode("other", 100), "out": fused}
    converted = hlg.convert_graph(graph)["out"]
    assert isinstance(converted, hlg.Task) and isinstance(converted.func, Subgraph)
    assert converted.dependencies == {"in", "other"}
    assert hlg.get(graph, "out", scheduler="sync") == 116
    assert calls == [3]
    assert converted.func_name == "add"


def test_convert_dask_node_fused_subgraph_takes_data_node_inputs() -> None:
    inner = {"z": ts.Task("z", add, ts.TaskRef("__in0"), ts.TaskRef("__in1"))}
    node = ts.Task(
        "z",
        ts._execute_subgraph,
        inner,
        "z",
        ("__in0", "__in1"),
        ts.DataNode(None, 4),
        ts.TaskRef("x"),
    )
    converted = convert_dask_node(node)
    assert converted.dependencies == {"x"}
    assert converted({"x": 1}) == 5


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_convert_dask_node_fused_subgraph_in_any_order(order: list[int]) -> None:
    tasks = [
        ts.Task("p", add, ts.TaskRef("in"), 1),
        ts.Task("q", mul, ts.TaskRef("p"), 3),
        ts.Task("out", add, ts.TaskRef("q"), ts.TaskRef("p")),
    ]
    inner = {tasks[i].key: tasks[i] for i in order}
    node = ts.Task("out", ts._execute_subgraph, inner, "out", ("in",), ts.TaskRef("x"))
    assert convert_dask_node(node)({"x": 1}) == 8


def test_convert_dask_node_fused_subgraph_with_a_cycle_raises_task_spec_error() -> None:
    inner = {
        "a": ts.Task("a", abs, ts.TaskRef("b")),
        "b": ts.Task("b", abs, ts.TaskRef("a")),
        "out": ts.Task("out", abs, ts.TaskRef("a")),
    }
    node = ts.Task("out", ts._execute_subgraph, inner, "out", ())
    with pytest.raises(hlg.TaskSpecError, match="inner graph has a cycle"):
        convert_dask_node(node)


def test_convert_dask_node_malformed_subgraph_raises_task_spec_error() -> None:
    node = ts.Task("z", ts._execute_subgraph, {"z": ts.DataNode("z", 1)}, "missing", ())
    with pytest.raises(hlg.TaskSpecError, match="output key 'missing'"):
        convert_dask_node(node)
    with pytest.raises(hlg.TaskSpecError, match=r"holds \(graph, output key, input keys"):
        convert_dask_node(ts.Task("z", ts._execute_subgraph, [1], "z"))


def test_convert_dask_node_unknown_node_type_raises_task_spec_error() -> None:
    class LaterNode(ts.DataNode):
        pass

    with pytest.raises(hlg.TaskSpecError, match=r"LaterNode is not one hlg converts"):
        hlg.convert_graph({"x": LaterNode("x", 1)})
    with pytest.raises(hlg.TaskSpecError, match="key 'y'"):
        hlg.convert_graph({"y": ts.Task("y", abs, LaterNode(None, -1))})


def test_convert_dask_node_foreign_reference_raises_task_spec_error() -> None:
    class Future(ts.TaskRef):
        pass

    with pytest.raises(hlg.TaskSpecError, match="data held elsewhere"):
        hlg.convert_graph({"y": ts.Task("y", abs, Future("remote"))})


def test_convert_dask_node_rejects_what_is_not_a_dask_node() -> None:
    with pytest.raises(hlg.TaskSpecError, match="expected one of dask's task-spec nodes"):
        convert_dask_node(("x", 0))


def test_convert_dask_node_nesting_past_the_limit_raises_task_spec_error() -> None:
    node: Any = ts.TaskRef("x")
    for _ in range(MAX_DEPTH + 5):
        node = ts.List(node)
    with pytest.raises(hlg.TaskSpecError, match="nest more than"):
        convert_dask_node(node)


def test_convert_graph_dask_node_inside_a_dask_style_tuple() -> None:
    graph = {
        "x": 1,
        "y": (add, ts.TaskRef("x"), ts.DataNode(None, 4)),
        "z": (sum, [ts.TaskRef("y")]),
    }
    converted = hlg.convert_graph(graph)
    assert converted["y"].dependencies == {"x"}
    assert hlg.get(graph, ["y", "z"], scheduler="sync") == (5, 5)


def test_dask_graphs_accepted_by_every_entry_point() -> None:
    graph = _spec_graph()
    keys = list(EXPECTED)
    layered = hlg.HighLevelGraph.from_dict(graph, name="spec")
    assert layered["c"].dependencies == {"a", ("b", 1)}
    assert hlg.get(layered, "c", scheduler="threads") == EXPECTED["c"]
    assert hlg.get(hlg.unpack(hlg.pack(graph, keys)), keys, scheduler="sync") == tuple(
        EXPECTED.values()
    )
    assert sorted(hlg.order(graph), key=repr) == sorted(graph, key=repr)
    with hlg.Client(scheduler="sync") as client:
        assert client.compute(graph, "f") == EXPECTED["f"]


def test_dask_graph_cull_follows_dask_references() -> None:
    layered = hlg.HighLevelGraph.from_dict(_spec_graph(), name="spec")
    assert set(layered.cull(["c"])) == {"a", ("b", 0), ("b", 1), "c"}


def test_convert_graph_from_two_threads() -> None:
    results: list[Any] = []

    def convert() -> None:
        results.append(hlg.get(_spec_graph(), list(EXPECTED), scheduler="sync"))

    threads = [threading.Thread(target=convert) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [tuple(EXPECTED.values())] * 4


def test_is_dask_node() -> None:
    assert is_dask_node(ts.TaskRef("x")) and is_dask_node(ts.DataNode("x", 1))
    assert not is_dask_node(hlg.TaskRef("x")) and not is_dask_node(("x", 1))


def test_hlg_never_imports_dask_for_graphs_without_dask_nodes() -> None:
    code = (
        "import sys, hlg\n"
        "from operator import add\n"
        "g = {'x': 1, 'y': (add, 'x', 1)}\n"
        "assert hlg.get(hlg.unpack(hlg.pack(g, 'y')), 'y', scheduler='sync') == 2\n"
        "assert hlg.get(g, 'y', scheduler='threads') == 2\n"
        "assert not [m for m in sys.modules if m == 'dask' or m.startswith('dask.')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
