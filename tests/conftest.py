"""Shared fixtures: an example of every registered layer type, and a lazy test layer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from operator import add
from typing import Any

import pytest
from hypothesis import settings

import hlg
from hlg.testing import RangeLayer

# CI runs the property tests on a fixed seed (HLG_HYPOTHESIS_PROFILE=ci, set by .ci/run), so
# a result does not depend on the draw; a developer's run explores new examples each time.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HLG_HYPOTHESIS_PROFILE", "default"))


def inc(x: int) -> int:
    return x + 1


class CountingLayer(hlg.Layer):
    """A layer that counts how often it is materialised: tasks (name, i) = inc(i)."""

    def __init__(self, name: str, n: int) -> None:
        super().__init__(name)
        self.n = n
        self.materializations = 0

    def __iter__(self) -> Iterator[hlg.Key]:
        return ((self.name, i) for i in range(self.n))

    def __len__(self) -> int:
        return self.n

    def __contains__(self, key: object) -> bool:
        return (
            type(key) is tuple and len(key) == 2 and key[0] == self.name and key[1] in range(self.n)
        )

    def materialize(self) -> dict[hlg.Key, hlg.GraphNode]:
        self.materializations += 1
        return {(self.name, i): hlg.Task(inc, i) for i in range(self.n)}


def materialized_example() -> hlg.Layer:
    tasks: dict[Any, Any] = {("m", i): (inc, i) for i in range(5)}
    tasks[("m", 5)] = (add, ("m", 0), ("m", 4))
    tasks[("m", 6)] = (sum, [("m", 1), ("m", 2)])
    tasks[("m", 7)] = ("m", 6)
    tasks[("m", 8)] = {"literal": [1, 2]}
    return hlg.MaterializedLayer(tasks, name="m", annotations={"priority": 3})


def blockwise_example() -> hlg.Layer:
    from hlg.layers.blockwise import BlockSlices

    return hlg.blockwise(
        add,
        "bw",
        "ij",
        "x",
        "ij",
        BlockSlices(((1, 1), (2, 2, 2))),
        "ij",
        numblocks={"x": (2, 3)},
        annotations={"priority": 2},
    )


def range_example() -> hlg.Layer:
    return RangeLayer("r", inc, 0, 100, annotations={"retries": 1})


def split_rows(rows: list[int], route: hlg.ShuffleRoute) -> list[list[int]]:
    """Split a partition of ints by destination ``row % npartitions``."""
    pieces: list[list[int]] = [[] for _ in range(route.nsplits)]
    for row in rows:
        pieces[route.group(row % route.npartitions)].append(row)
    return pieces


def combine_rows(pieces: list[list[int]], route: hlg.ShuffleRoute, position: int) -> list[int]:
    return sorted(row for piece in pieces for row in piece)


def shuffle_example() -> hlg.Layer:
    return hlg.ShuffleLayer(
        "sh",
        "x",
        7,
        split_rows,
        combine_rows,
        npartitions_out=10,
        max_branch=4,
        empty=[],
        annotations={"retries": 2},
    )


def simple_shuffle_example() -> hlg.Layer:
    return hlg.SimpleShuffleLayer("ss", "x", 5, split_rows, combine_rows, npartitions_out=3)


#: An example instance of every built-in layer type, by registry tag.
LAYER_EXAMPLES = {
    "hlg.materialized": materialized_example,
    "hlg.testing.range": range_example,
    "hlg.blockwise": blockwise_example,
    "hlg.shuffle": shuffle_example,
    "hlg.shuffle.simple": simple_shuffle_example,
}


@pytest.fixture(params=sorted(LAYER_EXAMPLES))
def example_layer(request: pytest.FixtureRequest) -> hlg.Layer:
    return LAYER_EXAMPLES[request.param]()
