"""Shuffle layers against a plain-Python reference: values, keys, culling, packing, roles."""

import importlib.util
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import msgpack
import pytest

import hlg
from hlg.layers.shuffle import take_piece
from hlg.layers.shuffleplan import ShufflePlan, nsplits_for, plan_stages
from hlg.testing import check_layer

from ..conftest import combine_rows, split_rows

CASES = [
    # (n_in, n_out, stages)
    (1, 1, 1),
    (1, 1, 2),
    (1, 7, 3),
    (3, 20, 3),
    (7, 7, 2),
    (10, 3, 2),
    (13, 13, 2),
    (13, 5, 3),
    (5, 64, 3),
    (17, 31, 4),
]


def make_empty() -> list[int]:
    return []


def source(n_in: int, seed: int = 0) -> tuple[hlg.MaterializedLayer, dict[int, list[int]]]:
    rng = random.Random(seed)
    parts = {i: [rng.randrange(1000) for _ in range(rng.randrange(8))] for i in range(n_in)}
    layer = hlg.MaterializedLayer({("x", i): hlg.DataNode(p) for i, p in parts.items()}, name="x")
    return layer, parts


def reference(parts: dict[int, list[int]], n_out: int) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(n_out)]
    for rows in parts.values():
        for row in rows:
            out[row % n_out].append(row)
    return [sorted(rows) for rows in out]


def graph_of(layer: hlg.Layer, x: hlg.Layer) -> hlg.HighLevelGraph:
    return hlg.HighLevelGraph({"x": x, layer.name: layer}, {layer.name: {"x"}})


def shuffle(n_in: int, n_out: int, stages: int, **kwargs) -> hlg.ShuffleLayer:
    return hlg.ShuffleLayer(
        "s", "x", n_in, split_rows, combine_rows, npartitions_out=n_out, stages=stages, **kwargs
    )


@pytest.mark.parametrize(("n_in", "n_out", "stages"), CASES)
@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_shuffle_layer_matches_the_reference(n_in, n_out, stages, scheduler):
    x, parts = source(n_in, seed=n_in * 100 + n_out)
    layer = shuffle(n_in, n_out, stages, empty=[])
    keys = [("s", j) for j in range(n_out)]
    graph = graph_of(layer, x)
    assert list(hlg.get(graph, keys, scheduler=scheduler)) == reference(parts, n_out)
    flat = hlg.unpack(hlg.pack(graph, keys))
    assert list(hlg.get(flat, keys, scheduler=scheduler)) == reference(parts, n_out)


@pytest.mark.parametrize(("n_in", "n_out"), [(1, 1), (4, 4), (5, 3), (3, 11)])
def test_simple_shuffle_layer_matches_the_reference_and_counts_tasks(n_in, n_out):
    x, parts = source(n_in, seed=n_out)
    layer = hlg.SimpleShuffleLayer("s", "x", n_in, split_rows, combine_rows, npartitions_out=n_out)
    assert len(layer) == n_in + n_in * n_out + n_out
    keys = [("s", j) for j in range(n_out)]
    assert list(hlg.get(hlg.unpack(hlg.pack(graph_of(layer, x), keys)), keys)) == reference(
        parts, n_out
    )
    check_layer(layer)


@pytest.mark.parametrize(("n_in", "n_out", "stages"), CASES)
def test_shuffle_layer_passes_the_conformance_check(n_in, n_out, stages):
    layer = shuffle(n_in, n_out, stages, empty=[], annotations={"retries": 1})
    report = check_layer(layer)
    assert report.ntasks == len(layer) == len(layer.materialize()) == len(set(layer))
    assert report.external_keys == {("x", i) for i in range(n_in)}


