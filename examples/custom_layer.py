"""A collection author's layer: tiles of an image, packed as a few integers.

``TileLayer`` stands for ``rows * cols`` tasks ``(name, r, c)`` that each read
one tile. It packs to its function, the grid shape and the tile size, whatever
the number of tiles, and culls without building tasks.

Run: python examples/custom_layer.py
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import hlg
from hlg.testing import check_layer


def read_tile(row: int, col: int, size: int) -> int:
    """Pretend to read a tile: return the sum of its pixel coordinates."""
    return sum(row * size + i + col * size + j for i in range(size) for j in range(size))


@hlg.register_layer("examples.tiles")
class TileLayer(hlg.Layer):
    def __init__(
        self,
        name: str,
        rows: int,
        cols: int,
        size: int,
        func: Any = read_tile,
        keep: tuple[tuple[int, int], ...] | None = None,
    ) -> None:
        super().__init__(name)
        self.rows, self.cols, self.size, self.func, self.keep = rows, cols, size, func, keep

    def _cells(self) -> Iterable[tuple[int, int]]:
        if self.keep is not None:
            return self.keep
        return ((r, c) for r in range(self.rows) for c in range(self.cols))

    def __iter__(self) -> Iterator[hlg.Key]:
        return ((self.name, r, c) for r, c in self._cells())

    def __len__(self) -> int:
        return len(self.keep) if self.keep is not None else self.rows * self.cols

    def __contains__(self, key: object) -> bool:
        if not (type(key) is tuple and len(key) == 3 and key[0] == self.name):
            return False
        cell = (key[1], key[2])
        if self.keep is not None:
            return cell in self.keep
        return (
            all(type(i) is int for i in cell)
            and 0 <= cell[0] < self.rows
            and 0 <= cell[1] < self.cols
        )

    def __getitem__(self, key: hlg.Key) -> hlg.GraphNode:
        if key not in self:
            raise hlg.MissingKeyError(f"layer {self.name!r} has no key {key!r}")
        return hlg.Task(self.func, key[1], key[2], self.size)

    def materialize(self) -> dict[hlg.Key, hlg.GraphNode]:
        return {(self.name, r, c): hlg.Task(self.func, r, c, self.size) for r, c in self._cells()}

    def cull(self, keys: Iterable[hlg.Key]) -> tuple[TileLayer, set[hlg.Key]]:
        keep = tuple(sorted((k[1], k[2]) for k in keys if k in self))
        return TileLayer(self.name, self.rows, self.cols, self.size, self.func, keep), set()

    def pack_state(self, encoder: Any) -> Any:
        state = {
            "func": encoder.function(self.func),
            "grid": (self.rows, self.cols),
            "size": self.size,
        }
        if self.keep is not None:
            state["keep"] = self.keep
        return state

    @classmethod
    def unpack_state(
        cls, state: Any, decoder: Any, *, name: str, annotations: dict[str, Any]
    ) -> TileLayer:
        rows, cols = state["grid"]
        keep = state.get("keep")
        return cls(name, rows, cols, state["size"], decoder.function(state["func"]), keep)


if __name__ == "__main__":
    layer = TileLayer("tiles", rows=500, cols=400, size=4)
    report = check_layer(layer, max_packed_bytes=4_000)
    print(f"{report.ntasks:,} tiles pack to {report.packed_bytes:,} bytes")
    total = hlg.HighLevelGraph.from_collections(
        "total",
        {"total": (sum, [("tiles", r, 0) for r in range(3)])},
        [hlg.HighLevelGraph({"tiles": layer})],
    )
    culled = total.cull("total")
    print(f"culled to {len(culled):,} tasks; packed {len(hlg.pack(culled, 'total')):,} bytes")
    print("total of three tiles:", hlg.get(hlg.pack(total, "total"), "total"))
