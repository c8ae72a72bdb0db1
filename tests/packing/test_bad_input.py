"""Bad bytes get an hlg error naming the layer and key; never a bare error, never a hang."""

import contextlib
import os
import pickle
from operator import add

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hlg
from hlg.packing.envelope import FORMAT_VERSION
from hlg.testing import RangeLayer

from ..conftest import inc


def sample_bytes() -> bytes:
    graph = hlg.HighLevelGraph(
        {
            "a": {("a", i): (inc, i) for i in range(4)},
            "b": {("b", 0): (add, ("a", 0), ("a", 1)), ("b", 1): (sum, [("a", 2), ("a", 3)])},
            "r": RangeLayer("r", inc, 0, 3),
            "w": hlg.blockwise(add, "w", "i", "a", "i", 1, None, numblocks={"a": (4,)}),
        },
        {"b": {"a"}, "w": {"a"}},
    )
    return hlg.pack(graph)


SAMPLE = sample_bytes()


def decode(data: bytes) -> dict:
    return msgpack.unpackb(data, strict_map_key=False, raw=False)


def encode(envelope: dict) -> bytes:
    return msgpack.packb(envelope, use_bin_type=True)


def only_hlg_errors(data: bytes) -> None:
    # max_tasks bounds the work: a flipped block count may claim billions of tasks.
    with contextlib.suppress(hlg.HlgError):
        hlg.unpack(data, max_tasks=10_000)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_hlg_errors_only(data):
    only_hlg_errors(data)


