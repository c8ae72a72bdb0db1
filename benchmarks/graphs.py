"""Graph shapes shared by the scheduler and ordering benchmarks (dask-style dicts)."""

from __future__ import annotations

from typing import Any


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def total(xs: list[int]) -> int:
    return sum(xs)


def chain(n: int) -> tuple[dict[Any, Any], Any]:
    """``n`` tasks, each incrementing the one before."""
    dsk: dict[Any, Any] = {("chain", 0): (inc, 0)}
    dsk.update({("chain", i): (inc, ("chain", i - 1)) for i in range(1, n)})
    return dsk, ("chain", n - 1)


def fan(n: int, group: int = 1000) -> tuple[dict[Any, Any], Any]:
    """``n`` independent incs, a sum per ``group`` of them, and a total."""
    dsk: dict[Any, Any] = {("inc", i): (inc, i) for i in range(n)}
    sums = n // group
    dsk.update(
        {
            ("sum", j): (total, [("inc", i) for i in range(j * group, (j + 1) * group)])
            for j in range(sums)
        }
    )
    dsk["total"] = (total, [("sum", j) for j in range(sums)])
    return dsk, "total"


def tree(n: int, arity: int = 2) -> tuple[dict[Any, Any], Any]:
    """A reduction tree over ``n // 2`` leaves (binary: ``n`` tasks in all)."""
    width = n // 2 if arity == 2 else n
    dsk: dict[Any, Any] = {("tree", 0, i): (inc, i) for i in range(width)}
    level = 0
    while width > 1:
        new = (width + arity - 1) // arity
        for i in range(new):
            parts = [("tree", level, arity * i + j) for j in range(arity) if arity * i + j < width]
            dsk[("tree", level + 1, i)] = (total, parts)
        level, width = level + 1, new
    return dsk, ("tree", level, 0)


def blockwise_reduce(blocks: int) -> tuple[dict[Any, Any], Any]:
    """Load, two elementwise steps per block, then a binary tree reduction."""
    dsk: dict[Any, Any] = {}
    for i in range(blocks):
        dsk[("x", i)] = (inc, i)
        dsk[("y", i)] = (inc, ("x", i))
        dsk[("z", i)] = (add, ("y", i), 1)
    level, width, name = 0, blocks, "z"
    while width > 1:
        new = (width + 1) // 2
        for i in range(new):
            parts = [(name, 2 * i + j) for j in range(2) if 2 * i + j < width]
            dsk[(f"r{level}", i)] = (total, parts)
        name, level, width = f"r{level}", level + 1, new
    return dsk, (name, 0)


def fan_in_out(width: int) -> tuple[dict[Any, Any], Any]:
    """Each output needs three neighbouring inputs (overlap), then everything is summed."""
    dsk: dict[Any, Any] = {("a", i): (inc, i) for i in range(width)}
    for i in range(width):
        dsk[("b", i)] = (total, [("a", (i + d) % width) for d in (-1, 0, 1)])
    for i in range(width):
        dsk[("c", i)] = (inc, ("b", i))
    level, cur, n = 0, "c", width
    while n > 1:
        new = (n + 3) // 4
        for i in range(new):
            dsk[(f"s{level}", i)] = (total, [(cur, 4 * i + j) for j in range(4) if 4 * i + j < n])
        cur, level, n = f"s{level}", level + 1, new
    return dsk, (cur, 0)