def test_shuffle_layer_without_an_empty_gives_empty_combines_no_pieces():
    # 2 inputs, 3 stages of 3 groups: stage 0 positions 2..8 (mod 9) get no input.
    layer = shuffle(2, 20, 3)
    assert layer.plan.nempty_combines > 0
    assert not any(isinstance(k, str) for k in layer)
    x, parts = source(2, seed=5)
    keys = [("s", j) for j in range(20)]
    assert list(hlg.get(graph_of(layer, x), keys, scheduler="sync")) == reference(parts, 20)
    check_layer(layer)


def test_shuffle_layer_pads_with_an_empty_value_or_function():
    x, parts = source(2, seed=6)
    keys = [("s", j) for j in range(20)]
    for kwargs in ({"empty": []}, {"empty_func": make_empty}):
        layer = shuffle(2, 20, 3, **kwargs)
        assert "empty-s" in layer and layer.role_size("empty") == 1
        assert list(hlg.get(graph_of(layer, x), keys, scheduler="sync")) == reference(parts, 20)
        check_layer(layer)
    with pytest.raises(hlg.UsageError, match="not both"):
        shuffle(2, 20, 3, empty=[], empty_func=make_empty)


def test_shuffle_layer_stage_count_follows_max_branch():
    assert hlg.ShuffleLayer("s", "x", 10_000, split_rows, combine_rows).nstages == 3
    assert hlg.ShuffleLayer("s", "x", 32, split_rows, combine_rows).nstages == 1
    layer = hlg.ShuffleLayer("s", "x", 1000, split_rows, combine_rows, max_branch=10)
    assert (layer.nstages, layer.plan.nsplits) == (3, 10)
    assert [plan_stages(n, 32) for n in (1, 32, 33, 1024, 1025)] == [1, 1, 2, 2, 3]
    for n in range(1, 300):
        for stages in (1, 2, 3, 5):
            k = nsplits_for(n, stages)
            assert k**stages >= n and (k == 1 or (k - 1) ** stages < n)


def test_shuffle_layer_tasks_grow_like_n_times_stages_times_groups():
    layer = hlg.ShuffleLayer("s", "x", 10_000, split_rows, combine_rows)
    k, stages = layer.plan.nsplits, layer.nstages
    assert len(layer) <= 10_000 * stages * (k + 3)
    assert len(layer) < 10_000**2 / 100


def test_shuffle_layer_rejects_bad_arguments():
    with pytest.raises(hlg.UsageError, match="npartitions_in"):
        hlg.ShuffleLayer("s", "x", 0, split_rows, combine_rows)
    with pytest.raises(hlg.UsageError, match="max_branch"):
        hlg.ShuffleLayer("s", "x", 4, split_rows, combine_rows, max_branch=1)
    with pytest.raises(hlg.UsageError, match="split must be callable"):
        hlg.ShuffleLayer("s", "x", 4, "nope", combine_rows)
    with pytest.raises(hlg.UsageError, match="input_name"):
        hlg.ShuffleLayer("s", "", 4, split_rows, combine_rows)
    with pytest.raises(hlg.UsageError, match="stages"):
        hlg.ShuffleLayer("s", "x", 4, split_rows, combine_rows, stages=0)


def test_shuffle_layer_keys_answer_in_without_materialising():
    layer = shuffle(5, 9, 2, empty=[])
    keys = set(layer.materialize())
    for key in keys:
        assert key in layer
    for key in [("s", 9), ("s", -1), ("split-s", 2, 0), ("piece-s", 0, 0, 99), ("s", "0"), "s"]:
        assert key not in layer
    assert ("combine-s", 1, 0) not in layer  # the last stage's combines are the outputs
    with pytest.raises(hlg.MissingKeyError, match="no key"):
        layer[("s", 99)]


def test_shuffle_layer_packs_to_the_same_size_at_any_partition_count():
    sizes = {}
    for n in (100, 1_000, 10_000, 100_000):
        layer = hlg.ShuffleLayer("s", "x", n, split_rows, combine_rows)
        sizes[n] = len(hlg.pack(layer, remote_keys=[("x", 0)], cull=False))
    # Only the msgpack widths of the two counts grow: at most 8 bytes each.
    assert max(sizes.values()) - min(sizes.values()) <= 16
    assert sizes[100_000] < 8192 + 2 * 2048


