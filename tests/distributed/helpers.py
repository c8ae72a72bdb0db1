"""Functions run inside the test cluster's processes (importable there through PYTHONPATH)."""

from __future__ import annotations

import collections
import gc
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Layer materialisations in this process, by layer class name.
COUNTS: collections.Counter[str] = collections.Counter()
# Function loads in this process, by name.
LOADS: collections.Counter[str] = collections.Counter()


def count_materializations() -> None:
    """Count, in this process, the layers built by every registered layer class.

    Both ways of building a layer are wrapped (``materialize`` and the
    unpacker's ``materialize_with_references``); a build that goes through
    both, one calling the other, counts once.
    """
    from hlg.layers.registry import get_layer_class, known_tags

    for tag in sorted(known_tags()):
        try:
            cls = get_layer_class(tag)
        except Exception:  # an entry point that cannot load here: not ours to count
            continue
        for method in ("materialize", "materialize_with_references"):
            original = getattr(cls, method)  # its own, or inherited
            if getattr(original, "_counted", False):
                continue
            setattr(cls, method, _counting(original))


_BUILDING = threading.local()


def _counting(original: Any) -> Any:
    def counted(self: Any) -> Any:
        outermost = not getattr(_BUILDING, "depth", 0)
        if outermost:
            COUNTS[type(self).__name__] += 1
        _BUILDING.depth = getattr(_BUILDING, "depth", 0) + 1
        try:
            return original(self)
        finally:
            _BUILDING.depth -= 1

    counted._counted = True  # type: ignore[attr-defined]
    return counted


def materializations() -> dict[str, int]:
    return dict(COUNTS)


def reset() -> None:
    COUNTS.clear()
    LOADS.clear()


def function_loads() -> dict[str, int]:
    return dict(LOADS)


class CountedLoad:
    """A callable whose unpickling is counted in the process that unpickles it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_load, (self.name,))

    def __call__(self, x: Any) -> Any:
        return x + 1


def _load(name: str) -> CountedLoad:
    LOADS[name] += 1
    return CountedLoad(name)


def where(_: Any = None) -> tuple[str, int]:
    """The address of the worker running the task, and its process id."""
    from distributed import get_worker

    return get_worker().address, os.getpid()


def fail_once(marker: str, value: Any) -> Any:
    """Raise the first time it runs (anywhere), succeed afterwards: a flaky task."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise ConnectionError(f"flaky: first attempt fails ({marker})")
    return value


def stamp(_: Any = None) -> int:
    """When the task ran."""
    time.sleep(0.01)
    return time.monotonic_ns()


def boom(x: Any) -> Any:
    raise ValueError(f"boom on {x!r}")


def on_scheduler_groups(dask_scheduler: Any) -> tuple[dict[str, str], list[str]]:
    """The scheduler's task groups (name -> prefix) and its task prefixes."""
    groups = {name: group.prefix.name for name, group in dask_scheduler.task_groups.items()}
    return groups, sorted(dask_scheduler.task_prefixes)


def graph_updates(dask_scheduler: Any) -> int:
    """Graphs the scheduler is taking in at this moment (either route)."""
    return int(dask_scheduler._active_graph_updates)


def on_scheduler_graphs(dask_scheduler: Any) -> int:
    """Graphs the hlg plugin has taken."""
    plugin = dask_scheduler.plugins.get("hlg")
    return -1 if plugin is None else plugin.graphs


class AnnotationRecorder:
    """A scheduler plugin recording the annotations and priorities of every new graph's tasks."""

    name = "hlg-tests-annotations"

    def __init__(self) -> None:
        self.annotations: dict[str, dict[Any, Any]] = {}
        self.priorities: dict[Any, tuple[Any, ...]] = {}

    def update_graph(self, scheduler: Any, *, annotations: Any, priority: Any, **_: Any) -> None:
        for name, by_key in annotations.items():
            self.annotations.setdefault(name, {}).update(by_key)
        self.priorities.update(priority)


def recorded(dask_scheduler: Any) -> tuple[dict[str, dict[Any, Any]], dict[Any, Any]]:
    plugin = dask_scheduler.plugins[AnnotationRecorder.name]
    return plugin.annotations, plugin.priorities


def record_annotations(dask_scheduler: Any) -> None:
    """Record the annotations of the graphs taken from now on (and only those)."""
    plugin = dask_scheduler.plugins.get(AnnotationRecorder.name)
    if plugin is None:
        dask_scheduler.add_plugin(AnnotationRecorder(), name=AnnotationRecorder.name)
    else:
        plugin.annotations.clear()
        plugin.priorities.clear()


def holds(dask_scheduler: Any, key: Any) -> bool:
    """Whether the scheduler has a task state for ``key``."""
    return key in dask_scheduler.tasks


def holds_any(dask_scheduler: Any, keys: list[Any]) -> bool:
    """Whether the scheduler has a task state for any of ``keys``."""
    return any(key in dask_scheduler.tasks for key in keys)


def collector_enabled() -> bool:
    """Whether the cyclic garbage collector runs in this process."""
    return gc.isenabled()


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not true after {timeout} s: {condition}")
        time.sleep(0.05)
