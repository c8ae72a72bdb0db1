"""The layer registry: registry tags to layer classes.

The unpacker turns a packed layer back into a layer object by looking up its
tag here, never by an import path read from the bytes. Three sources, in order:

1. classes decorated with :func:`register_layer` in this process (a module
   that defines layer types registers them when it is imported: ``hlg.testing``
   registers its test-only ``hlg.testing.range`` that way);
2. hlg's built-in layers, imported on first use from a fixed table;
3. the entry-point group ``hlg.layers`` of installed packages, loaded lazily
   the first time an unknown tag is met. An entry point's name is the tag.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Callable
from typing import TypeVar

from hlg.errors import UnknownLayerError, UsageError
from hlg.layers.base import Layer

__all__ = ["get_layer_class", "known_tags", "register_layer"]

ENTRY_POINT_GROUP = "hlg.layers"

# Built-in layers by tag: module and class, chosen by hlg itself.
_BUILTIN: dict[str, tuple[str, str]] = {
    "hlg.materialized": ("hlg.layers.materialized", "MaterializedLayer"),
    "hlg.blockwise": ("hlg.layers.blockwise", "Blockwise"),
    "hlg.shuffle": ("hlg.layers.shuffle", "ShuffleLayer"),
    "hlg.shuffle.simple": ("hlg.layers.shuffle", "SimpleShuffleLayer"),
}

L = TypeVar("L", bound=type[Layer])

# Invariant: _REGISTRY[tag].tag == tag for every entry.
_REGISTRY: dict[str, type[Layer]] = {}
_LOCK = threading.Lock()
# Set once the entry points of group hlg.layers have been read.
_ENTRY_POINTS_LOADED = threading.Event()


def register_layer(tag: str) -> Callable[[L], L]:
    """Register a layer class under ``tag``, so packed layers with that tag unpack to it.

    Use a tag that names your package (``"mypkg.tiles"``); tags starting with
    ``hlg.`` belong to hlg.

    Parameters
    ----------
    tag
        A stable name, written into every packed layer of this type.

    Raises
    ------
    UsageError
        ``tag`` is not a non-empty str, or another class is registered under it.

    Examples
    --------
    >>> from hlg import Layer
    >>> @register_layer("docs.example")
    ... class Example(Layer):
    ...     def __iter__(self): return iter(())
    ...     def __len__(self): return 0
    ...     def materialize(self): return {}
    >>> get_layer_class("docs.example") is Example, Example.tag
    (True, 'docs.example')
    """
    if type(tag) is not str or not tag:
        raise UsageError(f"a registry tag must be a non-empty str; got {tag!r}")

    def decorate(cls: L) -> L:
        with _LOCK:
            existing = _REGISTRY.get(tag)
            if existing is not None and _qualname(existing) != _qualname(cls):
                raise UsageError(
                    f"registry tag {tag!r} is taken by {_qualname(existing)}; "
                    f"choose another tag for {_qualname(cls)}"
                )
            cls.tag = tag
            _REGISTRY[tag] = cls
        return cls

    return decorate


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def get_layer_class(tag: str) -> type[Layer]:
    """Return the layer class registered under ``tag``.

    Raises
    ------
    UnknownLayerError
        No class is registered under ``tag``; the message lists the known tags
        and names the module to import, which by convention is the tag's prefix.

    Examples
    --------
    >>> get_layer_class("hlg.materialized").__name__
    'MaterializedLayer'
    """
    cls = _REGISTRY.get(tag)
    if cls is not None:
        return cls
    if tag in _BUILTIN:
        importlib.import_module(_BUILTIN[tag][0])  # its decorator registers the class
        return _REGISTRY[tag]
    _load_entry_points()
    cls = _REGISTRY.get(tag)
    if cls is None:
        package = tag.rpartition(".")[0]
        named = f" ({package!r}, by its tag)" if package else ""
        raise UnknownLayerError(
            f"no layer type is registered under tag {tag!r}; known tags: "
            f"{', '.join(sorted(known_tags()))}. Import the module that defines it{named} "
            "on the scheduler, decorate "
            f"its class with @hlg.register_layer({tag!r}), or declare it in the entry-point "
            f"group {ENTRY_POINT_GROUP!r}"
        )
    return cls


def known_tags() -> set[str]:
    """Return every tag that can be unpacked here, without importing anything.

    Examples
    --------
    >>> "hlg.materialized" in known_tags()
    True
    """
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return set(_REGISTRY) | set(_BUILTIN) | names


def _load_entry_points() -> None:
    if _ENTRY_POINTS_LOADED.is_set():
        return
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise UnknownLayerError(
                f"entry point {ep.name!r} in group {ENTRY_POINT_GROUP!r} is {cls!r}, "
                "not a subclass of hlg.Layer"
            )
        if ep.name not in _REGISTRY:
            register_layer(ep.name)(cls)
    _ENTRY_POINTS_LOADED.set()
