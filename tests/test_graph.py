from operator import add

import pytest

import hlg
from hlg import HighLevelGraph, MaterializedLayer

from .conftest import CountingLayer, inc


def two_layer_graph():
    counting = CountingLayer("x", 1000)
    y = MaterializedLayer(
        {("y", 0): (add, ("x", 0), ("x", 1)), ("y", 1): (inc, ("x", 999))},
        name="y",
        known_keys=counting,
    )
    return HighLevelGraph({"x": counting, "y": y}, {"y": {"x"}}), counting


def test_graph_is_a_mapping_over_all_keys_without_materialising():
    g, counting = two_layer_graph()
    assert len(g) == 1002
    assert ("x", 500) in g and ("y", 1) in g and ("z", 0) not in g and 3 not in g
    assert counting.materializations == 0
    assert g[("y", 0)].dependencies == {("x", 0), ("x", 1)}
    with pytest.raises(hlg.MissingKeyError, match="'nope'"):
        g["nope"]


def test_cull_asks_layers_for_needed_keys_and_drops_empty_layers():
    g, _ = two_layer_graph()
    culled = g.cull([("y", 1)])
    assert sorted(culled) == [("x", 999), ("y", 1)]
    assert culled.dependencies == {"x": frozenset(), "y": frozenset({"x"})}
    only_x = g.cull(("x", 3))
    assert list(only_x.layers) == ["x"]
    assert hlg.get(g, [("y", 0), ("y", 1)]) == (3, 1001)


def test_cull_to_unknown_key_raises_missing_key_error():
    g, _ = two_layer_graph()
    with pytest.raises(hlg.MissingKeyError, match="'absent'"):
        g.cull("absent")


def test_cull_reports_task_needing_a_key_nobody_produces():
    g = HighLevelGraph(
        {"a": MaterializedLayer({"a": (inc, "ghost")}, name="a", known_keys={"ghost"})}
    )
    with pytest.raises(hlg.MissingDependencyError, match="layer 'a': task 'a' needs 'ghost'"):
        g.cull("a")


def test_cull_accepts_held_keys_that_no_layer_produces():
    g = HighLevelGraph(
        {
            "a": MaterializedLayer({"a": (inc, "ghost")}, name="a", known_keys={"ghost"}),
            "b": MaterializedLayer(
                {"b": (add, "spirit", 1), "c": 2}, name="b", known_keys={"spirit"}
            ),
        }
    )
    culled = g.cull(["a", "b"], held={"ghost", "spirit", "unasked"})
    assert sorted(culled) == ["a", "b"]
    with pytest.raises(hlg.MissingDependencyError, match="layer 'b': task 'b' needs 'spirit'"):
        g.cull(["a", "b"], held={"ghost"})


def test_cull_asks_held_only_about_keys_no_layer_produces():
    class Asked(set):
        def __contains__(self, key):
            self.add(key)
            return True

    g, _ = two_layer_graph()
    asked = Asked()
    g.cull([("y", 0)], held=asked)
    assert asked == set()


def test_cull_still_refuses_a_requested_key_no_layer_produces_when_held():
    g, _ = two_layer_graph()
    with pytest.raises(hlg.MissingKeyError, match="'absent'"):
        g.cull("absent", held={"absent"})


def test_cull_reports_an_undeclared_layer_dependency():
    g = HighLevelGraph({"a": {"a": 1}, "b": {"b": (inc, "a")}})
    with pytest.raises(hlg.MissingLayerError, match="does not depend on 'a'"):
        g.cull("b")


def test_an_undeclared_dependency_is_found_among_many_kept_keys():
    from hlg.layers.blockwise import blockwise

    x = blockwise(abs, "x", "i", "w", "i", numblocks={"w": (5,)})
    y = blockwise(inc, "y", "i", "x", "i", numblocks={"x": (5,)})
    w = {("w", i): i for i in range(5)}
    g = HighLevelGraph({"w": w, "x": x, "y": y}, {"x": {"w"}, "y": set()})
    with pytest.raises(hlg.MissingLayerError, match=r"layer 'y': task \('y', \d\) needs"):
        g.cull([("y", i) for i in range(5)])
    declared = HighLevelGraph({"w": w, "x": x, "y": y}, {"x": {"w"}, "y": {"x"}})
    assert hlg.get(declared.cull([("y", 4), ("y", 1)]), [("y", 4), ("y", 1)]) == (5, 2)


def test_the_layer_order_is_computed_once_and_handed_out_as_a_copy():
    g, _ = two_layer_graph()
    order = g.topological_layers()
    order.reverse()
    assert g.topological_layers() == ["x", "y"]
    assert g.cull([("y", 1)]).topological_layers() == ["x", "y"]


def test_from_collections_and_merge_build_layer_dependencies():
    a = HighLevelGraph.from_dict({("a", 0): 1, ("a", 1): 2}, name="a")
    b = HighLevelGraph.from_collections("b", {("b", 0): (add, ("a", 0), ("a", 1))}, [a])
    c = HighLevelGraph.from_collections("c", {"c": (inc, ("b", 0))}, [b])
    assert c.dependencies == {"a": frozenset(), "b": {"a"}, "c": {"b"}}
    assert c.dependents == {"a": {"b"}, "b": {"c"}, "c": set()}
    assert c.topological_layers() == ["a", "b", "c"]
    assert c.__hlg_layers__() == ("c",)
    assert hlg.get(c, "c") == 4
    merged = HighLevelGraph.merge(a, HighLevelGraph.from_dict({"z": 0}, name="z"))
    assert set(merged.layers) == {"a", "z"}


