"""Task functions for scheduler tests; importable, so worker processes can load them."""

from __future__ import annotations

import os
import time
from typing import Any


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def total(xs: list[int]) -> int:
    return sum(xs)


def boom(x: Any) -> Any:
    raise ValueError(f"bad value {x}")


def die(x: Any) -> Any:
    os._exit(3)


def slow(x: Any, seconds: float = 0.05) -> Any:
    time.sleep(seconds)
    return x


def pid(_: Any = None) -> int:
    return os.getpid()


#: How many times this process has unpickled a CountedFunction.
LOADS = 0


def _load_counted() -> CountedFunction:
    global LOADS  # noqa: PLW0603 - a per-process counter is what the test observes
    LOADS += 1
    return CountedFunction()


class CountedFunction:
    """A callable that counts, per process, how often it is deserialised."""

    def __call__(self, x: Any) -> tuple[int, int]:
        return (os.getpid(), LOADS)

    def __reduce__(self) -> Any:
        return (_load_counted, ())
