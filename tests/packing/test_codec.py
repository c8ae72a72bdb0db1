"""Values, tasks and states round-trip through packing exactly."""

from fractions import Fraction
from operator import add

import msgpack
import numpy as np
import pytest

import hlg
from hlg import DataNode, Task, TaskRef
from hlg.limits import NESTING_LIMIT
from hlg.packing.codec import Decoder, Encoder
from hlg.task import Opaque, SerializedFunction
from hlg.testing import RangeLayer

from ..conftest import inc


def identity(x):
    return x


def round_trip(value):
    """Pack a graph whose single task returns ``value``, unpack it, and run it."""
    data = hlg.pack({"v": Task(identity, value)}, "v")
    return hlg.get(data, "v")


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        2**64 - 1,
        2**200,
        -(2**70),
        1.5,
        float("inf"),
        "text",
        "",
        b"bytes",
        ("a", 1),
        [1, [2, (3, [4])]],
        (),
        [],
        {"a": [1, 2], ("t", 1): (2, 3), 4: None},
        {1, 2, 3},
        frozenset({("x", 1)}),
        Fraction(1, 3),
        3 + 4j,
        range(5),
    ],
)
def test_argument_values_round_trip_exactly(value):
    result = round_trip(value)
    assert result == value
    assert type(result) is type(value)


def test_lists_and_tuples_stay_apart_at_every_depth():
    value = ([1, (2, [3])], [(4,)])
    result = round_trip(value)
    assert result == value
    assert type(result[0]) is list and type(result[0][1]) is tuple and type(result[0][1][1]) is list


def test_numpy_arrays_travel_without_pickle_and_come_back_equal():
    enc = Encoder()
    array = np.arange(12, dtype="f4").reshape(3, 4)[:, ::2]
    ext = enc.value(array)
    assert b"pickle" not in ext.data and b"numpy" in ext.data
    for value in (array, np.float32(2.5), np.int64(7), np.array(["a", "bc"]), np.zeros((0, 3))):
        result = round_trip(value)
        assert type(result) is type(value)
        np.testing.assert_array_equal(result, value)
        assert getattr(result, "dtype", None) == getattr(value, "dtype", None)


def test_numpy_object_arrays_and_subclasses_fall_back_to_pickle():
    obj = np.array([{"a": 1}, None], dtype=object)
    assert round_trip(obj).tolist() == obj.tolist()
    masked = np.ma.masked_array([1, 2], mask=[True, False])
    assert isinstance(round_trip(masked), np.ma.MaskedArray)


def test_tuple_keys_come_back_as_tuples():
    graph = {("x", 0, "a"): 1, ("y", 2): (inc, ("x", 0, "a"))}
    flat = hlg.unpack(hlg.pack(graph))
    assert set(flat.tasks) == {("x", 0, "a"), ("y", 2)}
    assert flat.tasks[("y", 2)].dependencies == {("x", 0, "a")}
    assert all(type(k) is tuple for k in flat.tasks)


