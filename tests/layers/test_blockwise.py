from operator import add, mul, neg

import msgpack
import numpy as np
import pytest

import hlg
from hlg import TaskRef
from hlg.layers.base import PendingKeys
from hlg.layers.blockwise import (
    BlockHint,
    BlockIndex,
    BlockPattern,
    BlockSeeds,
    BlockSlices,
    Blockwise,
    BlockwiseInput,
    BlockwiseState,
    DepInput,
    FusedFunction,
    KeyInput,
    ValueInput,
    blockwise,
    concatenate_blocks,
)
from hlg.layers.shuffle import SimpleShuffleLayer
from hlg.packing.codec import Encoder
from hlg.testing import check_layer


def pair(a, b):
    return (a, b)


def test_elementwise_and_transpose_indices():
    layer = blockwise(pair, "z", "ij", "x", "ij", "y", "ji", numblocks={"x": (2, 3), "y": (3, 2)})
    assert len(layer) == 6
    assert layer[("z", 1, 2)].dependencies == {("x", 1, 2), ("y", 2, 1)}
    assert set(layer) == {("z", i, j) for i in range(2) for j in range(3)}
    check_layer(layer)


def test_contraction_gives_lists_of_blocks():
    layer = blockwise(pair, "z", "ik", "x", "ij", "y", "jk", numblocks={"x": (2, 3), "y": (3, 4)})
    task = layer[("z", 1, 3)]
    assert task.args[0] == [TaskRef(("x", 1, j)) for j in range(3)]
    assert task.args[1] == [TaskRef(("y", j, 3)) for j in range(3)]
    assert len(layer) == 8
    check_layer(layer)


def test_contraction_with_concatenate_builds_one_block():
    layer = blockwise(
        np.sum, "s", "i", "x", "ij", numblocks={"x": (2, 3)}, concatenate=True, axis=1
    )
    blocks = {("x", i, j): np.full((2, 2), i + j) for i in range(2) for j in range(3)}
    graph = hlg.HighLevelGraph({"x": blocks, "s": layer}, {"s": {"x"}})
    result = hlg.get(graph, ("s", 1), scheduler="sync")
    np.testing.assert_array_equal(result, [2 * (1 + 2 + 3)] * 2)
    np.testing.assert_array_equal(
        concatenate_blocks([[np.ones((1, 1))] * 2] * 2, [0, 1]), np.ones((2, 2))
    )


def test_broadcasting_an_input_with_one_block():
    layer = blockwise(
        pair, "z", "ij", "x", "ij", "row", "ij", numblocks={"x": (3, 4), "row": (1, 4)}
    )
    assert layer[("z", 2, 3)].dependencies == {("x", 2, 3), ("row", 0, 3)}
    assert len(layer) == 12


def test_inputs_without_index_literals_and_whole_keys():
    layer = blockwise(pair, "z", "i", "x", "i", TaskRef("total"), None, numblocks={"x": (3,)})
    assert layer[("z", 0)].dependencies == {("x", 0), "total"}
    literal = blockwise(add, "w", "i", "x", "i", [1, 2], None, numblocks={"x": (2,)})
    assert literal[("w", 1)].args == (TaskRef(("x", 1)), [1, 2])
    check_layer(layer)


def test_new_axes_and_keyword_arguments_that_are_keys():
    layer = blockwise(
        pair, "z", "ij", "x", "i", numblocks={"x": (2,)}, new_axes={"j": 3}, b=TaskRef("k")
    )
    assert len(layer) == 6
    assert layer[("z", 1, 2)].dependencies == {("x", 1), "k"}
    assert layer[("z", 1, 2)].kwargs == {"b": TaskRef("k")}


def test_block_dependent_inputs():
    assert BlockIndex((2, 2))[(1, 0)] == (1, 0)
    assert BlockPattern("f-{0}-{1}.csv", (9, 9))[(3, 4)] == "f-3-4.csv"
    slices = BlockSlices(((2, 2, 1),))
    assert slices[(2,)] == (slice(4, 5),)
    seeds = BlockSeeds(7, (100,))
    assert len({seeds[(i,)] for i in range(100)}) == 100
    layer = blockwise(
        str.format, "f", "i", "part-{}.csv", None, BlockIndex((100_000,)), "i", numblocks={}
    )
    assert hlg.get(hlg.pack(layer, [("f", 5)]), ("f", 5)) == "part-(5,).csv"
    files = blockwise(
        len, "n", "i", BlockPattern("data/part-{0:06d}.csv", (100_000,)), "i", numblocks={}
    )
    assert len(hlg.pack(files)) < 1_000  # 100 000 file names, packed as a pattern


