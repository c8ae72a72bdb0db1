import pickle
from operator import add

import pytest

import hlg
from hlg import Alias, DataNode, Task, TaskRef, apply, convert_graph
from hlg.convert import convert_task


def inc(x):
    return x + 1


def scaled(a, scale=1):
    return a * scale


def test_task_knows_dependencies_from_construction():
    t = Task(add, TaskRef("a"), [TaskRef("b"), {"k": TaskRef(("c", 0))}], z=TaskRef("d"))
    assert t.dependencies == {"a", "b", ("c", 0), "d"}


def test_every_keyword_argument_adds_its_dependencies():
    t = Task(dict, a=TaskRef("x"), b=TaskRef("y"), c=[TaskRef(("z", 0))], d=1)
    assert t.dependencies == {"x", "y", ("z", 0)}
    assert t({"x": 1, "y": 2, ("z", 0): 3}) == {"a": 1, "b": 2, "c": [3], "d": 1}
    mixed = Task(pair, TaskRef("p"), [TaskRef("q")], k=TaskRef("r"))
    assert mixed.dependencies == {"p", "q", "r"}
    assert mixed({"p": 1, "q": 2, "r": 3}) == (1, [2], 3)


def pair(a, b, k=None):
    return (a, b, k)


def test_task_runs_with_values_of_its_dependencies():
    t = Task(add, TaskRef("a"), 2)
    assert t({"a": 1}) == 3
    assert t.args == (TaskRef("a"), 2)


def test_task_resolves_references_nested_in_containers():
    t = Task(
        lambda a, b, c, d: (a, b, c, d),
        [TaskRef("x")],
        (TaskRef("x"), 1),
        {"k": TaskRef("y")},
        {TaskRef("y")},
    )
    assert t({"x": 1, "y": 2}) == ([1], (1, 1), {"k": 2}, {2})


def test_nested_tasks_compute_inline():
    t = Task(add, Task(inc, TaskRef("x")), 10)
    assert t.dependencies == {"x"}
    assert t({"x": 1}) == 12


def test_task_with_missing_value_raises_hlg_error_naming_the_key():
    with pytest.raises(hlg.MissingDependencyError, match="'a'"):
        Task(inc, TaskRef("a"))({})
    with pytest.raises(hlg.MissingDependencyError, match="'b'"):
        Alias("b")({})


def test_task_rejects_a_function_that_is_not_callable():
    with pytest.raises(hlg.TaskSpecError, match="callable"):
        Task(3, 4)


def test_nodes_pickle_and_compare_by_content():
    for node in (Task(add, TaskRef("a"), 1, k=2), DataNode([1, 2]), Alias("q"), TaskRef(("x", 1))):
        assert pickle.loads(pickle.dumps(node)) == node
    assert Task(add, 1, 2) != Task(add, 1, 3)
    assert DataNode(1) != Alias("x")


def test_convert_graph_handles_every_dask_tuple_form():
    graph = {
        "x": 1,
        "y": (inc, "x"),
        "z": (add, "x", "y"),
        "nested": (add, (inc, "x"), 10),
        "lst": (sum, ["x", "y", (inc, "z")]),
        "alias": "z",
        "alias-of-alias": "alias",
        "key-list": ["x", "y"],
        "kw": (apply, scaled, ["x"], {"scale": 5}),
        "kw-args-tuple": (apply, int, ("ff",), {"base": 16}),
        "kw-dynamic": (apply, scaled, ["x"], (dict, [["scale", "z"]])),
        "literal-str": "not a key",
        "literal-tuple": (1, 2),
        "literal-dict": {"a": 1},
        "literal-set": {1, 2},
        "unhashable-tuple": ([1], "x"),
        "tuple-key-ref": (inc, ("t", 0)),
        ("t", 0): 41,
    }
    nodes = convert_graph(graph)
    assert isinstance(nodes["x"], DataNode)
    assert nodes["alias"] == Alias("z")
    assert nodes["kw"].func is scaled and nodes["kw"].kwargs == {"scale": 5}
    assert nodes["lst"].dependencies == {"x", "y", "z"}
    assert isinstance(nodes["literal-str"], DataNode)
    assert nodes["tuple-key-ref"].dependencies == {("t", 0)}
    results = hlg.get(graph, list(graph))
    assert dict(zip(graph, results, strict=True)) == {
        "x": 1,
        "y": 2,
        "z": 3,
        "nested": 12,
        "lst": 7,
        "alias": 3,
        "alias-of-alias": 3,
        "key-list": [1, 2],
        "kw": 5,
        "kw-args-tuple": 255,
        "kw-dynamic": 3,
        "literal-str": "not a key",
        "literal-tuple": (1, 2),
        "literal-dict": {"a": 1},
        "literal-set": {1, 2},
        "unhashable-tuple": ([1], "x"),
        "tuple-key-ref": 42,
        ("t", 0): 41,
    }


