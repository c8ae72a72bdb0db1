"""The expression route's objects, without a cluster: what travels and what dask sees."""

from __future__ import annotations

import pickle
import pickletools
from operator import add

import pytest

import hlg

dask = pytest.importorskip("dask")
pytest.importorskip("distributed")
from hlg.distributed import PackedGraph, collection, packed_keys  # noqa: E402

GRAPH = {"x": 1, "y": (add, "x", 1), "z": (add, "y", "x")}


def _globals(data: bytes) -> set[str]:
    """Modules a pickle imports when it is loaded."""
    out = set()
    strings: list[str] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            out.add(strings[-2])
        elif op.name == "GLOBAL":
            out.add(arg.split(" ")[0])
    return out


def test_packed_graph_pickle_holds_bytes_not_tasks_or_functions():
    def user_function(a):
        return a

    data = hlg.pack({**GRAPH, "w": (user_function, "z")}, ["w"])
    expr = PackedGraph(data, ["w"])
    assert sorted(expr.__dask_graph__()) == ["w", "x", "y", "z"]  # cached on expr now
    pickled = pickle.dumps(expr)
    assert len(pickled) < len(data) + 500
    # Loading it imports dask's expression module and hlg, never the user's code.
    assert _globals(pickled) <= {"dask._expr", "hlg.distributed.expr", "builtins"}
    again = pickle.loads(pickled)
    assert "flat" not in again.__dict__
    assert again.__dask_keys__() == ["w"] and again._name == expr._name


def test_packed_graph_annotations_are_expanded_per_key():
    with hlg.annotate(retries=3):
        layer = hlg.MaterializedLayer(GRAPH, name="g")
    expr = PackedGraph(hlg.pack(layer, ["z"]), ["z"])
    assert expr.__dask_annotations__() == {"retries": {"x": 3, "y": 3, "z": 3}}


def test_packed_graph_refuses_what_is_not_packed_bytes():
    with pytest.raises(hlg.UsageError, match="takes the bytes hlg.pack returns"):
        PackedGraph(GRAPH, ["z"])


def test_collection_computes_with_dask_local_schedulers():
    both = collection(GRAPH, ["y", ["z"]])
    assert dask.compute(both, scheduler="sync") == ([2, [3]],)
    single = collection(GRAPH, "z", finalize=str)
    assert dask.compute(single, scheduler="threads") == ("3",)
    assert dask.compute(collection(hlg.pack(GRAPH, ["y"]), ["y"], finalize=sum))[0] == 2
    assert dask.is_dask_collection(single)


def test_collection_token_follows_graph_and_finalize():
    data = hlg.pack(GRAPH, ["y", "z"])
    a = collection(data, ["z"])
    assert dask.base.tokenize(a) == dask.base.tokenize(collection(data, ["z"]))
    assert dask.base.tokenize(a) != dask.base.tokenize(collection(hlg.pack(GRAPH, ["y"]), ["y"]))
    assert dask.base.tokenize(a) != dask.base.tokenize(collection(data, ["z"], finalize=str))


def test_collection_refuses_bad_keys_and_finalize():
    with pytest.raises(hlg.InvalidKeyError):
        collection(GRAPH, [["z", {"not": "a key"}]])
    with pytest.raises(hlg.UsageError, match="finalize must be callable"):
        collection(GRAPH, ["z"], finalize=3)


def test_packed_keys_reads_the_envelope_only():
    assert packed_keys(hlg.pack(GRAPH, [["z"], "y"])) == ["z", "y"]
    with pytest.raises(hlg.UsageError, match="name no requested keys"):
        packed_keys(hlg.pack(GRAPH))