def test_everything_is_lazy_on_a_layer_too_big_to_build():
    huge = blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (100_000, 100_000)})
    assert len(huge) == 10**10
    assert ("z", 99_999, 5) in huge and ("z", 100_000, 0) not in huge
    assert huge.get_dependencies(("z", 7, 8)) == {("x", 7, 8)}
    # Ten billion blocks: a cull that visited each would not finish.
    culled, external = huge.cull([("z", 3, 4), ("z", 5, 6)])
    assert len(culled) == 2 and external == {("x", 3, 4), ("x", 5, 6)}
    assert len(hlg.pack(huge)) < 2_000


def test_packed_size_does_not_grow_with_blocks():
    def size(n):
        return len(hlg.pack(blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (n, n)})))

    assert abs(size(1_000) - size(1_000_000)) <= 8


def test_culled_blocks_pack_as_a_box_or_a_list():
    layer = blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (100, 100)})
    box, _ = layer.cull([("z", i, j) for i in range(10, 20) for j in range(5, 8)])
    scattered, _ = layer.cull([("z", 0, 0), ("z", 50, 99)])
    for culled in (box, scattered):
        flat = hlg.unpack(
            hlg.pack(
                culled,
                remote_keys=list(
                    {d for t in culled.materialize().values() for d in t.dependencies}
                ),
            )
        )
        assert set(flat.tasks) == set(culled)
    assert len(hlg.pack(box)) < len(hlg.pack(layer)) + 40


def test_materialised_tasks_match_single_blocks_and_run():
    a = blockwise(mul, "a", "ij", "x", "ij", 10, None, numblocks={"x": (3, 3)})
    tasks = a.materialize()
    for key in a:
        assert tasks[key] == a[key]
    x = {("x", i, j): i * 3 + j for i in range(3) for j in range(3)}
    graph = hlg.HighLevelGraph({"x": x, "a": a}, {"a": {"x"}})
    assert hlg.get(graph, ("a", 2, 1)) == 70
    assert hlg.get(hlg.pack(graph), ("a", 2, 1)) == 70


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: blockwise(add, "z", "ij", "x", "ij", numblocks={}), "no entry in numblocks"),
        (lambda: blockwise(add, "z", "ij", "x", "i", numblocks={"x": (2,)}), "output index 'j'"),
        (
            lambda: blockwise(add, "z", "i", "x", "i", "y", "i", numblocks={"x": (2,), "y": (3,)}),
            "inputs must agree",
        ),
        (lambda: blockwise(add, "z", "i", "x", numblocks={"x": (2,)}), "pairs"),
        (
            lambda: blockwise(add, "z", "ij", "x", "ij", numblocks={"x": (2,)}),
            "1 dimension of blocks",
        ),
        (lambda: blockwise(add, "z", "i", 5, "i", numblocks={}), "must be a layer name"),
    ],
)
def test_bad_specifications_name_the_layer_and_say_what_to_do(call, message):
    with pytest.raises(hlg.UsageError, match=message):
        call()


def test_a_blockwise_layer_is_registered_and_rebuilt_by_tag():
    layer = blockwise(add, "z", "i", "x", "i", 1, None, numblocks={"x": (4,)})
    assert Blockwise.tag == "hlg.blockwise" and layer.packed_tag() == "hlg.blockwise"
    flat = hlg.unpack(hlg.pack(layer, remote_keys=[("x", i) for i in range(4)]))
    assert flat.layers[0].tag == "hlg.blockwise" and len(flat.tasks) == 4


def test_cull_keeps_blocks_in_the_order_asked_once_each():
    layer = blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (4, 4)})
    keys = [("z", 3, 0), ("z", 0, 2), ("z", 3, 0), ("z", 1, 1)]
    culled, external = layer.cull(keys)
    assert culled.output_blocks == ((3, 0), (0, 2), (1, 1))
    assert list(culled) == [("z", 3, 0), ("z", 0, 2), ("z", 1, 1)]
    assert external == {("x", 3, 0), ("x", 0, 2), ("x", 1, 1)}
    assert ("z", 0, 2) in culled and ("z", 0, 0) not in culled
    # Culling a culled layer again keeps a subset.
    again, _ = culled.cull([("z", 1, 1)])
    assert list(again) == [("z", 1, 1)]