def test_convert_keeps_lists_and_tuples_apart():
    nodes = convert_graph({"a": 1, "l": (list, ["a", "a"]), "t": (tuple, ["a"])})
    assert hlg.get(nodes, ["l", "t"]) == ([1, 1], (1,))


def test_convert_uses_known_keys_of_other_layers():
    node = convert_task((inc, "outside"), {"outside"})
    assert node.dependencies == {"outside"}
    assert convert_task((inc, "outside"), set()).dependencies == frozenset()


def test_convert_graph_names_the_key_of_a_bad_value():
    with pytest.raises(hlg.InvalidKeyError):
        convert_graph({None: 2})


def test_convert_refuses_values_nested_too_deeply():
    value: object = 0
    for _ in range(20_000):
        value = (inc, value)
    with pytest.raises(hlg.TaskSpecError, match="nested too deeply"):
        convert_graph({"deep": value})


def test_deep_chain_converts_and_runs_without_recursion():
    n = 20_000
    graph = {("c", 0): 0}
    graph.update({("c", i): (inc, ("c", i - 1)) for i in range(1, n)})
    assert hlg.get(graph, ("c", n - 1)) == n - 1
    chain = {"a0": 0}
    chain.update({f"a{i}": f"a{i - 1}" for i in range(1, n)})
    assert hlg.get(chain, f"a{n - 1}") == 0


def test_serialized_function_loads_once_and_names_failures():
    from hlg.task import SerializedFunction

    f = SerializedFunction("inc", pickle.dumps(inc))
    assert f(1) == 2
    assert f.load() is f.load()
    broken = SerializedFunction("gone", b"not a pickle")
    with pytest.raises(hlg.TaskExecutionError, match="'gone'"):
        broken.load()


class RemoteHandle:
    """Stands for data held elsewhere, under ``name`` (as a distributed Future does)."""

    def __init__(self, name):
        self.name = name


def test_register_remote_type_makes_instances_dependencies_that_pack_as_keys():
    from hlg.task import register_remote_type, remote_key

    register_remote_type(RemoteHandle, lambda h: h.name)
    handle = RemoteHandle(("data-1f2e", 0))
    task = Task(add, handle, 1)
    assert task.dependencies == frozenset({("data-1f2e", 0)})
    assert task({("data-1f2e", 0): 41}) == 42
    assert Task(sum, [handle, 2])({("data-1f2e", 0): 1}) == 3
    assert remote_key(handle) == ("data-1f2e", 0)
    assert remote_key(hlg.Ref("x")) == "x"
    assert remote_key(object()) is None
    data = hlg.pack({"y": (add, handle, 1)}, "y")
    assert b"RemoteHandle" not in data  # its key travels, not the object
    flat = hlg.unpack(data)
    assert flat.remote_keys == frozenset({("data-1f2e", 0)})
    with pytest.raises(hlg.InvalidKeyError):
        Task(abs, RemoteHandle(["not", "a", "key"]))


def test_register_remote_type_refuses_what_is_not_a_class_and_a_function():
    from hlg.task import register_remote_type

    with pytest.raises(hlg.TaskSpecError, match="takes a class and a function"):
        register_remote_type("RemoteHandle", lambda h: h.name)
    with pytest.raises(hlg.TaskSpecError, match="takes a class and a function"):
        register_remote_type(RemoteHandle, "name")


def test_equal_nodes_hash_equal():
    pairs = [
        (DataNode(1), DataNode(1.0)),
        (DataNode(True), DataNode(1)),
        (DataNode({1}), DataNode(frozenset({1}))),
        (DataNode([1, 2]), DataNode([1, 2])),
        (Task(abs, TaskRef("x")), Task(abs, TaskRef("x"))),
        (Task(sum, [1, 2], start=1), Task(sum, [1, 2], start=1)),
        (Alias("x"), Alias("x")),
    ]
    for a, b in pairs:
        assert a == b and hash(a) == hash(b)
    assert len({DataNode(1), DataNode(1.0), DataNode(2)}) == 2


def test_loaded_function_cache_is_bounded_by_bytes(monkeypatch):
    import functools
    from operator import getitem

    from hlg.task import SerializedFunction

    monkeypatch.setattr(SerializedFunction, "_CACHE", {})
    monkeypatch.setattr(SerializedFunction, "_cache_bytes", 0)
    monkeypatch.setattr(SerializedFunction, "_CACHE_LIMIT", 50_000)
    for i in range(20):
        data = pickle.dumps(functools.partial(getitem, (i, b"x" * 10_000), 0))
        assert SerializedFunction("getitem", data).load()() == i
        assert SerializedFunction._cache_bytes <= 50_000
    assert sum(map(len, SerializedFunction._CACHE)) == SerializedFunction._cache_bytes
    huge = pickle.dumps(functools.partial(len, b"y" * 60_000))
    assert SerializedFunction("len", huge).load()() == 60_000
    assert huge not in SerializedFunction._CACHE


