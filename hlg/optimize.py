"""Optimisation: cull, then fuse chains of Blockwise layers.

Fusing layer ``A`` into layer ``B`` that consumes it makes one layer whose
task for a block computes ``A``'s task for the same block inline, then
``B``'s. ``A``'s intermediate blocks are never stored or scheduled, and the
graph has one task per block instead of two.

``A`` is fused into ``B`` (by :meth:`Blockwise.fuse
<hlg.layers.blockwise.Blockwise.fuse>`) only when the result is certain to be
the same:

- both are :class:`~hlg.layers.blockwise.Blockwise`, and ``B.can_fuse(A,
  position)`` holds: neither contracts an index (each output block needs
  exactly one block of each input); ``B`` takes ``A`` once, block for block
  (its index for ``A`` uses ``B``'s output letters, without broadcasting),
  and reads no key of ``A`` elsewhere; ``A``'s keyword arguments hold no
  references; both layers carry the same annotations (fusing layers with
  different annotations would lose one);
- nothing else needs ``A``: no other layer depends on it and none of its keys
  is requested.

Fusion repeats until no pair qualifies, so a chain of any length becomes one
layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hlg.graph import HighLevelGraph, ensure_graph, flatten_keys
from hlg.layers.base import Layer
from hlg.layers.blockwise import Blockwise, FusedFunction, KeyInput
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
                inner = layers.get(arg.name) if isinstance(arg, KeyInput) else None
                if not isinstance(inner, Blockwise) or inner.name in protected:
                    continue
                if dependents.get(inner.name) != {name} or not outer.can_fuse(inner, position):
                    continue
                layers[name] = outer.fuse(inner, position)
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
