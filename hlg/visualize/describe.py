"""The layer table: what a graph is made of, without materialising it.

:func:`describe` turns a :class:`~hlg.HighLevelGraph`, a :class:`~hlg.Layer`,
packed bytes or a :class:`~hlg.FlatGraph` into a :class:`GraphDescription`:
one :class:`LayerInfo` per layer (name, type, registry tag, task count, block
or partition counts, layer dependencies, annotations, packed bytes) and, for
packed bytes, the envelope's function table and key counts.

Task counts come from each layer's ``len``, which a layer answers without
building tasks; nothing here calls ``materialize``. Every picture, HTML table
and networkx graph in :mod:`hlg.visualize` is drawn from a description, so all
of them share that guarantee.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from hlg._table import format_table
from hlg.errors import HlgError, UsageError, counted
from hlg.graph import HighLevelGraph
from hlg.layers.base import MATERIALIZED_TAG, Layer
from hlg.materialize.flatgraph import FlatGraph
from hlg.packing.codec import Encoder, packb

__all__ = [
    "FunctionInfo",
    "GraphDescription",
    "LayerInfo",
    "block_counts",
    "describe",
    "format_annotations",
    "format_size",
]

# A layer of tasks (not a small state) larger than this is not packed just to be measured:
# describe() runs on every display in Jupyter, and must stay quick.
MAX_MEASURED_TASKS = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class LayerInfo:
    """One row of the layer table.

    Attributes
    ----------
    name
        The layer's name.
    layer_type
        The layer's class name; for packed bytes, the class registered under the
        tag here, or ``"unregistered"``.
    tag
        The registry tag the layer packs under (None for a layer that cannot pack).
    tasks
        The number of tasks, from ``len``; None when it cannot be known here
        (a packed layer whose tag is not registered).
    blocks
        Block or partition counts, such as ``"577 x 577 blocks"``; empty when the
        layer has none.
    dependencies
        Names of the layers this one depends on, sorted.
    annotations
        The layer's annotations.
    packed_bytes
        The size of the layer's packed record (state and annotations, plus the
        functions it is the first to use); None when not measured.
    note
        Why a field is unknown, or anything else worth a reader's attention.
    """

    name: str
    layer_type: str
    tag: str | None
    tasks: int | None
    blocks: str
    dependencies: tuple[str, ...]
    annotations: Mapping[str, Any]
    packed_bytes: int | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-ready values (annotations as their ``repr``)."""
        out = dataclasses.asdict(self)
        out["dependencies"] = list(self.dependencies)
        out["annotations"] = {k: _jsonable(v) for k, v in self.annotations.items()}
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class FunctionInfo:
    """One entry of a packed envelope's function table: a name and a size, never loaded."""

    index: int
    name: str
    nbytes: int


