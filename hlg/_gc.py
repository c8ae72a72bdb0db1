"""A pause of the cyclic garbage collector around bulk construction.

Building a million small tuples and task objects triggers the collector
thousands of times, and each pass walks every young object. The objects built
while paused hold no reference cycles, so nothing is lost by collecting later.

When the outermost pause ends with ``PROMOTE_FROM`` or more young
objects, they move straight to the oldest generation (``gc.freeze()`` then
``gc.unfreeze()``, two constant-time list splices). Otherwise the first
allocation after the pause would walk all the objects just built, once, in a
young-generation pass that frees nothing: they are a graph that outlives the call.

Objects moved that way skip CPython's own bookkeeping, which starts a full
collection once the objects promoted to the oldest generation since the last
one exceed a quarter of those that survived it. Young cyclic garbage from
before the pause moves along with the graph, and without that bookkeeping it
would wait forever. So the pauses keep the same books: they count the objects
they move, and when the count passes a quarter of the objects alive after the
last full collection (and at least ``FULL_FROM``), the next pause to begin runs
a full collection first. Any full collection, whoever starts it, clears the
count. The shortcut is skipped while the application holds objects frozen
itself (``gc.freeze()`` before forking, say): unfreezing would release them.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["gc_paused", "gc_paused_for"]

# Below this many tasks to build (several objects each), a pause costs more than the
# young-generation collections it saves: the first comes after 700 new objects.
PAUSE_FROM = 200
# Young objects worth moving to the oldest generation at the end of a pause: below
# this, the young-generation pass that would walk them takes under 0.1 ms.
PROMOTE_FROM = 2_000
# Objects moved to the oldest generation before a full collection is due, at least.
FULL_FROM = 500_000


class _PauseState:
    """Pauses active in this process; the collector runs again when none is left."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Number of active pauses; the collector is disabled while it is positive.
        self.depth = 0
        # Whether the collector was enabled when the outermost pause began.
        self.was_enabled = True
        # Objects moved to the oldest generation since the last full collection, and
        # how many make the next one due.
        self.moved = 0
        self.due_at = FULL_FROM


_STATE = _PauseState()


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    # Any full collection walks what the pauses moved: their count starts again.
    if phase == "stop" and info.get("generation") == 2:
        _STATE.moved = 0


gc.callbacks.append(_on_collection)


def gc_paused_for(count: int) -> contextlib.AbstractContextManager[None]:
    """Return :func:`gc_paused` for building about ``count`` tasks; a no-op for few.

    Examples
    --------
    >>> import gc
    >>> with gc_paused_for(10):
    ...     gc.isenabled()
    True
    """
    return gc_paused() if count >= PAUSE_FROM else contextlib.nullcontext()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block (nesting and threads allowed).

    Examples
    --------
    >>> import gc
    >>> with gc_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    # Outside the lock: finalisers run by the collection may build graphs too.
    if _STATE.depth == 0 and _STATE.moved >= _STATE.due_at and gc.isenabled():
        _collect_fully()
    with _STATE.lock:
        if _STATE.depth == 0:
            _STATE.was_enabled = gc.isenabled()
            gc.disable()
        _STATE.depth += 1
    try:
        yield
    finally:
        with _STATE.lock:
            _STATE.depth -= 1
            if _STATE.depth == 0 and _STATE.was_enabled:
                _promote_young()
                gc.enable()


def _promote_young() -> None:
    # Move every young object to the oldest generation, and count them.
    young = gc.get_count()[0]  # allocations less deallocations since the last pass
    if young < PROMOTE_FROM or gc.get_freeze_count():  # cheap to walk; or the app froze some
        return
    gc.freeze()
    gc.unfreeze()
    _STATE.moved += young


def _collect_fully() -> None:
    # A full collection, then a quarter of the survivors as the next threshold
    # (counted by freezing them all: a walk of the list, nothing allocated). The
    # count is cleared first, so that a pause begun by a finaliser does not recurse.
    _STATE.moved = 0
    gc.collect()
    if gc.get_freeze_count():  # the application froze objects: leave them be
        return
    gc.freeze()
    alive = gc.get_freeze_count()
    gc.unfreeze()
    _STATE.due_at = max(FULL_FROM, alive // 4)
