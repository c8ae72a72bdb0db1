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