@pytest.mark.parametrize(
    "bad",
    [("z", 9, 0), ("z", 0), ("y", 0, 0), ("z", 0, 1.0), ("z", True, 0), "z", ("z", -1, 0)],
)
def test_culling_to_a_key_the_layer_does_not_produce_names_it(bad):
    layer = blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (4, 4)})
    with pytest.raises(hlg.MissingKeyError, match=r"layer 'z' has no key .*cull it only to keys"):
        layer.cull([("z", 0, 0), bad])
    culled, _ = layer.cull([("z", 0, 0)])
    with pytest.raises(hlg.MissingKeyError, match="layer 'z' has no key"):
        culled.cull([("z", 1, 1)])  # a block culling removed


def test_filter_keys_finds_the_layers_keys_among_others():
    layer = blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (4, 4)})
    mine = [("z", 0, 1), ("z", 3, 3)]
    assert set(layer.filter_keys(mine)) == set(mine)
    assert set(layer.filter_keys([*mine, ("x", 0, 1), ("z", 4, 0), "z"])) == set(mine)
    assert set(layer.filter_keys([])) == set()
    culled, _ = layer.cull(layer.filter_keys(mine))
    assert list(culled) == mine


def test_output_blocks_given_to_the_constructor_are_checked():
    def build(blocks):
        return Blockwise(
            "z",
            abs,
            "ij",
            blockwise(abs, "z", "ij", "x", "ij", numblocks={"x": (2, 3)}).args,
            {"x": (2, 3)},
            output_blocks=blocks,
        )

    assert list(build([(1, 2), [0, 0], (1, 2)])) == [("z", 1, 2), ("z", 0, 0)]
    for bad in ([(2, 0)], [(0,)], [(0, "a")], [(0, 1, 2)]):
        with pytest.raises(hlg.UsageError, match=r"layer 'z': output block .* is not a block"):
            build(bad)


def test_a_culled_layer_packs_the_same_whatever_the_order_of_its_keys():
    layer = blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (50, 50)})
    keys = [("z", 7, 3), ("z", 0, 49), ("z", 20, 20), ("z", 1, 1)]
    remote = [("x", *k[1:]) for k in keys]
    one = hlg.pack(layer.cull(keys)[0], remote_keys=remote)
    other = hlg.pack(layer.cull(keys[::-1])[0], remote_keys=remote)
    assert one == other
    flat = hlg.unpack(one)
    assert set(flat.tasks) == set(keys)


def test_zero_dimensional_layers_cull_and_round_trip():
    layer = blockwise(sum, "s", "", "x", "i", numblocks={"x": (3,)})
    assert list(layer) == [("s",)] and len(layer) == 1
    culled, external = layer.cull([("s",)])
    assert list(culled) == [("s",)] and external == {("x", 0), ("x", 1), ("x", 2)}
    remote = sorted(external)
    flat = hlg.unpack(hlg.pack(culled, remote_keys=remote))
    assert list(flat.tasks) == [("s",)]
    empty, external = layer.cull([])
    assert len(empty) == 0 and list(empty) == [] and external == set()


def test_deps_give_many_values_at_once_as_they_give_one():
    chunks = ((2, 2, 1, 5), (3,) * 7)
    deps = [BlockSlices(chunks), BlockIndex((4, 7)), BlockPattern("{0}-{1}", (4, 7))]
    columns = [[0, 3, 2, 3, 1], [6, 0, 2, 6, 5]]
    for dep in deps:
        assert dep.take(columns, 5) == [dep[b] for b in zip(*columns, strict=True)]
    assert BlockIndex(()).take([], 2) == [(), ()]
    with pytest.raises(IndexError, match="2 dimensions, not 1"):
        BlockSlices(((1, 1),))[(0, 0)]


def _chain(out_blocks=(6, 6), x_blocks=(6, 6), y_index="ij"):
    x = blockwise(tuple, "x", "ij", BlockIndex(x_blocks), "ij", numblocks={})
    y = blockwise(pair, "y", "ij", "x", y_index, 0, None, numblocks={"x": out_blocks})
    return hlg.HighLevelGraph({"x": x, "y": y}, {"y": {"x"}})


