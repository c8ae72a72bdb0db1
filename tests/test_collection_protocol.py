"""What docs/collections.md says happens when a collection is incomplete or wrong."""

import pytest

import hlg


class Partial:
    """A collection with only the methods given to it."""

    def __init__(self, **methods):
        for name, value in methods.items():
            setattr(self, name, value)


GRAPH = hlg.HighLevelGraph.from_dict({"x": 1}, name="x")
WHOLE = {
    "__hlg_graph__": lambda: GRAPH,
    "__hlg_layers__": lambda: ("x",),
    "__hlg_keys__": lambda: "x",
    "__hlg_postcompute__": lambda: ((lambda value: value), ()),
}


def without(name):
    return Partial(**{k: v for k, v in WHOLE.items() if k != name})


def test_a_whole_collection_computes():
    assert hlg.compute(Partial(**WHOLE), scheduler="sync") == (1,)


@pytest.mark.parametrize("name", ["__hlg_graph__", "__hlg_layers__"])
def test_compute_names_the_missing_graph_methods(name):
    with pytest.raises(hlg.UsageError, match="has __hlg_keys__ but not __hlg_graph__ and"):
        hlg.compute(without(name), scheduler="sync")


def test_compute_names_a_missing_postcompute():
    with pytest.raises(hlg.UsageError, match=r"has no __hlg_postcompute__\(\)"):
        hlg.compute(without("__hlg_postcompute__"), scheduler="sync")


def test_persist_names_a_missing_postpersist():
    with pytest.raises(hlg.UsageError, match=r"has no __hlg_postpersist__\(\)"):
        hlg.persist(Partial(**WHOLE), scheduler="sync")


def test_a_graph_method_returning_no_graph_is_a_graph_error_naming_the_type():
    wrong = Partial(**{**WHOLE, "__hlg_graph__": lambda: ["x"]})
    with pytest.raises(hlg.GraphError, match=r"Partial.__hlg_graph__\(\) returned list"):
        hlg.get(wrong, "x")
    with pytest.raises(hlg.GraphError, match="got list"):
        hlg.compute(wrong, scheduler="sync")


def test_a_collection_is_a_graph_for_get_pack_and_order():
    whole = Partial(**WHOLE)
    assert hlg.get(whole, "x", scheduler="sync") == 1
    assert hlg.unpack(hlg.pack(whole, "x")).keys == ["x"]
    assert hlg.order(whole) == {"x": 0}
