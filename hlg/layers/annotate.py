"""Annotations: scheduling hints attached to layers.

``priority``, ``retries``, ``workers`` and ``resources`` have meanings known to
schedulers; any other name is carried along for the user. Annotations are set
per layer (``Layer(..., annotations=...)`` or :meth:`Layer.with_annotations`) or
for every layer created inside ``with hlg.annotate(...)``. A layer stores them
once; the unpacker expands them to each key.

Values must be msgpack-native (``None``, ``bool``, ``int``, ``float``, ``str``,
``bytes``, lists, tuples and dicts of them): the scheduler never unpickles, so
a callable annotation could not be evaluated there.
"""

from __future__ import annotations

import contextlib
import contextvars
import types
from collections.abc import Iterator, Mapping
from typing import Any

from hlg.errors import UsageError

__all__ = ["annotate", "current_annotations", "validate_annotations"]

_CURRENT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "hlg_annotations", default=types.MappingProxyType({})
)


@contextlib.contextmanager
def annotate(**annotations: Any) -> Iterator[None]:
    """Annotate every layer created inside the block.

    Nested blocks add to the outer ones; an inner value wins.

    Parameters
    ----------
    **annotations
        ``priority`` (number; among ready tasks, higher runs first, as in dask),
        ``retries`` (int >= 0), ``workers`` (str or list of
        str), ``resources`` (dict of str to number), or any msgpack-native value
        under another name.

    Raises
    ------
    UsageError
        A value is not msgpack-native, or a known annotation has the wrong type.

    Examples
    --------
    >>> from hlg import MaterializedLayer
    >>> with annotate(priority=10, retries=2):
    ...     layer = MaterializedLayer({"x": 1}, name="x")
    >>> layer.annotations
    {'priority': 10, 'retries': 2}
    """
    merged = {**_CURRENT.get(), **validate_annotations(annotations)}
    token = _CURRENT.set(merged)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_annotations() -> dict[str, Any]:
    """Return the annotations of the enclosing :func:`annotate` blocks.

    Examples
    --------
    >>> with annotate(workers=["w1"]):
    ...     current_annotations()
    {'workers': ['w1']}
    >>> current_annotations()
    {}
    """
    return dict(_CURRENT.get())


def _is_native(value: Any, depth: int = 0) -> bool:
    t = type(value)
    if t in (type(None), bool, int, float, str, bytes):
        return True
    if depth > 32:
        return False
    if t is list or t is tuple:
        return all(_is_native(item, depth + 1) for item in value)
    if t is dict:
        return all(_is_native(k, depth + 1) and _is_native(v, depth + 1) for k, v in value.items())
    return False


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def validate_annotations(
    annotations: Mapping[str, Any], *, layer: str | None = None
) -> dict[str, Any]:
    """Check annotation values and return them as a new dict.

    Examples
    --------
    >>> validate_annotations({"retries": -1})
    Traceback (most recent call last):
    hlg.errors.UsageError: annotation 'retries' must be an int >= 0; got -1
    """
    where = f"layer {layer!r}: " if layer else ""
    checks = {
        "priority": (_is_number, "a number"),
        "retries": (lambda v: type(v) is int and v >= 0, "an int >= 0"),
        "workers": (
            lambda v: (
                type(v) is str or (type(v) in (list, tuple) and all(type(w) is str for w in v))
            ),
            "a str or a list of str",
        ),
        "resources": (
            lambda v: (
                type(v) is dict and all(type(k) is str and _is_number(n) for k, n in v.items())
            ),
            "a dict of str to number",
        ),
    }
    out: dict[str, Any] = {}
    for name, value in annotations.items():
        if type(name) is not str:
            raise UsageError(f"{where}annotation names must be str; got {name!r}")
        if name in checks:
            check, expected = checks[name]
            if not check(value):
                raise UsageError(f"{where}annotation {name!r} must be {expected}; got {value!r}")
        elif not _is_native(value):
            raise UsageError(
                f"{where}annotation {name!r} has a value of type {type(value).__name__}; "
                "annotation values must be msgpack-native (None, bool, int, float, str, "
                "bytes, lists, tuples and dicts of them) because the scheduler never unpickles"
            )
        out[name] = value
    return out