def test_culling_a_chain_hands_block_numbers_up_and_checks_them(monkeypatch):
    checked = []
    real = Blockwise._key_columns

    def spy(self, keys):
        checked.append(self.name)
        return real(self, keys)

    monkeypatch.setattr(Blockwise, "_key_columns", spy)
    keys = [("y", 5, 0), ("y", 1, 2)]
    culled = _chain(y_index="ji").cull(keys)
    assert checked == ["y"]  # x trusted the transposed block numbers y's cull gave it
    assert list(culled.layers["x"]) == [("x", 0, 5), ("x", 2, 1)]
    assert hlg.get(culled, keys) == (((0, 5), 0), ((2, 1), 0))
    # Other keys of x pending as well: the hint no longer describes them all.
    checked.clear()
    culled = _chain().cull([*keys, ("x", 3, 3)])
    assert checked == ["y", "x"] and set(culled.layers["x"]) == {
        ("x", 5, 0),
        ("x", 1, 2),
        ("x", 3, 3),
    }


def test_a_hint_for_a_grid_of_another_shape_is_not_trusted():
    # y claims x has 6 x 6 blocks; it has 4 x 4, so block (5, 0) of x does not exist.
    graph = _chain(x_blocks=(4, 4))
    with pytest.raises(hlg.MissingDependencyError, match=r"needs \('x', 5, 0\)"):
        graph.cull([("y", 5, 0)])
    assert len(graph.cull([("y", 3, 3)]).layers["x"]) == 1


def test_inputs_read_many_to_one_give_no_hint():
    layer = blockwise(
        add,
        "z",
        "ij",
        "x",
        "i",
        "w",
        "ij",
        "v",
        "ij",
        "v",
        "ji",
        numblocks={"x": (3,), "w": (3, 1), "v": (3, 3)},
    )
    _, needed = layer.cull([("z", 0, 1), ("z", 2, 1)])
    assert needed.hints == {}  # x ignores j, w broadcasts j, v appears twice
    elementwise = blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (3, 3)})
    _, needed = elementwise.cull([("z", 0, 1)])
    assert list(needed.hints) == ["x"]


# --------------------------------------------------------------------------- cost and states


def test_blockwise_cost_counts_contracted_references_dep_values_and_annotations():
    from hlg.layers.blockwise import BlockPattern

    layer = blockwise(
        sum, "s", "i", "x", "ij", BlockPattern("f{0}", (4,)), "i", numblocks={"x": (4, 1000)}
    ).with_annotations(priority=1)
    cost = layer.cost()
    assert cost == hlg.Cost(tasks=4, references=4000, inputs=4, annotations=4, text=8)
    tasks = layer.materialize()
    assert sum(len(t.dependencies) for t in tasks.values()) == cost.references
    big = blockwise(sum, "s", "i", "x", "ij", numblocks={"x": (1, 10**8)})
    with pytest.raises(hlg.ResourceLimitError, match="100,000,000 references"):
        hlg.unpack(hlg.pack(big))


def _state_bytes(**changes):
    layer = blockwise(add, "z", "ij", "x", "ij", 1, None, numblocks={"x": (2, 2)})
    env = msgpack.unpackb(hlg.pack(layer), strict_map_key=False, raw=False)
    env["layers"][0]["state"].update(changes)
    return msgpack.packb(env, use_bin_type=True)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"kwargs": {1: 2}}, "'kwargs'"),
        ({"out_ind": "ii"}, "distinct letters"),
        ({"numblocks": {"x": [2, -1]}}, "'numblocks'"),
        ({"numblocks": {"x": [2]}}, "2 dimensions|1 dimension"),
        ({"new_axes": {"ab": 2}}, "'new_axes'"),
        ({"concatenate": 1}, "'concatenate'"),
        ({"args": [["key", "x"]]}, "blockwise input"),
        ({"args": [["dep", "hlg.block-index", {"numblocks": [2]}, None]]}, "blockwise input"),
    ],
)
def test_blockwise_states_are_checked_field_by_field(changes, match):
    with pytest.raises(hlg.LayerStateError, match=f"layer 'z'.*({match})"):
        hlg.unpack(_state_bytes(**changes))


# -- culling through contractions, by boxes of blocks ------------------------------------


