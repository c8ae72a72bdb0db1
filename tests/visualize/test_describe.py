import json
import tracemalloc

import pytest

import hlg
from hlg.visualize import GraphDescription, block_counts, describe, describe_packed
from tests.visualize.counting import CountedLayer
from tests.visualize.helpers import sample_graph


@pytest.fixture(autouse=True)
def _reset_counter():
    CountedLayer.calls = 0


def test_describe_graph_rows_in_dependency_order():
    info = describe(sample_graph())
    assert [row.name for row in info.layers] == ["counted", "doubled", "total"]
    counted, doubled, total = info.layers
    assert (counted.layer_type, counted.tag, counted.tasks) == (
        "CountedLayer",
        "tests.visualize.counting",
        6,
    )
    assert (doubled.layer_type, doubled.blocks, doubled.dependencies) == (
        "Blockwise",
        "6 blocks",
        ("counted",),
    )
    assert dict(counted.annotations) == {"priority": 2}
    assert dict(total.annotations) == {"retries": 3}
    assert info.ntasks == 13


def test_describe_never_materializes():
    graph = sample_graph()
    describe(graph)
    str(graph)
    graph.describe().to_text()
    graph._repr_html_()
    graph.to_dot()
    assert CountedLayer.calls == 0
    hlg.get(graph, "total", scheduler="sync")  # the counter does count
    assert CountedLayer.calls == 1


def test_describe_packed_bytes_add_up_to_about_the_envelope():
    graph = sample_graph()
    info = describe(graph)
    assert all(row.packed_bytes and row.packed_bytes > 0 for row in info.layers)
    packed = len(hlg.pack(graph))
    assert info.total_bytes is not None
    assert info.total_bytes <= packed < info.total_bytes + 100


def test_describe_skips_the_size_of_a_layer_that_packs_as_tasks():
    class Plain(hlg.Layer):
        def __iter__(self):
            return iter([("p", 0)])

        def __len__(self):
            return 1

        def materialize(self):
            raise AssertionError("describe materialised the layer")

    row = describe(Plain("p")).layers[0]
    assert row.packed_bytes is None and "packs as its tasks" in row.note
    assert describe(Plain("p")).total_bytes is None


def test_describe_without_sizes_packs_nothing():
    info = describe(sample_graph(), sizes=False)
    assert all(row.packed_bytes is None for row in info.layers)
    assert "packed" not in info.rows()[0]


def test_describe_layer_and_collection():
    layer = hlg.blockwise(abs, "y", "ij", "x", "ij", numblocks={"x": (3, 4)})
    info = layer.describe()
    assert info.kind == "Layer" and info.layers[0].blocks == "3 x 4 blocks"

    class Collection:
        def __hlg_graph__(self):
            return sample_graph()

        def __hlg_layers__(self):
            return ("total",)

    assert len(describe(Collection()).layers) == 3


def test_describe_flat_graph_from_its_layer_summaries():
    flat = hlg.unpack(hlg.pack(sample_graph(), "total"))
    info = flat.describe()
    assert info.kind == "FlatGraph"
    assert [(r.name, r.layer_type, r.tasks) for r in info.layers] == [
        ("counted", "CountedLayer", 6),
        ("doubled", "Blockwise", 6),
        ("total", "MaterializedLayer", 1),
    ]
    assert (info.requested_keys, info.remote_keys) == (1, 0)


def test_describe_rejects_other_objects():
    with pytest.raises(hlg.UsageError, match="describe\\(\\) takes .* got int"):
        describe(3)