@pytest.mark.parametrize(("n_in", "n_out", "stages"), [(13, 13, 2), (5, 64, 3), (10, 3, 2)])
def test_shuffle_layer_culls_to_outputs_and_computes_them(n_in, n_out, stages):
    x, parts = source(n_in, seed=1)
    layer = shuffle(n_in, n_out, stages, empty=[])
    wanted = [("s", j) for j in range(n_out) if j % 3 == 1]
    culled, external = layer.cull(wanted)
    assert set(wanted) == {k for k in culled if k[0] == "s"}
    assert external == {("x", i) for i in range(n_in)}
    assert len(culled) <= len(layer)
    expected = reference(parts, n_out)
    got = hlg.get(graph_of(culled, x), wanted, scheduler="sync")
    assert list(got) == [expected[j] for _, j in wanted]
    check_layer(layer, cull_keys=wanted)


def test_shuffle_layer_culled_state_is_the_kept_ranges():
    layer = hlg.ShuffleLayer("s", "x", 10_000, split_rows, combine_rows)
    culled, _ = layer.cull([("s", j) for j in range(100)])
    assert culled.plan.outputs == ((0, 100),)
    assert len(culled) < len(layer)
    remote = [("x", 0)]
    full = len(hlg.pack(layer, remote_keys=remote, cull=False))
    assert len(hlg.pack(culled, remote_keys=remote, cull=False)) < full + 32
    scattered, _ = layer.cull([("s", j) for j in range(0, 10_000, 100)])
    assert len(scattered.plan.outputs) == 100
    assert len(hlg.pack(scattered, remote_keys=remote, cull=False)) < full + 100 * 8


def test_shuffle_layer_culls_to_intermediate_keys():
    layer = shuffle(6, 16, 2, empty=[])
    for key in [("split-s", 1, 5), ("piece-s", 0, 3, 2), ("combine-s", 0, 7), ("split-s", 0, 2)]:
        assert key in layer
        culled, _ = layer.cull([key])
        assert key in culled
        check_layer(layer, cull_keys=[key])
    with pytest.raises(hlg.MissingKeyError, match="cull it only to keys it produces"):
        layer.cull([("t", 0)])


def test_shuffle_layer_through_a_culled_graph_keeps_only_what_outputs_need():
    x, parts = source(9, seed=3)
    layer = shuffle(9, 9, 2, empty=[])
    graph = graph_of(layer, x)
    culled = graph.cull([("s", 4)])
    assert len(culled.layers["s"]) < len(layer)
    flat = hlg.unpack(hlg.pack(graph, [("s", 4)]))
    assert hlg.get(flat, ("s", 4)) == reference(parts, 9)[4]


@pytest.mark.parametrize("other_first", [True, False])
def test_shuffle_unpack_refuses_a_key_another_layer_produces(other_first):
    # The other layer merges into the shuffle's many tasks, or the shuffle into its one.
    x, _ = source(4)
    other = hlg.MaterializedLayer({("piece-s", 1, 2, 0): 1}, name="other")
    deps = {"s": {"x", "other"}} if other_first else {"s": {"x"}, "other": {"s"}}
    graph = hlg.HighLevelGraph({"x": x, "other": other, "s": shuffle(4, 9, 2)}, deps)
    with pytest.raises(hlg.DuplicateKeyError, match=r"\('piece-s', 1, 2, 0\)"):
        hlg.unpack(hlg.pack(graph, cull=False))


def test_packed_shuffle_without_keys_requests_its_outputs_only():
    x, parts = source(2)
    layer = shuffle(2, 20, 3, empty=[])
    assert layer.role_size("empty") == 1
    flat = hlg.unpack(hlg.pack(graph_of(layer, x)))
    # Splits, pieces, intermediate combines and the empty partition are not results.
    assert flat.keys == [("s", j) for j in range(20)] == list(layer.role_keys("output"))
    assert len(flat.tasks) > len(flat.keys) + 2
    assert [sorted(p) for p in hlg.get(flat)] == reference(parts, 20)


