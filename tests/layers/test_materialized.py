import gc
import importlib
from operator import add

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hlg
from hlg import MaterializedLayer, apply
from hlg.convert import KeyUnion, plain_refs
from hlg.layers import materialized
from hlg.testing import check_layer

from ..conftest import inc

unpack_module = importlib.import_module("hlg.materialize.unpack")


def test_materialized_layer_converts_dask_values_once():
    layer = MaterializedLayer({"a": 1, "b": (inc, "a")}, name="m")
    first = layer.materialize()
    assert layer.materialize() is first
    assert first["b"].dependencies == {"a"}


def test_materialized_layer_copies_its_input():
    tasks = {"a": 1}
    layer = MaterializedLayer(tasks, name="m")
    tasks["b"] = 2
    assert list(layer) == ["a"]


def test_materialized_layer_validates_keys_eagerly():
    with pytest.raises(hlg.InvalidKeyError, match="layer 'm'"):
        MaterializedLayer({("x", None): 1}, name="m")


def test_materialized_layer_default_name_is_unique():
    assert MaterializedLayer({"a": 1}).name != MaterializedLayer({"a": 1}).name


def test_cull_keeps_what_the_kept_keys_need_inside_the_layer():
    layer = MaterializedLayer({"a": 1, "b": (inc, "a"), "c": (inc, "b"), "d": 0}, name="m")
    culled, external = layer.cull(["c"])
    assert sorted(culled) == ["a", "b", "c"] and external == set()
    with pytest.raises(hlg.MissingKeyError):
        layer.cull(["zz"])


def test_materialized_layer_passes_the_conformance_check(example_layer):
    check_layer(example_layer)


# -- culling dask-style tasks as they are ------------------------------------------------


def _chain_graph(n, reverse=False):
    graph = {("x", i): (inc, i) for i in range(n)}
    graph.update({("y", i): (add, ("x", i), ("x", (i + 1) % n)) for i in range(n)})
    return dict(reversed(graph.items())) if reverse else graph


def _in_dependency_order(layer):
    seen = set()
    for key in layer:
        if not layer[key].dependencies <= seen | (layer[key].dependencies - set(layer)):
            return False
        seen.add(key)
    return True


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("wanted", [[("y", 3)], [("y", i) for i in range(0, 40, 2)]])
def test_cull_of_dask_tasks_converts_nothing_and_keeps_dependency_order(
    monkeypatch, reverse, wanted
):
    graph = _chain_graph(40, reverse)
    expected = MaterializedLayer(graph, name="m").materialize()
    converted = []
    monkeypatch.setattr(materialized, "convert_graph", lambda *a: converted.append(a))
    layer = MaterializedLayer(graph, name="m")
    culled, external = layer.cull(wanted)
    assert converted == [] and external == set()
    monkeypatch.undo()
    kept = {k for w in wanted for k in (w, ("x", w[1]), ("x", (w[1] + 1) % 40))}
    assert set(culled) == kept
    assert culled.materialize() == {k: expected[k] for k in kept}
    assert _in_dependency_order(culled)


def test_cull_of_dask_tasks_finds_dependencies_written_after_their_dependents():
    # "b" needs "a", written after it; "c" is needed twice, once after it was passed.
    graph = {"b": (inc, "a"), "c": (inc, 1), "d": (add, "b", "c"), "a": (inc, "c"), "e": 0}
    layer = MaterializedLayer(graph, name="m")
    culled, _ = layer.cull(["d", "a"])
    assert set(culled) == {"a", "b", "c", "d"}
    assert _in_dependency_order(culled)
    assert hlg.get(culled, "d") == 6


def test_cull_of_dask_tasks_reads_every_kind_of_value():
    graph = {
        "a": 1,
        "alias": "a",
        "listed": (sum, ["a", ("k", 0)]),
        "applied": (apply, add, ["a"], {"y": "alias"}),
        "nested": (inc, (inc, "a")),
        "node": hlg.Task(add, hlg.TaskRef("a"), hlg.TaskRef(("k", 0))),
        "top": (list, ["alias", "listed", "applied", "nested", "node"]),
    }
    layer = MaterializedLayer(graph, name="m", known_keys={("k", 0)})
    culled, external = layer.cull(["top"])
    assert external == {("k", 0)} and set(culled) == set(graph)
    assert (
        culled.materialize()
        == MaterializedLayer(graph, name="m", known_keys={("k", 0)}).materialize()
    )
    assert _in_dependency_order(culled)
    with pytest.raises(hlg.MissingKeyError, match="layer 'm' has no key 'zz'"):
        layer.cull(["top", "zz"])


