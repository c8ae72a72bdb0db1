from operator import add

import pytest

import hlg


def inc(x):
    return x + 1


def boom(x):
    raise ValueError(f"bad value {x}")


def test_get_key_conventions():
    dsk = {"x": 1, "y": 2, "z": (add, "x", "y")}
    assert hlg.get(dsk, "z") == 3
    assert hlg.get(dsk, ["x", "z"]) == (1, 3)
    assert hlg.get(dsk, [["x"], "y"]) == ((1,), 2)
    assert hlg.get(dsk, [["x", ["y"]], []]) == ((1, (2,)), ())


def test_get_unknown_key_raises_key_error_naming_it():
    with pytest.raises(KeyError, match="'missing'") as info:
        hlg.get({"x": 1}, "missing")
    assert isinstance(info.value, hlg.MissingKeyError)


def test_get_runs_only_what_the_requested_keys_need():
    ran = []

    def record(name):
        ran.append(name)
        return name

    dsk = {"a": (record, "A"), "b": (record, "B"), "c": (add, "a", "a")}
    assert hlg.get(dsk, "c") == "AA"
    assert ran == ["A"]


def test_get_reraises_task_errors_with_a_note_naming_the_key():
    with pytest.raises(ValueError, match="bad value 1") as info:
        hlg.get({"x": 1, "y": (boom, "x")}, "y")
    assert any("'y'" in note for note in info.value.__notes__)
    assert info.traceback[-1].name == "boom"


def test_get_accepts_every_graph_form():
    dsk = {"x": 1, "y": (inc, "x")}
    graph = hlg.HighLevelGraph.from_dict(dsk)
    flat = hlg.unpack(hlg.pack(graph, "y"))
    for form in (dsk, graph, graph.layers[next(iter(graph.layers))], flat, hlg.pack(graph, "y")):
        assert hlg.get(form, "y") == 2
    assert hlg.get(flat) == (2,)
    assert hlg.get(hlg.pack(graph, ["y"])) == (2,)


def test_get_without_keys_needs_a_packed_or_flat_graph():
    with pytest.raises(hlg.GraphError, match="pass the keys"):
        hlg.get({"x": 1})


def test_get_of_a_cycle_raises_cycle_error():
    with pytest.raises(hlg.CycleError, match="'a'"):
        hlg.get({"a": (inc, "b"), "b": (inc, "a")}, "a")


def test_get_releases_intermediate_results():
    import weakref

    class Big:
        pass

    refs = []

    def make(_):
        obj = Big()
        refs.append(weakref.ref(obj))
        return obj

    def check(prev):
        # Every result but the one just passed in has been released.
        assert sum(r() is not None for r in refs) <= 2
        return prev

    dsk = {("s", 0): (make, 0)}
    for i in range(1, 50):
        dsk[("m", i)] = (check, ("s", i - 1))
        dsk[("s", i)] = (make, ("m", i))
    hlg.get(dsk, ("s", 49))


def test_get_runs_a_100000_task_chain():
    n = 100_000
    dsk = {("c", 0): 0}
    dsk.update({("c", i): (inc, ("c", i - 1)) for i in range(1, n)})
    assert hlg.get(dsk, ("c", n - 1)) == n - 1
