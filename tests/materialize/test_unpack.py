import subprocess
import sys
import textwrap
from operator import add

import pytest

import hlg
from hlg import TaskState
from hlg.testing import RangeLayer

from ..conftest import inc


def chunked_graph():
    return hlg.HighLevelGraph(
        {
            "x-1a2b3c4d": RangeLayer("x-1a2b3c4d", inc, 0, 4),
            "y-5e6f7a8b": {("y-5e6f7a8b", i): (add, ("x-1a2b3c4d", i), 1) for i in range(4)},
            "total": {"total": (sum, [("y-5e6f7a8b", i) for i in range(4)])},
        },
        {"y-5e6f7a8b": {"x-1a2b3c4d"}, "total": {"y-5e6f7a8b"}},
    )


def test_flat_graph_holds_tasks_dependencies_dependents_and_keys():
    flat = hlg.unpack(hlg.pack(chunked_graph(), "total"))
    assert len(flat) == 9 and "total" in flat and ("x-1a2b3c4d", 0) in flat
    assert flat.keys == ["total"]
    assert flat.dependencies[("y-5e6f7a8b", 2)] == {("x-1a2b3c4d", 2)}
    assert flat.dependents[("x-1a2b3c4d", 2)] == {("y-5e6f7a8b", 2)}
    assert flat.dependents["total"] == set()
    assert [s.name for s in flat.layers] == ["x-1a2b3c4d", "y-5e6f7a8b", "total"]
    assert flat.layers[0].tag == "hlg.testing.range" and flat.layers[0].ntasks == 4
    assert hlg.get(flat) == (14,)


def test_default_keys_are_the_outputs_of_the_last_layers():
    flat = hlg.unpack(hlg.pack(chunked_graph()))
    assert flat.keys == ["total"]


def test_groups_and_prefixes_follow_key_names():
    flat = hlg.unpack(hlg.pack(chunked_graph()))
    groups = flat.groups
    assert set(groups) == {"x-1a2b3c4d", "y-5e6f7a8b", "total"}
    y = groups["y-5e6f7a8b"]
    assert y.prefix == "y" and y.ntasks == 4 and y.states[TaskState.WAITING] == 4
    assert y.dependencies == {"x-1a2b3c4d"}
    assert groups["total"].dependencies == {"y-5e6f7a8b"}
    assert set(flat.prefixes) == {"x", "y", "total"}
    assert flat.prefixes["y"].groups == [y]
    y.transition(TaskState.WAITING, TaskState.MEMORY)
    y.record_result(0.5, 8, "int")
    assert flat.prefixes["y"].states[TaskState.MEMORY] == 1
    assert flat.prefixes["y"].duration == 0.5 and flat.prefixes["y"].types == {"int"}


def test_prefixes_gather_groups_of_the_same_name():
    graph = {("x-aaaaaaaa", 0): 1, ("x-bbbbbbbb", 0): 2}
    flat = hlg.unpack(hlg.pack(graph))
    assert [g.name for g in flat.prefixes["x"].groups] == ["x-aaaaaaaa", "x-bbbbbbbb"]
    assert flat.prefixes["x"].states[TaskState.WAITING] == 2