def test_pack_for_keys_needs_no_task_sort_and_no_full_collection(monkeypatch):
    graph = _chain_graph(5_000)
    wanted = [("y", i) for i in range(0, 5_000, 2)]
    sorted_sizes = []
    real_toposort = unpack_module.toposort
    monkeypatch.setattr(
        unpack_module,
        "toposort",
        lambda deps, **kw: sorted_sizes.append(len(deps)) or real_toposort(deps, **kw),
    )
    collections = []

    def count_full(phase, info):
        if phase == "start" and info["generation"] == 2:
            collections.append(info)

    graph_layer = hlg.HighLevelGraph.from_collections("g", graph)
    gc.collect()  # settle what earlier work left for the collector
    data = hlg.pack(graph_layer, wanted)
    assert graph_layer.layers["g"]._raw is not None  # the user's layer stays unconverted
    gc.callbacks.append(count_full)
    try:
        flat = hlg.unpack(data)
    finally:
        gc.callbacks.remove(count_full)
    assert collections == [] and sorted_sizes == [1]  # only the one layer was sorted
    assert len(flat) == 2 * 2_500 + 2_500 and flat.keys == wanted


# -- the sweep agrees with the walk ------------------------------------------------------

_names = st.sampled_from(["a", "b", ("t", 0), ("t", 1), ("t", 2), 7, 2.5, b"k"])
_external = [("ext", 0), "ext"]
_arguments = st.one_of(
    _names,
    st.sampled_from(_external),
    st.sampled_from([None, True, 3, 1 << 70, -(1 << 63) - 1, 0.5, "lit", b"lit", ("lit", 1, None)]),
    st.sampled_from([("lit", [1]), ("t", (0,)), ["a", 1], {"a"}, (inc, "a"), ("lit", 1 << 70)]),
)
_values = st.one_of(
    st.tuples(st.sampled_from([inc, add, sum]), st.lists(_arguments, max_size=4)).map(
        lambda fa: (fa[0], *fa[1])
    ),
    st.lists(_arguments, max_size=3).map(lambda a: (apply, add, a)),
    _arguments,
    st.tuples(st.none(), _arguments),
)


@st.composite
def _raw_graphs(draw):
    keys = draw(st.lists(_names, min_size=1, max_size=8, unique=True))
    raw = {key: draw(_values) for key in keys}
    wanted = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=4, unique=True))
    if draw(st.booleans()):
        known = raw
    elif draw(st.booleans()):
        known = KeyUnion(raw, set(_external))
    else:
        known = set(raw) | set(_external)
    return raw, known, wanted


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_raw_graphs())
def test_cull_sweep_agrees_with_the_walk_and_with_plain_refs(case):
    # The sweep inlines plain_refs; it must keep what the walk keeps, find what
    # plain_refs finds, and give way exactly when a kept task needs a later one.
    raw, known, wanted = case
    walked, walked_refs, walked_external = materialized._walk_raw(raw, known, wanted)
    swept = materialized._sweep_raw(raw, known, wanted)
    position = {key: i for i, key in enumerate(raw)}
    needs_later = any(
        position.get(dep, -1) > position[key]
        for key in walked
        for dep in materialized._raw_dependencies(raw[key], known)[0]
    )
    assert (swept is None) == needs_later
    if swept is None:
        return
    kept, refs, external = swept
    assert list(kept) == [key for key in raw if key in walked]
    assert all(kept[key] is raw[key] for key in kept)
    assert external == walked_external
    assert dict(zip(kept, refs, strict=True)) == dict(zip(walked, walked_refs, strict=True))
    for key, found in zip(kept, refs, strict=True):
        value = raw[key]
        if found is not None:
            assert found == plain_refs(value[1:], known)


def test_cull_sweep_gives_way_for_a_missing_key():
    layer = MaterializedLayer({"a": 1, "b": (inc, "a")}, name="m")
    with pytest.raises(hlg.MissingKeyError, match="layer 'm' has no key 'zz'"):
        layer.cull(["b", "a", "zz"])


def test_filter_keys_keeps_the_given_order_when_the_layer_holds_every_key():
    from hlg.layers.base import PendingKeys

    layer = MaterializedLayer({"a": 1, "b": 2, "c": 3}, name="m")
    assert layer.filter_keys(PendingKeys.of(["c", "a"])) == ["c", "a"]
    assert set(layer.filter_keys(PendingKeys.of(["c", "zz", "a"]))) == {"a", "c"}
