"""Converting dask-style graphs, dicts of tuples, into task nodes.

The rules are dask's: a tuple whose first item is callable is a task; a value
equal to a key of the graph (or of ``known_keys``) is a reference to it, also
as a whole value (an alias); lists are searched for references and tasks;
``(apply, func, args, kwargs)`` passes keyword arguments, and its ``args``
are searched for references whether they are a list or a tuple; everything
else is a literal. Other tuples that are not tasks, and dicts, are literals,
never searched. A key is any of dask's key types (``str``, ``bytes``, ``int``,
``float``, tuples of those), so ``(add, 1, 2)`` refers to key ``1`` when the
graph has one, as in dask.

Conversion runs once per graph, so it is built for speed: the two most common
shapes, ``(func, key_or_literal, ...)`` and ``(func, [keys...])``, are built in
one pass each, and :func:`plain_refs` also tells the packer that a task's
arguments travel as they are.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from functools import partial
from itertools import islice
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

from hlg._gc import gc_paused_for
from hlg.daskspec import convert_dask_node, is_dask_node
from hlg.errors import InvalidKeyError, TaskSpecError
from hlg.keys import Key, validate_keys
from hlg.task import (
    INT_END,
    INT_MIN,
    LEAVES,
    PLAIN_SCALARS,
    Alias,
    DataNode,
    GraphNode,
    Task,
    TaskRef,
    apply,
    build_tasks,
    is_known_key,
    scan_references,
    trusted_ref,
)

__all__ = [
    "KeyUnion",
    "convert_graph",
    "convert_task",
    "dependency_positions",
    "plain_literal",
    "plain_refs",
]

# Types of keys that are not tuples (dask's key model), checked by exact type.
_SCALAR_KEYS: frozenset[type] = frozenset({str, bytes, int, float})
# Reference positions of the commonest plain tasks, shared.
_AT_0, _AT_1, _AT_01 = (0,), (1,), (0, 1)
_KEY_TYPES: frozenset[type] = _SCALAR_KEYS | {tuple}
# Types of task arguments the converter never searches for references: leaves, and
# functions (a partial's own arguments are not searched, as Task does not search them).
_INERT: frozenset[type] = LEAVES | {FunctionType, BuiltinFunctionType, MethodType, partial, type}
# Parts of a literal tuple that are never references: leaves, slices and the ellipsis.
_LITERAL_PARTS: frozenset[type] = LEAVES | {slice, type(Ellipsis)}
# Lists longer than this are first checked for holding keys only.
_LONG_LIST = 8


class KeyUnion:
    """Membership in any of several key containers.

    Examples
    --------
    >>> "b" in KeyUnion({"a"}, {"b"}), "c" in KeyUnion({"a"}, {"b"})
    (True, False)
    """

    __slots__ = ("parts",)

    def __init__(self, *parts: Container[object]) -> None:
        self.parts = parts

    def __contains__(self, key: object) -> bool:
        return any(key in part for part in self.parts)


def convert_graph(
    graph: Mapping[Any, Any], known_keys: Container[object] | None = None
) -> dict[Key, GraphNode]:
    """Convert a dask-style dict graph into :class:`GraphNode` values.

    Parameters
    ----------
    graph
        Keys to values. A tuple whose first item is callable is a task; a value
        equal to a key of the graph (or of ``known_keys``) refers to it, also
        as a whole value (an alias); lists are searched for references and
        tasks; ``(apply, func, args, kwargs)`` passes keyword arguments; all
        other values are literals. Values that are already nodes are kept.
    known_keys
        Keys produced elsewhere (other layers) that values may refer to.

    Returns
    -------
    dict
        The same keys, mapped to :class:`Task`, :class:`DataNode` or :class:`Alias`.

    Raises
    ------
    InvalidKeyError
        A key of ``graph`` is not a valid key.

    Examples
    --------
    >>> from operator import add
    >>> g = convert_graph({"x": 1, "y": (add, "x", 10), "z": (apply, int, ["s"], {"base": 2}),
    ...                    "s": "101"})
    >>> g["y"]({"x": 1}), g["z"]({"s": "101"})
    (11, 5)
    """
    keys: Container[object] = graph if known_keys is None else KeyUnion(graph, known_keys)
    validate_keys(graph)
    key: Any = None
    try:
        with gc_paused_for(len(graph)):
            # Plain tasks, most values, are built in one loop by build_tasks; the rest
            # hold a placeholder there (keeping the graph's order) until converted.
            funcs: list[Any] = []
            arg_tuples: list[tuple[Any, ...]] = []
            positions: list[tuple[int, ...]] = []
            others: list[tuple[Key, Any]] = []
            # Nodes of the next most common shapes, (func, [keys...]) and aliases, built
            # as they come.
            ready: list[tuple[Key, GraphNode]] = []
            add_func, add_args, add_refs = funcs.append, arg_tuples.append, positions.append
            for key, value in graph.items():
                node: GraphNode | None = None
                t = type(value)
                if t is tuple and value:
                    func = value[0]
                    if callable(func):
                        if func is not apply:
                            args = value[1:]
                            # A list as first argument is never plain: straight to its parser.
                            refs = (
                                None if args and type(args[0]) is list else plain_refs(args, keys)
                            )
                            if refs is not None:
                                add_func(func)
                                add_args(args)
                                add_refs(refs)
                                continue
                            node = _parse_list_task(value, keys)
                    elif is_known_key(value, keys):
                        node = Alias(value)
                elif t is str and value in keys:
                    node = Alias(value)
                add_func(None)
                add_args(())
                add_refs(())
                if node is None:
                    others.append((key, value))
                else:
                    ready.append((key, node))
            out: dict[Key, GraphNode] = build_tasks(graph, funcs, arg_tuples, positions)  # type: ignore[assignment]
            out.update(ready)
            for key, value in others:
                out[key] = convert_task(value, keys)
    except (TaskSpecError, InvalidKeyError) as err:
        raise type(err)(f"key {key!r}: {err}") from err
    except RecursionError:
        raise TaskSpecError(
            f"key {key!r}: the value is nested too deeply to convert; split it into several keys"
        ) from None
    return out


def dependency_positions(graph: Mapping[Any, Any]) -> list[list[int]]:
    """Return what each value of ``graph`` depends on, as positions, without building nodes.

    The dependencies are those of the nodes :func:`convert_graph` would build,
    those among the graph's keys, each given as the key's position in the graph
    and each list in ascending order. Code that needs only the shape of a graph
    (the ordering, say) reads it this way at a fraction of the cost of
    converting it: tasks whose arguments are keys, literals, lists of those,
    functions and mappings without references are read as they are, and only
    other values are converted.

    Raises
    ------
    InvalidKeyError
        A key of ``graph`` is not a valid key.
    TaskSpecError
        A value cannot be converted; the message names its key.

    Examples
    --------
    >>> from operator import add
    >>> dependency_positions({"x": 1, "y": (add, "x", 10), "z": (sum, ["y", "x", "y"]), "w": "z"})
    [[], [0], [0, 1], [2]]
    """
    validate_keys(graph)
    look = dict(zip(graph, range(len(graph)), strict=True)).get
    out: list[list[int]] = []
    add = out.append
    try:
        for value in graph.values():
            t = type(value)
            if t is tuple and value:
                func = value[0]
                if func is not apply and callable(func):
                    found = _task_positions(value, look)
                    if found is not None:
                        add(found)
                        continue
            elif t in _SCALAR_KEYS:  # an alias, or a literal
                p = look(value)
                add([] if p is None else [p])
                continue
            elif t in LEAVES:
                add([])
                continue
            # Everything else: apply, tuples that are not tasks (aliases or literals),
            # nodes, and tasks with parts not read above. Converted, as convert_graph would.
            node = convert_task(value, graph)
            add(sorted({p for d in node.dependencies if (p := look(d)) is not None}))
    except (TaskSpecError, InvalidKeyError) as err:
        raise type(err)(f"key {_nth_key(graph, len(out))!r}: {err}") from err
    except RecursionError:
        raise TaskSpecError(
            f"key {_nth_key(graph, len(out))!r}: the value is nested too deeply to convert; "
            "split it into several keys"
        ) from None
    return out


def _nth_key(graph: Mapping[Any, Any], n: int) -> Any:
    return next(islice(graph, n, None))


def _task_positions(task: tuple[Any, ...], look: Any) -> list[int] | None:
    # The positions of the keys among a task's arguments, or None if an argument is not
    # read here: a nested task, a tuple of other things, an object that may hold
    # references. (A task's function is never searched for references.) The keys and
    # tuples in a list argument are read as arguments are, in a loop of their own (other
    # items give way): one loop over `arg if list else (arg,)` for both cost 15-20% more
    # on dask's small test graphs.
    found: list[int] = []
    for arg in task[1:]:
        t = type(arg)
        if t in _SCALAR_KEYS:
            p = look(arg)
            if p is not None:
                found.append(p)
        elif t is tuple:
            if arg and callable(arg[0]):
                return None
            try:
                p = look(arg)
            except TypeError:  # holds unhashable values (slices, before Python 3.12): no key
                p = None
            if p is not None:
                found.append(p)
            elif _may_hold_nodes(arg) and scan_references(arg, set()):
                return None
        elif t is list:
            for item in arg:
                u = type(item)
                if u in _SCALAR_KEYS:
                    p = look(item)
                    if p is not None:
                        found.append(p)
                elif u is tuple:
                    if item and callable(item[0]):
                        return None
                    try:
                        p = look(item)
                    except TypeError:
                        p = None
                    if p is not None:
                        found.append(p)
                    elif _may_hold_nodes(item) and scan_references(item, set()):
                        return None
                elif u not in LEAVES:
                    return None
        elif t in _INERT or (t is dict and not arg):
            continue
        elif is_dask_node(arg) or scan_references(arg, set()):
            return None
    if len(found) == 2:  # the commonest case after one, without a set
        a, b = found
        if a > b:
            return [b, a]
        if a == b:
            return [a]
    elif len(found) > 2:
        return sorted(set(found))
    return found


def convert_task(value: Any, keys: Container[object]) -> GraphNode:
    """Convert one dask-style graph value to a node; see :func:`convert_graph`.

    Examples
    --------
    >>> convert_task((len, "x"), {"x"})
    Task(len, TaskRef('x'))
    >>> convert_task("x", {"x"}), convert_task("x", set())
    (Alias('x'), DataNode('x'))
    """
    if isinstance(value, GraphNode):
        return value
    if is_dask_node(value):
        return convert_dask_node(value)
    parsed = _parse(value, keys)
    t = type(parsed)
    if t is Task:
        return parsed  # type: ignore[no-any-return]
    if t is TaskRef:
        return Alias(parsed.key)
    if t is list:
        deps: set[Key] = set()
        if scan_references(parsed, deps):
            return Task(list, parsed)
    return DataNode(value)


def _parse(obj: Any, keys: Container[object]) -> Any:
    t = type(obj)
    if t is tuple:
        if obj and callable(obj[0]):
            return _parse_task(obj, keys)
        return trusted_ref(obj) if is_known_key(obj, keys) else obj
    if t in _SCALAR_KEYS:
        return trusted_ref(obj) if obj in keys else obj
    if t is list:
        return [_parse(item, keys) for item in obj]
    if is_dask_node(obj):
        # One of dask's nodes inside a dask-style tuple task, which dask evaluates too.
        return convert_dask_node(obj)
    return obj


def plain_literal(arg: tuple[Any, ...]) -> bool:
    """Return whether a tuple that is not a key is a plain literal (see :func:`plain_refs`).

    Examples
    --------
    >>> plain_literal((1, "a", None)), plain_literal((1, [2])), plain_literal((2**64,))
    (True, False, False)
    """
    for part in arg:
        u = type(part)
        if u is int:
            if not INT_MIN <= part < INT_END:
                return False
        elif u not in PLAIN_SCALARS:
            return False
    return True


def plain_refs(args: tuple[Any, ...], keys: Container[object]) -> tuple[int, ...] | None:
    """Return the positions of ``args`` that are keys, or None if ``args`` are not plain.

    Arguments are plain when each is a ``str``, ``bytes``, ``float``, ``bool``,
    ``None``, a 64-bit ``int``, or a tuple of those (a key, or a literal
    tuple), as in nearly every task of a large graph. Plain arguments are both
    in :class:`Task`'s internal form (references are bare keys at the returned
    positions) and in msgpack's, so converting and packing need no other pass.

    Examples
    --------
    >>> plain_refs(("a", 1, ("b", 0)), {"a", ("b", 0)})
    (0, 2)
    >>> plain_refs(([1, 2],), set()) is None
    True
    """
    # The most common shapes first, one or two arguments, each a key, a str or an
    # int: (func, key), (func, key, key), (func, i), (func, key, i).
    n = len(args)
    if 0 < n < 3:
        first = args[0]
        t = type(first)
        if t is str or t is tuple or (t is int and INT_MIN <= first < INT_END):
            try:
                ref0 = first in keys
            except TypeError:  # holds unhashable values: a literal, and not plain
                return None
            if ref0 or t is not tuple:  # a tuple that is no key needs its parts checked
                if n == 1:
                    return _AT_0 if ref0 else ()
                second = args[1]
                u = type(second)
                if u is str or u is tuple or (u is int and INT_MIN <= second < INT_END):
                    try:
                        ref1 = second in keys
                    except TypeError:
                        return None
                    if ref1 or u is not tuple:
                        if ref0:
                            return _AT_01 if ref1 else _AT_0
                        return _AT_1 if ref1 else ()
    refs: list[int] = []
    for i, arg in enumerate(args):
        t = type(arg)
        if t is tuple:
            try:
                if arg in keys:  # a key: its parts were checked when it was made a key
                    refs.append(i)
                    continue
            except TypeError:  # holds unhashable values: a literal, and not plain
                return None
            if not plain_literal(arg):
                return None
        elif t is str:
            if arg in keys:
                refs.append(i)
        elif t is int:
            if not INT_MIN <= arg < INT_END:
                return None
            if arg in keys:  # dask's key model: ints, floats and bytes are keys too
                refs.append(i)
        elif t is float or t is bytes:
            if arg in keys:
                refs.append(i)
        elif t not in PLAIN_SCALARS:
            return None
    return tuple(refs)


def _parse_task(obj: tuple[Any, ...], keys: Container[object]) -> Task:
    func = obj[0]
    if func is not apply:
        args = obj[1:]
        refs = plain_refs(args, keys)
        if refs is not None:
            return Task.from_parts(func, args, refs)
        task = _parse_list_task(obj, keys)
        if task is not None:
            return task
    if func is apply and 2 <= len(obj) <= 4:
        target = _parse(obj[1], keys)
        args = _parse_apply_args(obj[2], keys) if len(obj) > 2 else []
        kwargs = _parse_kwargs(obj[3], keys) if len(obj) > 3 else {}
        if (
            callable(target)
            and type(target) not in (Task, TaskRef)
            and type(args) in (list, tuple)
            and type(kwargs) is dict
            and all(type(k) is str for k in kwargs)
        ):
            return Task(target, *args, **kwargs)
        return Task(apply, target, args, kwargs)
    return Task(func, *[_parse(arg, keys) for arg in obj[1:]])


def _parse_apply_args(obj: Any, keys: Container[object]) -> Any:
    # ``args`` of ``(apply, func, args, kwargs)``: a list or a tuple of arguments, each
    # searched for keys (a tuple here is an argument list, not a literal), unless the
    # tuple is itself a task or a key, whose value is then the argument list.
    if type(obj) is tuple and not (obj and callable(obj[0])) and not is_known_key(obj, keys):
        return tuple([_parse(item, keys) for item in obj])
    return _parse(obj, keys)


def _parse_list_task(obj: tuple[Any, ...], keys: Container[object]) -> Task | None:
    """Build ``(func, *args)`` whose arguments may also be lists of keys and leaves.

    The second most common task shape, ``(sum, [("x", 0), ("x", 1), ...])``,
    built in one pass. Returns None for anything else.
    """
    deps: set[Key] = set()
    args: list[Any] = []
    for i in range(1, len(obj)):
        arg = obj[i]
        if type(arg) is list:
            # A long list of keys only, the commonest, checked in C without a branch
            # per item (for a few items, the set costs more than the branches).
            if len(arg) > _LONG_LIST and set(map(type, arg)) <= _KEY_TYPES:
                try:
                    only_keys = all(map(keys.__contains__, arg))
                except TypeError:  # a tuple holding unhashable values: a literal
                    only_keys = False
                if only_keys:
                    deps.update(arg)
                    args.append(list(map(trusted_ref, arg)))
                    continue
            # _parse_flat, inlined for the items: without two calls per item, a list of
            # 1,000 keys converts about 15% faster.
            items: list[Any] = []
            for item in arg:
                t = type(item)
                if t is tuple:
                    if item and callable(item[0]):
                        return None
                    try:
                        known = item in keys
                    except TypeError:  # holds unhashable values: a literal
                        known = False
                    if known:
                        deps.add(item)
                        item = trusted_ref(item)  # noqa: PLW2901 - the item, converted
                    elif _may_hold_nodes(item):
                        scan_references(item, deps)  # nodes inside a literal are resolved too
                elif t in _SCALAR_KEYS:
                    if item in keys:
                        deps.add(item)
                        item = trusted_ref(item)  # noqa: PLW2901 - the item, converted
                elif t not in LEAVES:
                    return None
                items.append(item)
            args.append(items)
        else:
            parsed = _parse_flat(arg, keys, deps)
            if parsed is _NOT_FLAT:
                return None
            args.append(parsed)
    return Task.from_parts(obj[0], tuple(args), (), None, True, frozenset(deps))


_NOT_FLAT = object()


def _may_hold_nodes(literal: tuple[Any, ...]) -> bool:
    # Whether a literal tuple has parts other than leaves and slices, which may be or
    # hold nodes; one pass in C for the commonest literals, a block's slices.
    return not set(map(type, literal)) <= _LITERAL_PARTS


def _parse_flat(obj: Any, keys: Container[object], deps: set[Key]) -> Any:
    # A key (as a TaskRef), a literal leaf or non-task tuple, or _NOT_FLAT.
    t = type(obj)
    if t is tuple or t in _SCALAR_KEYS:
        if t is tuple and obj and callable(obj[0]):
            return _NOT_FLAT
        if is_known_key(obj, keys):
            deps.add(obj)
            return trusted_ref(obj)
        if t is tuple and _may_hold_nodes(obj):
            scan_references(obj, deps)  # nodes inside a literal are resolved too
        return obj
    return obj if t in LEAVES else _NOT_FLAT


def _parse_kwargs(obj: Any, keys: Container[object]) -> Any:
    if type(obj) is dict:
        return {k: _parse(v, keys) for k, v in obj.items()}
    return _parse(obj, keys)
