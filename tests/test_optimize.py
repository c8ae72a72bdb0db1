import ast
import importlib
from operator import add, mul, neg
from pathlib import Path

import pytest

import hlg
from hlg.layers.blockwise import blockwise
from hlg.optimize import FusedFunction, fuse_blockwise


def chain(n=4, annotations=None):
    x = hlg.MaterializedLayer({("x", i): i for i in range(n)}, name="x")
    a = blockwise(add, "a", "i", "x", "i", 1, None, numblocks={"x": (n,)})
    b = blockwise(mul, "b", "i", "a", "i", 10, None, numblocks={"a": (n,)}, annotations=annotations)
    c = blockwise(neg, "c", "i", "b", "i", numblocks={"b": (n,)})
    return hlg.HighLevelGraph(
        {"x": x, "a": a, "b": b, "c": c}, {"a": {"x"}, "b": {"a"}, "c": {"b"}}
    )


def test_a_chain_of_blockwise_layers_becomes_one_layer_with_the_same_results():
    g = chain()
    keys = [("c", i) for i in range(4)]
    fused = hlg.optimize(g, keys)
    assert list(fused.layers) == ["x", "c"]
    assert len(fused) == 8
    assert hlg.get(fused, keys) == hlg.get(g, keys) == (-10, -20, -30, -40)
    func = fused.layers["c"].func
    assert isinstance(func, FusedFunction) and func.__name__ == "neg-mul-add"
    assert hlg.get(hlg.pack(fused, keys), keys) == (-10, -20, -30, -40)


def test_cull_then_fuse_keeps_only_what_is_needed():
    fused = hlg.optimize(chain(1000), [("c", 7)])
    assert len(fused) == 2
    assert hlg.get(fused, ("c", 7)) == -80


def test_a_requested_layer_is_not_fused_away():
    g = chain()
    fused = hlg.optimize(g, [("b", 1), ("c", 1)])
    assert "b" in fused.layers and "a" not in fused.layers
    assert hlg.get(fused, [("b", 1), ("c", 1)]) == (20, -20)


def test_a_layer_with_another_dependent_is_not_fused_away():
    g = chain()
    other = blockwise(add, "d", "i", "a", "i", 0, None, numblocks={"a": (4,)})
    g2 = hlg.HighLevelGraph({**g.layers, "d": other}, {**g.dependencies, "d": {"a"}})
    fused = fuse_blockwise(g2, [("c", 0), ("d", 0)])
    assert "a" in fused.layers
    assert hlg.get(fused, [("c", 0), ("d", 0)]) == (-10, 1)


def test_layers_with_different_annotations_are_not_fused():
    fused = hlg.optimize(chain(annotations={"priority": 5}), [("c", 0)])
    # b's annotations differ from both neighbours: neither pair may fuse.
    assert set(fused.layers) == {"x", "a", "b", "c"}
    assert hlg.get(fused, ("c", 0)) == -10


def test_contractions_and_broadcasts_are_not_fused():
    x = hlg.MaterializedLayer({("x", i, j): 1 for i in range(2) for j in range(2)}, name="x")
    a = blockwise(add, "a", "ij", "x", "ij", 1, None, numblocks={"x": (2, 2)})
    s = blockwise(sum, "s", "i", "a", "ij", numblocks={"a": (2, 2)})
    g = hlg.HighLevelGraph({"x": x, "a": a, "s": s}, {"a": {"x"}, "s": {"a"}})
    assert set(hlg.optimize(g, [("s", 0)]).layers) == {"x", "a", "s"}
    assert hlg.get(hlg.optimize(g, [("s", 0)]), ("s", 0)) == 4


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_fused_graphs_run_on_every_scheduler(scheduler):
    keys = [("c", i) for i in range(4)]
    assert hlg.get(hlg.optimize(chain(), keys), keys, scheduler=scheduler, num_workers=2) == (
        -10,
        -20,
        -30,
        -40,
    )


def test_a_layer_whose_keys_another_input_names_is_not_fused_away():
    x = hlg.MaterializedLayer({("x", i): i for i in range(4)}, name="x")
    a = blockwise(add, "a", "i", "x", "i", 1, None, numblocks={"x": (4,)})
    b = blockwise(add, "b", "i", "a", "i", hlg.TaskRef(("a", 0)), None, numblocks={"a": (4,)})
    g = hlg.HighLevelGraph({"x": x, "a": a, "b": b}, {"a": {"x"}, "b": {"a"}})
    fused = hlg.optimize(g, [("b", 2)])
    assert set(fused.layers) == {"x", "a", "b"}
    assert hlg.get(fused, ("b", 2)) == hlg.get(g, ("b", 2)) == 4


def test_optimize_fuses_through_public_blockwise_operations_only():
    tree = ast.parse(Path(importlib.import_module("hlg.optimize").__file__).read_text())
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "hlg.layers.blockwise"
        for alias in node.names
    ]
    assert private == []
    assert imported and not [name for name in imported if name.startswith("_")]
