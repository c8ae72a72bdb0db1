import subprocess
import sys
import textwrap
from operator import add

import hlg
from hlg import TaskState
from hlg.testing import RangeLayer

from ..conftest import inc


def chunked_graph():
    return hlg.HighLevelGraph(
        {
            "x-1a2b3c4d": RangeLayer("x-1a2b3c4d", inc, 0, 4),
            "y-5e6f7a8b": {("y-5e6f7a8b", i): (add, ("x-1a2b3c4d", i), 1) for i in range(4)},
            "total": {"total": (sum, [("y-5e6f7a8b", i) for i in range(4)])},
        },
        {"y-5e6f7a8b": {"x-1a2b3c4d"}, "total": {"y-5e6f7a8b"}},
    )


def test_flat_graph_holds_tasks_dependencies_dependents_and_keys():
    flat = hlg.unpack(hlg.pack(chunked_graph(), "total"))
    assert len(flat) == 9 and "total" in flat and ("x-1a2b3c4d", 0) in flat
    assert flat.keys == ["total"]
    assert flat.dependencies[("y-5e6f7a8b", 2)] == {("x-1a2b3c4d", 2)}
    assert flat.dependents[("x-1a2b3c4d", 2)] == {("y-5e6f7a8b", 2)}
    assert flat.dependents["total"] == set()
    assert [s.name for s in flat.layers] == ["x-1a2b3c4d", "y-5e6f7a8b", "total"]
    assert flat.layers[0].tag == "hlg.testing.range" and flat.layers[0].ntasks == 4
    assert hlg.get(flat) == (14,)


def test_default_keys_are_the_outputs_of_the_last_layers():
    flat = hlg.unpack(hlg.pack(chunked_graph()))
    assert flat.keys == ["total"]


def test_groups_and_prefixes_follow_key_names():
    flat = hlg.unpack(hlg.pack(chunked_graph()))
    groups = flat.groups
    assert set(groups) == {"x-1a2b3c4d", "y-5e6f7a8b", "total"}
    y = groups["y-5e6f7a8b"]
    assert y.prefix == "y" and y.ntasks == 4 and y.states[TaskState.WAITING] == 4
    assert y.dependencies == {"x-1a2b3c4d"}
    assert groups["total"].dependencies == {"y-5e6f7a8b"}
    assert set(flat.prefixes) == {"x", "y", "total"}
    assert flat.prefixes["y"].groups == [y]
    y.transition(TaskState.WAITING, TaskState.MEMORY)
    y.record_result(0.5, 8, "int")
    assert flat.prefixes["y"].states[TaskState.MEMORY] == 1
    assert flat.prefixes["y"].duration == 0.5 and flat.prefixes["y"].types == {"int"}


def test_prefixes_gather_groups_of_the_same_name():
    graph = {("x-aaaaaaaa", 0): 1, ("x-bbbbbbbb", 0): 2}
    flat = hlg.unpack(hlg.pack(graph))
    assert [g.name for g in flat.prefixes["x"].groups] == ["x-aaaaaaaa", "x-bbbbbbbb"]
    assert flat.prefixes["x"].states[TaskState.WAITING] == 2


def test_unpack_imports_no_numpy_pandas_or_cloudpickle():
    from hlg.layers.blockwise import BlockSlices

    graph = chunked_graph()
    tiles = hlg.blockwise(
        add,
        "tiles",
        "i",
        "x-1a2b3c4d",
        "i",
        BlockSlices(((2, 2, 2, 2),)),
        "i",
        numblocks={"x-1a2b3c4d": (4,)},
    )
    graph = hlg.HighLevelGraph(
        {**graph.layers, "tiles": tiles}, {**graph.dependencies, "tiles": {"x-1a2b3c4d"}}
    )
    data = hlg.pack(graph)
    code = textwrap.dedent(
        f"""
        import sys
        from hlg.materialize import unpack
        flat = unpack({data!r})
        flat.groups, flat.dependents
        bad = sorted(m for m in ("numpy", "pandas", "cloudpickle") if m in sys.modules)
        print(len(flat.tasks), bad)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["13", "[]"]


def test_forward_references_within_a_layer_unpack_when_acyclic():
    graph = {"late": (inc, "early"), "early": 1}
    assert hlg.get(hlg.pack(graph), "late") == 2