def test_truncation_at_every_offset_raises_unpack_error():
    for end in range(len(SAMPLE)):
        with pytest.raises(hlg.HlgError):
            hlg.unpack(SAMPLE[:end])


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(0, len(SAMPLE) * 8 - 1))
def test_bit_flips_raise_hlg_errors_or_unpack(bit):
    data = bytearray(SAMPLE)
    data[bit // 8] ^= 1 << (bit % 8)
    only_hlg_errors(bytes(data))


def test_extra_bytes_after_the_envelope_are_refused():
    with pytest.raises(hlg.UnpackError, match="extra bytes"):
        hlg.unpack(SAMPLE + b"\x00")


def test_not_a_map_and_not_hlg_are_refused():
    with pytest.raises(hlg.UnpackError, match="do not start with a msgpack map"):
        hlg.unpack(b"\x93\x01\x02\x03")
    with pytest.raises(hlg.UnpackError, match="not an hlg packed graph"):
        hlg.unpack(encode({"format": "other", "version": 1}))
    with pytest.raises(hlg.UnpackError, match="expected bytes"):
        hlg.unpack("text")


def test_a_newer_format_version_is_refused_with_what_to_do():
    env = decode(SAMPLE)
    env["version"] = FORMAT_VERSION + 1
    with pytest.raises(hlg.FormatVersionError, match="upgrade hlg"):
        hlg.unpack(encode(env))


def test_an_unknown_tag_lists_known_tags_and_how_to_register():
    env = decode(SAMPLE)
    env["layers"][0]["tag"] = "acme.tiles"
    with pytest.raises(hlg.UnknownLayerError) as info:
        hlg.unpack(encode(env))
    message = str(info.value)
    assert "'acme.tiles'" in message and "hlg.materialized" in message
    assert "register_layer" in message and "hlg.layers" in message


@pytest.mark.parametrize("field", ["tag", "name", "dependencies", "annotations", "state"])
def test_a_layer_record_missing_a_field_names_the_layer(field):
    env = decode(SAMPLE)
    del env["layers"][1][field]
    with pytest.raises(hlg.LayerStateError, match=repr(field)):
        hlg.unpack(encode(env))


@pytest.mark.parametrize("column", ["keys", "funcs", "args", "refs"])
def test_a_state_missing_a_column_names_the_layer(column):
    env = decode(SAMPLE)
    layer = next(r for r in env["layers"] if r["name"] == "a")
    del layer["state"][column]
    with pytest.raises(hlg.LayerStateError, match=f"layer 'a'.*{column}"):
        hlg.unpack(encode(env))


def test_a_range_state_missing_a_field_names_the_layer_and_tag():
    env = decode(SAMPLE)
    layer = next(r for r in env["layers"] if r["name"] == "r")
    del layer["state"]["stop"]
    with pytest.raises(hlg.LayerStateError, match="layer 'r' \\(tag 'hlg.testing.range'\\)"):
        hlg.unpack(encode(env))


def test_a_function_index_out_of_range_names_the_layer():
    env = decode(SAMPLE)
    layer = next(r for r in env["layers"] if r["name"] == "a")
    layer["state"]["funcs"][0] = 99
    with pytest.raises(hlg.LayerStateError, match="layer 'a'"):
        hlg.unpack(encode(env))


def test_a_layer_cycle_is_refused_naming_layers():
    env = decode(SAMPLE)
    by_name = {r["name"]: r for r in env["layers"]}
    by_name["a"]["dependencies"] = ["b"]
    with pytest.raises(hlg.CycleError, match="'a'.*'b'"):
        hlg.unpack(encode(env))


def test_a_task_cycle_is_refused_naming_keys():
    graph = {"p": (inc, "q"), "q": (inc, "p")}
    with pytest.raises(hlg.CycleError, match="'p'.*'q'|'q'.*'p'"):
        hlg.unpack(hlg.pack(graph))


@pytest.mark.parametrize(
    "graph",
    [
        {"p": (inc, "p")},
        {"a": "b", "b": (inc, "a")},
        {"x": 1, "p": (add, "x", "q"), "q": (inc, "p")},
    ],
)
def test_a_task_cycle_within_one_layer_is_refused(graph):
    with pytest.raises(hlg.CycleError):
        hlg.unpack(hlg.pack(graph))


def test_a_dependency_on_an_unknown_layer_is_refused():
    env = decode(SAMPLE)
    env["layers"][0]["dependencies"] = ["ghost"]
    with pytest.raises(hlg.MissingLayerError, match="'ghost'"):
        hlg.unpack(encode(env))


def test_a_task_needing_a_key_nobody_produces_names_layer_and_key():
    layer = hlg.MaterializedLayer({"t": (inc, "ghost")}, name="l", known_keys={"ghost"})
    data = hlg.pack(layer, remote_keys=["ghost"])
    env = decode(data)
    env["remote_keys"] = []
    with pytest.raises(hlg.MissingDependencyError, match="layer 'l': task 't' needs 'ghost'"):
        hlg.unpack(encode(env))
    assert hlg.unpack(data).remote_keys == {"ghost"}


def test_duplicate_keys_across_layers_are_refused():
    graph = hlg.HighLevelGraph({"a": {"k": 1}, "b": {"k": 2}})
    with pytest.raises(hlg.DuplicateKeyError, match="'k'"):
        hlg.unpack(hlg.pack(graph))


def test_duplicate_keys_within_a_layer_state_are_refused():
    env = decode(hlg.pack({"a": 1, "b": 2}))
    state = env["layers"][0]["state"]
    state["keys"] = ["a", "a"]
    with pytest.raises(hlg.LayerStateError, match="twice"):
        hlg.unpack(encode(env))


def test_requested_key_not_in_graph_is_refused():
    env = decode(SAMPLE)
    env["keys"] = [["nope", 1]]
    with pytest.raises(hlg.MissingKeyError, match="'nope'"):
        hlg.unpack(encode(env))


@pytest.mark.parametrize("field", ["keys", "remote_keys"])
def test_a_requested_or_remote_key_that_is_not_a_key_is_refused(field):
    env = decode(SAMPLE)
    env[field] = [["fine", 1], ["bad", None]]
    with pytest.raises(hlg.UnpackError, match=rf"'{field}' holds \('bad', None\), which is not"):
        hlg.unpack(encode(env))


def test_max_tasks_refuses_before_materialising_the_layer():
    data = hlg.pack(RangeLayer("big", inc, 0, 10**9))
    with pytest.raises(hlg.TooManyTasksError, match="layer 'big'.*limit of 1,000 tasks.*max_tasks"):
        hlg.unpack(data, max_tasks=1_000)
    assert len(hlg.unpack(SAMPLE, max_tasks=100).tasks) == 13


def test_a_pickle_payload_in_the_function_table_does_not_run_during_unpack(tmp_path):
    marker = tmp_path / "ran"

    class Planted:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    env = decode(hlg.pack({"t": (inc, 1)}))
    env["functions"][0][1] = pickle.dumps(Planted())
    flat = hlg.unpack(encode(env))
    assert not marker.exists()
    with pytest.raises(hlg.TaskExecutionError):
        hlg.get(flat, "t")  # loading it on a worker runs it, and it is not callable...
    assert marker.exists()  # ...which is why only workers, never the unpacker, load functions


def test_a_malformed_function_table_is_refused():
    env = decode(SAMPLE)
    env["functions"] = [["inc"]]
    with pytest.raises(hlg.UnpackError, match="function table entry 0"):
        hlg.unpack(encode(env))


def blockwise_envelope(**state_changes):
    from hlg.layers.blockwise import BlockSlices, blockwise

    layer = blockwise(abs, "b", "ij", BlockSlices(((2, 2), (3,))), "ij", numblocks={})
    culled, _ = layer.cull([("b", 0, 0), ("b", 1, 0)])
    env = decode(hlg.pack(culled))
    env["layers"][0]["state"].update(state_changes)
    return encode(env)


def test_a_blockwise_state_claiming_a_huge_grid_fails_fast():
    # 10**18 and 3 * 10**12 blocks: refusing them after listing any would not finish.
    huge_box = decode(blockwise_envelope(blocks=["box", [[0, 10**9], [0, 10**9]]]))
    huge_box["layers"][0]["state"]["args"][0][2]["runs"] = [[[1, 10**9]], [[1, 10**9]]]
    with pytest.raises(hlg.LayerStateError, match="box of more than"):
        hlg.unpack(encode(huge_box))
    env = decode(blockwise_envelope())
    env["layers"][0]["state"]["args"][0][2]["runs"] = [[[1, 10**12]], [[3, 1]]]
    del env["layers"][0]["state"]["blocks"]
    with pytest.raises(hlg.TooManyTasksError):
        hlg.unpack(encode(env), max_tasks=10**6)


def test_a_kept_box_is_not_expanded_before_the_task_limit_is_checked():
    import tracemalloc

    env = decode(blockwise_envelope(blocks=["box", [[0, 40_000], [0, 1_000]]]))
    env["layers"][0]["state"]["args"][0][2]["runs"] = [[[1, 40_000]], [[1, 1_000]]]
    tracemalloc.start()
    try:
        with pytest.raises(hlg.TooManyTasksError):
            hlg.unpack(encode(env), max_tasks=1_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000  # 40 million kept blocks, never listed


@pytest.mark.parametrize(
    ("blocks", "match"),
    [
        (["box", [[0, 3], [0, 1]]], "not a box inside the \\(2, 1\\) grid"),
        (["box", [[1, 0], [0, 1]]], "not a box inside"),
        (["box", [[0, 1]]], "not a box inside"),
        (["list", 2, [0, 0, 5, 0]], "not distinct blocks"),
        (["list", 2, [0, 0, 0, 0]], "not distinct blocks"),
        (["list", 2, [0, 0, 1]], "not distinct blocks"),
        (["list", 3, [0, 0, 0]], "not distinct blocks"),
        (["list", 2, [0, "x"]], "not distinct blocks"),
        (["list", 0, [1]], "not distinct blocks"),
    ],
)
def test_corrupt_kept_blocks_are_refused(blocks, match):
    with pytest.raises(hlg.LayerStateError, match=f"layer 'b'.*{match}"):
        hlg.unpack(blockwise_envelope(blocks=blocks))


def test_a_blockwise_state_with_bad_fields_names_the_layer():
    with pytest.raises(hlg.LayerStateError, match="layer 'b'"):
        hlg.unpack(blockwise_envelope(out_ind=5))
    env = decode(blockwise_envelope())
    env["layers"][0]["state"]["args"][0][1] = "no.such.dep"
    with pytest.raises(hlg.UnknownLayerError, match="no.such.dep"):
        hlg.unpack(encode(env))
