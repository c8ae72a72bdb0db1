"""Shared helpers for the benchmarks: timing and table printing."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from typing import Any


def best_of(
    func: Callable[..., Any], repeat: int = 5, setup: Callable[[], Any] | None = None
) -> float:
    """Return the best wall time of ``repeat`` calls, in seconds, collecting garbage between.

    With ``setup``, each call is ``func(setup())`` and only ``func`` is timed. Garbage
    is collected fully before ``setup``, so that what it builds is as fresh as it is in
    use, and the young generation after it, so that the timed call does not begin with
    a collection that ``setup``'s allocations made due.
    """
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        args = () if setup is None else (setup(),)
        gc.collect(0)
        start = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - start)
    return best


def best_of_each(
    funcs: Sequence[Callable[..., Any]],
    repeat: int = 5,
    setups: Sequence[Callable[[], Any] | None] | None = None,
) -> list[float]:
    """Return the best wall time of each of ``funcs``, sampled in turn, in seconds.

    Like :func:`best_of` for each function, but the samples alternate (the first
    function, the second, ..., then the first again), so that a burst of load
    on a shared machine falls on every side alike rather than on whichever
    happened to be running then.
    """
    setups = setups or [None] * len(funcs)
    best = [float("inf")] * len(funcs)
    for _ in range(repeat):
        for i, (func, setup) in enumerate(zip(funcs, setups, strict=True)):
            best[i] = min(best[i], best_of(func, 1, setup))
    return best


def best_per_call_each(
    funcs: Sequence[Callable[[Any], Any]],
    setups: Sequence[Callable[[], Any]],
    repeat: int = 5,
    sample: float = 0.005,
) -> list[float]:
    """Return each function's best time per call, in seconds, for calls too short to time alone.

    A call of a quarter of a millisecond timed on its own mostly measures the
    cold cache that the garbage collection before it leaves. So each sample runs
    calls back to back, each on its own fresh argument from ``setup`` (built
    beforehand, outside the timing), and gives the time per call. Every function
    gets the same number of calls per sample, enough for the fastest to take
    ``sample`` seconds, so that the one cold first call weighs alike on each;
    the functions take turns sample by sample. The collector stays on.
    """
    number = 1
    for func, setup in zip(funcs, setups, strict=True):
        while True:
            args = [setup() for _ in range(number)]
            start = time.perf_counter()
            for arg in args:
                func(arg)
            if time.perf_counter() - start >= sample:
                break
            number *= 2
    best = [float("inf")] * len(funcs)
    for _ in range(repeat):
        for i, (func, setup) in enumerate(zip(funcs, setups, strict=True)):
            gc.collect()
            args = [setup() for _ in range(number)]
            gc.collect()
            start = time.perf_counter()
            for arg in args:
                func(arg)
            best[i] = min(best[i], (time.perf_counter() - start) / number)
    return best


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a plain-text table with right-aligned columns."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