def test_describe_packed_reads_states_without_building_tasks():
    huge = hlg.blockwise(abs, "h", "ij", numblocks={}, new_axes={"i": 10_000, "j": 10_000})
    counted = CountedLayer("c", 10**8)
    graph = hlg.HighLevelGraph({"h": huge, "c": counted})
    data = hlg.pack(graph)
    tracemalloc.start()
    try:
        info = describe_packed(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.ntasks == 2 * 10**8
    assert peak < 2_000_000
    assert CountedLayer.calls == 0


def test_describe_packed_lists_functions_keys_and_record_sizes():
    data = hlg.pack(sample_graph(), "total", remote_keys=[("elsewhere", 0)])
    info = describe(data)
    assert info.kind == "packed graph" and info.format_version == 1
    assert (info.requested_keys, info.remote_keys, info.total_bytes) == (1, 1, len(data))
    assert {f.name for f in info.functions} >= {"mul", "sum"}
    assert all(f.nbytes > 0 for f in info.functions)
    sizes = [row.packed_bytes for row in info.layers]
    assert all(sizes) and sum(sizes) < len(data)


def test_describe_packed_materialized_layer_counted_from_its_keys():
    data = hlg.pack({("a", i): i for i in range(50)})
    assert describe(data).layers[0].tasks == 50


def test_describe_packed_unregistered_tag_is_shown_as_such():
    data = hlg.pack(sample_graph())
    # Rename the tag on the wire: a sender's layer type this process does not know.
    renamed = data.replace(b"tests.visualize.counting", b"tests.visualize.countinX")
    row = describe(renamed).layers[0]
    assert (row.layer_type, row.tasks, row.tag) == (
        "unregistered",
        None,
        "tests.visualize.countinX",
    )
    assert "--import" in row.note
    assert describe(renamed).ntasks is None
    assert "? tasks" in describe(renamed).summary()


def test_describe_packed_bad_bytes_raise_unpack_errors():
    data = hlg.pack(sample_graph())
    with pytest.raises(hlg.UnpackError):
        describe(data[: len(data) // 2])
    with pytest.raises(hlg.UnpackError):
        describe(b"not an hlg graph")


def test_describe_text_table_and_notes():
    text = str(describe(sample_graph()))
    lines = text.splitlines()
    assert lines[0] == "HighLevelGraph: 3 layers, 13 tasks, " + lines[0].split(", ")[-1]
    assert lines[1].split() == [
        "layer", "type", "tag", "tasks", "blocks", "depends", "on", "annotations", "packed",
    ]  # fmt: skip
    assert "priority=2" in text and "retries=3" in text


def test_describe_to_json_round_trips_through_json():
    info = describe(hlg.pack(sample_graph()))
    data = json.loads(info.to_json())
    assert data["tasks"] == 13
    assert [layer["name"] for layer in data["layers"]] == ["counted", "doubled", "total"]
    assert data["layers"][0]["annotations"] == {"priority": 2}


def test_graph_str_is_the_layer_table_and_repr_stays_one_line():
    graph = sample_graph()
    assert str(graph).startswith("HighLevelGraph: 3 layers, 13 tasks\nlayer")
    assert repr(graph) == "<HighLevelGraph: 3 layers, 13 tasks>"


def test_block_counts_for_culled_blockwise_and_partitions():
    layer = hlg.blockwise(abs, "y", "ij", "x", "ij", numblocks={"x": (3, 4)})
    culled, _ = layer.cull([("y", 0, 0), ("y", 1, 1)])
    assert block_counts(culled) == "3 x 4 blocks (2 kept)"

    class Shuffled(CountedLayer):
        npartitions_in = 100
        npartitions = 10
        nstages = 1
        output_partitions = tuple(range(10))

    assert block_counts(Shuffled("s", 10)) == "100 -> 10 partitions"

    class Partitioned(CountedLayer):
        npartitions = 1

    assert block_counts(Partitioned("p", 1)) == "1 partition"
    assert block_counts(CountedLayer("c", 1)) == ""


def test_describe_rich_table_renders_each_layer():
    console_module = pytest.importorskip("rich.console")
    console = console_module.Console(width=200, record=True, color_system=None)
    console.print(describe(sample_graph()))
    text = console.export_text()
    for name in ("counted", "doubled", "total"):
        assert name in text


def test_description_is_a_frozen_value():
    info = describe(sample_graph())
    assert isinstance(info, GraphDescription)
    with pytest.raises(AttributeError):
        info.kind = "x"  # type: ignore[misc]


def test_describe_shows_a_cyclic_graph_in_given_order():
    a = hlg.MaterializedLayer({"a": 1}, name="a")
    b = hlg.MaterializedLayer({"b": 2}, name="b")
    graph = hlg.HighLevelGraph({"b": b, "a": a}, {"a": {"b"}, "b": {"a"}})
    with pytest.raises(hlg.CycleError):
        graph.topological_layers()
    assert [row.name for row in describe(graph).layers] == ["b", "a"]
    assert "a" in str(graph)


def test_describe_notes_a_layer_that_cannot_pack():
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("no pickling here")

    layer = hlg.MaterializedLayer({"x": (print, Unpicklable())}, name="x")
    row = describe(layer).layers[0]
    assert row.packed_bytes is None and row.note.startswith("cannot be packed: ")
    assert row.tasks == 1


def test_describe_does_not_pack_a_huge_layer_of_tasks_to_measure_it(monkeypatch):
    import importlib

    describe_module = importlib.import_module("hlg.visualize.describe")
    monkeypatch.setattr(describe_module, "MAX_MEASURED_TASKS", 10)
    small = hlg.MaterializedLayer({("s", i): i for i in range(10)}, name="s")
    big = hlg.MaterializedLayer({("b", i): i for i in range(11)}, name="b")
    rows = describe(hlg.HighLevelGraph({"s": small, "b": big})).layers
    assert rows[0].packed_bytes is not None and rows[1].packed_bytes is None
    assert "not measured: its 11 tasks" in rows[1].note


def test_block_counts_of_shuffle_layers():
    from hlg.layers.shuffle import ShuffleLayer, SimpleShuffleLayer

    simple = SimpleShuffleLayer("s", "x", 6, dict, list, npartitions_out=4)
    assert block_counts(simple) == "6 -> 4 partitions"
    staged = ShuffleLayer("t", "x", 100, dict, list, max_branch=10)
    assert block_counts(staged) == "100 -> 100 partitions in 2 stages"
    culled, _ = staged.cull([("t", 3)])
    assert block_counts(culled) == "100 -> 100 partitions in 2 stages (1 kept)"
    row = describe(staged).layers[0]
    assert row.tasks == len(staged) and row.packed_bytes is not None
