"""Task functions for scheduler tests; importable, so worker processes can load them."""

from __future__ import annotations

import contextvars
import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def printed_under_hash_seeds(code: str, seeds: tuple[str, ...]) -> set[str]:
    """What ``python -c code`` prints under each ``PYTHONHASHSEED``; one entry if all agree."""
    return {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in seeds
    }


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


def identity(x: Any) -> Any:
    return x


def _fail_to_load() -> Any:
    raise ValueError("this value cannot be loaded")


class LoadFails:
    """Pickles fine; unpickling it raises ValueError."""

    def __reduce__(self) -> Any:
        return (_fail_to_load, ())


def make_unloadable(_: Any = None) -> LoadFails:
    return LoadFails()


@dataclasses.dataclass(frozen=True)
class FrozenError(Exception):
    """An exception that refuses new attributes, notes included."""

    code: int


def raise_frozen(_: Any = None) -> Any:
    raise FrozenError(7)


def raise_unpicklable(_: Any = None) -> Any:
    raise ValueError("holds a lock", threading.Lock())


def kill_after(seconds: float) -> Any:
    time.sleep(seconds)
    os._exit(5)


def nested_get(x: int) -> int:
    import hlg

    return int(hlg.get({"a": x, "b": (inc, "a")}, "b", scheduler="threads", num_workers=2))


def read_var(_: Any = None) -> Any:
    return VAR.get()


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("hlg_test_var", default="unset")


def run_with_timeout(func: Callable[[], Any], seconds: float = 60) -> Any:
    """Call ``func`` in a thread; fail (instead of hanging) if it does not return in time."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = func()
        except BaseException as err:  # handed to the caller
            out["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"hung: no answer within {seconds} s")
    if "error" in out:
        raise out["error"]
    return out.get("value")


def wait_for_file(started: str, go: str, timeout: float = 120) -> str:
    """Create ``started``, then return once ``go`` exists: a task the test releases.

    Raises TimeoutError after ``timeout`` seconds: a test that failed before
    releasing it leaves no thread or process waiting forever.
    """
    with open(started, "w"):
        pass
    deadline = time.monotonic() + timeout
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{go} did not appear within {timeout} s")
        time.sleep(0.005)
    return "done"
