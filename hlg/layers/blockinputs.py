"""The inputs of a Blockwise layer, as declared types.

:func:`hlg.blockwise` turns its ``input, index`` pairs into these values:

- :class:`KeyInput` reads blocks (or one whole key) of another layer;
- :class:`ValueInput` passes one value to every task;
- :class:`DepInput` computes an argument from the block index with a
  :class:`~hlg.layers.BlockwiseDep`.

:data:`BlockwiseInput` is their union. :class:`BlockHint` is what a layer's cull
tells a Blockwise layer it reads, and :class:`FusedFunction` is the function of
a layer made by :meth:`Blockwise.fuse <hlg.layers.Blockwise.fuse>`.

Examples
--------
>>> import hlg
>>> hlg.blockwise(round, "y", "i", "x", "i", 2, None, numblocks={"x": (4,)}).args
[KeyInput(name='x', index='i'), ValueInput(value=2)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from hlg.errors import LayerStateError, UnknownLayerError
from hlg.layers.blockdeps import BlockwiseDep, get_blockwise_dep, known_dep_tags
from hlg.task import callable_name

__all__ = [
    "BlockHint",
    "BlockwiseInput",
    "DepInput",
    "FusedFunction",
    "KeyInput",
    "ValueInput",
]


@dataclass(frozen=True, slots=True)
class KeyInput:
    """A Blockwise input read from the keys of another layer.

    With an ``index``, the task of each output block takes the blocks
    ``(name, *block)`` that the index letters pick (see the module docstring);
    with ``index=None``, every task takes the value of the key ``name`` itself.

    Examples
    --------
    >>> import hlg
    >>> hlg.blockwise(abs, "y", "ij", "x", "ji", numblocks={"x": (2, 3)}).args
    [KeyInput(name='x', index='ji')]
    """

    name: str
    index: str | None


@dataclass(frozen=True, slots=True)
class ValueInput:
    """A Blockwise input passed whole to every task: a literal, or a value holding references.

    A :class:`~hlg.TaskRef` inside ``value`` is replaced by the value of its key
    when the task runs.

    Examples
    --------
    >>> import hlg
    >>> hlg.blockwise(round, "y", "i", "x", "i", 2, None, numblocks={"x": (4,)}).args[1]
    ValueInput(value=2)
    """

    value: Any


@dataclass(frozen=True, slots=True)
class DepInput:
    """A Blockwise input computed from the block index by a :class:`BlockwiseDep`.

    Examples
    --------
    >>> import hlg
    >>> layer = hlg.blockwise(abs, "y", "i", hlg.layers.BlockIndex((3,)), "i", numblocks={})
    >>> layer.args, layer[("y", 2)]
    ([DepInput(dep=BlockIndex(numblocks=(3,)), index='i')], Task(abs, (2,)))
    """

    dep: BlockwiseDep
    index: str


#: One input of a Blockwise layer; :func:`blockwise` builds them from ``input, index`` pairs.
BlockwiseInput: TypeAlias = KeyInput | ValueInput | DepInput


@dataclass(frozen=True, slots=True)
class BlockHint:
    """The blocks of a layer that a consumer taking it block for block needs.

    A layer's :meth:`~hlg.Layer.cull` may put one in
    :attr:`NeededKeys.hints <hlg.layers.base.NeededKeys>` under the name of the
    Blockwise layer it reads; that layer then takes the needed keys by their
    columns instead of parsing each key again. It is trusted only when
    ``numblocks`` is the layer's own grid and the keys asked for are exactly
    the ``count`` keys the columns give.

    Examples
    --------
    >>> import hlg
    >>> layer = hlg.blockwise(abs, "y", "i", "x", "i", numblocks={"x": (1000,)})
    >>> culled, needed = layer.cull([("y", 3), ("y", 7)])
    >>> needed.hints["x"]
    BlockHint(numblocks=(1000,), columns=[(3, 7)], count=2)
    """

    #: The block counts of the grid the blocks belong to, one per dimension.
    numblocks: tuple[int, ...]
    #: The block numbers, one column per dimension, every value in range.
    columns: Sequence[Sequence[int]]
    #: How many blocks the columns hold (distinct ones).
    count: int


def well_formed(arg: object) -> bool:
    """Return whether ``arg`` is a Blockwise input whose fields have the declared types."""
    match arg:
        case KeyInput(name=str(), index=str() | None) | ValueInput():
            return True
        case DepInput(dep=BlockwiseDep(), index=str()):
            return True
    return False


def input_index(arg: BlockwiseInput) -> str | None:
    """Return the index of an input, None for an input passed whole."""
    return None if isinstance(arg, ValueInput) else arg.index


def describe_input(arg: BlockwiseInput) -> str:
    """Name an input in a layer's repr: the layer it reads, or its kind."""
    match arg:
        case KeyInput():
            return arg.name
        case ValueInput():
            return "value"
        case DepInput():
            return "dep"


def relettered(arg: BlockwiseInput, letters: Mapping[str, str]) -> BlockwiseInput:
    """Return ``arg`` with each letter of its index replaced through ``letters``."""
    if isinstance(arg, ValueInput) or arg.index is None:
        return arg
    return replace(arg, index="".join(letters[c] for c in arg.index))


class FusedFunction:
    """``outer(*before, inner(*inner_args, **inner_kwargs), *after, **kwargs)`` as one call.

    The function of a layer made by :meth:`Blockwise.fuse`: positions
    ``[at, at + width)`` of its arguments belong to the inner layer.

    Examples
    --------
    >>> from operator import add, neg
    >>> f = FusedFunction(add, neg, 0, 1, {})
    >>> f(2, 10), f
    (8, <FusedFunction add-neg>)
    """

    def __init__(
        self,
        outer: Callable[..., Any],
        inner: Callable[..., Any],
        at: int,
        width: int,
        inner_kwargs: Mapping[str, Any],
    ) -> None:
        self.outer = outer
        self.inner = inner
        self.at = at
        self.width = width
        self.inner_kwargs = dict(inner_kwargs)
        self.__name__ = f"{callable_name(outer)}-{callable_name(inner)}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the inner function, then the outer one."""
        at, end = self.at, self.at + self.width
        value = self.inner(*args[at:end], **self.inner_kwargs)
        return self.outer(*args[:at], value, *args[end:], **kwargs)

    def __repr__(self) -> str:
        return f"<FusedFunction {self.__name__}>"


def unpack_input(entry: Any, name: str) -> BlockwiseInput:
    """Rebuild one packed input, checking its shape."""
    kind = entry[0] if type(entry) is tuple and entry else None
    if kind == "value" and len(entry) == 2:
        return ValueInput(entry[1])
    if (
        kind == "key"
        and len(entry) == 3
        and type(entry[1]) is str
        and (entry[2] is None or type(entry[2]) is str)
    ):
        return KeyInput(entry[1], entry[2])
    if kind == "dep" and len(entry) == 4 and type(entry[1]) is str and type(entry[3]) is str:
        dep_cls = get_blockwise_dep(entry[1])
        if dep_cls is None:
            raise UnknownLayerError(
                f"layer {name!r}: no blockwise dep is registered under tag {entry[1]!r}; "
                f"known: {', '.join(known_dep_tags())}"
            )
        try:
            dep = dep_cls.unpack_state(entry[2])
        except LayerStateError as err:
            raise LayerStateError(f"layer {name!r}, dep {entry[1]!r}: {err}") from None
        return DepInput(dep, entry[3])
    raise LayerStateError(
        f'layer {name!r}: blockwise input {entry!r:.200} is not ["value", v], '
        '["key", layer name, index or nil] or ["dep", tag, state, index]'
    )
