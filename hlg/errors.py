"""Errors raised by hlg.

Every error derives from :class:`HlgError` and from the builtin exception that
describes it best, so ``except KeyError`` and ``except hlg.HlgError`` both work::

    HlgError(Exception)
    ├── InvalidKeyError(HlgError, TypeError)       a key of the wrong type
    ├── TaskSpecError(HlgError, TypeError)         a task that is not callable
    ├── MissingKeyError(HlgError, KeyError)        a requested key no layer produces
    ├── UnknownLayerError(HlgError, LookupError)   a registry tag nobody registered
    ├── GraphError(HlgError, ValueError)           the graph's structure is wrong
    │   ├── CycleError                             tasks or layers depend on themselves
    │   ├── MissingLayerError                      a layer dependency names no layer
    │   ├── MissingDependencyError                 a task needs a key nobody produces
    │   ├── DuplicateKeyError                      two layers produce the same key
    │   └── ResourceLimitError                     a packed graph exceeds the unpacker's limits
    │       └── TooManyTasksError                  ... its limit on tasks (``max_tasks``)
    ├── PackError(HlgError, ValueError)            the client cannot pack a layer
    ├── UnpackError(HlgError, ValueError)          the scheduler cannot read bytes
    │   ├── FormatVersionError                     written by a newer hlg
    │   └── LayerStateError                        a layer's packed state is malformed
    ├── LayerClassError(HlgError, TypeError)       a layer class breaks the layer contract
    ├── UsageError(HlgError, ValueError)           an argument hlg does not accept
    ├── NotInstalledError(HlgError, ImportError)   an optional package or program is missing
    ├── TaskExecutionError(HlgError, RuntimeError) a task could not be run at all
    └── WorkerDiedError(HlgError, RuntimeError)    a worker process died mid-task

Messages name the layer and the key, say what was expected and what was found,
and say what to do. :func:`counted` and :func:`article` word the counts and
type names in them ("1 task", "an int").
"""

from __future__ import annotations

_VOWELS = frozenset("aeiouAEIOU")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """Return ``n`` (with thousands separators) and ``noun``, plural unless ``n`` is 1.

    ``plural`` defaults to ``noun`` with an ``s``; give it for other plurals.

    Examples
    --------
    >>> counted(1, "task"), counted(0, "task"), counted(12_000, "requested key")
    ('1 task', '0 tasks', '12,000 requested keys')
    >>> counted(1, "entry", "entries"), counted(2, "entry", "entries")
    ('1 entry', '2 entries')
    """
    if n == 1:
        return f"{n:,} {noun}"
    return f"{n:,} {plural if plural is not None else noun + 's'}"


def article(word: str) -> str:
    """Return ``word`` after "a", or "an" when it starts with a vowel (a type name, say).

    Examples
    --------
    >>> article("int"), article("list"), article("Opaque")
    ('an int', 'a list', 'an Opaque')
    """
    return f"{'an' if word[:1] in _VOWELS else 'a'} {word}"


class HlgError(Exception):
    """Base class of every error hlg raises."""


class InvalidKeyError(HlgError, TypeError):
    """A key is not a ``str`` or a tuple whose first item is a ``str``."""


class TaskSpecError(HlgError, TypeError):
    """A task is malformed: its function is not callable, or a graph value cannot be read."""


class MissingKeyError(HlgError, KeyError):
    """A requested key is not in the graph."""

    def __str__(self) -> str:
        # KeyError shows repr(arg); show the message as written instead.
        return str(self.args[0]) if self.args else ""


class UnknownLayerError(HlgError, LookupError):
    """A packed layer's registry tag names no registered layer type."""


class GraphError(HlgError, ValueError):
    """The structure of a graph is inconsistent."""


class CycleError(GraphError):
    """Layers or tasks depend on themselves, directly or through others."""


class MissingLayerError(GraphError):
    """A layer dependency names a layer that is not in the graph."""


class MissingDependencyError(GraphError):
    """A task needs a key that no layer produces and that is not held remotely."""


class DuplicateKeyError(GraphError):
    """Two layers produce the same key."""


class ResourceLimitError(GraphError):
    """A packed graph would make the unpacker build more than its limits allow."""


class TooManyTasksError(ResourceLimitError):
    """A packed graph declares more tasks than the unpacker accepts."""


class PackError(HlgError, ValueError):
    """A layer, its state or its annotations cannot be packed."""


class UnpackError(HlgError, ValueError):
    """Bytes are not a readable hlg packed graph."""


class FormatVersionError(UnpackError):
    """The packed graph was written in a format version this hlg does not know."""


class LayerStateError(UnpackError):
    """A packed layer's state is missing fields or holds values of the wrong type."""


class LayerClassError(HlgError, TypeError):
    """A layer class breaks the layer contract: a method missing, mis-declared or failing."""


class NotInstalledError(HlgError, ImportError):
    """An optional package or program (graphviz, networkx, ``dot``) is not installed."""


class TaskExecutionError(HlgError, RuntimeError):
    """A task could not be run (its function or arguments could not be loaded)."""


class UsageError(HlgError, ValueError):
    """An argument has a value hlg does not accept (an unknown scheduler name, say)."""


class WorkerDiedError(HlgError, RuntimeError):
    """A worker process died while running a task."""
