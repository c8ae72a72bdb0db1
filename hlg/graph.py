"""HighLevelGraph: named layers and the dependencies between them.

A :class:`HighLevelGraph` is a read-only mapping over every key of every layer,
but it answers ``len``, ``in`` and ``cull`` through the layers, without
materialising any layer that can answer for itself. :meth:`HighLevelGraph.to_dict`
is the one explicit way to materialise everything.

Collections take part through a small protocol: ``__hlg_graph__()`` returns
their graph, and ``__hlg_layers__()`` the names of the layers holding their
outputs. A HighLevelGraph is itself such a collection.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Container, Iterable, Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hlg._gc import gc_paused_for
from hlg.convert import KeyUnion
from hlg.daskspec import dask_graph
from hlg.errors import (
    DuplicateKeyError,
    GraphError,
    HlgError,
    MissingKeyError,
    MissingLayerError,
    counted,
)
from hlg.keys import Key, is_key, tokenize
from hlg.layers.base import KeyBox, Layer, PendingKeys, missing_dependency
from hlg.layers.materialized import MaterializedLayer
from hlg.presentation import presenter
from hlg.task import GraphNode
from hlg.toposort import toposort

__all__ = ["HighLevelGraph", "HlgCollection", "ensure_graph", "flatten_keys"]


@runtime_checkable
class HlgCollection(Protocol):
    """What hlg needs from a collection: its graph and its output layers."""

    def __hlg_graph__(self) -> HighLevelGraph:
        """Return the collection's graph."""

    def __hlg_layers__(self) -> tuple[str, ...]:
        """Return the names of the layers that hold the collection's outputs."""


