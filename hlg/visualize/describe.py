"""The layer table of any graph: what it is made of, without materialising it.

:func:`describe` turns a :class:`~hlg.HighLevelGraph`, a :class:`~hlg.Layer`,
packed bytes or a :class:`~hlg.FlatGraph` into a
:class:`~hlg.visualize.GraphDescription`: one
:class:`~hlg.visualize.LayerInfo` per layer (name, type, registry tag, task
count, block or partition counts, layer dependencies, annotations, packed
bytes) and, for packed bytes, the envelope's function table and key counts.
:func:`to_html` shows the table as HTML.

Task counts come from each layer's ``len``, which a layer answers without
building tasks; nothing here calls ``materialize``. Every picture, HTML table
and networkx graph in :mod:`hlg.visualize` is drawn from a description, so all
of them share that guarantee.
"""

from __future__ import annotations

from typing import Any

from hlg.errors import HlgError, UsageError
from hlg.graph import HighLevelGraph
from hlg.layers.base import MATERIALIZED_TAG, Layer
from hlg.materialize.flatgraph import FlatGraph
from hlg.packing.codec import Encoder, packb
from hlg.visualize.description import GraphDescription, LayerInfo, block_counts
from hlg.visualize.html import description_html
from hlg.visualize.packed import describe_packed, layer_type_for_tag

__all__ = ["describe", "to_html"]

# A layer of tasks (not a small state) larger than this is not packed just to be measured:
# describe() runs on every display in Jupyter, and must stay quick.
MAX_MEASURED_TASKS = 100_000


def describe(obj: Any, *, sizes: bool = True) -> GraphDescription:
    """Describe a graph's layers without materialising any of them.

    Parameters
    ----------
    obj
        A :class:`~hlg.HighLevelGraph` (or a collection), a :class:`~hlg.Layer`,
        packed bytes (what :func:`hlg.pack` returned), or a :class:`~hlg.FlatGraph`.
    sizes
        Measure each layer's packed size. Layers that pack a small state are
        packed one by one for this; a layer that would have to materialise to
        pack (it does not override ``pack_state``) is left unmeasured.

    Returns
    -------
    GraphDescription
        ``print()`` it for a table; it also renders as HTML and with ``rich``.

    Raises
    ------
    UnpackError
        Packed bytes that are not an hlg graph, or are truncated or corrupt.
    UsageError
        ``obj`` is none of the accepted kinds.

    Examples
    --------
    >>> import hlg
    >>> x = hlg.blockwise(abs, "x", "ij", "a", "ij", numblocks={"a": (100, 100)})
    >>> a = hlg.MaterializedLayer({("a", i, j): -1 for i in range(100) for j in range(100)},
    ...                           name="a")
    >>> graph = hlg.HighLevelGraph({"a": a, "x": x}, {"x": {"a"}})
    >>> print(describe(graph, sizes=False))
    HighLevelGraph: 2 layers, 20,000 tasks
    layer  type               tag                tasks  blocks            depends on
    -----  -----------------  ----------------  ------  ----------------  ----------
    a      MaterializedLayer  hlg.materialized  10,000
    x      Blockwise          hlg.blockwise     10,000  100 x 100 blocks  a
    """
    if isinstance(obj, HighLevelGraph):
        return _describe_graph(obj, "HighLevelGraph", sizes)
    if isinstance(obj, Layer):
        return _describe_graph(HighLevelGraph({obj.name: obj}), "Layer", sizes)
    if isinstance(obj, FlatGraph):
        return _describe_flat(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return describe_packed(obj)
    graph_method = getattr(obj, "__hlg_graph__", None)
    if graph_method is not None:
        graph = graph_method()
        if isinstance(graph, HighLevelGraph):
            return _describe_graph(graph, "HighLevelGraph", sizes)
    raise UsageError(
        f"describe() takes a HighLevelGraph, a collection, a Layer, packed bytes or a "
        f"FlatGraph; got {type(obj).__name__}"
    )


def to_html(obj: Any) -> str:
    """Return the layer table of ``obj`` as self-contained HTML.

    Parameters
    ----------
    obj
        Anything :func:`~hlg.visualize.describe` takes, or a description.

    Examples
    --------
    >>> import hlg
    >>> html = to_html(hlg.HighLevelGraph.from_dict({"x": 1}, name="x"))
    >>> html.startswith("<div") and "<b>x</b>" in html
    True
    """
    info = obj if isinstance(obj, GraphDescription) else describe(obj)
    return description_html(info)


def _describe_graph(graph: HighLevelGraph, kind: str, sizes: bool) -> GraphDescription:
    encoder = Encoder() if sizes else None
    layers, dependencies = graph.layers, graph.dependencies
    try:
        order = graph.topological_layers()
    except HlgError:
        # A cycle or a missing layer: still show the layers, in the order they were given,
        # so that printing a broken graph helps to find what is wrong with it.
        order = list(layers)
    rows = []
    total = 0
    for name in order:
        layer = layers[name]
        try:
            tag: str | None = layer.packed_tag()
        except HlgError:
            tag = None
        deps = tuple(sorted(dependencies.get(name, ())))
        nbytes, note = (None, "") if encoder is None else _packed_size(layer, deps, encoder)
        total += nbytes or 0
        rows.append(
            LayerInfo(
                name=name,
                layer_type=type(layer).__name__,
                tag=tag,
                tasks=len(layer),
                blocks=block_counts(layer),
                dependencies=deps,
                annotations=dict(layer.annotations),
                packed_bytes=nbytes,
                note=note,
            )
        )
    measured = encoder is not None and all(r.packed_bytes is not None for r in rows)
    return GraphDescription(kind, tuple(rows), total_bytes=total if measured else None)


def _packed_size(
    layer: Layer, dependencies: tuple[str, ...], encoder: Encoder
) -> tuple[int | None, str]:
    # One encoder for the whole graph, as pack() has: a function counts towards the
    # first layer that uses it, so the sizes add up to (nearly) the packed envelope.
    if type(layer).pack_state is Layer.pack_state:
        return None, "packs as its tasks, so its size is known only after hlg.pack"
    if layer.packed_tag() == MATERIALIZED_TAG and len(layer) > MAX_MEASURED_TASKS:
        return None, (
            f"not measured: its {len(layer):,} tasks pack one by one, which takes a while; "
            "hlg.pack gives the size"
        )
    known = len(encoder.functions)
    try:
        record = packb(
            {
                "tag": layer.packed_tag(),
                "name": layer.name,
                "dependencies": dependencies,
                "annotations": encoder.state(layer.annotations, layer=layer.name),
                "state": encoder.state(layer.pack_state(encoder), layer=layer.name),
            }
        )
    except Exception as err:  # shown, not raised: a table must not fail on one bad layer
        return None, f"cannot be packed: {type(err).__name__}: {err}"
    functions = sum(len(name) + len(data) for name, data in encoder.functions[known:])
    return len(record) + functions, ""


def _describe_flat(flat: FlatGraph) -> GraphDescription:
    rows = tuple(
        LayerInfo(
            name=summary.name,
            layer_type=layer_type_for_tag(summary.tag),
            tag=summary.tag,
            tasks=summary.ntasks,
            blocks="",
            dependencies=tuple(sorted(summary.dependencies)),
            annotations={},
        )
        for summary in flat.layers
    )
    return GraphDescription(
        "FlatGraph",
        rows,
        requested_keys=len(flat.keys),
        remote_keys=len(flat.remote_keys),
    )