def test_packed_culled_shuffle_without_keys_requests_the_kept_outputs():
    x, _ = source(4)
    layer, _ = shuffle(4, 30, 2).cull([("s", 3), ("s", 17), ("s", 18)])
    flat = hlg.unpack(hlg.pack(graph_of(layer, x), cull=False))
    assert flat.keys == [("s", 3), ("s", 17), ("s", 18)]


def test_shuffle_roles_default_to_priority_on_splits_and_pieces():
    layer = shuffle(4, 6, 2, empty=[])
    flat = hlg.unpack(hlg.pack(layer, remote_keys=[("x", i) for i in range(4)]))
    priority = flat.annotations["priority"]
    expected = set(layer.role_keys("split")) | set(layer.role_keys("piece"))
    assert set(priority) == expected and set(priority.values()) == {1}
    assert layer.annotation_entries() == sum(len(v) for v in flat.annotations.values())


def test_shuffle_role_annotations_override_the_layers_and_survive_culling():
    layer = shuffle(
        4, 6, 2, annotations={"retries": 1}, role_annotations={"output": {"retries": 3}}
    )
    layer = layer.with_role_annotations("split", workers=["w1"])
    culled, _ = layer.cull([("s", 2)])
    for lyr in (layer, culled):
        flat = hlg.unpack(hlg.pack(lyr, remote_keys=[("x", i) for i in range(4)]))
        retries = flat.annotations["retries"]
        assert {retries[k] for k in lyr.role_keys("output")} == {3}
        assert {retries[k] for k in lyr.role_keys("piece")} == {1}
        assert set(flat.annotations["workers"]) == set(lyr.role_keys("split"))
        assert "priority" not in flat.annotations
        # Entries written: the role's retries overwrite the layer's at the outputs.
        held = sum(len(v) for v in flat.annotations.values())
        assert lyr.annotation_entries() == held + lyr.role_size("output")
        check_layer(lyr)


def test_role_annotations_name_known_roles_with_valid_values():
    with pytest.raises(hlg.UsageError, match="no task role 'mix'"):
        shuffle(4, 6, 2, role_annotations={"mix": {"priority": 1}})
    with pytest.raises(hlg.UsageError, match="retries"):
        shuffle(4, 6, 2, role_annotations={"split": {"retries": -1}})
    with pytest.raises(hlg.UsageError, match="no task role"):
        hlg.MaterializedLayer({"a": 1}, name="a").with_role_annotations("split", priority=1)
    with pytest.raises(hlg.UsageError, match="no role"):
        hlg.MaterializedLayer({"a": 1}, name="a").role_keys("split")


def test_role_annotations_for_a_role_the_layer_lacks_are_refused_on_unpack():
    data = hlg.pack(hlg.MaterializedLayer({"a": 1}, name="a"))
    doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    doc["layers"][0]["roles"] = {"split": {"priority": 1}}
    with pytest.raises(hlg.LayerStateError, match="task role 'split'"):
        hlg.unpack(msgpack.packb(doc, use_bin_type=True))
    doc["layers"][0]["roles"] = [1]
    with pytest.raises(hlg.LayerStateError, match="'roles'"):
        hlg.unpack(msgpack.packb(doc, use_bin_type=True))


def _packed_state(layer: hlg.Layer) -> dict:
    data = hlg.pack(layer, remote_keys=[("x", 0)], cull=False)
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("n_in", -1, "n_in"),
        ("n_out", "many", "n_out"),
        ("stages", 1000, "stages"),
        ("outputs", [[5, 2]], "kept outputs"),
        ("outputs", [[0, 2], [1, 3]], "kept outputs"),
        ("outputs", [[0, 99]], "kept outputs"),
        ("input", 7, "input name"),
        ("split", 99, "layer 's'.*function index 99"),
        ("combine", None, "layer 's'.*function index None"),
    ],
)
def test_shuffle_layer_refuses_a_corrupt_state(field, value, match):
    doc = _packed_state(shuffle(4, 6, 2))
    doc["layers"][0]["state"][field] = value
    with pytest.raises(hlg.LayerStateError, match=match):
        hlg.unpack(msgpack.packb(doc, use_bin_type=True))


