"""The demo: the load → clean → analyze → store pipeline as a layered graph.

Run it with ``hlg demo`` or ``python -m hlg demo``.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hlg._table import format_table
from hlg.execute.callbacks import ProgressBar, TaskGroups
from hlg.execute.local import get
from hlg.graph import HighLevelGraph
from hlg.layers.materialized import MaterializedLayer
from hlg.materialize.unpack import unpack
from hlg.packing.pack import pack

__all__ = ["analyze", "build_pipeline", "clean", "format_layers", "load", "main", "store"]

FILES = ("myfile.a.data", "myfile.b.data", "myfile.c.data")


def load(filename: str) -> list[float]:
    """Pretend to read a file: a deterministic series of readings, some invalid.

    Examples
    --------
    >>> load("myfile.a.data")[:3]
    [2.0, 4.0, 6.0]
    """
    seed = sum(map(ord, filename))
    return [float((seed * i) % 11) if i % 4 else -1.0 for i in range(1, 25)]


def clean(data: Sequence[float]) -> list[float]:
    """Drop invalid (negative) readings.

    Examples
    --------
    >>> clean([1.0, -1.0, 2.0])
    [1.0, 2.0]
    """
    return [x for x in data if x >= 0]


def analyze(sequence_of_data: Sequence[Sequence[float]]) -> dict[str, float]:
    """Summarise all cleaned series together.

    Examples
    --------
    >>> analyze([[1.0, 3.0], [2.0]])
    {'count': 3, 'mean': 2.0, 'max': 3.0}
    """
    values = [x for data in sequence_of_data for x in data]
    return {"count": len(values), "mean": statistics.fmean(values), "max": max(values)}


def store(result: dict[str, float], directory: str) -> str:
    """Write the summary to ``directory/summary.txt`` and return the path."""
    path = Path(directory) / "summary.txt"
    path.write_text("".join(f"{k} = {v}\n" for k, v in result.items()))
    return str(path)


def build_pipeline(directory: str) -> HighLevelGraph:
    """Build the pipeline as four layers: load, clean, analyze, store.

    Examples
    --------
    >>> graph = build_pipeline("/tmp")
    >>> graph.topological_layers(), len(graph)
    (['load', 'clean', 'analyze', 'store'], 8)
    """
    n = len(FILES)
    loads = HighLevelGraph.from_dict(
        {f"load-{i}": (load, FILES[i - 1]) for i in range(1, n + 1)}, name="load"
    )
    cleans = HighLevelGraph.from_collections(
        "clean", {f"clean-{i}": (clean, f"load-{i}") for i in range(1, n + 1)}, [loads]
    )
    analysis = HighLevelGraph.from_collections(
        "analyze", {"analyze": (analyze, [f"clean-{i}" for i in range(1, n + 1)])}, [cleans]
    )
    stored = MaterializedLayer(
        {"store": (store, "analyze", directory)}, name="store", known_keys={"analyze"}
    )
    return HighLevelGraph.from_collections("store", stored, [analysis])


def format_layers(graph: HighLevelGraph) -> str:
    """Return a table of the graph's layers: name, type, tasks, dependencies.

    Examples
    --------
    >>> print(format_layers(build_pipeline("/tmp")))
    layer    type               tasks  depends on
    -------  -----------------  -----  ----------
    load     MaterializedLayer      3
    clean    MaterializedLayer      3  load
    analyze  MaterializedLayer      1  clean
    store    MaterializedLayer      1  analyze
    """
    rows = [["layer", "type", "tasks", "depends on"]]
    for name in graph.topological_layers():
        layer = graph.layers[name]
        deps = ", ".join(sorted(graph.dependencies[name]))
        rows.append([name, type(layer).__name__, f"{len(layer):,}", deps])
    return format_table(rows, left=(0, 1, 3))


def main() -> int:
    """Run the demo and print what happens at each step."""
    with tempfile.TemporaryDirectory() as directory:
        graph = build_pipeline(directory)
        print("The pipeline as a layered graph:\n")
        print(format_layers(graph))
        data = pack(graph, "store")
        size = f"{len(data):,} bytes, {len(graph)} tasks in {len(graph.layers)} layers"
        print(f"\nPacked for a scheduler: {size}.")
        flat = unpack(data)
        print(f"Unpacked on the scheduler side: {flat!r}")
        with TaskGroups() as groups:
            path, summary = get(
                flat.tasks,
                ["store", "analyze"],
                scheduler="threads",
                num_workers=2,
                callbacks=[ProgressBar()],
            )
        print(f"\nRan on 2 threads. analyze -> {summary}")
        print(f"store   -> wrote {Path(path).name}:")
        print("  " + Path(path).read_text().strip().replace("\n", "\n  "))
        print("\nTask groups after the run:\n")
        print(groups.table())
    return 0
