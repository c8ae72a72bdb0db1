import sys

import pytest

import hlg
from hlg.visualize import to_networkx
from tests.visualize.helpers import sample_graph, small_flat

nx = pytest.importorskip("networkx")


def test_layer_graph_nodes_edges_and_attributes():
    g = sample_graph().to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert list(g.nodes) == ["counted", "doubled", "total"]
    assert set(g.edges) == {("counted", "doubled"), ("doubled", "total")}
    attrs = g.nodes["doubled"]
    assert (attrs["layer_type"], attrs["tag"], attrs["tasks"], attrs["blocks"]) == (
        "Blockwise",
        "hlg.blockwise",
        6,
        "6 blocks",
    )
    assert g.nodes["counted"]["annotations"] == {"priority": 2}
    assert g.nodes["total"]["packed_bytes"] > 0


def test_task_graph_nodes_edges_and_attributes():
    flat = small_flat()
    g = flat.to_networkx()
    assert set(g.nodes) == set(flat.tasks)
    assert set(g.edges) == {(("x", i), ("y", i)) for i in range(3)} | {
        (("y", i), "z") for i in range(3)
    }
    assert g.nodes[("y", 1)]["group"] == "y" and g.nodes["z"]["remote"] is False
    assert nx.is_directed_acyclic_graph(g)


def test_task_graph_annotations_and_remote_keys():
    layer = hlg.MaterializedLayer(
        {"y": hlg.Task(abs, hlg.TaskRef("r"))}, name="y", annotations={"priority": 4}
    )
    flat = hlg.unpack(hlg.pack(layer, "y", remote_keys=["r"]))
    g = to_networkx(flat)
    assert g.nodes["y"]["priority"] == 4
    assert g.nodes["r"]["remote"] is True and list(g.edges) == [("r", "y")]


def test_to_networkx_without_networkx(monkeypatch):
    monkeypatch.setitem(sys.modules, "networkx", None)
    with pytest.raises(hlg.NotInstalledError, match="pip install 'hlg\\[viz\\]'"):
        sample_graph().to_networkx()