def test_every_node_form_round_trips():
    graph = {
        "a": 1,
        "arr": np.arange(3),
        "b": Task(add, TaskRef("a"), 2),
        "c": Task(dict, a=TaskRef("a"), b=[TaskRef("b")]),
        "d": Task(sum, [TaskRef("a"), Task(inc, TaskRef("b"))]),
        "e": hlg.Alias("d"),
        "f": Task(identity, np.ones(2)),
        "g": Task(add, TaskRef("a"), TaskRef("a")),
        "h": Task(map, inc, [1, 2]),
        "i": Task(identity, TaskRef("a")),
        "k": Task(sorted, [TaskRef("a"), -5], key=abs),
    }
    direct = hlg.get(graph, list(graph))
    via_bytes = hlg.get(hlg.pack(graph), list(graph))
    for x, y in zip(direct, via_bytes, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        elif isinstance(x, map):
            assert list(x) == list(y)
        else:
            assert x == y


def test_a_function_used_by_many_tasks_is_packed_once():
    n = 100_000
    graph = {("x", i): (inc, i) for i in range(n)}
    data = hlg.pack(graph)
    envelope = msgpack.unpackb(data, strict_map_key=False, ext_hook=lambda c, d: None)
    assert len(envelope["functions"]) == 1
    assert len(data) < 40 * n


def test_equal_functions_from_distinct_objects_share_one_table_entry():
    from functools import partial

    enc = Encoder()
    assert enc.function(partial(add, 1)) == enc.function(partial(add, 1))
    assert len(enc.functions) == 1


def test_state_must_be_msgpack_native():
    enc = Encoder()
    assert enc.state({"a": [1, (2,)]}, layer="l")["a"].code == 1
    with pytest.raises(hlg.PackError, match="layer 'l'.*encoder.value"):
        enc.state({"a": object()}, layer="l")


def test_decoder_never_unpickles_functions_or_opaque_values():
    data = hlg.pack({"v": Task(identity, Fraction(1, 2))}, "v")
    flat = hlg.unpack(data)
    task = flat.tasks["v"]
    assert type(task.func) is SerializedFunction and task.func._func is None
    assert type(task.parts().args[0]) is Opaque


def test_function_table_entry_is_loaded_once_per_process():
    flat = hlg.unpack(hlg.pack({("x", i): (inc, i) for i in range(10)}))
    funcs = {id(t.func) for t in flat.tasks.values()}
    assert len(funcs) == 1


def test_packed_size_of_an_o1_layer_does_not_grow_with_tasks():
    small = len(hlg.pack(RangeLayer("r", inc, 0, 1_000)))
    large = len(hlg.pack(RangeLayer("r", inc, 0, 1_000_000)))
    # Only the integer bounds grow, by a byte or two of msgpack encoding.
    assert large - small <= 4


def test_decoder_rejects_unknown_extension_codes():
    dec = Decoder([])
    with pytest.raises(hlg.UnpackError, match="extension type 99"):
        dec.unpackb(msgpack.packb(msgpack.ExtType(99, b"")))


def test_data_node_holding_payloads_is_decoded_on_the_worker():
    flat = hlg.unpack(hlg.pack({"arr": DataNode(np.arange(3))}, "arr"))
    assert flat.tasks["arr"].parts()[1]
    np.testing.assert_array_equal(hlg.get(flat, "arr"), np.arange(3))


# --------------------------------------------------------------------------- nesting


def _nest(kind, depth):
    value = 1
    for _ in range(depth):
        if kind == "list":
            value = [value]
        elif kind == "tuple":
            value = (value, "t")
        elif kind == "dict":
            value = {"k": value}
        elif kind == "frozenset":
            value = frozenset({value})
    return value


@pytest.mark.parametrize("kind", ["list", "tuple", "dict", "frozenset"])
def test_values_nested_up_to_the_limit_round_trip_and_deeper_ones_are_refused_by_pack(kind):
    value = _nest(kind, NESTING_LIMIT)
    flat = hlg.unpack(hlg.pack({"b": DataNode(value)}, "b"))
    assert hlg.get(flat, "b", scheduler="sync") == value
    with pytest.raises(hlg.PackError, match=f"more than {NESTING_LIMIT} containers deep"):
        hlg.pack({"b": DataNode(_nest(kind, NESTING_LIMIT + 1))}, "b")


def test_nested_tasks_count_their_arguments_towards_the_limit():
    value = 1
    for _ in range(NESTING_LIMIT // 2):
        value = Task(inc, value)
    assert hlg.get({"b": value}, "b", scheduler="sync") == 1 + NESTING_LIMIT // 2
    data = hlg.pack({"b": value}, "b")
    assert hlg.get(data, scheduler="sync") == (1 + NESTING_LIMIT // 2,)
    with pytest.raises(hlg.PackError, match="containers deep"):
        hlg.pack({"b": Task(inc, [value])}, "b")


def test_a_data_node_holding_a_reference_is_refused_at_unpack():
    data = hlg.pack({"a": 1, "b": DataNode([TaskRef("a")])}, "b")
    with pytest.raises(hlg.LayerStateError, match="data node 'b' holds a reference to 'a'"):
        hlg.unpack(data)


def test_bytes_that_are_no_hlg_graph_say_so():
    import pickle

    with pytest.raises(hlg.UnpackError, match="not an hlg packed graph.*look like a pickle"):
        hlg.unpack(pickle.dumps({"x": 1}))
    with pytest.raises(hlg.UnpackError, match="not an hlg packed graph: they hold an empty map"):
        hlg.unpack(msgpack.packb({}))
    with pytest.raises(hlg.UnpackError, match="first field is 'layers'"):
        hlg.unpack(msgpack.packb({"layers": [], "format": "hlg"}))