@dataclasses.dataclass(frozen=True, slots=True)
class GraphDescription:
    """A layer table and what else is known about a graph; see :func:`describe`.

    ``str()`` gives a plain-text table, :meth:`_repr_html_` an HTML one for
    Jupyter, and ``__rich__`` a ``rich`` table when ``rich`` is installed.

    Attributes
    ----------
    kind
        What was described: ``"HighLevelGraph"``, ``"Layer"``, ``"packed graph"``
        or ``"FlatGraph"``.
    layers
        One row per layer, each after the layers it depends on.
    functions
        The function table of packed bytes (empty for other inputs).
    format_version
        The envelope's format version (packed bytes only).
    requested_keys
        The number of requested keys, when the input says (None: not stated).
    remote_keys
        The number of keys held remotely, when the input says.
    total_bytes
        The size of the packed bytes, or of packing every layer's state.
    """

    kind: str
    layers: tuple[LayerInfo, ...]
    functions: tuple[FunctionInfo, ...] = ()
    format_version: int | None = None
    requested_keys: int | None = None
    remote_keys: int | None = None
    total_bytes: int | None = None

    @property
    def ntasks(self) -> int | None:
        """The total number of tasks; None if any layer's count is unknown."""
        counts = [info.tasks for info in self.layers]
        return None if None in counts else sum(c for c in counts if c is not None)

    def title(self) -> str:
        """Return a short headline for pictures: what it is, its layers and tasks.

        Examples
        --------
        >>> import hlg
        >>> describe(hlg.HighLevelGraph.from_dict({"x": 1}, name="x")).title()
        'HighLevelGraph: 1 layer, 1 task'
        """
        ntasks = self.ntasks
        tasks = "? tasks" if ntasks is None else counted(ntasks, "task")
        return f"{self.kind}: {counted(len(self.layers), 'layer')}, {tasks}"

    def summary(self) -> str:
        """Return the one-line headline of the table.

        Examples
        --------
        >>> import hlg
        >>> describe(hlg.HighLevelGraph.from_dict({"x": 1}, name="x")).summary()
        'HighLevelGraph: 1 layer, 1 task, 93 bytes packed'
        """
        parts = [self.title()]
        if self.total_bytes is not None:
            parts.append(f"{self.total_bytes:,} bytes packed")
        if self.format_version is not None:
            parts.append(f"format version {self.format_version}")
        return ", ".join(parts)

    def keys_line(self) -> str:
        """Return the function table's size and the key counts, when known, or ``""``.

        Examples
        --------
        >>> import hlg
        >>> describe(hlg.pack({"x": 1}, "x")).keys_line()
        'functions: 0; requested keys: 1; remote keys: 0'
        """
        parts = []
        if self.kind == "packed graph":
            size = sum(f.nbytes for f in self.functions)
            parts.append(
                f"functions: {len(self.functions):,}" + (f" ({format_size(size)})" if size else "")
            )
        if self.requested_keys is not None:
            parts.append(f"requested keys: {self.requested_keys:,}")
        elif self.kind == "packed graph":
            parts.append("requested keys: the outputs of the last layers")
        if self.remote_keys is not None:
            parts.append(f"remote keys: {self.remote_keys:,}")
        return "; ".join(parts)

    def rows(self) -> list[list[str]]:
        """Return the layer table as text cells, the header first.

        The blocks, annotations and packed columns appear only when some layer
        has a value for them.
        """
        columns: list[tuple[str, Callable[[LayerInfo], str]]] = [
            ("layer", lambda i: i.name),
            ("type", lambda i: i.layer_type),
            ("tag", lambda i: i.tag or "-"),
            ("tasks", lambda i: "?" if i.tasks is None else f"{i.tasks:,}"),
            ("blocks", lambda i: i.blocks),
            ("depends on", lambda i: ", ".join(i.dependencies)),
            ("annotations", lambda i: format_annotations(i.annotations)),
            ("packed", lambda i: "" if i.packed_bytes is None else format_size(i.packed_bytes)),
        ]
        cells = [[cell(info) for _, cell in columns] for info in self.layers]
        optional = {"blocks", "annotations", "packed"}
        keep = [
            n
            for n, (heading, _) in enumerate(columns)
            if heading not in optional or any(row[n] for row in cells)
        ]
        return [[columns[n][0] for n in keep]] + [[row[n] for n in keep] for row in cells]

    def to_text(self) -> str:
        """Return the summary line, the layer table, notes and the function table.

        Examples
        --------
        >>> import hlg
        >>> graph = hlg.HighLevelGraph.from_dict({"x": 1}, name="x")
        >>> print(describe(graph, sizes=False).to_text())
        HighLevelGraph: 1 layer, 1 task
        layer  type               tag               tasks  depends on
        -----  -----------------  ----------------  -----  ----------
        x      MaterializedLayer  hlg.materialized      1
        """
        lines = [self.summary()]
        if self.keys_line():
            lines.append(self.keys_line())
        if self.layers:
            rows = self.rows()
            right = {"tasks", "packed"}
            left = [n for n, heading in enumerate(rows[0]) if heading not in right]
            lines.append(format_table(rows, left=left))
        lines.extend(f"note: layer {i.name!r}: {i.note}" for i in self.layers if i.note)
        if self.functions:
            lines.append("")
            rows = [["function", "name", "bytes"]]
            rows += [[str(f.index), f.name, f"{f.nbytes:,}"] for f in self.functions]
            lines.append(format_table(rows, left=(1,)))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_dict(self) -> dict[str, Any]:
        """Return the description as JSON-ready values (``hlg show --json`` prints this)."""
        return {
            "kind": self.kind,
            "format_version": self.format_version,
            "tasks": self.ntasks,
            "requested_keys": self.requested_keys,
            "remote_keys": self.remote_keys,
            "total_bytes": self.total_bytes,
            "layers": [info.to_dict() for info in self.layers],
            "functions": [dataclasses.asdict(f) for f in self.functions],
        }

    def to_json(self) -> str:
        """Return :meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def _repr_html_(self) -> str:
        from hlg.visualize.html import description_html

        return description_html(self)

    def __rich__(self) -> Any:
        from hlg.visualize.text import rich_table

        return rich_table(self)


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
        from hlg.visualize.packed import describe_packed

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


def block_counts(layer: Layer) -> str:
    """Return a layer's block or partition counts as text, or ``""``.

    A layer shows block counts through an ``out_numblocks`` tuple (as
    :class:`~hlg.Blockwise` has), and partition counts through integer
    ``npartitions_in`` and ``npartitions`` attributes (as the shuffle layers
    have, with ``nstages`` and the ``output_partitions`` kept by culling), or
    ``npartitions`` alone.

    Examples
    --------
    >>> import hlg
    >>> block_counts(hlg.blockwise(abs, "y", "ij", "x", "ij", numblocks={"x": (3, 4)}))
    '3 x 4 blocks'
    """
    grid = getattr(layer, "out_numblocks", None)
    if isinstance(grid, tuple) and all(type(n) is int for n in grid):
        if not grid:
            return "1 block"
        kept = len(layer)
        total = math.prod(grid)
        if len(grid) == 1:
            shown = counted(grid[0], "block")
        else:
            shown = " x ".join(f"{n:,}" for n in grid) + " blocks"
        return shown + (f" ({kept:,} kept)" if kept != total else "")
    n_in = getattr(layer, "npartitions_in", None)
    n_out = getattr(layer, "npartitions", None)
    if type(n_in) is int and type(n_out) is int:
        text = f"{n_in:,} -> {counted(n_out, 'partition')}"
        stages = getattr(layer, "nstages", None)
        if type(stages) is int and stages > 1:
            text += f" in {stages} stages"
        outputs = getattr(layer, "output_partitions", None)
        if isinstance(outputs, tuple) and len(outputs) != n_out:
            text += f" ({len(outputs):,} kept)"
        return text
    if type(n_out) is int:
        return counted(n_out, "partition")
    return ""


def format_annotations(annotations: Mapping[str, Any], limit: int = 40) -> str:
    """Return annotations as ``name=value`` text, each value cut to ``limit`` characters.

    Examples
    --------
    >>> format_annotations({"priority": 5, "workers": ["a"]})
    "priority=5, workers=['a']"
    """
    return ", ".join(f"{k}={_short(v, limit)}" for k, v in annotations.items())


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
    from hlg.visualize.packed import layer_type_for_tag

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


def format_size(nbytes: int) -> str:
    """Return a byte count for people: ``"694 B"``, ``"12.3 kB"``, ``"4.1 MB"``.

    Examples
    --------
    >>> format_size(694), format_size(12_345), format_size(4_100_000_000)
    ('694 B', '12.3 kB', '4,100.0 MB')
    """
    if nbytes < 10_000:
        return f"{nbytes:,} B"
    if nbytes < 10_000_000:
        return f"{nbytes / 1e3:,.1f} kB"
    return f"{nbytes / 1e6:,.1f} MB"


def _short(value: Any, limit: int) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple) and all(type(v) in (int, float, str, bool) for v in value):
        return list(value)
    return repr(value)