def _count_tasks_built(monkeypatch):
    """Count every Blockwise task built, one by one or all at once."""
    built = {"tasks": 0, "layers": 0}
    one, every = Blockwise._task, Blockwise._materialize

    def counting_task(self, block):
        built["tasks"] += 1
        return one(self, block)

    def counting_materialize(self, *args, **kwargs):
        built["layers"] += 1
        return every(self, *args, **kwargs)

    monkeypatch.setattr(Blockwise, "_task", counting_task)
    monkeypatch.setattr(Blockwise, "_materialize", counting_materialize)
    return built


def _million_block_sum():
    n = 1000
    x = blockwise(pair, "x", "ij", BlockIndex((n, n)), "ij", 0, None, numblocks={})
    rows = blockwise(sum, "rows", "i", "x", "ij", numblocks={"x": (n, n)})
    total = blockwise(sum, "total", "", "rows", "i", numblocks={"rows": (n,)})
    deps = {"rows": {"x"}, "total": {"rows"}}
    return hlg.HighLevelGraph({"x": x, "rows": rows, "total": total}, deps)


def test_cull_of_a_million_block_sum_builds_no_task(monkeypatch):
    graph = _million_block_sum()
    built = _count_tasks_built(monkeypatch)
    culled = graph.cull([("total",)])
    assert built == {"tasks": 0, "layers": 0}
    # Every block is needed: the layers are kept as they are, and pack as small.
    assert all(culled.layers[name] is graph.layers[name] for name in graph.layers)
    data = hlg.pack(graph, [("total",)])
    assert built == {"tasks": 0, "layers": 0}
    assert len(data) <= len(hlg.pack(graph)) + 16
    assert len(data) < 8_192


def test_cull_of_some_rows_of_a_sum_keeps_boxes(monkeypatch):
    graph = _million_block_sum()
    built = _count_tasks_built(monkeypatch)
    culled = graph.cull([("rows", 3), ("rows", 4)])
    assert built == {"tasks": 0, "layers": 0}
    assert len(culled.layers["x"]) == 2_000 and len(culled.layers["rows"]) == 2
    assert ("x", 4, 999) in culled.layers["x"] and ("x", 5, 0) not in culled.layers["x"]
    assert len(hlg.pack(culled)) < len(hlg.pack(graph)) + 40


def test_cull_lazily_gives_input_boxes_of_contractions():
    layer = blockwise(pair, "m", "ik", "x", "ij", "y", "jk", numblocks={"x": (4, 5), "y": (5, 6)})
    culled, needed = layer.cull_lazily([("m", 1, 2), ("m", 1, 3), ("m", 2, 2), ("m", 2, 3)])
    assert set(culled) == {("m", i, k) for i in (1, 2) for k in (2, 3)} and set(needed) == set()
    assert {b.name: b.ranges for b in needed.boxes} == {
        "x": (range(1, 3), range(5)),
        "y": (range(5), range(2, 4)),
    }
    # cull lists the same keys that cull_lazily boxes.
    _, listed = layer.cull(culled)
    assert listed == {k for box in needed.boxes for k in box}


def _materialized_copy(graph):
    layers = {
        name: hlg.MaterializedLayer(layer.materialize(), name=name)
        for name, layer in graph.layers.items()
    }
    return hlg.HighLevelGraph(layers, graph.dependencies)


def _contraction_graphs():
    x = blockwise(pair, "x", "ij", BlockIndex((4, 5)), "ij", 0, None, numblocks={})
    y = blockwise(pair, "y", "jk", BlockIndex((5, 3)), "jk", 1, None, numblocks={})
    w = hlg.MaterializedLayer({("w", 0): 1, ("w", 1): 2, ("w", 2): 3}, name="w")
    c = hlg.MaterializedLayer({"c": 10}, name="c")
    layers = {
        # matmul: contraction over j
        "m": blockwise(pair, "m", "ik", "x", "ij", "y", "jk", numblocks={"x": (4, 5), "y": (5, 3)}),
        # sum to rows, then to one block
        "rows": blockwise(sum, "rows", "i", "x", "ij", numblocks={"x": (4, 5)}),
        "total": blockwise(sum, "total", "", "rows", "i", numblocks={"rows": (4,)}),
        # a broadcast input, a whole key and a keyword argument referring to keys
        "b": blockwise(
            pair, "b", "i", "x", "ij", "w", "j", TaskRef("c"), None,
            numblocks={"x": (4, 5), "w": (1,)}, extra=TaskRef(("w", 2)),
        ),
        # a repeated letter: the diagonal, kept and contracted
        "diag": blockwise(pair, "diag", "i", "x", "ii", numblocks={"x": (4, 4)}),
        "trace": blockwise(sum, "trace", "", "y", "jj", numblocks={"y": (3, 3)}),
        # concatenated contraction, and a contraction of a transpose
        "cat": blockwise(pair, "cat", "j", "x", "ij", numblocks={"x": (4, 5)}, concatenate=True),
    }  # fmt: skip
    deps = {
        "m": {"x", "y"}, "rows": {"x"}, "total": {"rows"}, "b": {"x", "w", "c"},
        "diag": {"x"}, "trace": {"y"}, "cat": {"x"},
    }  # fmt: skip
    return hlg.HighLevelGraph({"x": x, "y": y, "w": w, "c": c, **layers}, deps)