def test_unpack_imports_no_numpy_pandas_or_cloudpickle():
    from hlg.layers.blockwise import BlockSlices

    graph = chunked_graph()
    tiles = hlg.blockwise(
        add,
        "tiles",
        "i",
        "x-1a2b3c4d",
        "i",
        BlockSlices(((2, 2, 2, 2),)),
        "i",
        numblocks={"x-1a2b3c4d": (4,)},
    )
    graph = hlg.HighLevelGraph(
        {**graph.layers, "tiles": tiles}, {**graph.dependencies, "tiles": {"x-1a2b3c4d"}}
    )
    data = hlg.pack(graph)
    code = textwrap.dedent(
        f"""
        import sys
        import hlg.testing  # registers the test-only layer type of layer x
        from hlg.materialize import unpack
        flat = unpack({data!r})
        flat.groups, flat.dependents
        bad = sorted(m for m in ("numpy", "pandas", "cloudpickle") if m in sys.modules)
        print(len(flat.tasks), bad)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["13", "[]"]


def test_forward_references_within_a_layer_unpack_when_acyclic():
    graph = {"late": (inc, "early"), "early": 1}
    assert hlg.get(hlg.pack(graph), "late") == 2


# --------------------------------------------------------------------------- limits and blame


def test_unpack_refuses_past_its_default_limits():
    data = hlg.pack(RangeLayer("big", abs, 0, hlg.Limits().tasks + 1))
    with pytest.raises(hlg.TooManyTasksError, match="layer 'big'"):
        hlg.unpack(data)


def test_unpack_takes_limits_and_max_tasks_as_shorthand():
    data = hlg.pack({("x", i): i for i in range(10)})
    assert len(hlg.unpack(data, limits=hlg.Limits(tasks=10)).tasks) == 10
    with pytest.raises(hlg.TooManyTasksError):
        hlg.unpack(data, limits=hlg.Limits(tasks=9))
    # max_tasks replaces limits.tasks
    assert len(hlg.unpack(data, limits=hlg.Limits(tasks=1), max_tasks=10).tasks) == 10
    with pytest.raises(hlg.ResourceLimitError, match="bytes of packed data"):
        hlg.unpack(data, limits=hlg.Limits(bytes=10))
    with pytest.raises(hlg.UsageError, match="hlg.Limits"):
        hlg.unpack(data, limits={"tasks": 1})
    with pytest.raises(hlg.UsageError, match="max_tasks"):
        hlg.unpack(data, max_tasks=-1)


def test_a_materialized_layer_is_refused_before_any_task_is_decoded(monkeypatch):
    from hlg.packing.codec import Decoder

    def refuse(*args, **kwargs):
        raise AssertionError("decoded before the limit was checked")

    data = hlg.pack({("x", i): (abs, i) for i in range(100)})
    monkeypatch.setattr(Decoder, "tasks", refuse)
    with pytest.raises(hlg.TooManyTasksError, match="100 tasks"):
        hlg.unpack(data, max_tasks=99)


def test_annotation_entries_are_charged_before_they_are_expanded():
    layer = RangeLayer("r", abs, 0, 100, annotations={"a": 1, "b": 2})
    data = hlg.pack(layer)
    assert len(hlg.unpack(data, limits=hlg.Limits(annotations=200)).annotations["a"]) == 100
    with pytest.raises(hlg.ResourceLimitError, match="annotation entries"):
        hlg.unpack(data, limits=hlg.Limits(annotations=199))


def test_get_and_client_compute_take_limits_for_bytes():
    data = hlg.pack({"x": 1, "y": (abs, "x")}, "y")
    assert hlg.get(data, limits=hlg.Limits(tasks=2)) == (1,)
    with pytest.raises(hlg.TooManyTasksError):
        hlg.get(data, max_tasks=1)
    with hlg.Client(scheduler="sync") as client:
        assert client.compute(data, limits=hlg.Limits(tasks=2)) == (1,)
        with pytest.raises(hlg.TooManyTasksError):
            client.compute(data, max_tasks=1)


class _Contracted(hlg.Layer):
    """A layer for testing blame: what it does wrong is chosen per test."""

    def __iter__(self):
        return iter([("c", 0)])

    def __len__(self):
        return 1

    def materialize(self):
        return {("c", 0): hlg.DataNode(1)}

    def pack_state(self, encoder):
        return {}


def _packed_with(tag, **methods):
    cls = type(f"Layer_{tag.replace('.', '_')}", (_Contracted,), methods)
    hlg.register_layer(tag)(cls)
    return hlg.pack(cls("c")), cls


def test_a_layer_class_without_unpack_state_is_blamed_not_the_data():
    data, _ = _packed_with("tests.blame.no-unpack")
    with pytest.raises(hlg.LayerClassError, match="does not implement unpack_state"):
        hlg.unpack(data)


def test_output_keys_that_are_not_tasks_are_blamed_naming_the_layer_and_key():
    data, _ = _packed_with(
        "tests.blame.outputs",
        unpack_state=classmethod(lambda cls, state, decoder, *, name, annotations: cls(name)),
        output_keys=lambda self: [("c", 0), ("elsewhere", 0)],
    )
    with pytest.raises(hlg.LayerClassError, match=r"layer 'c'.*\('elsewhere', 0\)"):
        hlg.unpack(data)


def _endless_outputs(self):
    while True:
        yield ("c", 0)


def _raising_outputs(self):
    raise RuntimeError("no outputs today")


@pytest.mark.parametrize(
    ("tag", "output_keys", "message"),
    [
        ("endless", _endless_outputs, r"more keys than the layer has tasks \(1\)"),
        ("raises", _raising_outputs, r"output_keys\(\) failed.*no outputs today"),
    ],
)
def test_endless_or_raising_output_keys_are_blamed_not_followed(tag, output_keys, message):
    data, cls = _packed_with(
        f"tests.blame.outputs-{tag}",
        unpack_state=classmethod(lambda cls, state, decoder, *, name, annotations: cls(name)),
        output_keys=output_keys,
    )
    with pytest.raises(hlg.LayerClassError, match=message):
        hlg.unpack(data)
    # With requested keys the method is not asked.
    assert hlg.unpack(hlg.pack(cls("c"), [("c", 0)])).keys == [("c", 0)]


def test_output_keys_name_the_results_when_no_keys_are_requested():
    data, _ = _packed_with(
        "tests.blame.outputs-none",
        unpack_state=classmethod(lambda cls, state, decoder, *, name, annotations: cls(name)),
        output_keys=lambda self: [],
    )
    flat = hlg.unpack(data)
    assert flat.keys == [] and list(flat.tasks) == [("c", 0)]


def test_an_unpack_state_with_the_wrong_signature_is_blamed():
    data, _ = _packed_with(
        "tests.blame.signature", unpack_state=classmethod(lambda cls, state: cls("c"))
    )
    with pytest.raises(hlg.LayerClassError, match=r"unpack_state cannot be called as"):
        hlg.unpack(data)


def test_an_unpack_state_returning_no_layer_is_blamed():
    data, _ = _packed_with(
        "tests.blame.returns",
        unpack_state=classmethod(lambda cls, state, decoder, *, name, annotations: {}),
    )
    with pytest.raises(hlg.LayerClassError, match="returned dict, not a Layer"):
        hlg.unpack(data)


def _rebuild(cls, state, decoder, *, name, annotations):
    return cls(name)


def test_a_cost_that_is_not_a_cost_or_under_counts_is_blamed():
    data, _ = _packed_with(
        "tests.blame.cost-type", unpack_state=classmethod(_rebuild), cost=lambda self: 5
    )
    with pytest.raises(hlg.LayerClassError, match=r"cost\(\) returned 5"):
        hlg.unpack(data)
    data, _ = _packed_with(
        "tests.blame.cost-low",
        unpack_state=classmethod(_rebuild),
        cost=lambda self: hlg.Cost(tasks=0),
    )
    with pytest.raises(hlg.LayerClassError, match="declared 0 tasks but materialize built 1"):
        hlg.unpack(data)


def test_memory_exhaustion_is_a_resource_error_and_a_bug_in_the_state_is_corruption():
    def exhausted(cls, state, decoder, *, name, annotations):
        raise MemoryError

    data, _ = _packed_with("tests.blame.memory", unpack_state=classmethod(exhausted))
    with pytest.raises(hlg.ResourceLimitError, match="ran out of memory"):
        hlg.unpack(data)

    def corrupt(cls, state, decoder, *, name, annotations):
        return state["missing"]

    data, _ = _packed_with("tests.blame.corrupt", unpack_state=classmethod(corrupt))
    with pytest.raises(hlg.LayerStateError, match="corrupt"):
        hlg.unpack(data)


def _split(part, n):
    return [part] * n


def test_per_role_annotation_entries_are_charged_before_they_are_expanded():
    layer = hlg.ShuffleLayer("s", "in", 8, _split, list, npartitions_out=8)
    layer = layer.with_role_annotations("split", workers=["w1"], retries=1)
    data = hlg.pack(layer, remote_keys=[("in", i) for i in range(8)])
    entries = layer.cost().annotations + sum(
        layer.role_size(role) * len(values) for role, values in layer.role_annotations.items()
    )
    flat = hlg.unpack(data, limits=hlg.Limits(annotations=entries))
    assert len(flat.annotations["workers"]) == layer.role_size("split")
    with pytest.raises(hlg.ResourceLimitError, match="role '.*annotation entries"):
        hlg.unpack(data, limits=hlg.Limits(annotations=entries - 1))


def test_a_blockwise_input_missing_a_block_is_refused_by_unpack():
    # Blockwise layers give their references column by column
    # (Layer.outside_references); a block its input lacks is still found.
    x = hlg.MaterializedLayer({("x", 0): 1}, name="x")
    y = hlg.blockwise(abs, "y", "i", "x", "i", numblocks={"x": (2,)})
    data = hlg.pack(hlg.HighLevelGraph({"x": x, "y": y}, {"y": {"x"}}))
    with pytest.raises(hlg.MissingDependencyError, match=r"task \('y', 1\) needs \('x', 1\)"):
        hlg.unpack(data)


def test_blockwise_gives_its_references_with_its_tasks_and_keeps_none():
    layer = hlg.blockwise(max, "z", "i", "x", "i", "y", "i", numblocks={"x": (2,), "y": (2,)})
    tasks, pairs = layer.materialize_with_references()
    assert sorted(pairs) == sorted((k, d) for k, t in tasks.items() for d in t.dependencies)
    # A layer a user holds keeps no key columns once it has built its tasks.
    before = dict(vars(layer))
    layer.materialize()
    assert vars(layer).keys() == before.keys()
    assert layer.outside_references() is None