def test_shuffle_layer_runs_on_worker_processes():
    x, parts = source(7, seed=1)
    layer = shuffle(7, 5, 2, empty=[])
    keys = [("s", j) for j in range(5)]
    flat = hlg.unpack(hlg.pack(graph_of(layer, x), keys))
    got = hlg.get(flat, keys, scheduler="processes", num_workers=2)
    assert list(got) == reference(parts, 5)


def test_shuffle_layer_with_huge_counts_is_refused_before_it_is_built():
    doc = _packed_state(shuffle(4, 6, 2))
    doc["layers"][0]["state"].update(n_in=1 << 39, n_out=1 << 39, stages=3)
    with pytest.raises(hlg.TooManyTasksError, match="max_tasks"):
        hlg.unpack(msgpack.packb(doc, use_bin_type=True), max_tasks=10_000_000)


def test_simple_shuffle_state_must_have_one_stage():
    layer = hlg.SimpleShuffleLayer("s", "x", 3, split_rows, combine_rows)
    doc = _packed_state(layer)
    doc["layers"][0]["state"]["stages"] = 2
    with pytest.raises(hlg.LayerStateError, match="stages"):
        hlg.unpack(msgpack.packb(doc, use_bin_type=True))


def test_a_split_without_every_group_is_a_clear_error():
    def short_split(rows, route):
        return [rows]

    x, _ = source(3)
    layer = hlg.ShuffleLayer("s", "x", 3, short_split, combine_rows, npartitions_out=3)
    with pytest.raises(hlg.UsageError, match="no piece for group 1"):
        hlg.get(graph_of(layer, x), [("s", 1)], scheduler="sync")
    assert take_piece({3: "a"}, 3) == "a"


def test_shuffle_plan_counts_agree_with_materialised_tasks():
    rng = random.Random(7)
    for _ in range(40):
        n_in, n_out, stages = rng.randrange(1, 40), rng.randrange(1, 40), rng.randrange(1, 4)
        layer = shuffle(n_in, n_out, stages, empty=[])
        lo = rng.randrange(n_out)
        culled, _ = layer.cull([("s", j) for j in range(lo, n_out, rng.randrange(1, 5))])
        for lyr in (layer, culled):
            tasks = lyr.materialize()
            assert len(lyr) == len(tasks) == lyr.plan.ntasks
            assert set(tasks) == set(lyr)


def test_shuffle_plan_refuses_bad_ranges():
    with pytest.raises(hlg.UsageError, match="kept outputs"):
        ShufflePlan(3, 3, 1, ((2, 1),))
    assert ShufflePlan(3, 3, 1, ()).ntasks == 0