@pytest.mark.parametrize(
    "keys",
    [
        [("total",)],
        [("rows", 1), ("rows", 2)],
        [("rows", 0), ("rows", 3)],
        [("m", 1, 2)],
        [("m", i, k) for i in (0, 1, 2) for k in (1, 2)],
        [("m", 0, 0), ("m", 3, 2), ("total",)],
        [("b", 2), ("b", 3)],
        [("b", 0), ("rows", 0)],
        [("diag", 1), ("diag", 2)],
        [("trace",), ("diag", 3)],
        [("cat", 0), ("cat", 4)],
        [("cat", j) for j in range(5)],
    ],
)
def test_cull_by_boxes_keeps_the_tasks_a_materialized_cull_keeps(keys):
    graph = _contraction_graphs()
    culled = graph.cull(keys).to_dict()
    expected = _materialized_copy(graph).cull(keys).to_dict()
    assert culled == expected
    flat = hlg.unpack(hlg.pack(graph, keys))  # functions arrive serialised
    assert flat.dependencies == {key: task.dependencies for key, task in expected.items()}


def test_takes_box_only_boxes_of_its_whole_grid():
    layer = blockwise(pair, "z", "ij", "x", "ij", numblocks={"x": (3, 4)})
    assert layer.takes_box(hlg.layers.KeyBox("z", (range(1, 3), range(4))))
    assert not layer.takes_box(hlg.layers.KeyBox("z", (range(1, 4), range(4))))
    assert not layer.takes_box(hlg.layers.KeyBox("z", (range(3),)))
    assert not layer.takes_box(hlg.layers.KeyBox("q", (range(3), range(4))))
    culled, _ = layer.cull([("z", 0, 0)])
    assert not culled.takes_box(hlg.layers.KeyBox("z", (range(1), range(1))))


# --------------------------------------------------------------------------- inputs


def test_inputs_are_frozen_values_one_type_per_kind():
    dep = BlockIndex((3,))
    layer = blockwise(pair, "z", "i", "x", "i", dep, "i", 7, None, numblocks={"x": (3,)})
    assert layer.args == [KeyInput("x", "i"), DepInput(dep, "i"), ValueInput(7)]
    assert all(isinstance(arg, BlockwiseInput) for arg in layer.args)
    with pytest.raises(AttributeError):
        layer.args[0].name = "y"
    assert not hasattr(layer.args[0], "__dict__")  # slotted
    assert hash(KeyInput("x", "i")) == hash(KeyInput("x", "i"))


def test_a_layer_built_from_inputs_directly_matches_blockwise():
    direct = Blockwise("z", add, "i", [KeyInput("x", "i"), ValueInput(1)], {"x": (3,)})
    built = blockwise(add, "z", "i", "x", "i", 1, None, numblocks={"x": (3,)})
    assert direct.materialize() == built.materialize()
    whole = Blockwise("w", add, "i", [KeyInput("x", "i"), KeyInput("s", None)], {"x": (2,)})
    assert whole[("w", 1)] == hlg.Task(add, TaskRef(("x", 1)), TaskRef("s"))
    assert whole.get_dependencies(("w", 1)) == {("x", 1), "s"}


@pytest.mark.parametrize(
    "bad",
    [("key", "x", "i"), KeyInput(5, "i"), KeyInput("x", 3), DepInput(BlockIndex((3,)), None)],
)
def test_the_constructor_refuses_anything_but_well_formed_inputs(bad):
    with pytest.raises(hlg.UsageError, match=r"layer 'z': input .* is not a KeyInput"):
        Blockwise("z", abs, "i", [KeyInput("x", "i"), bad], {"x": (3,)})