def test_get_output_keys_and_get_all_dependencies():
    g, counting = two_layer_graph()
    assert len(g.get_output_keys()) == 1002
    assert counting.materializations == 0
    deps = g.get_all_dependencies()
    assert deps[("y", 1)] == {("x", 999)}
    assert deps[("x", 0)] == frozenset()


def test_to_dict_materialises_everything_once():
    g, counting = two_layer_graph()
    flat = g.to_dict()
    assert len(flat) == 1002 and counting.materializations == 1


def test_validate_accepts_a_good_graph():
    g, _ = two_layer_graph()
    g.validate()


def test_validate_reports_a_missing_layer_dependency():
    g = HighLevelGraph({"a": {"a": 1}}, {"a": {"nope"}})
    with pytest.raises(hlg.MissingLayerError, match="layer 'a' depends on layer 'nope'"):
        g.validate()


def test_validate_reports_a_layer_cycle_naming_the_layers():
    g = HighLevelGraph({"a": {"a": 1}, "b": {"b": 2}}, {"a": {"b"}, "b": {"a"}})
    with pytest.raises(hlg.CycleError, match="'a' -> 'b' -> 'a'|'b' -> 'a' -> 'b'"):
        g.validate()


def test_validate_reports_a_task_cycle_naming_the_keys():
    g = HighLevelGraph.from_dict(
        {"p": (inc, "q"), "q": (inc, "r"), "r": (inc, "p"), "s": 1}, name="g"
    )
    with pytest.raises(hlg.CycleError, match="layer 'g'.*'p'.*'q'.*'r'"):
        g.validate()


def test_validate_reports_a_missing_task_dependency():
    g = HighLevelGraph({"a": MaterializedLayer({"a": (inc, "b")}, name="a", known_keys={"b"})})
    with pytest.raises(hlg.MissingDependencyError, match="task 'a' needs 'b'.*add that layer"):
        g.validate()


def test_validate_reports_a_key_produced_by_two_layers():
    g = HighLevelGraph({"a": {"k": 1}, "b": {"k": 2}})
    with pytest.raises(hlg.DuplicateKeyError, match="'k'.*'a'.*'b'"):
        g.validate()


def test_layer_stored_under_another_name_is_refused():
    with pytest.raises(hlg.GraphError, match="stored under the name"):
        HighLevelGraph({"b": MaterializedLayer({"a": 1}, name="a")})


def test_ensure_graph_refuses_things_that_are_not_graphs():
    from hlg.graph import ensure_graph

    with pytest.raises(hlg.GraphError, match="expected a graph"):
        ensure_graph(42)


def test_merge_of_two_culls_of_one_layer_keeps_every_key():
    g = HighLevelGraph.from_dict({"x": 1, "y": 2, "z": (abs, "x")}, name="g")
    merged = HighLevelGraph.merge(g.cull("z"), g.cull("y"))
    assert sorted(merged) == ["x", "y", "z"]
    assert sorted(HighLevelGraph.merge(g.cull("z"), g)) == ["x", "y", "z"]


def test_merge_refuses_two_different_culls_of_a_lazy_layer():
    layer = hlg.blockwise(abs, "y", "i", "x", "i", numblocks={"x": (4,)})
    x = HighLevelGraph.from_dict({("x", i): -i for i in range(4)}, name="x")
    g = HighLevelGraph({"x": x.layers["x"], "y": layer}, {"y": {"x"}})
    with pytest.raises(hlg.GraphError, match="two culls of one layer"):
        HighLevelGraph.merge(g.cull(("y", 0)), g.cull(("y", 1)))


def test_graphs_pickle_deepcopy_and_tokenize_equal_when_equal():
    import copy
    import pickle

    def build(value):
        return HighLevelGraph({"a": {"a": value, "b": (abs, "a")}, "c": {"c": ("b")}}, {"c": {"a"}})

    g = build(-1)
    for other in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g), build(-1)):
        assert dict(other) == dict(g)
        assert hlg.tokenize(other) == hlg.tokenize(g)
    assert hlg.tokenize(build(-2)) != hlg.tokenize(g)
    assert hlg.get(pickle.loads(pickle.dumps(g)), "c", scheduler="sync") == 1


def test_cull_takes_a_set_of_keys():
    g = HighLevelGraph.from_dict({"x": 1, "y": 2, "z": (abs, "x")}, name="g")
    assert sorted(g.cull({"z", "y"})) == ["x", "y", "z"]
    assert sorted(g.cull(frozenset({"x"}))) == ["x"]


def test_changing_the_given_dicts_afterwards_changes_no_layer():
    a = {"x": 1}
    b = {"y": (add, "x", 1)}
    graph = HighLevelGraph({"a": a, "b": b}, {"b": {"a"}})
    a.clear()
    b["y"] = 0
    assert graph.layers["b"]["y"].dependencies == {"x"}
    assert hlg.get(graph, "y") == 2
