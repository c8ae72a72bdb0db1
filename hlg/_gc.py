"""A pause of the cyclic garbage collector around bulk construction.

Building a million small tuples and task objects triggers the collector
thousands of times, and each pass walks every young object. The objects built
while paused hold no reference cycles, so nothing is lost by collecting later.

When the outermost pause ends, everything then tracked moves straight to the
oldest generation (``gc.freeze()`` then ``gc.unfreeze()``, two constant-time
list splices). Otherwise the first allocation after the pause would walk all
the objects just built, once, in a young-generation pass that frees nothing:
they are a graph that outlives the call. The cost of the shortcut is that
young cyclic garbage from before the pause waits for the next full collection.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["gc_paused", "gc_paused_for"]

# Below this many tasks to build (several objects each), a pause costs more than the
# young-generation collections it saves: the first comes after 700 new objects.
PAUSE_FROM = 200


class _PauseState:
    """Pauses active in this process; the collector runs again when none is left."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Number of active pauses; the collector is disabled while it is positive.
        self.depth = 0
        # Whether the collector was enabled when the outermost pause began.
        self.was_enabled = True


_STATE = _PauseState()


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
            if _STATE.depth == 0:
                gc.freeze()
                gc.unfreeze()
                if _STATE.was_enabled:
                    gc.enable()
