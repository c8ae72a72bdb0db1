import gc
from functools import partial
from operator import add

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hlg
from hlg import Alias, DataNode, Task, TaskRef, apply, convert_graph
from hlg._gc import PAUSE_FROM
from hlg.convert import convert_task, dependency_positions, plain_refs
from hlg.task import Opaque

KEYS = {"a", "b", ("x", 0), ("x", 1), 3, 2.5, b"k"}


@pytest.mark.parametrize(
    ("args", "refs"),
    [
        (("a",), (0,)),
        (("lit",), ()),
        ((("x", 0),), (0,)),
        ((3,), (0,)),
        ((4,), ()),
        (("a", "b"), (0, 1)),
        (("a", "lit"), (0,)),
        (("lit", ("x", 1)), (1,)),
        (("lit", "lit"), ()),
        ((("x", 0), 7), (0,)),
        ((7, 3), (1,)),
        ((("y", 0),), ()),  # a literal tuple of plain parts
        (("a", ("y", 0)), (0,)),
        ((("y", 0), "b"), (1,)),
        ((2.5,), (0,)),
        ((b"k", None), (0,)),
        ((True,), ()),
        (("a", "b", ("x", 1)), (0, 1, 2)),
    ],
)
def test_plain_refs_finds_keys_in_plain_arguments(args, refs):
    assert plain_refs(args, KEYS) == refs


@pytest.mark.parametrize(
    "args",
    [
        ((1 << 64,),),
        (("a", -(1 << 63) - 1),),
        ((("y", [0]),),),
        (("a", ("y", [0])),),
        ((("y", object()),),),
        (("a", ("y", object())),),
        (([1],),),
        (("a", {"b": 1}),),
    ],
)
def test_plain_refs_is_none_for_arguments_that_are_not_plain(args):
    assert plain_refs(args[0], KEYS) is None


def test_convert_graph_makes_aliases_of_values_that_are_keys():
    nodes = convert_graph({"a": 1, ("x", 0): 2, "s": "a", "t": ("x", 0), "u": "free", 1: True})
    assert nodes["s"] == Alias("a")
    assert nodes["t"] == Alias(("x", 0))
    assert nodes["u"] == DataNode("free")
    assert nodes[1] == DataNode(True)  # equal to the key 1, but a bool is no key
    assert list(nodes) == ["a", ("x", 0), "s", "t", "u", 1]
    assert hlg.get(nodes, ["s", "t"]) == (1, 2)


def test_convert_graph_names_the_key_whose_alias_is_no_valid_key():
    # ("x", True) == ("x", 1): found among the keys, yet a bool is not a key part.
    with pytest.raises(hlg.InvalidKeyError, match=r"key 'bad': .*\('x', True\)"):
        convert_graph({("x", 1): 0, "bad": ("x", True)})


def test_convert_graph_keeps_plain_and_other_tasks_in_graph_order():
    graph = {
        "a": 1,
        "b": (add, "a", 1),
        "l": (sum, ["a", "b"]),
        "s": "b",
        "c": (add, "b", "a"),
        "n": (list,),
        "m": (len, [("a", [0]), "b"]),
        "e": (sum, []),
    }
    nodes = convert_graph(graph)
    assert list(nodes) == list(graph)
    assert hlg.get(nodes, ["n", "m", "e"]) == ([], 2, 0)
    assert nodes["m"].dependencies == {"b"}
    assert isinstance(nodes["c"], Task)
    assert nodes["c"].dependencies == {"a", "b"}
    assert hlg.get(nodes, ["c", "l", "s"]) == (3, 3, 2)


class Watched(dict):
    """A graph that records whether the collector runs while it is searched for keys."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.collecting = set()

    def __contains__(self, key):
        self.collecting.add(gc.isenabled())
        return super().__contains__(key)


@pytest.mark.parametrize(("size", "paused"), [(10, False), (PAUSE_FROM, True)])
def test_convert_graph_pauses_the_collector_only_for_large_graphs(size, paused):
    graph = Watched({"k0": 0})
    graph.update({f"k{i}": (add, f"k{i - 1}", 1) for i in range(1, size)})
    assert gc.isenabled()
    nodes = convert_graph(graph)
    assert gc.isenabled()
    assert graph.collecting == {not paused}
    assert hlg.get(nodes, f"k{size - 1}") == size - 1


# -- reading dependencies without converting ---------------------------------------------

_dep_names = ["a", "b", ("t", 0), ("t", 1), 7, 2.5, b"k", 1]
_dep_args = st.recursive(
    st.one_of(
        st.sampled_from(_dep_names),
        st.sampled_from(["out", ("out", 0), 8, None, True, 1 << 70, 0.5, 1j, ("lit", 1, None)]),
        st.sampled_from([(), [], {}, len, TaskRef("a"), TaskRef("zz"), Task(len, TaskRef("b"))]),
        st.sampled_from(
            [slice(0, 5), ..., partial(add, TaskRef("a")), Opaque("pickle", b"\x80\x04N.")]
        ),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),  # a literal tuple, or a key
        st.tuples(st.sampled_from([add, len, sum]), inner, inner),  # a nested task
        st.dictionaries(st.sampled_from(["k", "v"]), inner, max_size=2),
        st.tuples(st.just(apply), st.sampled_from([add, len]), st.lists(inner, max_size=2)),
        st.frozensets(st.sampled_from(_dep_names), max_size=2),
    ),
    max_leaves=8,
)
_dep_values = st.one_of(
    st.tuples(st.sampled_from([add, sum, max]), st.lists(_dep_args, max_size=4)).map(
        lambda fa: (fa[0], *fa[1])
    ),
    _dep_args,
    st.sampled_from([DataNode(1), Alias("a"), Task(add, TaskRef("b"), TaskRef("zz"))]),
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(_dep_names), min_size=1, unique=True), st.data())
def test_dependency_positions_are_those_of_the_converted_graph(names, data):
    graph = {name: data.draw(_dep_values) for name in names}
    position = {key: i for i, key in enumerate(graph)}
    expected = [
        sorted(position[d] for d in node.dependencies if d in position)
        for node in convert_graph(graph).values()
    ]
    assert dependency_positions(graph) == expected


def test_dependency_positions_blame_the_key_of_a_bad_value():
    with pytest.raises(hlg.InvalidKeyError, match="key None"):
        dependency_positions({None: 1})
    deep: object = "a"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(hlg.TaskSpecError, match="key 'b': the value is nested too deeply"):
        dependency_positions({"a": 1, "b": (len, deep)})


def _converted_the_general_way(task, keys):
    # Every argument parsed on its own, and the task built by Task itself.
    from hlg import convert

    return Task(task[0], *[convert._parse(arg, keys) for arg in task[1:]])


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_dep_args, max_size=4))
def test_every_path_of_the_converter_finds_the_same_dependencies(args):
    task = (max, *args)
    keys = set(_dep_names)
    found = convert_task(task, keys).dependencies
    assert found == _converted_the_general_way(task, keys).dependencies


def test_nodes_inside_literal_tuples_are_dependencies_on_every_path():
    ref = TaskRef("a")
    for value in [
        (add, ("lit", ref), 1),
        (sum, [("lit", ref)]),
        (sum, [("lit", [ref])]),
        (add, ("lit", ref), [1]),
    ]:
        assert convert_task(value, {"a"}).dependencies == {"a"}, value
    assert hlg.get({"a": 5, "b": (list, [("lit", ref)])}, "b") == [("lit", 5)]
