"""hlg.compute and hlg.persist over the collection protocol."""

from __future__ import annotations

import threading
from collections.abc import Callable
from operator import add
from typing import Any

import pytest

import hlg


class Numbers:
    """A tiny collection: a list of numbers, one key each, summed when finalised."""

    def __init__(self, graph: hlg.HighLevelGraph, name: str, n: int) -> None:
        self.graph, self.name, self.n = graph, name, n

    def __hlg_graph__(self) -> hlg.HighLevelGraph:
        return self.graph

    def __hlg_layers__(self) -> tuple[str, ...]:
        return (self.name,)

    def __hlg_keys__(self) -> list[Any]:
        return [[(self.name, i)] for i in range(self.n)]

    def __hlg_postcompute__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return _total, (100,)

    def __hlg_postpersist__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return Numbers, (self.name, self.n)


def _total(values: list[list[int]], offset: int) -> int:
    assert all(type(v) is list for v in values)  # nested like the keys, in lists
    return sum(v[0] for v in values) + offset


CALLS: list[int] = []


def _counted(i: int) -> int:
    CALLS.append(i)
    return i


def _source(n: int = 3) -> hlg.HighLevelGraph:
    return hlg.HighLevelGraph.from_dict({("src", i): (_counted, i) for i in range(n)}, name="src")


def _numbers(name: str, factor: int, n: int = 3) -> Numbers:
    layer = {(name, i): (add, ("src", i), factor) for i in range(n)}
    graph = hlg.HighLevelGraph.from_collections(name, layer, [_source(n)])
    return Numbers(graph, name, n)


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_compute_runs_collections_as_one_graph(scheduler: str) -> None:
    a, b = _numbers("a", 1), _numbers("b", 10)
    assert hlg.compute(a, 7, b, scheduler=scheduler, num_workers=2) == (106, 7, 133)


def test_compute_shares_common_inputs() -> None:
    CALLS.clear()
    hlg.compute(_numbers("a", 1), _numbers("b", 2), scheduler="sync")
    assert sorted(CALLS) == [0, 1, 2]


def test_compute_without_collections_returns_the_arguments() -> None:
    assert hlg.compute(1, "x") == (1, "x")
    assert hlg.persist(1) == (1,)


def test_compute_takes_a_client_and_a_get_function() -> None:
    a = _numbers("a", 1)
    with hlg.Client(scheduler="sync") as client:
        assert hlg.compute(a, scheduler=client) == (106,)
    assert hlg.compute(a, scheduler=hlg.get, optimize_graph=False) == (106,)
    with pytest.raises(hlg.UsageError, match="scheduler must be"):
        hlg.compute(a, scheduler=3)  # type: ignore[arg-type]


def test_compute_refuses_an_incomplete_collection() -> None:
    class KeysOnly:
        def __hlg_keys__(self) -> list[Any]:
            return ["x"]

    with pytest.raises(hlg.UsageError, match="KeysOnly has __hlg_keys__ but not"):
        hlg.compute(KeysOnly())

    class NoFinalize(Numbers):
        __hlg_postcompute__ = None  # type: ignore[assignment]

    with pytest.raises(hlg.UsageError, match="NoFinalize has no __hlg_postcompute__"):
        hlg.compute(NoFinalize(_numbers("a", 1).graph, "a", 3))


def test_compute_names_the_collection_when_finalize_raises() -> None:
    class Broken(Numbers):
        def __hlg_postcompute__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
            return _total, ("not a number",)

    with pytest.raises(TypeError) as info:
        hlg.compute(Broken(_numbers("a", 1).graph, "a", 3), scheduler="sync")
    assert "while finalizing a Broken" in info.value.__notes__[-1]


def test_persist_returns_collections_holding_values() -> None:
    a = _numbers("a", 1)
    (held,) = hlg.persist(a, scheduler="sync")
    assert isinstance(held, Numbers) and list(held.graph.layers) == ["a"]
    assert held.graph[("a", 2)] == hlg.DataNode(3)
    CALLS.clear()
    assert hlg.compute(held, scheduler="sync") == (106,)
    assert CALLS == []  # nothing of the old graph runs again


def test_persist_refuses_a_collection_without_postpersist() -> None:
    class NoRebuild(Numbers):
        __hlg_postpersist__ = None  # type: ignore[assignment]

    with pytest.raises(hlg.UsageError, match="no __hlg_postpersist__"):
        hlg.persist(NoRebuild(_numbers("a", 1).graph, "a", 3))


def test_compute_from_two_threads() -> None:
    results: list[Any] = []

    def run(factor: int) -> None:
        results.append(hlg.compute(_numbers("a", factor), scheduler="threads")[0])

    threads = [threading.Thread(target=run, args=(f,)) for f in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [106, 109, 112, 115]


def test_computable_protocol_is_runtime_checkable() -> None:
    assert isinstance(_numbers("a", 1), hlg.Computable)
    assert not isinstance(hlg.HighLevelGraph.from_dict({"x": 1}), hlg.Computable)
