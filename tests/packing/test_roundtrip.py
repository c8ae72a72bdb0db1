"""Property: for any graph pack accepts, unpack(pack(g)) holds exactly g's tasks."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hlg
from hlg.testing import RangeLayer, assert_same_node


def combine(*values: Any) -> Any:
    return values


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text("0123 ", max_size=5)
    | st.binary(max_size=4)
)
hashable = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=4)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text("kv", max_size=2), inner, max_size=3)
        | st.frozensets(hashable, max_size=3)
        | st.sets(hashable, max_size=3)
    ),
    max_leaves=12,
)
key_names = st.text("abcxyz-", min_size=1, max_size=6)
keys = st.one_of(key_names, st.tuples(key_names, st.integers(-3, 100)))


@st.composite
def graphs(draw: st.DrawFn) -> dict[Any, Any]:
    names = draw(st.lists(keys, min_size=1, max_size=20, unique=True))
    graph: dict[Any, Any] = {}
    for i, key in enumerate(names):
        earlier = names[:i]
        kind = draw(st.integers(0, 3)) if earlier else 0
        if kind == 0:
            graph[key] = hlg.DataNode(draw(values))
        elif kind == 1:
            deps = draw(st.lists(st.sampled_from(earlier), max_size=3))
            graph[key] = hlg.Task(combine, *map(hlg.TaskRef, deps), draw(values))
        elif kind == 2:
            graph[key] = hlg.Alias(draw(st.sampled_from(earlier)))
        else:
            deps = draw(st.lists(st.sampled_from(earlier), max_size=3))
            inner = hlg.Task(combine, [hlg.TaskRef(d) for d in deps], draw(values))
            graph[key] = hlg.Task(combine, inner, k=draw(values))
    return graph


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(graphs())
def test_unpack_of_pack_holds_the_graphs_tasks(graph):
    flat = hlg.unpack(hlg.pack(graph))
    assert set(flat.tasks) == set(graph)
    for key, node in graph.items():
        assert_same_node(flat.tasks[key], node, f"task {key!r}")


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(-5, 5), st.integers(0, 20), st.dictionaries(st.text("ab", min_size=1), scalars))
def test_unpack_of_pack_holds_a_lazy_layers_tasks(start, n, annotations):
    layer = RangeLayer("r", abs, start, start + n, annotations=annotations)
    flat = hlg.unpack(hlg.pack(layer))
    tasks = layer.materialize()
    assert set(flat.tasks) == set(tasks)
    for key, node in tasks.items():
        assert_same_node(flat.tasks[key], node, f"task {key!r}")
    for name, value in annotations.items():
        assert flat.annotations[name] == dict.fromkeys(tasks, value)