def test_a_blockwise_dep_without_an_index_is_refused():
    with pytest.raises(hlg.UsageError, match=r"layer 'z': BlockIndex.* needs an index"):
        blockwise(abs, "z", "i", "x", "i", BlockIndex((3,)), None, numblocks={"x": (3,)})


# --------------------------------------------------------------------------- hints


def test_a_shuffle_hints_its_blockwise_input_with_a_block_hint(monkeypatch):
    x = blockwise(abs, "x", "i", BlockIndex((6,)), "i", numblocks={})
    s = SimpleShuffleLayer("s", "x", 6, dict, list)
    _, needed = s.cull([("s", 2)])
    assert needed.hints["x"] == BlockHint((6,), [range(6)], 6)
    checked = []
    real = Blockwise._key_columns
    monkeypatch.setattr(
        Blockwise, "_key_columns", lambda self, keys: checked.append(self.name) or real(self, keys)
    )
    culled = hlg.HighLevelGraph({"x": x, "s": s}, {"s": {"x"}}).cull([("s", 2)])
    assert checked == []  # x took the shuffle's columns without reading a key
    assert len(culled.layers["x"]) == 6


def test_a_hint_of_another_type_is_ignored():
    layer = blockwise(abs, "y", "i", "x", "i", numblocks={"x": (4,)})
    pending = PendingKeys.of([("y", 1), ("y", 3)])
    pending.hints["y"] = ((4,), [[1, 3]], 2)  # a tuple, not a BlockHint: not trusted
    assert list(layer.filter_keys(pending)) == [("y", 1), ("y", 3)]
    pending.hints["y"] = BlockHint((4,), [[0, 3]], 2)  # names ("y", 0), which is not pending
    assert list(layer.filter_keys(pending)) == [("y", 1), ("y", 3)]
    pending.hints["y"] = BlockHint((4,), [[1, 3]], 2)
    assert list(layer.filter_keys(pending)) == [("y", 1), ("y", 3)]


# --------------------------------------------------------------------------- packed state


def test_the_packed_state_has_the_declared_fields_and_types():
    dep = BlockIndex((4,))
    layer = blockwise(pair, "z", "i", "x", "i", dep, "i", 7, None, numblocks={"x": (4,)})
    state = layer.pack_state(Encoder())
    assert set(state) == BlockwiseState.__required_keys__
    assert state["args"] == (
        ("key", "x", "i"),
        ("dep", dep.tag, dep.pack_state(), "i"),
        ("value", 7),
    )
    culled = layer.cull([("z", 3)])[0].pack_state(Encoder())
    assert set(culled) - set(state) == BlockwiseState.__optional_keys__ == {"blocks"}
    assert culled["blocks"] == ("box", ((3, 4),))


# --------------------------------------------------------------------------- fusion


def _numbers(n, name="x"):
    return hlg.MaterializedLayer({(name, i): i for i in range(n)}, name=name)


def test_fuse_computes_the_inner_layer_inline():
    a = blockwise(add, "a", "i", "x", "i", 1, None, numblocks={"x": (4,)})
    b = blockwise(mul, "b", "i", "a", "i", 10, None, numblocks={"a": (4,)})
    fused = b.fuse(a, 0)
    assert fused.name == "b" and list(fused) == list(b)
    assert fused.args == [KeyInput("x", "i"), ValueInput(1), ValueInput(10)]
    assert isinstance(fused.func, FusedFunction) and fused.func.__name__ == "mul-add"
    assert fused.get_dependencies(("b", 2)) == {("x", 2)}
    graph = hlg.HighLevelGraph({"x": _numbers(4), "b": fused}, {"b": {"x"}})
    assert hlg.get(graph, [("b", i) for i in range(4)]) == (10, 20, 30, 40)
    assert b.args == [KeyInput("a", "i"), ValueInput(10)]  # the originals are unchanged
    assert a.args == [KeyInput("x", "i"), ValueInput(1)]


def label(value, tag):
    return (tag, value)


