"""Blocks of a grid held as columns: the kept blocks of a culled Blockwise layer.

A culled layer keeps its blocks column by column, one list of block numbers
per dimension. Kept blocks that fill a box stay a :class:`BoxColumns` of
ranges until read, and pack as the box's bounds; any other set packs as a
sorted flat list (:data:`PackedBlocks`).

Examples
--------
>>> grid([range(2), range(1, 3)])
[[0, 0, 1, 1], [1, 2, 1, 2]]
>>> pack_blocks([[0, 0, 1, 1], [1, 2, 1, 2]], 4)
('box', ((0, 2), (1, 3)))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, KeysView, Sequence, Set
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Literal, TypeAlias, overload

from hlg.errors import LayerStateError
from hlg.limits import check_distinct_hashes

__all__ = ["BoxColumns", "PackedBlocks", "box_ranges", "grid", "pack_blocks", "unpack_blocks"]


#: The blocks a culled layer keeps: ``("box", ((start, stop), ...))``, one range per
#: dimension, when they fill a box; else ``("list", ndim, flat block numbers)``,
#: sorted by block.
PackedBlocks: TypeAlias = (
    tuple[Literal["box"], tuple[tuple[int, int], ...]]
    | tuple[Literal["list"], int, tuple[int, ...]]
)


def unique_keys(keys: Iterable[Any]) -> list[Any]:
    # The keys once each, in order; collections of distinct keys are taken as they are.
    # A dict first, subclasses too (the pending keys of a cull): checking the ABCs of
    # a dict subclass costs more than listing a few keys.
    if (isinstance(keys, dict) and type(keys).__iter__ is dict.__iter__) or isinstance(
        keys, Set | KeysView
    ):
        return list(keys)
    return list(dict.fromkeys(keys))


def grid_columns(
    rows: list[Any], start: int, numblocks: tuple[int, ...]
) -> Sequence[Sequence[int]] | None:
    """Columns ``start, start + 1, ...`` of ``rows``, or None unless each row holds a block.

    A block is one int per dimension, in range; rows must have exactly that length.
    """
    if not rows:
        return [[] for _ in numblocks]
    try:
        if set(map(len, rows)) != {start + len(numblocks)}:
            return None
    except TypeError:
        return None
    columns = []
    for d, n in enumerate(numblocks, start=start):
        column = list(map(itemgetter(d), rows))
        if set(map(type, column)) != {int} or min(column) < 0 or max(column) >= n:
            return None
        columns.append(column)
    return columns


def box_ranges(columns: Sequence[Sequence[int]], count: int) -> list[range] | None:
    """Return the box that ``count`` distinct blocks fill, as ranges; None if they fill none.

    Examples
    --------
    >>> box_ranges([[0, 0, 1, 1], [3, 4, 3, 4]], 4), box_ranges([[0, 2]], 2)
    ([range(0, 2), range(3, 5)], None)
    """
    if not count:
        return None
    ranges = [range(min(c), max(c) + 1) for c in columns]
    return ranges if math.prod(map(len, ranges)) == count else None


def grid(ranges: Sequence[range]) -> list[list[int]]:
    """Every block of the box ``ranges`` in C order, one column per dimension.

    Examples
    --------
    >>> grid([range(2), range(1, 4)])
    [[0, 0, 0, 1, 1, 1], [1, 2, 3, 1, 2, 3]]
    """
    inner = math.prod(len(r) for r in ranges)
    if inner == 0:
        return [[] for _ in ranges]
    columns, outer = [], 1
    for r in ranges:
        inner //= len(r)
        column = list(chain.from_iterable(map(repeat, r, repeat(inner)))) if inner > 1 else list(r)
        columns.append(column * outer)
        outer *= len(r)
    return columns


class BoxColumns(Sequence[Sequence[int]]):
    """The block-number columns of every block in a box of ranges, built when first read.

    An unpacked layer that kept a box of blocks stays this small until it is
    materialised, so the unpacker checks its length against ``max_tasks`` first.
    """

    def __init__(self, ranges: Sequence[range]) -> None:
        self.ranges = list(ranges)
        self._columns: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.ranges)

    @overload
    def __getitem__(self, index: int) -> Sequence[int]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Sequence[int]]: ...
    def __getitem__(self, index: int | slice) -> Sequence[int] | Sequence[Sequence[int]]:
        if self._columns is None:
            self._columns = grid(self.ranges)
        return self._columns[index]


def pack_blocks(columns: Sequence[Sequence[int]], count: int) -> PackedBlocks:
    """Kept blocks: a box of ``[start, stop)`` ranges when they fill one, else a flat list.

    The list is sorted, so a culled layer packs to the same bytes whatever order
    its keys were asked for in.
    """
    if not count:
        return ("list", len(columns), ())
    if isinstance(columns, BoxColumns):
        return ("box", tuple((r.start, r.stop) for r in columns.ranges))
    lows = [min(c) for c in columns]
    highs = [max(c) + 1 for c in columns]
    if math.prod(h - lo for lo, h in zip(lows, highs, strict=True)) == count:
        return ("box", tuple(zip(lows, highs, strict=True)))
    return ("list", len(columns), tuple(chain.from_iterable(sorted(zip(*columns, strict=True)))))


# More kept blocks than a client can list after culling: refuse rather than expand.
MAX_KEPT_BLOCKS = 50_000_000


def unpack_blocks(
    packed: Any, numblocks: tuple[int, ...], name: str
) -> tuple[Sequence[Sequence[int]], int]:
    """Check and expand packed kept blocks into columns; raise LayerStateError if corrupt."""
    ndim = len(numblocks)
    if type(packed) is not tuple or not packed or packed[0] not in ("box", "list"):
        raise LayerStateError(
            f'layer {name!r}: the kept blocks are {packed!r:.200}, not a "box" or "list" record'
        )
    if packed[0] == "box":
        if len(packed) != 2 or type(packed[1]) is not tuple:
            raise LayerStateError(f"layer {name!r}: the kept blocks' box is malformed")
        bounds = list(packed[1])
        if len(bounds) != ndim or not all(
            type(b) is tuple
            and len(b) == 2
            and set(map(type, b)) == {int}
            and 0 <= b[0] <= b[1] <= n
            for b, n in zip(bounds, numblocks, strict=True)
        ):
            raise LayerStateError(
                f"layer {name!r}: kept blocks {bounds!r:.200} are not a box inside the "
                f"{numblocks} grid"
            )
        count = math.prod(hi - lo for lo, hi in bounds)
        if count > MAX_KEPT_BLOCKS:
            raise LayerStateError(
                f"layer {name!r}: the kept blocks form a box of more than "
                f"{MAX_KEPT_BLOCKS:,} blocks; a culled layer lists fewer, so the state is corrupt"
            )
        return BoxColumns([range(lo, hi) for lo, hi in bounds]), count
    corrupt = LayerStateError(
        f"layer {name!r}: the kept blocks are not distinct blocks of the {numblocks} grid"
    )
    if len(packed) != 3 or type(packed[2]) is not tuple:
        raise corrupt
    _, width, flat = packed
    if width != ndim or (flat and (not width or len(flat) % width)):
        raise corrupt
    count = len(flat) // width if width else 0
    columns = [list(flat[d::width]) for d in range(width)]
    rows = list(zip(*columns, strict=True)) if width else []
    if rows and grid_columns(rows, 0, numblocks) is None:
        raise corrupt
    check_distinct_hashes(rows, f"layer {name!r}: the kept blocks")
    if len(set(rows)) != count:
        raise corrupt
    return tuple(columns), count
