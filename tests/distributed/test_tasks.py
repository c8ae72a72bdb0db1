"""hlg nodes as dask task specs (no cluster needed)."""

from __future__ import annotations

import pickle
from operator import add

import pytest

import hlg
from hlg.task import Opaque

pytest.importorskip("distributed")
from dask._task_spec import Alias as DaskAlias
from dask._task_spec import DataNode as DaskDataNode
from dask._task_spec import TaskRef as DaskTaskRef

from hlg.distributed import HlgNode, to_dask


def _flat(graph, keys):
    return hlg.unpack(hlg.pack(graph, keys))


def test_to_dask_keeps_keys_dependencies_and_values():
    graph = {
        ("x", 0): 1,
        ("x", 1): 2,
        "pair": (add, ("x", 0), ("x", 1)),
        "nested": (sum, [("x", 0), ("x", 1)]),
        "kw": (hlg.apply, int, ("ff",), {"base": 16}),
        "alias": "pair",
    }
    flat = _flat(graph, ["pair", "nested", "kw", "alias"])
    dsk = to_dask(flat)
    assert list(dsk) == list(flat.tasks)
    values = {("x", 0): 1, ("x", 1): 2}
    for key, node in flat.tasks.items():
        assert dsk[key].key == key
        assert dsk[key].dependencies == node.dependencies
    assert type(dsk[("x", 0)]) is DaskDataNode
    assert type(dsk["alias"]) is DaskAlias and dsk["alias"].target == "pair"
    assert dsk["pair"](values) == 3
    assert dsk["nested"](values) == 3
    assert dsk["kw"]({}) == 255


def test_to_dask_never_decodes_payloads_on_the_scheduler():
    flat = _flat({"data": [1, 2, 3], "obj": (len, "data")}, ["obj"])
    node = flat.tasks["data"]
    dsk = to_dask(flat)
    # A value that is decoded where the task runs stays wrapped, undecoded.
    assert type(dsk["data"]) is HlgNode and dsk["data"].node is node
    assert dsk["data"]({}) == [1, 2, 3]
    assert dsk["obj"]({"data": [1, 2, 3]}) == 3
    opaque = hlg.DataNode(Opaque("pickle", b"not loaded"))
    assert to_dask(hlg.FlatGraph({"o": opaque}, ["o"]))["o"].node is opaque


def test_to_dask_refuses_anything_but_a_flat_graph():
    with pytest.raises(hlg.UsageError, match="takes the FlatGraph that hlg.unpack returns"):
        to_dask({"a": 1})


def test_hlg_node_pickles_and_names_its_key_when_the_task_raises():
    flat = _flat({"a": 0, "b": (divmod, 1, "a")}, ["b"])
    node = to_dask(flat)["b"]
    again = pickle.loads(pickle.dumps(node))
    assert again == node
    assert again.dependencies == frozenset({"a"})
    with pytest.raises(ZeroDivisionError) as info:
        again({"a": 0})
    assert info.value.__notes__ == ["hlg: raised while computing key 'b'"]


def test_hlg_node_substitute_renames_dependencies_and_key():
    node = HlgNode("b", hlg.Task(add, hlg.TaskRef("a"), hlg.TaskRef("c")))
    renamed = node.substitute({"a": "a-2", "c": DaskTaskRef("c-2")}, key="b-2")
    assert renamed.key == "b-2" and renamed.dependencies == frozenset({"a-2", "c-2"})
    assert renamed({"a-2": 1, "c-2": 2}) == 3
    twice = renamed.substitute({"a-2": "a-3"})
    assert twice.dependencies == frozenset({"a-3", "c-2"}) and twice({"a-3": 5, "c-2": 1}) == 6
    assert node.substitute({"zzz": "y"}) is node
    assert node.copy() == node
    with pytest.raises(hlg.UsageError, match="inline a task for dependency 'a'"):
        node.substitute({"a": DaskDataNode("a", 1)})
