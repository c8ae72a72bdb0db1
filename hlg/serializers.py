"""Serializers for task arguments that msgpack cannot carry.

A serializer is a pair of functions under a name: ``dumps(obj)`` returns a
msgpack-native value (usually ``bytes``), ``loads(value)`` rebuilds the object.
The client picks a serializer by the argument's exact type; the payload then
travels as an OPAQUE value that the scheduler never decodes. Only the process
that runs the task calls ``loads``, so a serializer must be registered (its
module imported) there too.

Built in:

- ``"numpy"``: numpy arrays and scalars as dtype, shape and the raw buffer. No
  pickle; decoded with ``numpy.frombuffer``, so without a copy (the array is
  read-only). Object arrays fall back to pickle.
- ``"pickle"``: cloudpickle, for everything else.

numpy is imported only when an array is met; this module imports neither numpy
nor cloudpickle at import time.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from hlg.errors import PackError, TaskExecutionError, UsageError

__all__ = ["dumps", "loads", "register_serializer"]

# name -> (dumps, loads)
_SERIALIZERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {}
# exact type -> serializer name
_BY_TYPE: dict[type, str] = {}
# top-level module of a type -> serializer name, for types not imported yet
_BY_MODULE: dict[str, str] = {"numpy": "numpy"}


class _DeclinedError(Exception):
    """Raised by a built-in ``dumps`` for a value it does not handle."""


def register_serializer(
    type_: type,
    dumps: Callable[[Any], Any],
    loads: Callable[[Any], Any],
    *,
    name: str | None = None,
) -> None:
    """Serialize arguments of exactly ``type_`` with ``dumps`` and ``loads``.

    Parameters
    ----------
    type_
        The argument type (subclasses are not included).
    dumps
        Object to a msgpack-native value.
    loads
        That value back to the object.
    name
        The name written into packed graphs; defaults to the type's qualified
        name. Register under the same name wherever tasks run.

    Raises
    ------
    UsageError
        ``type_`` is not a type, or ``name`` is ``"pickle"`` (the fallback's).

    Examples
    --------
    >>> from fractions import Fraction
    >>> register_serializer(Fraction, lambda f: (f.numerator, f.denominator),
    ...                     lambda p: Fraction(*p), name="fraction")
    >>> loads(*dumps(Fraction(1, 3)))
    Fraction(1, 3)
    """
    if not isinstance(type_, type):
        raise UsageError(f"register_serializer needs a type; got {type_!r}")
    key = name or f"{type_.__module__}.{type_.__qualname__}"
    if key == "pickle":
        raise UsageError(
            "the serializer name 'pickle' is reserved for the fallback; register under another name"
        )
    _SERIALIZERS[key] = (dumps, loads)
    _BY_TYPE[type_] = key


def dumps(obj: Any) -> tuple[str, Any]:
    """Return ``(serializer name, payload)`` for ``obj``.

    Examples
    --------
    >>> name, payload = dumps(object())
    >>> name, type(payload).__name__
    ('pickle', 'bytes')
    """
    t = type(obj)
    name = _BY_TYPE.get(t)
    if name is None:
        name = _BY_MODULE.get(t.__module__.partition(".")[0])
    if name is not None:
        dump = _SERIALIZERS[name][0]
        try:
            return name, dump(obj)
        except _DeclinedError:
            pass
    return "pickle", _cloudpickle(obj)


def loads(name: str, payload: Any) -> Any:
    """Rebuild an object from what :func:`dumps` returned.

    Raises
    ------
    TaskExecutionError
        No serializer ``name`` is registered in this process.
    """
    if name == "pickle":
        if type(payload) is not bytes:
            raise TaskExecutionError("a pickled argument's payload is not bytes")
        return pickle.loads(payload)
    entry = _SERIALIZERS.get(name)
    if entry is None:
        raise TaskExecutionError(
            f"no serializer {name!r} is registered in this process; import the module that "
            "calls hlg.packing.register_serializer for it where tasks run"
        )
    return entry[1](payload)


def _cloudpickle(obj: Any) -> bytes:
    import cloudpickle  # deferred: the scheduler never serialises

    try:
        return bytes(cloudpickle.dumps(obj, protocol=5))
    except Exception as err:
        raise PackError(
            f"an argument of type {type(obj).__name__} cannot be serialised: {err}; register "
            "a serializer for it with hlg.packing.register_serializer"
        ) from err


def _numpy_dumps(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        scalar = False
    elif isinstance(obj, np.generic):
        scalar, obj = True, np.asarray(obj)
    else:
        raise _DeclinedError
    if obj.dtype.hasobject or type(obj) is not np.ndarray:
        # Object arrays and subclasses (masked, matrix) keep their meaning only via pickle.
        raise _DeclinedError
    # Not ascontiguousarray: it turns 0-d arrays (scalars) into 1-d ones.
    data = obj if obj.flags.c_contiguous else obj.copy(order="C")
    # A flat byte view of the array's memory: packed as bin without a copy.
    buffer = memoryview(data.reshape(-1)).cast("B") if data.size else b""  # type: ignore[arg-type]
    return (obj.dtype.str, data.shape, buffer, scalar)


def _numpy_loads(payload: Any) -> Any:
    import numpy as np

    dtype, shape, data, scalar = payload
    array = np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)
    return array[()] if scalar else array


_SERIALIZERS["numpy"] = (_numpy_dumps, _numpy_loads)
