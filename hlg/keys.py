"""Keys: their types, their task groups and prefixes, and deterministic tokens.

A *key* names one task's output. It is either a ``str`` (``"total"``) or a
tuple whose first item is a ``str`` and whose other items are ``int`` or ``str``
(``("add-3f2a", 0, 4)``). Keys travel through msgpack exactly: a tuple key comes
back a tuple.

Keys are grouped twice for diagnostics:

- the *task group* of ``("x-3f2a9c", 0)`` is ``"x-3f2a9c"``: every block of one
  layer;
- the *task prefix* of the same key is ``"x"``: the group with tokens removed, so
  every ``x-…`` layer of a session adds up in one row.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import re
import sys
import uuid
from collections.abc import Callable, Collection
from itertools import chain
from operator import itemgetter
from typing import Any, TypeAlias, TypeGuard

from hlg.errors import InvalidKeyError

__all__ = [
    "Key",
    "all_keys",
    "is_key",
    "key_group",
    "key_split",
    "tokenize",
    "validate_key",
    "validate_keys",
]

Key: TypeAlias = str | tuple[str | int, ...]
"""The type of a key: ``"x"`` or ``("x-3f2a", 0, 4)``."""


def is_key(obj: object) -> TypeGuard[Key]:
    """Return whether ``obj`` is a valid key.

    Examples
    --------
    >>> is_key("x"), is_key(("x", 0, "a")), is_key(("x", 1.5)), is_key((0, "x"))
    (True, True, False, False)
    """
    t = type(obj)
    if t is str:
        return True
    if t is not tuple or not obj or type(obj[0]) is not str:  # type: ignore[index]
        return False
    for part in obj:  # type: ignore[attr-defined]
        t = type(part)
        if t is not int and t is not str:
            return False
    return True


def all_keys(keys: Collection[object]) -> bool:
    """Return whether every item of ``keys`` is a valid key, iterating in C where it can.

    Examples
    --------
    >>> all_keys(["x", ("y", 0, "a")]), all_keys([("y", 0.5)]), all_keys([()])
    (True, False, False)
    """
    types = set(map(type, keys))
    if types <= {str}:
        return True
    if not types <= {str, tuple}:
        return False
    tuples: Collection[Any] = keys if str not in types else [k for k in keys if type(k) is tuple]
    if not tuples:
        return True
    try:
        if set(map(type, map(itemgetter(0), tuples))) != {str}:
            return False
    except IndexError:  # an empty tuple
        return False
    return set(map(type, chain.from_iterable(tuples))) <= {str, int}


def validate_keys(keys: Collection[object], *, layer: str | None = None) -> None:
    """Raise :class:`~hlg.InvalidKeyError` for the first invalid key of ``keys``.

    Examples
    --------
    >>> validate_keys(["x", ("y", 1)])
    >>> validate_keys(["x", 3], layer="l")
    Traceback (most recent call last):
    hlg.errors.InvalidKeyError: layer 'l': key 3 is a int; a key is a str or a tuple ...
    """
    if not all_keys(keys):
        for key in keys:
            validate_key(key, layer=layer)


def validate_key(key: object, *, layer: str | None = None) -> Key:
    """Return ``key`` if it is a valid key, else raise :class:`~hlg.InvalidKeyError`.

    Parameters
    ----------
    key
        The candidate key.
    layer
        The layer the key belongs to, named in the error message.

    Examples
    --------
    >>> validate_key(("x", 0))
    ('x', 0)
    >>> validate_key(["x", 0])
    Traceback (most recent call last):
    hlg.errors.InvalidKeyError: key ['x', 0] is a list; a key is a str or a tuple ...
    """
    if is_key(key):
        return key
    where = f"layer {layer!r}: " if layer is not None else ""
    if isinstance(key, tuple) and key:
        bad = [p for p in key[1:] if not (type(p) is int or type(p) is str)]
        if type(key[0]) is not str:
            detail = f"its first item is {type(key[0]).__name__}, not str"
        else:
            detail = f"it holds {type(bad[0]).__name__} {bad[0]!r}; convert it to int or str"
        raise InvalidKeyError(f"{where}key {key!r} is not a valid key: {detail}")
    raise InvalidKeyError(
        f"{where}key {key!r} is a {type(key).__name__}; a key is a str or a tuple whose "
        "first item is a str and whose other items are int or str"
    )


_HEX_TOKEN = re.compile(r"[0-9a-f]{8,}")


@functools.lru_cache(maxsize=100_000)
def _split_name(name: str) -> str:
    if len(name) >= 32 and _HEX_TOKEN.fullmatch(name):
        return "data"  # an anonymous token, such as a scattered object's key
    words = name.split("-")
    result = words[0]
    if not result[:1].isalpha():
        # A stringified tuple key "('x-1', 0)" or a repr such as "<lambda>".
        result = result.strip("('\"<>_ ").split(",")[0].split(" ")[0]
    for word in words[1:]:
        if not word.isalpha() or _HEX_TOKEN.fullmatch(word):
            break
        result += "-" + word
    return result or "other"


def key_split(key: Key) -> str:
    """Return the task prefix of a key: its name without tokens and indices.

    Words after the first are kept while they are alphabetic and do not look
    like a hexadecimal token.

    Examples
    --------
    >>> key_split("x-1")
    'x'
    >>> key_split("hello-world-1")
    'hello-world'
    >>> key_split(("x-3f2a9c", 0))
    'x'
    >>> key_split("add-deadbeef")
    'add'
    """
    name = key[0] if type(key) is tuple else key
    if type(name) is not str or not name:
        return "other"
    return _split_name(name)


def key_group(key: Key) -> str:
    """Return the task group of a key.

    A tuple key's group is its first item; a string key's group is its prefix.

    Examples
    --------
    >>> key_group(("x-3f2a9c", 0))
    'x-3f2a9c'
    >>> key_group("x-1")
    'x'
    """
    if type(key) is tuple:
        first = key[0]
        return first if type(first) is str else "other"
    return key_split(key)


# --------------------------------------------------------------------------- tokenize


def tokenize(*args: object, **kwargs: object) -> str:
    """Return a deterministic token (32 hex digits) for the arguments.

    Equal inputs give equal tokens in every process and under every
    ``PYTHONHASHSEED``. Supported: ``None``, ``bool``, ``int``, ``float``,
    ``complex``, ``str``, ``bytes``, tuples, lists, dicts, sets, slices, enums,
    dataclasses, ``functools.partial``, functions (by module and name, or by
    their cloudpickle bytes when they have no importable name), numpy arrays
    and scalars, and objects defining ``__hlg_tokenize__``. Other objects are
    tokenized by their cloudpickle bytes; an object that cannot be pickled gets
    a random token, so it never collides with another.

    Examples
    --------
    >>> tokenize(1, "a", [2.0, (3,)]) == tokenize(1, "a", [2.0, (3,)])
    True
    >>> tokenize([1]) == tokenize((1,))
    False
    >>> tokenize({"a": 1, "b": 2}) == tokenize({"b": 2, "a": 1})
    True
    >>> len(tokenize("x"))
    32
    """
    h = hashlib.sha256()
    _Tokenizer(h).feed((args, kwargs) if kwargs else args)
    return h.hexdigest()[:32]


class _Tokenizer:
    """Feeds a type-tagged byte stream describing an object into a hash."""

    def __init__(self, h: Any) -> None:
        self.h = h
        # ids of containers being fed, to cut reference cycles.
        self.active: set[int] = set()

    def feed(self, obj: object) -> None:
        t = type(obj)
        handler = _ATOMIC.get(t)
        if handler is not None:
            self.h.update(handler(obj))
            return
        if t in (tuple, list, set, frozenset, dict):
            self._container(obj)
            return
        self._other(obj)

    def _container(self, obj: Any) -> None:
        if id(obj) in self.active:
            self.h.update(b"cycle;")
            return
        self.active.add(id(obj))
        t = type(obj)
        if t is dict:
            items = sorted((tokenize(k), v) for k, v in obj.items())
            self.h.update(b"dict%d[" % len(items))
            for ktoken, value in items:
                self.h.update(ktoken.encode())
                self.feed(value)
        elif t is set or t is frozenset:
            self.h.update(t.__name__.encode() + b"[")
            for token in sorted(tokenize(item) for item in obj):
                self.h.update(token.encode())
        else:
            self.h.update(t.__name__.encode() + b"%d[" % len(obj))
            for item in obj:
                self.feed(item)
        self.h.update(b"]")
        self.active.discard(id(obj))

    def _other(self, obj: object) -> None:
        hook = getattr(type(obj), "__hlg_tokenize__", None)
        if hook is not None:
            self.h.update(b"hook(" + type(obj).__qualname__.encode())
            self.feed(hook(obj))
            self.h.update(b")")
            return
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(obj, numpy.ndarray | numpy.generic):
            self._numpy(numpy, obj)
            return
        if isinstance(obj, enum.Enum):
            self.h.update(b"enum(")
            self.feed((type(obj).__module__, type(obj).__qualname__, obj.name))
            self.h.update(b")")
            return
        if isinstance(obj, functools.partial):
            self.h.update(b"partial(")
            self.feed((obj.func, obj.args, obj.keywords))
            self.h.update(b")")
            return
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            self.h.update(b"dataclass(" + type(obj).__qualname__.encode())
            self.feed([getattr(obj, f.name) for f in dataclasses.fields(obj)])
            self.h.update(b")")
            return
        if callable(obj) and _importable_name(obj) is not None:
            self.h.update(b"fn(" + str(_importable_name(obj)).encode() + b")")
            return
        self.h.update(b"pickle(" + _pickled_or_random(obj) + b")")

    def _numpy(self, numpy: Any, obj: Any) -> None:
        if obj.dtype.hasobject:
            self.h.update(b"ndarray-object(")
            self.feed(obj.tolist())
            self.h.update(b")")
            return
        data = numpy.ascontiguousarray(obj)
        self.h.update(b"ndarray(%s;%r;" % (obj.dtype.str.encode(), obj.shape))
        self.h.update(memoryview(data).cast("B"))
        self.h.update(b")")


def _atom(tag: bytes) -> Callable[[Any], bytes]:
    return lambda obj: tag + repr(obj).encode() + b";"


_ATOMIC: dict[type, Callable[[Any], bytes]] = {
    type(None): _atom(b"n"),
    bool: _atom(b"b"),
    int: _atom(b"i"),
    float: lambda obj: b"f" + obj.hex().encode() + b";",
    complex: _atom(b"c"),
    str: lambda obj: b"s%d:" % len(obj) + obj.encode("utf-8", "surrogatepass"),
    bytes: lambda obj: b"y%d:" % len(obj) + obj,
    bytearray: lambda obj: b"Y%d:" % len(obj) + bytes(obj),
    slice: _atom(b"sl"),
    range: _atom(b"r"),
    type(Ellipsis): _atom(b"e"),
}


def _importable_name(obj: Any) -> str | None:
    """Return ``module.qualname`` when that path finds ``obj`` again, else None."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return f"{module}.{qualname}" if found is obj else None


def _pickled_or_random(obj: object) -> bytes:
    import cloudpickle  # deferred: only unknown objects need it

    try:
        return bytes(cloudpickle.dumps(obj, protocol=5))
    except Exception:
        # Not picklable: a unique token, so it never collides with another object.
        return uuid.uuid4().hex.encode()
