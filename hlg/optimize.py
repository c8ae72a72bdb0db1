"""Optimisation: cull, then fuse chains of Blockwise layers.

Fusing layer ``A`` into layer ``B`` that consumes it makes one layer whose
task for a block computes ``A``'s task for the same block inline, then
``B``'s. ``A``'s intermediate blocks are never stored or scheduled, and the
graph has one task per block instead of two.

``A`` is fused into ``B`` only when the result is certain to be the same:

- both are :class:`~hlg.layers.blockwise.Blockwise` and neither contracts an
  index (each output block needs exactly one block of each input);
- ``B`` takes ``A`` once, block for block (its index for ``A`` uses ``B``'s
  output letters, without broadcasting);
- nothing else needs ``A``: no other layer depends on it and none of its keys
  is requested;
- ``A``'s keyword arguments hold no references, and both layers carry the
  same annotations (fusing layers with different annotations would lose one).

Fusion repeats until no pair qualifies, so a chain of any length becomes one
layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hlg.graph import HighLevelGraph, ensure_graph, flatten_keys
from hlg.layers.base import Layer
from hlg.layers.blockwise import Blockwise, _Arg
from hlg.task import callable_name
from hlg.toposort import toposort

__all__ = ["FusedFunction", "fuse_blockwise", "optimize"]


def optimize(
    graph: Any, keys: Any = None, *, cull: bool = True, fuse: bool = True
) -> HighLevelGraph:
    """Cull ``graph`` to ``keys``, then fuse chains of Blockwise layers.

    Parameters
    ----------
    graph
        A graph in any client form.
    keys
        The keys that will be computed; their layers are never fused away.
        None keeps the whole graph (nothing is culled; the last layers are kept).
    cull, fuse
        Which steps to run.

    Examples
    --------
    >>> import hlg
    >>> from hlg.layers.blockwise import blockwise
    >>> from operator import add, mul
    >>> x = hlg.MaterializedLayer({("x", i): i for i in range(4)}, name="x")
    >>> a = blockwise(add, "a", "i", "x", "i", 1, None, numblocks={"x": (4,)})
    >>> b = blockwise(mul, "b", "i", "a", "i", 10, None, numblocks={"a": (4,)})
    >>> g = hlg.HighLevelGraph({"x": x, "a": a, "b": b}, {"a": {"x"}, "b": {"a"}})
    >>> fused = optimize(g, [("b", 3)])
    >>> list(fused.layers), hlg.get(fused, ("b", 3), scheduler="sync")
    (['x', 'b'], 40)
    """
    g = ensure_graph(graph)
    if cull and keys is not None:
        g = g.cull(list(flatten_keys(keys)))
    if fuse:
        g = fuse_blockwise(g, keys)
    return g


class FusedFunction:
    """``outer(*before, inner(*inner_args, **inner_kwargs), *after, **kwargs)`` as one call.

    The function of a fused Blockwise layer: positions ``[at, at + width)`` of
    its arguments belong to the inner layer.
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


def fuse_blockwise(graph: HighLevelGraph, keys: Any = None) -> HighLevelGraph:
    """Fuse every qualifying pair of Blockwise layers; see the module docstring.

    Parameters
    ----------
    graph
        The graph (usually culled already).
    keys
        Requested keys: layers holding any of them are not fused away. None
        protects the graph's last layers.
    """
    layers = dict(graph.layers)
    dependencies = {name: set(deps) for name, deps in graph.dependencies.items()}
    protected = _protected(graph, keys)
    changed = True
    while changed:
        changed = False
        dependents = _dependents(dependencies)
        for name in _topological(layers, dependencies):
            outer = layers[name]
            if not isinstance(outer, Blockwise):
                continue
            for position, arg in enumerate(outer.args):
                inner = layers.get(arg.value) if arg.kind == "key" else None
                if not isinstance(inner, Blockwise) or inner.name in protected:
                    continue
                if dependents.get(inner.name) != {name} or not _fusable(inner, outer, position):
                    continue
                layers[name] = _fuse(inner, outer, position)
                del layers[inner.name]
                dependencies[name] = (dependencies[name] - {inner.name}) | dependencies.pop(
                    inner.name
                )
                changed = True
                break
            if changed:
                break
    return HighLevelGraph(layers, dependencies)


def _protected(graph: HighLevelGraph, keys: Any) -> set[str]:
    if keys is None:
        return set(graph.__hlg_layers__())
    names = set()
    for key in flatten_keys(keys):
        layer = graph.layer_of(key)
        if layer is not None:
            names.add(layer.name)
    return names


def _dependents(dependencies: Mapping[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {name: set() for name in dependencies}
    for name, deps in dependencies.items():
        for dep in deps:
            out.setdefault(dep, set()).add(name)
    return out


def _topological(
    layers: Mapping[str, Layer], dependencies: Mapping[str, Iterable[str]]
) -> list[str]:
    return toposort({name: dependencies.get(name, ()) for name in layers})


def _fusable(inner: Blockwise, outer: Blockwise, position: int) -> bool:
    arg = outer.args[position]
    if inner.contracted or outer.contracted or inner._kwargs_deep or arg.index is None:
        return False
    if inner.annotations != outer.annotations:
        return False
    uses = [a for a in outer.args if a.kind == "key" and a.value == inner.name]
    if len(uses) != 1 or any(_mentions(v, inner.name) for v in outer.kwargs.values()):
        return False
    counts = outer.numblocks.get(inner.name, ())
    if len(arg.index) != len(inner.out_ind) or len(set(arg.index)) != len(arg.index):
        return False
    # Block for block: every letter is an output letter, and nothing is broadcast.
    return all(
        letter in outer.out_ind and n == outer.dims[letter] == m
        for letter, n, m in zip(arg.index, counts, inner.out_numblocks, strict=True)
    )


def _mentions(value: Any, name: str) -> bool:
    key = getattr(value, "key", None)
    return key == name or (type(key) is tuple and key[:1] == (name,))


def _fuse(inner: Blockwise, outer: Blockwise, position: int) -> Blockwise:
    letters = dict(zip(inner.out_ind, outer.args[position].index or "", strict=True))
    moved = [
        _Arg(a.kind, a.value, None if a.index is None else "".join(letters[c] for c in a.index))
        for a in inner.args
    ]
    args = [*outer.args[:position], *moved, *outer.args[position + 1 :]]
    numblocks = {k: v for k, v in outer.numblocks.items() if k != inner.name}
    numblocks.update(inner.numblocks)
    new_axes = dict(outer.new_axes)
    new_axes.update({letters[c]: n for c, n in inner.new_axes.items()})
    func = FusedFunction(outer.func, inner.func, position, len(moved), inner.kwargs)
    fused = Blockwise(
        outer.name,
        func,
        outer.out_ind,
        args,
        numblocks,
        new_axes=new_axes,
        concatenate=outer.concatenate,
        kwargs=outer.kwargs,
        annotations=outer.annotations,
    )
    if outer._kept_columns is None:
        return fused
    return fused._with_columns(outer._kept_columns, outer._kept_count)