def test_unpacking_a_shuffle_imports_none_of_the_collection():
    import numpy as np

    from ..test_table import table

    t = table.from_function(table.random_partition, 50, {"key": np.int64, "value": np.float64})
    data = hlg.pack(t.groupby("key").agg("sum"))
    code = textwrap.dedent(
        f"""
        import sys
        from hlg.materialize import unpack
        flat = unpack({data!r})
        flat.groups, flat.dependents
        names = ("numpy", "pandas", "cloudpickle", "hlg_examples_table")
        bad = sorted(m for m in names if m in sys.modules)
        print(len(flat.tasks), bad)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[1:] == ["[]"]
    assert int(out.stdout.split()[0]) > 50


def test_shuffle_docs_picture_is_what_its_script_draws():
    root = Path(__file__).parents[2]
    spec = importlib.util.spec_from_file_location(
        "hlg_docs_draw_shuffle", root / "docs" / "draw_shuffle.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (root / "docs" / "shuffle-stages.svg").read_text() == module.draw()


def test_shuffle_layer_materialises_the_same_from_two_threads():
    from concurrent.futures import ThreadPoolExecutor

    layer = shuffle(30, 40, 2, empty=[])
    expected = layer.materialize()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: layer.materialize(), range(4)))
    for tasks in results:
        assert tasks.keys() == expected.keys()
    assert sorted(layer.role_keys("piece")) == sorted(k for k in expected if k[0] == "piece-s")


def test_shuffle_roles_with_different_values_for_one_name_keep_each():
    roles = {"split": {"priority": 2, "tag": 1}, "piece": {"priority": 1, "tag": True}}
    layer = shuffle(4, 6, 2, role_annotations=roles)
    flat = hlg.unpack(hlg.pack(layer, remote_keys=[("x", i) for i in range(4)]))
    for role, values in roles.items():
        for name, value in values.items():
            got = [flat.annotations[name][k] for k in layer.role_keys(role)]
            assert all(type(v) is type(value) and v == value for v in got)


def measured_cost(layer: hlg.Layer) -> tuple[int, int]:
    tasks = layer.materialize()
    return len(tasks), sum(len(task.dependencies) for task in tasks.values())


@pytest.mark.parametrize(("n_in", "n_out", "stages"), CASES)
@pytest.mark.parametrize("empty", [{}, {"empty": []}, {"empty_func": make_empty}])
def test_shuffle_layer_cost_counts_the_references_it_builds(n_in, n_out, stages, empty):
    layer = shuffle(n_in, n_out, stages, annotations={"retries": 2, "owner": "a"}, **empty)
    cost = layer.cost()
    assert (cost.tasks, cost.references) == measured_cost(layer)
    assert cost.annotations == 2 * len(layer)
    assert (cost.inputs, cost.text) == (0, 0)
    for wanted in ([("s", n_out - 1)], [("s", j) for j in range(0, n_out, 3)]):
        culled, _ = layer.cull(wanted)
        culled_cost = culled.cost()
        assert (culled_cost.tasks, culled_cost.references) == measured_cost(culled)


@pytest.mark.parametrize(("n_in", "n_out"), [(1, 1), (4, 9), (12, 5)])
def test_simple_shuffle_layer_cost_counts_the_references_it_builds(n_in, n_out):
    layer = hlg.SimpleShuffleLayer(
        "s", "x", n_in, split_rows, combine_rows, npartitions_out=n_out, annotations={"a": 1}
    )
    assert layer.cost() == hlg.Cost(
        tasks=n_in + n_in * n_out + n_out,
        references=n_in + 2 * n_in * n_out,
        annotations=len(layer),
    )
    assert (layer.cost().tasks, layer.cost().references) == measured_cost(layer)
    culled, _ = layer.cull([("s", n_out - 1)])
    assert (culled.cost().tasks, culled.cost().references) == measured_cost(culled)


@pytest.mark.parametrize("simple", [True, False])
def test_shuffle_layer_reference_limit_refuses_it_before_building(simple, monkeypatch):
    if simple:
        layer: hlg.Layer = hlg.SimpleShuffleLayer(
            "s", "x", 6, split_rows, combine_rows, npartitions_out=8
        )
    else:
        layer = shuffle(3, 20, 2, empty=[])
    references = layer.cost().references
    data = hlg.pack(layer, remote_keys=[("x", i) for i in range(layer.npartitions_in)])
    built = []
    original = type(layer).materialize
    monkeypatch.setattr(
        type(layer), "materialize", lambda self: built.append(self) or original(self)
    )
    with pytest.raises(hlg.ResourceLimitError, match=f"{references:,} references"):
        hlg.unpack(data, limits=hlg.Limits(references=references - 1))
    assert built == []
    assert len(hlg.unpack(data, limits=hlg.Limits(references=references)).tasks) == len(layer)
    assert len(built) == 1
