"""The layer table: one row per layer, and what else is known about a graph.

A :class:`GraphDescription` holds a :class:`LayerInfo` row per layer and, for
packed bytes, the envelope's function table (:class:`FunctionInfo`) and key
counts. :func:`~hlg.visualize.describe` builds one from any graph form; this
module holds the rows and their renderings as plain text, HTML and ``rich``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from hlg._table import format_table
from hlg.errors import counted
from hlg.layers.base import Layer
from hlg.visualize.html import description_html
from hlg.visualize.style import format_annotations, format_size
from hlg.visualize.text import rich_table

__all__ = ["FunctionInfo", "GraphDescription", "LayerInfo", "block_counts"]


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
    """A layer table and what else is known about a graph; see :func:`~hlg.visualize.describe`.

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
        >>> hlg.describe(hlg.HighLevelGraph.from_dict({"x": 1}, name="x")).title()
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
        >>> hlg.describe(hlg.HighLevelGraph.from_dict({"x": 1}, name="x")).summary()
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
        >>> hlg.describe(hlg.pack({"x": 1}, "x")).keys_line()
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
        >>> print(hlg.describe(graph, sizes=False).to_text())
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
        return description_html(self)

    def __rich__(self) -> Any:
        return rich_table(self)


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


def _jsonable(value: Any) -> Any:
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) in (list, tuple) and all(type(v) in (int, float, str, bool) for v in value):
        return list(value)
    return repr(value)