def test_fuse_renames_the_inner_letters_and_keeps_kept_blocks_and_kwargs():
    x = hlg.MaterializedLayer(
        {("x", i, j): 10 * i + j for i in range(2) for j in range(3)}, name="x"
    )
    t = hlg.MaterializedLayer({"t": "T"}, name="t")
    dep = BlockIndex((2, 3))
    a = blockwise(pair, "a", "ij", "x", "ij", dep, "ij", numblocks={"x": (2, 3)})
    b = blockwise(label, "b", "kl", "a", "lk", tag=TaskRef("t"), numblocks={"a": (2, 3)})
    culled, _ = b.cull([("b", 2, 1), ("b", 0, 0)])
    fused = culled.fuse(a, 0)
    assert fused.args == [KeyInput("x", "lk"), DepInput(dep, "lk")]
    assert fused.output_blocks == ((2, 1), (0, 0))
    assert fused.kwargs == {"tag": TaskRef("t")}
    graph = hlg.HighLevelGraph({"x": x, "t": t, "b": fused}, {"b": {"x", "t"}})
    assert hlg.get(graph, [("b", 2, 1), ("b", 0, 0)]) == (("T", (12, (1, 2))), ("T", (0, (0, 0))))
    assert len(hlg.unpack(hlg.pack(graph)).tasks) == 2 + 6 + 1


def _refusal_cases():
    a = blockwise(add, "a", "i", "x", "i", 1, None, numblocks={"x": (4,)})
    ref_a = blockwise(label, "a", "i", "x", "i", tag=TaskRef("k"), numblocks={"x": (4,)})
    a2 = blockwise(add, "a", "ij", "x", "ij", 1, None, numblocks={"x": (4, 4)})
    by_a = {"a": (4,)}
    return {
        "not that input": (blockwise(mul, "b", "i", "a", "i", 2, None, numblocks=by_a), a, 1),
        "out of range": (blockwise(neg, "b", "i", "a", "i", numblocks=by_a), a, 5),
        "another layer": (blockwise(neg, "b", "i", "y", "i", numblocks={"y": (4,)}), a, 0),
        "contraction": (blockwise(sum, "b", "", "a", "i", numblocks=by_a), a, 0),
        "references": (blockwise(neg, "b", "i", "a", "i", numblocks=by_a), ref_a, 0),
        "annotations": (
            blockwise(neg, "b", "i", "a", "i", numblocks=by_a, annotations={"retries": 2}),
            a,
            0,
        ),
        "twice": (blockwise(add, "b", "i", "a", "i", "a", "i", numblocks=by_a), a, 0),
        "value": (
            blockwise(add, "b", "i", "a", "i", TaskRef(("a", 0)), None, numblocks=by_a),
            a,
            0,
        ),
        "kwargs": (
            blockwise(label, "b", "i", "a", "i", tag=[TaskRef(("a", 1))], numblocks=by_a),
            a,
            0,
        ),
        "other grid": (blockwise(neg, "b", "ij", "a", "ij", numblocks={"a": (2, 4)}), a2, 0),
        "broadcast": (blockwise(neg, "b", "ij", "a", "ij", numblocks={"a": (1, 4)}), a2, 0),
    }


_REASONS = {
    "not that input": "input 1 of 'b' is not 'a' taken by an index",
    "out of range": "input 5 of 'b' is not 'a'",
    "another layer": "input 0 of 'b' is not 'a'",
    "contraction": "contracting an index",
    "references": "keyword arguments of 'a' hold references",
    "annotations": "annotations differ",
    "twice": "reads 'a' through another input too",
    "value": "reads 'a' through another input too",
    "kwargs": "reads 'a' through another input too",
    "other grid": "does not take it block for block",
    "broadcast": "does not take it block for block",
}


@pytest.mark.parametrize("case", sorted(_REASONS))
def test_fuse_refuses_what_would_change_results_and_says_why(case):
    outer, inner, position = _refusal_cases()[case]
    assert not outer.can_fuse(inner, position)
    with pytest.raises(
        hlg.UsageError, match=r"cannot fuse layer 'a' into layer 'b': .*" + _REASONS[case]
    ):
        outer.fuse(inner, position)


def test_culling_with_keys_from_a_dict_subclass_that_reorders_them():
    from hlg.layers.blockgrid import unique_keys

    class Reversed(dict):
        def __iter__(self):
            return reversed(list(super().__iter__()))

    keys = Reversed.fromkeys([("y", 0), ("y", 2)])
    assert unique_keys(keys) == [("y", 2), ("y", 0)]  # its own iteration, not dict's
    assert unique_keys({("y", 0): None, ("y", 2): None}) == [("y", 0), ("y", 2)]
    layer = blockwise(abs, "y", "i", "x", "i", numblocks={"x": (4,)})
    assert sorted(layer.cull(keys)[0].materialize()) == [("y", 0), ("y", 2)]
