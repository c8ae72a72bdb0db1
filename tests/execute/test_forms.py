"""One front door for graph forms: get, order and Client.compute take every form alike."""

import pickle

import pytest

import hlg
from hlg import Client, HighLevelGraph, MaterializedLayer
from hlg.execute.forms import graph_tasks

from .helpers import add, inc


class NoMaterialize(MaterializedLayer):
    """A layer that culls, but refuses to expand all its tasks."""

    def materialize(self):
        raise AssertionError("the whole layer was materialised")

    def cull(self, keys):
        return MaterializedLayer.cull(MaterializedLayer(dict(self._raw), name=self.name), keys)


def big_layer():
    return NoMaterialize({("b", i): (inc, i) for i in range(1000)}, name="b")


def test_get_and_compute_cull_a_layer_instead_of_expanding_it():
    layer = big_layer()
    assert hlg.get(layer, ("b", 3), scheduler="sync") == 4
    with Client(scheduler="sync") as client:
        assert client.compute(layer, [("b", 1), ("b", 2)]) == (2, 3)
    assert graph_tasks(layer, ("b", 7)).tasks.keys() == {("b", 7)}


def test_collections_are_recognised_before_mappings():
    class Collection(dict):
        def __hlg_graph__(self):
            return HighLevelGraph({"c": {"c": (inc, 1)}})

        def __hlg_layers__(self):
            return ("c",)

    assert hlg.get(Collection(wrong=1), "c", scheduler="sync") == 2


def test_every_form_gives_the_same_tasks():
    dsk = {"a": 1, "b": (add, "a", 2)}
    forms = [
        dsk,
        HighLevelGraph.from_dict(dsk, name="g"),
        MaterializedLayer(dsk, name="g"),
        hlg.unpack(hlg.pack(dsk, "b")),
        hlg.pack(dsk, "b"),
        bytearray(hlg.pack(dsk, "b")),
        memoryview(hlg.pack(dsk, "b")),
    ]
    for form in forms:
        tasks = graph_tasks(form, "b").tasks
        assert {k: node.dependencies for k, node in tasks.items()} == {"a": set(), "b": {"a"}}
        assert hlg.order(form) == {"a": 0, "b": 1}
        assert hlg.get(form, "b", scheduler="sync") == 3


def test_unknown_forms_are_refused_with_an_hlg_error():
    with pytest.raises(hlg.GraphError, match="got int"):
        hlg.get(5, "x")
    with pytest.raises(hlg.GraphError, match="got list"):
        hlg.order([1, 2])


def test_order_raises_cycle_error_naming_the_cycle():
    with pytest.raises(hlg.CycleError, match="'x' -> 'y' -> 'x'|'y' -> 'x' -> 'y'"):
        hlg.order({"x": (inc, "y"), "y": (inc, "x"), "z": 1})
    with pytest.raises(hlg.CycleError):
        hlg.order({"a": (inc, "a")})


def test_execute_modules_import_without_a_cycle():
    import subprocess
    import sys

    for module in ("hlg.execute.order", "hlg.execute.forms", "hlg.execute.local"):
        code = f"import {module}"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_dask_key_model_runs_everywhere():
    # As in dask, a literal equal to a key refers to it: keys 100 and 101, literals 1 and 10.
    dsk = {
        100: 1,
        101: (add, 100, 10),
        2.5: (inc, 101),
        b"raw": (inc, 2.5),
        ("getitem-8fa3", 0, 0.9): (inc, b"raw"),
        (("nested", 1), 2): (add, ("getitem-8fa3", 0, 0.9), 1),
    }
    want = (("nested", 1), 2)
    flat = hlg.unpack(hlg.pack(dsk, [want, 2.5]))
    assert set(flat.tasks) == set(dsk)
    assert all(
        type(k) is type(orig)
        for k, orig in zip(sorted(map(repr, flat.tasks)), sorted(map(repr, dsk)), strict=True)
    )
    assert ("getitem-8fa3", 0, 0.9) in flat.tasks and flat.keys == [want, 2.5]
    for scheduler in ("sync", "threads", "processes"):
        assert hlg.get(dsk, [want, 2.5], scheduler=scheduler) == (15, 12)
    assert hlg.get(flat, scheduler="sync") == (15, 12)
    graph = HighLevelGraph.from_dict(dsk, name="k")
    assert sorted(map(repr, graph.cull(want))) == sorted(map(repr, dsk))
    assert hlg.get(pickle.loads(pickle.dumps(graph)), 2.5, scheduler="sync") == 12


def test_float_and_bytes_key_parts_round_trip_exactly():
    key = ("x", 0.1, b"\x00\xff", -(2**40), 1e300)
    flat = hlg.unpack(hlg.pack({key: 1, "y": (inc, key)}, "y"))
    (back,) = [k for k in flat.tasks if k != "y"]
    assert back == key and [type(p) for p in back] == [type(p) for p in key]
    assert flat.tasks["y"].dependencies == {key}


def test_apply_arguments_are_searched_as_a_list_or_a_tuple():
    dsk = {
        "a": 2,
        "t": (hlg.apply, add, ("a", 3)),
        "l": (hlg.apply, add, ["a", 3], {}),
        "k": (hlg.apply, add, ("a",), {"y": "a"}),
        "task": (hlg.apply, add, (tuple, ["a", "a"])),
    }
    for scheduler in ("sync", "threads"):
        assert hlg.get(dsk, ["t", "l", "k", "task"], scheduler=scheduler) == (5, 5, 4, 4)


def test_get_refuses_a_set_of_keys_with_a_usage_error():
    with pytest.raises(hlg.UsageError, match="as a list"):
        hlg.get({"a": 1}, {"a"}, scheduler="sync")


def test_dict_graphs_convert_tasks_taking_lists_of_keys_and_literals():
    def pair(items, extra=None):
        return (items, extra)

    dsk = {
        ("x", 0): 1,
        "y": 2,
        3: 4,
        "keys": (pair, [("x", 0), "y", 3, ("no", 1), "no", 5, None, 1.5]),
        "unhashable": (pair, [("y", [1]), "y"]),
        "nested": (pair, [(inc, "y"), ("x", 0)]),
        "two": (pair, ["y"], [("x", 0)]),
    }
    tasks = graph_tasks(dsk).tasks
    assert tasks["keys"].dependencies == {("x", 0), "y", 3}
    assert tasks["unhashable"].dependencies == {"y"}
    assert tasks["nested"].dependencies == {"y", ("x", 0)}
    values = hlg.get(dsk, ["keys", "unhashable", "nested", "two"], scheduler="sync")
    assert values == (
        ([1, 2, 4, ("no", 1), "no", 5, None, 1.5], None),
        ([("y", [1]), 2], None),
        ([3, 1], None),
        ([2], [1]),
    )
