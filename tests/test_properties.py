"""Random graphs computed three ways agree: a reference evaluator, hlg.get, and via bytes."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hlg


def combine(*values: Any) -> Any:
    return ("c", *values)


# Literal strings use other characters than key names: dask's rules would make a
# string equal to any key of the graph a reference.
literals = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text("0123 ", max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=5,
)
key_names = st.text("abcxyz-", min_size=1, max_size=6)
key_shapes = st.one_of(
    key_names,
    st.tuples(key_names, st.integers(-3, 100)),
    st.tuples(key_names, st.integers(0, 9), st.text("ab", max_size=2)),
)


@st.composite
def random_dags(draw: st.DrawFn) -> tuple[dict[Any, Any], list[Any]]:
    keys = draw(st.lists(key_shapes, min_size=1, max_size=25, unique=True))
    graph: dict[Any, Any] = {}
    for i, key in enumerate(keys):
        earlier = keys[:i]
        kind = draw(st.integers(0, 3)) if earlier else 0
        if kind == 0:
            graph[key] = draw(literals)
        elif kind == 1:
            deps = draw(st.lists(st.sampled_from(earlier), max_size=3))
            graph[key] = (combine, *deps, draw(st.integers()))
        elif kind == 2:
            graph[key] = draw(st.sampled_from(earlier))  # an alias
        else:
            deps = draw(st.lists(st.sampled_from(earlier), max_size=3))
            graph[key] = (combine, list(deps), (combine, *deps[:1]))
    requested = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=4))
    return graph, requested


def reference(graph: dict[Any, Any], key: Any) -> Any:
    """A deliberately simple evaluator of dask-style graphs, written for this test."""

    def value_of(x: Any) -> Any:
        if type(x) is tuple and x and callable(x[0]):
            return x[0](*[value_of(a) for a in x[1:]])
        if type(x) is list:
            return [value_of(a) for a in x]
        try:
            is_reference = type(x) in (str, tuple) and x in graph
        except TypeError:  # a tuple holding a list is never a key
            is_reference = False
        return reference(graph, x) if is_reference else x

    return value_of(graph[key])


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(random_dags())
def test_get_matches_a_reference_evaluator(case):
    graph, requested = case
    expected = tuple(reference(graph, k) for k in requested)
    assert hlg.get(graph, requested) == expected
    assert hlg.get(hlg.HighLevelGraph.from_dict(graph), requested) == expected


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(random_dags())
def test_pack_unpack_get_matches_direct_get(case):
    graph, requested = case
    direct = hlg.get(graph, requested)
    assert hlg.get(hlg.unpack(hlg.pack(graph, requested)), requested) == direct
    assert hlg.get(hlg.pack(graph), requested) == direct


# -- Blockwise graphs: culling symbolically keeps what culling the tasks keeps -------------

LETTERS = "ijklm"


@st.composite
def blockwise_graphs(draw: st.DrawFn) -> tuple[hlg.HighLevelGraph, list[Any]]:
    from hlg.layers.blockwise import BlockIndex, blockwise

    first = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2)))
    layers: dict[str, Any] = {
        "l0": blockwise(
            combine,
            "l0",
            LETTERS[: len(first)],
            BlockIndex(first),
            "ij"[: len(first)],
            numblocks={},
        )
    }
    shapes: dict[str, tuple[int, ...]] = {"l0": first}
    deps: dict[str, set[str]] = {"l0": set()}
    for n in range(1, draw(st.integers(1, 5)) + 1):
        name = f"l{n}"
        src = draw(st.sampled_from(sorted(shapes)))
        s = shapes[src]
        idx = LETTERS[: len(s)]
        kind = draw(st.sampled_from(["same", "transpose", "pair", "contract", "new-axis", "dict"]))
        if kind == "transpose" and len(s) == 2:
            layer, shape, used = (
                blockwise(combine, name, "ij", src, "ji", numblocks={src: s}),
                (s[1], s[0]),
                {src},
            )
        elif kind == "pair" and (others := sorted(k for k, v in shapes.items() if v == s)):
            other = draw(st.sampled_from(others))
            layer = blockwise(
                combine, name, idx, src, idx, other, idx, numblocks={src: s, other: s}
            )
            shape, used = s, {src, other}
        elif kind == "contract" and s:
            layer = blockwise(
                combine, name, idx[:-1], src, idx, numblocks={src: s}, concatenate=False
            )
            shape, used = s[:-1], {src}
        elif kind == "new-axis" and len(s) < 3:
            extra = draw(st.integers(1, 3))
            out = idx + LETTERS[len(s)]
            layer = blockwise(
                combine, name, out, src, idx, numblocks={src: s}, new_axes={out[-1]: extra}
            )
            shape, used = (*s, extra), {src}
        elif kind == "dict":
            picked = draw(st.lists(st.sampled_from(list(layers[src])), min_size=1, max_size=3))
            layer = hlg.MaterializedLayer({(name, 0): (combine, *picked)}, name=name)
            shape, used = (1,), {src}
        else:
            layer = blockwise(combine, name, idx, src, idx, 7, None, numblocks={src: s})
            shape, used = s, {src}
        layers[name], shapes[name], deps[name] = layer, shape, used
    graph = hlg.HighLevelGraph(layers, deps)
    every = [key for layer in layers.values() for key in layer]
    requested = draw(st.lists(st.sampled_from(every), min_size=1, max_size=5))
    return graph, requested


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(blockwise_graphs())
def test_symbolic_cull_keeps_exactly_what_the_tasks_need_and_fusion_agrees(case):
    graph, requested = case
    full = graph.to_dict()
    needed, stack = set(), list(requested)
    while stack:
        key = stack.pop()
        if key not in needed:
            needed.add(key)
            stack.extend(full[key].dependencies)
    culled = graph.cull(requested)
    tasks = culled.to_dict()
    assert set(tasks) == needed and len(culled) == len(needed)
    assert all(tasks[key] == full[key] for key in needed)
    assert set(hlg.unpack(hlg.pack(graph, requested)).tasks) == needed
    expected = hlg.get(full, requested)
    assert hlg.get(culled, requested) == expected
    assert hlg.get(hlg.optimize(graph, requested), requested) == expected
