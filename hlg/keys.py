"""Keys: their types, their task groups and prefixes, and deterministic tokens.

A *key* names one task's output. hlg follows dask's key model: a key is a
``str``, ``bytes``, ``int`` or ``float``, or a tuple of keys (tuples may nest).
Most keys are ``"total"`` or ``("add-3f2a", 0, 4)``; dask.array's
``map_overlap`` emits ``("getitem-8fa3", 0, 0.9)``, and hand-written graphs use
plain ints. ``bool`` and numpy scalars are not keys (``True == 1`` would make
them collide with int keys). Keys travel through msgpack exactly: a tuple key
comes back a tuple, a float part a float and a bytes part bytes.

Keys are grouped twice for diagnostics:

- the *task group* of ``("x-3f2a9c", 0)`` is ``"x-3f2a9c"``: every block of one
  layer;
- the *task prefix* of the same key is ``"x"``: the group with tokens removed, so
  every ``x-…`` layer of a session adds up in one row.

Both follow dask.distributed's rules, so that the scheduler's dashboard and
hlg's own task groups show the same rows. For a ``str`` key, or a tuple key
whose first item is a ``str``, the names are exactly distributed's. A bytes
name is decoded first. Keys without text (an int or float) have the prefix
``"Other"``; distributed names the group of a tuple key by its first item
whatever that is (``3``, ``b"y-1"``), where hlg names it by the item's text
(``"y-1"``), or by the key's prefix when the item has none.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import re
import sys
import threading
import uuid
from collections.abc import Callable, Collection
from itertools import chain
from typing import Any, TypeAlias, TypeGuard, cast

from hlg.errors import InvalidKeyError, article

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

Key: TypeAlias = str | bytes | int | float | tuple["Key", ...]
"""The type of a key: ``"x"``, ``("x-3f2a", 0, 4)``, ``5``, ``("y", 0.5)``."""

# The types of keys that are not tuples, checked by exact type (never bool).
_SCALAR_KEYS: frozenset[type] = frozenset({str, bytes, int, float})
_KEY_PARTS: frozenset[type] = _SCALAR_KEYS | {tuple}


def is_key(obj: object) -> TypeGuard[Key]:
    """Return whether ``obj`` is a valid key.

    Examples
    --------
    >>> is_key("x"), is_key(("x", 0, 1.5)), is_key(3), is_key((b"x", ("y", 0)))
    (True, True, True, True)
    >>> is_key(True), is_key(["x", 0]), is_key(("x", None))
    (False, False, False)
    """
    t = type(obj)
    if t in _SCALAR_KEYS:
        return True
    if t is not tuple:
        return False
    stack: list[Any] = [obj]
    while stack:  # nested tuples without recursion: keys may come from hostile bytes
        for part in stack.pop():
            u = type(part)
            if u is tuple:
                stack.append(part)
            elif u not in _SCALAR_KEYS:
                return False
    return True


def all_keys(keys: Collection[object]) -> bool:
    """Return whether every item of ``keys`` is a valid key, iterating in C where it can.

    Examples
    --------
    >>> all_keys(["x", ("y", 0, 0.5), 3]), all_keys([("y", None)]), all_keys([True])
    (True, False, False)
    """
    types = set(map(type, keys))
    if types <= _SCALAR_KEYS:
        return True
    if not types <= _KEY_PARTS:
        return False
    # Only tuples (a collection's blocks): no pass to pick them out.
    tuples: Collection[tuple[Any, ...]] = (
        cast("Collection[tuple[Any, ...]]", keys)
        if len(types) == 1
        else [k for k in keys if type(k) is tuple]
    )
    parts = set(map(type, chain.from_iterable(tuples)))
    if parts <= _SCALAR_KEYS:
        return True
    if not parts <= _KEY_PARTS:
        return False
    return all(map(is_key, tuples))  # nested tuples: the rare case


def validate_keys(keys: Collection[object], *, layer: str | None = None) -> None:
    """Raise :class:`~hlg.InvalidKeyError` for the first invalid key of ``keys``.

    Examples
    --------
    >>> validate_keys(["x", ("y", 1), 2, 0.5])
    >>> validate_keys(["x", None], layer="l")
    Traceback (most recent call last):
    hlg.errors.InvalidKeyError: layer 'l': key None is a NoneType; a key is a str, bytes, ...
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
    >>> validate_key(("x", 0, 0.5))
    ('x', 0, 0.5)
    >>> validate_key(["x", 0])
    Traceback (most recent call last):
    hlg.errors.InvalidKeyError: key ['x', 0] is a list; a key is a str, bytes, int or float, ...
    """
    if is_key(key):
        return key
    where = f"layer {layer!r}: " if layer is not None else ""
    if type(key) is tuple:
        bad = _first_bad_part(key)
        raise InvalidKeyError(
            f"{where}key {key!r} is not a valid key: it holds {type(bad).__name__} {bad!r}; "
            "convert it to str, bytes, int or float"
        )
    raise InvalidKeyError(
        f"{where}key {key!r} is {article(type(key).__name__)}; a key is a str, bytes, int or "
        "float, or a tuple of keys"
    )


def _first_bad_part(key: tuple[Any, ...]) -> object:
    stack: list[Any] = [key]
    while stack:
        for part in stack.pop():
            if type(part) is tuple:
                stack.append(part)
            elif type(part) not in _SCALAR_KEYS:
                return part
    return None


# A whole name of 32 hexadecimal digits is an anonymous token (a scattered object's key).
_DATA_TOKEN = re.compile(r"[0-9a-f]{32}")
# What a name is called when it has no usable text, as distributed calls it.
_OTHER = "Other"


class _NameCache:
    """Prefixes of key names already split, bounded by the characters held.

    Key names can be long (a name may embed a repr), so the bound is on the total
    length of the names kept, not on their count: past ``limit`` characters the
    cache starts over, and a name longer than ``longest`` is never kept.
    """

    def __init__(self, limit: int, longest: int) -> None:
        self.limit = limit
        self.longest = longest
        # Name -> prefix. Invariant: sum(len(name)) over the entries is self.chars.
        self.entries: dict[str, str] = {}
        self.chars = 0
        self.lock = threading.Lock()

    def split(self, name: str) -> str:
        found = self.entries.get(name)
        if found is not None:
            return found
        prefix = _split_name(name)
        size = len(name)
        if size <= self.longest:
            with self.lock:
                if self.chars + size > self.limit:
                    self.entries = {}
                    self.chars = 0
                if name not in self.entries:
                    self.entries[name] = prefix
                    self.chars += size
        return prefix


#: Holds at most 4 million characters of key names (a few tens of MB at most).
_NAMES = _NameCache(limit=1 << 22, longest=1 << 10)


def _split_name(name: str) -> str:
    """Return the prefix of a key name, by distributed's rules (``dask.utils.key_split``).

    The first word (words are separated by ``-``) is kept, cleaned of quotes and
    brackets when it does not start with a letter (a stringified tuple key,
    ``"('x-1', 0)"``); each following word is kept while it is alphabetic and is
    not an 8-letter word starting with ``a``-``f``, which is taken for a token.
    A result of 32 hexadecimal digits is ``"data"``; a repr such as
    ``"<mod.Cls object at 0x…>"`` gives the class name.
    """
    words = name.split("-")
    result = words[0]
    if not result:
        return _OTHER
    if not result[0].isalpha():
        result = result.split(",")[0].strip("_'()\"")
    for word in words[1:]:
        if not word.isalpha() or (len(word) == 8 and "a" <= word[0] <= "f"):
            break
        result += "-" + word
    if len(result) == 32 and _DATA_TOKEN.fullmatch(result):
        return "data"
    if not result:
        return _OTHER
    if result[0] == "<":
        return _class_name(result) or _OTHER
    return sys.intern(result)


def _class_name(text: str) -> str:
    """Return the class name in a repr: ``"<a.b.Cls object at 0x1>"`` -> ``"Cls"``."""
    inner = text.strip("<>").split()
    return inner[0].split(".")[-1] if inner else ""


def _text_of(key: object) -> str | None:
    """Return the text that names ``key``: its first str or bytes part, if any."""
    while type(key) is tuple:
        if not key:
            return None
        key = key[0]
    if type(key) is str:
        return key
    if type(key) is bytes:
        return key.decode("utf-8", "replace")
    return None


def key_split(key: Key) -> str:
    """Return the task prefix of a key: its name without tokens and indices.

    This is what dask.distributed's scheduler names the key's task prefix
    (``dask.utils.key_split``). Words after the first are kept while they are
    alphabetic and are not 8 letters starting with ``a`` to ``f`` (taken for a
    hexadecimal token). A bytes name is decoded first; a key with no text (an
    int or float) has the prefix ``"Other"``.

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
    >>> key_split("('x-2', 1)"), key_split("<lib.Point object at 0x7f3a>")
    ('x', 'Point')
    >>> key_split(b"load-3"), key_split(7), key_split((("y-1", 0), 2))
    ('load', 'Other', 'y')
    """
    name = key if type(key) is str else _text_of(key)
    if not name:
        return _OTHER
    return _NAMES.split(name)


def key_group(key: Key) -> str:
    """Return the task group of a key.

    This is what dask.distributed's scheduler names the key's task group
    (``distributed.utils.key_split_group``) for str keys and tuple keys: a
    tuple key's group is its first item when that is a name (``str``, or
    ``bytes`` decoded); a string spelling a tuple (``"('x-2', 1)"``) groups by
    that tuple's first item, a repr by its class name, and other strings by
    their prefix (:func:`key_split`). A tuple key whose first item is not a
    name (``(3, 0)``) groups by its prefix, where distributed names the group
    by the item itself.

    Examples
    --------
    >>> key_group(("x-3f2a9c", 0))
    'x-3f2a9c'
    >>> key_group("x-1"), key_group("('x-2', 1)")
    ('x', 'x-2')
    >>> key_group((b"y-1", 0)), key_group((3, 0)), key_group(2.5)
    ('y-1', 'Other', 'Other')
    """
    if type(key) is tuple and key:
        first = key[0]
        if type(first) is str:
            return first
        if type(first) is bytes:
            return first.decode("utf-8", "replace")
        return key_split(key)
    name = key if type(key) is str else _text_of(key)
    if not name:
        return _OTHER
    if name[0] == "(":
        return name.split(",", 1)[0].strip("()\"'")
    if len(name) == 32 and _DATA_TOKEN.fullmatch(name):
        return "data"
    if name[0] == "<":
        return _class_name(name) or _OTHER
    return _NAMES.split(name)


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
