"""A registered layer type that counts its materialisations, for the never-materialise tests.

``hlg show --import tests.visualize.counting`` registers it in a subprocess; when
the environment variable ``HLG_TEST_MATERIALIZE_LOG`` names a file, each
materialisation also appends a line to it, so a test can see what a
subprocess did.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, ClassVar

import hlg

TAG = "tests.visualize.counting"


def inc(x: int) -> int:
    return x + 1


@hlg.register_layer(TAG)
class CountedLayer(hlg.Layer):
    """Tasks ``(name, i) = inc(i)`` for ``i < n``; packs to ``{"n": n}``."""

    calls: ClassVar[int] = 0  # materialize() calls in this process, by every instance

    def __init__(self, name: str, n: int, annotations: dict[str, Any] | None = None) -> None:
        super().__init__(name, annotations)
        self.n = n

    def __iter__(self) -> Iterator[hlg.Key]:
        return ((self.name, i) for i in range(self.n))

    def __len__(self) -> int:
        return self.n

    def __contains__(self, key: object) -> bool:
        return (
            type(key) is tuple and len(key) == 2 and key[0] == self.name and key[1] in range(self.n)
        )

    def materialize(self) -> dict[hlg.Key, hlg.GraphNode]:
        type(self).calls += 1
        log = os.environ.get("HLG_TEST_MATERIALIZE_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{self.name}\n")
        return {(self.name, i): hlg.Task(inc, i) for i in range(self.n)}

    def cull(self, keys: Any) -> tuple[hlg.Layer, set[hlg.Key]]:
        return self, set()

    def pack_state(self, encoder: Any) -> Any:
        return {"n": self.n}

    @classmethod
    def unpack_state(
        cls, state: Any, decoder: Any, *, name: str, annotations: dict[str, Any]
    ) -> CountedLayer:
        return cls(name, state["n"], annotations)