def test_task_from_parts_round_trips_through_parts():
    from hlg.task import TaskParts

    plain = Task(add, TaskRef("a"), 2, fill=1)
    deep = Task(sum, [TaskRef("a"), TaskRef("b")])
    for task in (plain, deep, Task(len, "abc")):
        parts = task.parts()
        assert type(parts) is TaskParts
        rebuilt = Task.from_parts(*parts)
        assert rebuilt == task
        assert rebuilt.dependencies == task.dependencies
    assert plain.parts().refs == (0,) and plain.parts().dependencies is None
    assert deep.parts().deep and deep.parts().dependencies == frozenset({"a", "b"})


def test_task_from_parts_scans_a_deep_task_for_its_dependencies():
    task = Task.from_parts(len, ([TaskRef("a"), (TaskRef("b"),)],), deep=True)
    assert task.dependencies == frozenset({"a", "b"})
    assert task.parts().deep
    given = Task.from_parts(len, ([TaskRef("a")],), deep=True, dependencies=frozenset({"a"}))
    assert given({"a": 5}) == 1


def test_task_dependencies_of_whole_references_are_read_from_their_positions():
    task = Task(max, TaskRef(("x", 1)), 0, TaskRef("y"), TaskRef(("x", 1)))
    deps = task.dependencies
    assert type(deps) is frozenset and deps == {("x", 1), "y"}
    # Not held: each read builds an equal frozenset from the argument positions.
    assert task.dependencies is not deps and task.dependencies == deps
    assert Task(len, "abc").dependencies is Task(abs, 1).dependencies == frozenset()
    assert pickle.loads(pickle.dumps(task)).dependencies == deps


def test_data_node_from_parts_decodes_payloads_only_when_deep():
    from hlg.task import Opaque

    payload = Opaque("pickle", pickle.dumps(3))
    assert DataNode.from_parts([payload], deep=True)({}) == [3]
    assert DataNode.from_parts([payload], deep=False)({}) == [payload]
    node = pickle.loads(pickle.dumps(DataNode.from_parts([payload], deep=True)))
    assert node.parts() == ([payload], True)


def test_build_tasks_builds_one_task_per_key_in_order():
    from hlg.task import build_tasks

    tasks = build_tasks(
        [("y", 0), ("y", 1), "z"],
        [add, add, len],
        [(("x", 0), 1), (("x", 1), ("x", 0)), ("abc",)],
        [(0,), (0, 1), ()],
        None,
    )
    assert list(tasks) == [("y", 0), ("y", 1), "z"]
    assert tasks[("y", 1)] == Task(add, TaskRef(("x", 1)), TaskRef(("x", 0)))
    assert tasks[("y", 1)].dependencies == {("x", 0), ("x", 1)}
    assert tasks["z"].dependencies == frozenset() and tasks["z"]({}) == 3
    with_kwargs = build_tasks(["k"], [int], [("ff",)], [()], {"base": 16})
    assert with_kwargs["k"]({}) == 255


class Listed(Task):
    """A Task subclass: its dependencies come through the public property."""


def test_numbered_dependencies_agree_with_every_node_kind():
    from itertools import repeat

    from hlg.task import build_tasks, numbered_dependencies

    keys = ["a", "b", ("c", 0), "d"]
    number = {key: i for i, key in enumerate(keys)}.__getitem__
    nodes = [
        DataNode(1),
        Alias(("c", 0)),
        Task(abs, 1),
        Task(abs, TaskRef("d")),
        Task(add, TaskRef("d"), TaskRef("a")),
        Task(max, TaskRef("b"), TaskRef("a"), TaskRef("b"), TaskRef("d")),
        Task(add, TaskRef("d"), [TaskRef(("c", 0)), TaskRef("a")]),
        Task(dict, x=TaskRef("b")),
        Task.from_parts(max, ("d", "b", 3, "d"), (0, 1, 3)),
        Listed(add, TaskRef("d"), TaskRef("b")),
        *build_tasks(["p", "q"], repeat(add), [("b", "a"), (1, 2)], [(0, 1), ()]).values(),
    ]
    numbered = numbered_dependencies(nodes, number)
    assert numbered == [sorted(map(number, node.dependencies)) for node in nodes]
    assert numbered[5] == [0, 1, 3]  # each key once, in ascending order
    assert numbered[8] == [1, 3]


def test_numbered_dependencies_let_the_number_function_raise():
    from hlg.task import numbered_dependencies

    with pytest.raises(KeyError, match="b"):
        numbered_dependencies([Task(add, TaskRef("a"), TaskRef("b"))], {"a": 0}.__getitem__)
    with pytest.raises(KeyError, match="x"):
        numbered_dependencies([Task(abs, TaskRef("x"))], {}.__getitem__)