class HighLevelGraph(Mapping[Key, GraphNode]):
    """A task graph made of layers.

    Parameters
    ----------
    layers
        Layer name to :class:`~hlg.Layer`, or to a dict of tasks (converted to a
        :class:`~hlg.MaterializedLayer`; its values may refer to keys of any layer).
    dependencies
        Layer name to the names of the layers its tasks need. Layers left out
        depend on nothing.

    Examples
    --------
    >>> from operator import add
    >>> g = HighLevelGraph(
    ...     {"a": {("a", 0): 1, ("a", 1): 2}, "b": {"b": (add, ("a", 0), ("a", 1))}},
    ...     {"b": {"a"}},
    ... )
    >>> len(g), g.topological_layers(), g["b"]
    (3, ['a', 'b'], Task(add, TaskRef(('a', 0)), TaskRef(('a', 1))))
    """

    def __init__(
        self,
        layers: Mapping[str, Layer | Mapping[Any, Any]],
        dependencies: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        # Copied once here: the union other layers' references are found in must not
        # see the caller's dicts change afterwards.
        raw = {name: dict(v) for name, v in layers.items() if not isinstance(v, Layer)}
        known = KeyUnion(*(raw.get(name, v) for name, v in layers.items())) if raw else None
        self._layers: dict[str, Layer] = {}
        for name, value in layers.items():
            if isinstance(value, Layer):
                if value.name != name:
                    raise GraphError(
                        f"layer {value.name!r} is stored under the name {name!r}; "
                        "a graph stores each layer under its own name"
                    )
                self._layers[name] = value
            else:
                self._layers[name] = MaterializedLayer(
                    raw[name], name=name, known_keys=known, copy=False
                )
        deps = dependencies or {}
        self._dependencies: dict[str, frozenset[str]] = {
            name: frozenset(deps.get(name, ())) for name in self._layers
        }
        for name in deps:
            if name not in self._layers:
                self._dependencies[name] = frozenset(deps[name])
        self._order: list[str] | None = None  # topological_layers(), once computed

    @classmethod
    def _from_layers(
        cls, layers: dict[str, Layer], dependencies: dict[str, frozenset[str]], order: list[str]
    ) -> HighLevelGraph:
        # A graph from parts already checked: layers under their own names, dependencies
        # among them, and ``order`` a topological order of them.
        graph = object.__new__(cls)
        graph._set_parts(layers, dependencies, order)
        return graph

    def _set_parts(
        self, layers: dict[str, Layer], dependencies: dict[str, frozenset[str]], order: list[str]
    ) -> None:
        self._layers, self._dependencies, self._order = layers, dependencies, order

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_dict(cls, graph: Mapping[Any, Any], name: str | None = None) -> HighLevelGraph:
        """Wrap a dict graph (dask style or of nodes) as a one-layer graph.

        Examples
        --------
        >>> HighLevelGraph.from_dict({"x": 1, "y": (abs, "x")}, name="g").layers
        {'g': <MaterializedLayer 'g': 2 tasks>}
        """
        layer = MaterializedLayer(graph, name=name)
        return cls({layer.name: layer})

    @classmethod
    def from_collections(
        cls,
        name: str,
        layer: Layer | Mapping[Any, Any],
        dependencies: Iterable[HlgCollection] = (),
    ) -> HighLevelGraph:
        """Build the graph of a new collection from one new layer and its inputs.

        Parameters
        ----------
        name
            The new layer's name.
        layer
            The new layer, or a dict of its tasks (whose values may refer to keys
            of ``dependencies``).
        dependencies
            Collections (anything with ``__hlg_graph__`` and ``__hlg_layers__``,
            such as another HighLevelGraph) whose outputs the layer needs.

        Examples
        --------
        >>> from operator import add
        >>> x = HighLevelGraph.from_dict({("x", 0): 1, ("x", 1): 2}, name="x")
        >>> y = HighLevelGraph.from_collections("y", {("y", 0): (add, ("x", 0), ("x", 1))}, [x])
        >>> y.dependencies
        {'x': frozenset(), 'y': frozenset({'x'})}
        """
        deps = list(dependencies)
        graphs = [d.__hlg_graph__() for d in deps]
        if not isinstance(layer, Layer):
            known = KeyUnion(*(lyr for g in graphs for lyr in g._layers.values()))
            layer = MaterializedLayer(layer, name=name, known_keys=known)
        elif layer.name != name:
            raise GraphError(f"layer {layer.name!r} was given under the name {name!r}")
        merged = cls.merge(*graphs)
        layers = {**merged._layers, name: layer}
        dep_names = {n for d in deps for n in d.__hlg_layers__()}
        return cls(layers, {**merged._dependencies, name: dep_names})

    @classmethod
    def merge(cls, *graphs: HighLevelGraph | Mapping[Any, Any]) -> HighLevelGraph:
        """Combine graphs, keeping every key of every layer.

        A layer name present in several graphs names one layer, often culled
        differently in each (``g.cull(a)`` and ``g.cull(b)``). When one of them
        holds every key of the others it is kept; otherwise, for layers holding
        their tasks (:class:`~hlg.MaterializedLayer`), the tasks are combined.
        Lazy layers are never expanded to combine them: merge the graphs before
        culling instead.

        Raises
        ------
        GraphError
            Two lazy layers of one name hold different keys and neither holds
            all of the other's.

        Examples
        --------
        >>> a = HighLevelGraph.from_dict({"a": 1}, name="a")
        >>> b = HighLevelGraph.from_dict({"b": 2}, name="b")
        >>> sorted(HighLevelGraph.merge(a, b))
        ['a', 'b']
        >>> g = HighLevelGraph.from_dict({"x": 1, "y": 2}, name="g")
        >>> sorted(HighLevelGraph.merge(g.cull("x"), g.cull("y")))
        ['x', 'y']
        """
        layers: dict[str, Layer] = {}
        dependencies: dict[str, frozenset[str]] = {}
        for graph in graphs:
            g = ensure_graph(graph)
            for name, layer in g._layers.items():
                old = layers.get(name)
                layers[name] = layer if old is None else _merge_layers(old, layer)
                dependencies[name] = dependencies.get(name, frozenset()) | g._dependencies[name]
            for name, deps in g._dependencies.items():
                if name not in g._layers:
                    dependencies[name] = dependencies.get(name, frozenset()) | deps
        return cls(layers, dependencies)

    # -- the collection protocol ---------------------------------------------------------

    def __hlg_graph__(self) -> HighLevelGraph:
        return self

    def __hlg_layers__(self) -> tuple[str, ...]:
        """Return the names of the layers no other layer depends on."""
        needed = {d for deps in self._dependencies.values() for d in deps}
        return tuple(name for name in self._layers if name not in needed)

    # -- layers --------------------------------------------------------------------------

    @property
    def layers(self) -> dict[str, Layer]:
        """Layer name to layer (a copy; the graph itself is immutable)."""
        return dict(self._layers)

    @property
    def dependencies(self) -> dict[str, frozenset[str]]:
        """Layer name to the names of the layers it depends on."""
        return dict(self._dependencies)

    @property
    def dependents(self) -> dict[str, set[str]]:
        """Layer name to the names of the layers that depend on it.

        Examples
        --------
        >>> g = HighLevelGraph({"a": {"a": 1}, "b": {"b": "a"}}, {"b": {"a"}})
        >>> g.dependents
        {'a': {'b'}, 'b': set()}
        """
        out: dict[str, set[str]] = {name: set() for name in self._layers}
        for name, deps in self._dependencies.items():
            for dep in deps:
                out.setdefault(dep, set()).add(name)
        return out

    def topological_layers(self) -> list[str]:
        """Return layer names, each after the layers it depends on.

        Raises
        ------
        MissingLayerError
            A layer depends on a name that is not a layer of the graph.
        CycleError
            Layers depend on each other in a cycle; the message names them.
        """
        if self._order is None:
            self._check_layer_names()
            self._order = toposort(
                self._dependencies,
                describe=lambda cycle: (
                    "layers depend on each other in a cycle: "
                    + " -> ".join(map(repr, cycle))
                    + "; remove one of these layer dependencies"
                ),
            )
        return list(self._order)

    def _check_layer_names(self) -> None:
        names = self._layers.keys()
        for name, deps in self._dependencies.items():
            if name not in names:
                raise MissingLayerError(
                    f"the dependencies name layer {name!r}, which is not in the graph; "
                    f"layers: {', '.join(map(repr, self._layers))}"
                )
            if names >= deps:  # checked in C; sorted below only to name the first missing
                continue
            for dep in sorted(deps):
                if dep not in self._layers:
                    raise MissingLayerError(
                        f"layer {name!r} depends on layer {dep!r}, which is not in the graph; "
                        "add that layer or remove the dependency"
                    )

    # -- the mapping over keys -----------------------------------------------------------

    def layer_of(self, key: object) -> Layer | None:
        """Return the layer producing ``key``, or None.

        Examples
        --------
        >>> g = HighLevelGraph.from_dict({("x", 0): 1}, name="x")
        >>> g.layer_of(("x", 0)).name, g.layer_of("nope")
        ('x', None)
        """
        if type(key) is tuple and key:
            guess = self._layers.get(key[0]) if type(key[0]) is str else None
            if guess is not None and key in guess:
                return guess
        elif type(key) is str:
            guess = self._layers.get(key)
            if guess is not None and key in guess:
                return guess
        elif not is_key(key):
            return None
        for layer in self._layers.values():
            if key in layer:
                return layer
        return None

    def __getitem__(self, key: Key) -> GraphNode:
        layer = self.layer_of(key)
        if layer is None:
            raise MissingKeyError(f"no layer of the graph produces key {key!r}")
        return layer[key]

    def __contains__(self, key: object) -> bool:
        return self.layer_of(key) is not None

    def __iter__(self) -> Iterator[Key]:
        for layer in self._layers.values():
            yield from layer

    def __len__(self) -> int:
        return sum(len(layer) for layer in self._layers.values())

    def get_output_keys(self) -> set[Key]:
        """Return every key of every layer, without materialising tasks.

        Examples
        --------
        >>> sorted(HighLevelGraph.from_dict({"x": 1, "y": "x"}).get_output_keys())
        ['x', 'y']
        """
        keys: set[Key] = set()
        for layer in self._layers.values():
            keys.update(layer)
        return keys

    def get_all_dependencies(self) -> dict[Key, frozenset[Key]]:
        """Return every key's dependencies (materialises every layer)."""
        return {k: node.dependencies for k, node in self.to_dict().items()}

    def to_dict(self) -> dict[Key, GraphNode]:
        """Materialise every layer into one flat dict of tasks.

        Examples
        --------
        >>> HighLevelGraph.from_dict({"x": 1}).to_dict()
        {'x': DataNode(1)}
        """
        out: dict[Key, GraphNode] = {}
        with gc_paused_for(len(self)):
            for layer in self._layers.values():
                out.update(layer.materialize())
        return out

    # -- cull and validate ---------------------------------------------------------------

    def cull(self, keys: Key | Iterable[Any], *, held: Container[object] = ()) -> HighLevelGraph:
        """Return the graph with only what ``keys`` need.

        Each layer, from the last to the first, is asked for the keys it must
        keep and returns a smaller layer and the keys it needs from other
        layers. Layers left empty are dropped. No layer that culls
        symbolically is materialised.

        Parameters
        ----------
        keys
            A key, or a (nested) list or a set of keys. Each must be produced by
            a layer of the graph.
        held
            Keys of data that is available without the graph: data a
            :class:`~hlg.Client` scattered, or that a cluster holds already
            (what :func:`hlg.pack` is given as ``remote_keys``). A kept task may
            need such a key though no layer produces it; ``held`` is only asked
            about keys that no layer produces.

        Raises
        ------
        MissingKeyError
            A requested key is in no layer.
        MissingDependencyError
            A kept task needs a key that no layer produces and that is not ``held``.

        Examples
        --------
        >>> from operator import add
        >>> from hlg import Task, TaskRef
        >>> g = HighLevelGraph({"a": {"a": 1, "unused": 2}, "b": {"b": (add, "a", 1)}},
        ...                    {"b": {"a"}})
        >>> sorted(g.cull("b"))
        ['a', 'b']
        >>> scattered = HighLevelGraph({"y": {"y": Task(add, TaskRef("x"), 1)}})
        >>> sorted(scattered.cull("y", held={"x"}))
        ['y']
        >>> scattered.cull("y")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        hlg.errors.MissingDependencyError: layer 'y': task 'y' needs 'x', which no layer ...
        """
        culled, unresolved = self._cull(keys)
        for key, needer in unresolved.items():
            if key not in held:
                raise self._missing(culled._layers[needer] if needer else None, key)
        return culled

    def _cull(self, keys: Key | Iterable[Any]) -> tuple[HighLevelGraph, dict[Key, str | None]]:
        """Cull, returning the keys no layer produces with the layer needing each.

        Those keys may be data held elsewhere; :meth:`cull` accepts those it is
        told are ``held``.
        """
        order = self.topological_layers()
        ancestors: dict[str, set[str]] = {}  # computed when a needer is not a direct dependent
        # Keys still to be produced -> the layer that needs them (None: requested).
        pending = PendingKeys.of(flatten_keys(keys))
        # Boxes of keys still to be produced, never listed: layer name -> (box, needer),
        # for the layer of that name, which said it takes the box (Layer.takes_box).
        boxes: dict[str, list[tuple[KeyBox, str]]] = {}
        kept: dict[str, Layer] = {}
        for name in reversed(order):
            layer = self._layers[name]
            mine = layer.filter_keys(pending) if pending else ()
            mine_boxes = boxes.pop(name, [])
            if not mine and not mine_boxes:
                continue
            needers = list(map(pending.pop, mine))
            for needer in set(needers).union(needer for _, needer in mine_boxes):
                if needer is None or name in self._dependencies[needer]:
                    continue
                ancestors = ancestors or self._ancestors(order)
                if name not in ancestors[needer]:
                    needed = [k for k, n in zip(mine, needers, strict=True) if n == needer]
                    needed += [next(iter(box)) for box, n in mine_boxes if n == needer]
                    raise self._undeclared(kept[needer], needed[0], name)
            culled, external = layer.cull_lazily(_join_boxes(layer, mine, mine_boxes))
            kept[name] = culled
            pending.update(dict.fromkeys(external.difference(pending), name))
            for target, hint in getattr(external, "hints", {}).items():
                # Two layers needing keys of one layer: their hints would each be partial.
                pending.hints[target] = None if target in pending.hints else hint
            for box in getattr(external, "boxes", ()):
                if not box:
                    continue
                target_layer = self._layers.get(box.name)
                if target_layer is not None and target_layer.takes_box(box):
                    boxes.setdefault(box.name, []).append((box, name))
                else:  # no layer of that name takes it: list its keys
                    pending.update({key: name for key in box if key not in pending})
        for key, needer in pending.items():
            producer = self.layer_of(key)
            if needer is None:
                raise MissingKeyError(f"cannot cull to key {key!r}: no layer produces it")
            if producer is not None:
                raise self._undeclared(kept[needer], key, producer.name)
        names = [name for name in order if name in kept]
        result = HighLevelGraph._from_layers(
            {name: kept[name] for name in names},
            {name: self._dependencies[name] & kept.keys() for name in names},
            names,
        )
        return result, pending

    def _ancestors(self, order: list[str]) -> dict[str, set[str]]:
        # Each layer with every layer it depends on, directly or not, and itself.
        out: dict[str, set[str]] = {}
        for name in order:
            out[name] = {name}.union(*(out[d] for d in self._dependencies[name]))
        return out

    def _undeclared(self, needer: Layer, key: Key, producer: str) -> MissingLayerError:
        task = _task_needing(needer, key)
        return MissingLayerError(
            f"layer {needer.name!r}: task {task!r} needs {key!r} of layer {producer!r}, but "
            f"{needer.name!r} does not depend on {producer!r}; add it to the graph's dependencies"
        )

    def _missing(self, needer: Layer | None, key: Key) -> HlgError:
        if needer is None:
            return MissingKeyError(f"no layer of the graph produces key {key!r}")
        return missing_dependency(needer.name, _task_needing(needer, key), key)

    def validate(self) -> None:
        """Check the whole graph; raise the first problem found.

        Checks that layer dependencies name layers and form no cycle, that no
        two layers produce the same key, that every task's dependencies are
        produced by its own layer or by a layer it depends on (directly or
        not), and that tasks form no cycle. Materialises every layer.

        Raises
        ------
        MissingLayerError, CycleError, DuplicateKeyError, MissingDependencyError

        Examples
        --------
        >>> HighLevelGraph.from_dict({"x": (abs, "y"), "y": (abs, "x")}, name="g").validate()
        Traceback (most recent call last):
        hlg.errors.CycleError: layer 'g': tasks depend on each other in a cycle: 'x' -> 'y' -> 'x'
        """
        order = self.topological_layers()
        owner: dict[Key, str] = {}
        for name in order:
            for key in self._layers[name]:
                other = owner.setdefault(key, name)
                if other != name:
                    raise DuplicateKeyError(
                        f"key {key!r} is produced by both layer {other!r} and layer {name!r}; "
                        "give the layers distinct key names"
                    )
        ancestors: dict[str, set[str]] = {}
        for name in order:
            ancestors[name] = {name}.union(*(ancestors[d] for d in self._dependencies[name]))
        for name in order:
            tasks = self._layers[name].materialize()
            for key, node in tasks.items():
                for dep in node.dependencies:
                    producer = owner.get(dep)
                    if producer is None:
                        raise missing_dependency(name, key, dep)
                    if producer not in ancestors[name]:
                        raise MissingLayerError(
                            f"layer {name!r}: task {key!r} needs {dep!r} of layer {producer!r}, "
                            f"but {name!r} does not depend on {producer!r}; add it to the "
                            "graph's dependencies"
                        )
            _check_task_cycles(name, tasks)

    # -- pickling and tokens -------------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        return (HighLevelGraph._from_layers, (self._layers, self._dependencies, self._order))

    def __hlg_tokenize__(self) -> object:
        """Describe the graph for :func:`hlg.tokenize`: equal graphs tokenize equal.

        The token covers each layer's name, type, annotations and content, and
        the layer dependencies; it materialises layers that have no compact
        packed state of their own.
        """
        return (
            sorted(
                (name, type(layer).__qualname__, layer.annotations, _layer_content(layer))
                for name, layer in self._layers.items()
            ),
            sorted((name, sorted(deps)) for name, deps in self._dependencies.items()),
        )

    # -- display -------------------------------------------------------------------------

    def __repr__(self) -> str:
        layers, tasks = counted(len(self._layers), "layer"), counted(len(self), "task")
        return f"<HighLevelGraph: {layers}, {tasks}>"

    def __str__(self) -> str:
        return presenter().describe(self, sizes=False).to_text()

    def describe(self, *, sizes: bool = True) -> Any:
        """Return the layer table, without materialising any layer.

        See :func:`hlg.describe`; ``print()`` the result for a text table.

        Examples
        --------
        >>> g = HighLevelGraph({"a": {"a": 1}, "b": {"b": (abs, "a")}}, {"b": {"a"}})
        >>> [(row.name, row.tasks, row.dependencies) for row in g.describe().layers]
        [('a', 1, ()), ('b', 1, ('a',))]
        """
        return presenter().describe(self, sizes=sizes)

    def visualize(self, filename: str | os.PathLike[str] = "hlg.svg") -> Path:
        """Draw the layer graph to ``filename``: SVG, PNG, PDF or DOT by its extension.

        One box per layer (name, type, tasks, blocks, annotations), coloured by
        layer type, with a legend. See :func:`hlg.visualize.visualize`.

        Raises
        ------
        NotInstalledError
            SVG, PNG and PDF need the ``graphviz`` package and the ``dot`` program.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> g = HighLevelGraph.from_dict({"x": 1}, name="x")
        >>> g.visualize(pathlib.Path(tempfile.mkdtemp()) / "graph.dot").suffix
        '.dot'
        """
        return presenter().visualize(self, filename)

    def to_dot(self) -> str:
        """Return the layer graph as Graphviz DOT text (needs nothing installed).

        Examples
        --------
        >>> HighLevelGraph.from_dict({"x": 1}, name="x").to_dot().splitlines()[0]
        'digraph hlg {'
        """
        return presenter().to_dot(self)

    def to_networkx(self) -> Any:
        """Return the layer graph as a ``networkx.DiGraph`` (needs networkx).

        Nodes are layer names with the layer table's columns as attributes;
        edges point from a layer to the layers that depend on it.

        Examples
        --------
        >>> g = HighLevelGraph({"a": {"a": 1}, "b": {"b": (abs, "a")}}, {"b": {"a"}})
        >>> list(g.to_networkx().edges)
        [('a', 'b')]
        """
        return presenter().to_networkx(self)

    def _repr_html_(self) -> str:
        return presenter().to_html(self)


def _join_boxes(
    layer: Layer, listed: Collection[Key], boxes: list[tuple[KeyBox, str]]
) -> Collection[Key]:
    # The keys ``layer`` must keep, from listed keys and boxes it took: one box as it
    # is, a box of every key of the layer for everything, else all of them listed.
    if not boxes:
        return listed
    if not listed and len(boxes) == 1:
        return boxes[0][0]
    size = len(layer)
    for box, _ in boxes:
        if len(box) == size:
            return box
    return list(dict.fromkeys(chain(listed, *(box for box, _ in boxes))))


def _merge_layers(old: Layer, new: Layer) -> Layer:
    """Return one layer holding the keys of two layers of the same name."""
    if old is new:
        return old
    if len(old) >= len(new) and all(key in old for key in new):
        return old
    if len(new) >= len(old) and all(key in new for key in old):
        return new
    if isinstance(old, MaterializedLayer) and isinstance(new, MaterializedLayer):
        tasks = {**old.materialize(), **new.materialize()}
        return MaterializedLayer.from_nodes(tasks, new.name, new.annotations)
    raise GraphError(
        f"layer {new.name!r} appears in two of the merged graphs with different keys "
        f"({len(old):,} and {counted(len(new), 'key')}, neither holding all of the other's), as "
        "two "
        "culls of one layer do; merging would lose keys. Merge the graphs before culling, "
        "or cull the merged graph to all the keys at once"
    )


def _task_needing(layer: Layer, dep: Key) -> Key | str:
    # Only for error messages: find a task of ``layer`` that needs ``dep``.
    for key, node in layer.materialize().items():
        if dep in node.dependencies:
            return key
    return "?"


def _check_task_cycles(name: str, tasks: Mapping[Key, GraphNode]) -> None:
    # Within one layer: edges to other layers cannot close a cycle, because layers
    # form a DAG and every edge follows a layer dependency (checked by validate).
    internal = {k: [d for d in n.dependencies if d in tasks] for k, n in tasks.items()}
    toposort(
        internal,
        describe=lambda cycle: (
            f"layer {name!r}: tasks depend on each other in a cycle: "
            + " -> ".join(map(repr, cycle))
        ),
    )


def _layer_content(layer: Layer) -> object:
    # What a layer computes, for tokens: its tasks for layers that hold them, else the
    # layer object itself (tokenized by its pickled bytes).
    if isinstance(layer, MaterializedLayer):
        return sorted(
            ((tokenize(key), node) for key, node in layer.materialize().items()),
            key=lambda item: item[0],
        )
    return layer


def flatten_keys(keys: Any) -> Iterator[Key]:
    """Iterate over the keys of a key or a nested list (or set) of keys.

    Examples
    --------
    >>> list(flatten_keys([["x", ("y", 0)], "z"]))
    ['x', ('y', 0), 'z']
    >>> sorted(flatten_keys({"a", "b"}))
    ['a', 'b']
    """
    if type(keys) is list and list not in set(map(type, keys)):
        return iter(keys)  # already flat: the common case, checked in C
    return _flatten(keys)


def _flatten(keys: Any) -> Iterator[Key]:
    stack = [keys]
    while stack:
        item = stack.pop()
        t = type(item)
        if t is list:
            stack.extend(reversed(item))
        elif t is set or t is frozenset:
            stack.extend(item)
        else:
            yield item


def ensure_graph(obj: Any) -> HighLevelGraph:
    """Return ``obj`` as a :class:`HighLevelGraph`.

    Accepts a HighLevelGraph, a collection (``__hlg_graph__``), a :class:`~hlg.Layer`,
    a dict graph, or a dask collection or expression (``__dask_graph__``).

    Examples
    --------
    >>> ensure_graph({"x": 1})
    <HighLevelGraph: 1 layer, 1 task>
    """
    if isinstance(obj, HighLevelGraph):
        return obj
    if isinstance(obj, Layer):
        return HighLevelGraph({obj.name: obj})
    if isinstance(obj, Mapping):
        return HighLevelGraph.from_dict(obj)
    dask_tasks = dask_graph(obj)
    if dask_tasks is not None:
        return HighLevelGraph.from_dict(dask_tasks)
    graph_method = getattr(obj, "__hlg_graph__", None)
    if graph_method is not None:
        graph = graph_method()
        if isinstance(graph, HighLevelGraph):
            return graph
    raise GraphError(
        f"expected a graph (dict, HighLevelGraph, Layer or collection); got {type(obj).__name__}"
    )
