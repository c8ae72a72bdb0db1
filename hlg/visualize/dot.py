"""Graphviz pictures: DOT text with no dependency, and files rendered by ``dot``.

:func:`to_dot` draws the layer graph: one box per layer with its name, type,
task count, block counts and annotations, an edge from each layer to the
layers that depend on it, boxes coloured by layer type and a legend naming
the colours. :func:`flat_to_dot` draws a small flat graph task by task,
grouped and coloured by task group, and refuses graphs past a size limit.

:func:`render` turns DOT text into a file chosen by its extension: ``.dot``
and ``.gv`` are written as text; ``.svg``, ``.png`` and ``.pdf`` need the
``graphviz`` Python package (``pip install 'hlg[viz]'``) and Graphviz's ``dot``
program.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from hlg.errors import CycleError, NotInstalledError, UsageError, counted
from hlg.keys import key_split
from hlg.materialize.flatgraph import FlatGraph
from hlg.presentation import MAX_FLAT_TASKS
from hlg.toposort import toposort
from hlg.visualize.describe import describe
from hlg.visualize.description import GraphDescription, LayerInfo
from hlg.visualize.style import UNKNOWN_FILL, format_annotations, palette_for

__all__ = [
    "MAX_FLAT_TASKS",
    "flat_to_dot",
    "palette_for",
    "render",
    "render_flat",
    "to_dot",
    "visualize",
]


FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}


def to_dot(obj: Any) -> str:
    """Return the layer graph of ``obj`` as Graphviz DOT text.

    Parameters
    ----------
    obj
        Anything :func:`~hlg.visualize.describe` takes, or a description.

    Examples
    --------
    >>> import hlg
    >>> graph = hlg.HighLevelGraph({"a": {"a": 1}, "b": {"b": (abs, "a")}}, {"b": {"a"}})
    >>> print(to_dot(graph))  # doctest: +ELLIPSIS
    digraph hlg {
      ...
      layer0 [label=<<b>a</b><br/>MaterializedLayer<br/>1 task>, fillcolor="#9fd3f5"];
      layer1 [label=<<b>b</b><br/>MaterializedLayer<br/>1 task>, fillcolor="#9fd3f5"];
      layer0 -> layer1;
      ...
    }
    """
    info = obj if isinstance(obj, GraphDescription) else describe(obj, sizes=False)
    colours = palette_for(row.layer_type for row in info.layers)
    ids = {row.name: f"layer{i}" for i, row in enumerate(info.layers)}
    lines = _header(info.title())
    for row in info.layers:
        fill = colours.get(row.layer_type, UNKNOWN_FILL)
        lines.append(f'  {ids[row.name]} [label=<{_layer_label(row)}>, fillcolor="{fill}"];')
    for row in info.layers:
        for dep in row.dependencies:
            if dep in ids:
                lines.append(f"  {ids[dep]} -> {ids[row.name]};")
    lines.extend(_legend("layer types", colours))
    lines.append("}")
    return "\n".join(lines)


def flat_to_dot(flat: FlatGraph, max_tasks: int = MAX_FLAT_TASKS) -> str:
    """Return a flat graph's tasks as DOT text, grouped and coloured by task group.

    Parameters
    ----------
    flat
        A small flat graph, such as ``hlg.unpack(hlg.pack(graph.cull(keys)))``.
    max_tasks
        Refuse graphs with more tasks than this.

    Raises
    ------
    UsageError
        The graph has more than ``max_tasks`` tasks.

    Examples
    --------
    >>> import hlg
    >>> flat = hlg.unpack(hlg.pack({("x", 0): 1, ("x", 1): 2, "y": (max, ("x", 0), ("x", 1))}))
    >>> print(flat_to_dot(flat))  # doctest: +ELLIPSIS
    digraph hlg {
      ...
      subgraph cluster_group0 {
        label=<x>;
        style="rounded,dashed"; color="#888888";
        task0 [label=<x, 0>, fillcolor="#9fd3f5"];
        task1 [label=<x, 1>, fillcolor="#9fd3f5"];
      }
      task2 [label=<y>, fillcolor="#f7c873"];
      task0 -> task2;
      task1 -> task2;
      ...
    """
    if len(flat) > max_tasks:
        raise UsageError(
            f"this flat graph has {counted(len(flat), 'task')}, more than "
            f"max_tasks={max_tasks:,} that a task-level picture draws legibly; cull it to the "
            "keys you want to see, draw the layer graph instead, or pass a larger max_tasks"
        )
    groups: dict[str, list[Any]] = {}
    # Groups in the order data flows, so that colours and the legend read top to bottom.
    needs = {key: node.dependencies for key, node in flat.tasks.items()}
    try:
        flow: list[Any] = toposort(needs)
    except CycleError:
        flow = list(flat.tasks)  # a cyclic graph is still drawn, to show the cycle
    for key in flow:
        groups.setdefault(key_split(key), []).append(key)
    colours = palette_for(groups)
    # Tasks numbered group by group, in key order, so that Graphviz lays out each row in order.
    groups = {group: _sorted(keys) for group, keys in groups.items()}
    ordered = [key for keys in groups.values() for key in keys]
    ids = {key: f"task{i}" for i, key in enumerate(ordered)}
    lines = _header(f"{counted(len(flat), 'task')} in {counted(len(groups), 'task group')}")
    for n, (group, keys) in enumerate(groups.items()):
        nodes = [
            f'{ids[k]} [label=<{_escape(_key_label(k))}>, fillcolor="{colours[group]}"];'
            for k in keys
        ]
        if len(nodes) == 1:  # a box around one task only adds noise
            lines.append(f"  {nodes[0]}")
            continue
        lines.append(f"  subgraph cluster_group{n} {{")
        lines.append(f"    label=<{_escape(group)}>;")
        lines.append('    style="rounded,dashed"; color="#888888";')
        lines.extend(f"    {node}" for node in nodes)
        lines.append("  }")
    remote = sorted((k for k in flat.remote_keys if k not in ids), key=repr)
    for n, key in enumerate(remote):
        ids[key] = f"remote{n}"
        label = f"{_escape(_key_label(key))}<br/><i>remote</i>"
        lines.append(f'  remote{n} [label=<{label}>, style="rounded,dashed"];')
    position = {key: i for i, key in enumerate(ids)}
    for key in ordered:
        deps = [dep for dep in flat.tasks[key].dependencies if dep in position]
        lines.extend(
            f"  {ids[dep]} -> {ids[key]};" for dep in sorted(deps, key=position.__getitem__)
        )
    lines.extend(_legend("task groups", colours))
    lines.append("}")
    return "\n".join(lines)


def render(dot: str, filename: str | os.PathLike[str], fmt: str | None = None) -> Path:
    """Write DOT text to ``filename``, rendered by the format its extension names.

    Parameters
    ----------
    dot
        DOT text, as :func:`to_dot` returns.
    filename
        Ends in ``.svg``, ``.png``, ``.pdf`` (rendered by Graphviz) or ``.dot``/``.gv``
        (the text itself).
    fmt
        ``"svg"``, ``"png"``, ``"pdf"`` or ``"dot"``, whatever the extension.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    UsageError
        The extension is none of those.
    NotInstalledError
        The ``graphviz`` package or the ``dot`` program is missing; the message
        says how to install it.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = render("digraph { a -> b }", pathlib.Path(tempfile.mkdtemp()) / "ab.gv")
    >>> path.read_text().splitlines()
    ['digraph { a -> b }']
    """
    path = Path(filename)
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt is None or fmt not in FORMATS.values():
        raise UsageError(
            f"cannot tell what to draw into {str(path)!r}: end its name with one of "
            f"{', '.join(FORMATS)}"
        )
    if fmt == "dot":
        path.write_text(dot + "\n")
        return path
    if fmt == "png":
        dot = dot.replace("  graph [", "  graph [dpi=144, ", 1)  # sharp on high-density screens
    path.write_bytes(_pipe(dot, fmt))
    return path


def visualize(obj: Any, filename: str | os.PathLike[str] = "hlg.svg") -> Path:
    """Draw the layer graph of ``obj`` into ``filename``; see :func:`render`.

    Examples
    --------
    >>> import hlg, pathlib, tempfile
    >>> graph = hlg.HighLevelGraph.from_dict({"x": 1}, name="x")
    >>> path = visualize(graph, pathlib.Path(tempfile.mkdtemp()) / "graph.dot")
    >>> path.read_text().startswith("digraph hlg {")
    True
    """
    return render(to_dot(obj), filename)


def render_flat(
    flat: FlatGraph, filename: str | os.PathLike[str] = "hlg.svg", max_tasks: int = MAX_FLAT_TASKS
) -> Path:
    """Draw a small flat graph task by task into ``filename``; see :func:`flat_to_dot`.

    Raises
    ------
    UsageError
        The graph has more than ``max_tasks`` tasks, or the extension is unknown.
    NotInstalledError
        The ``graphviz`` package or the ``dot`` program is missing.

    Examples
    --------
    >>> import hlg, pathlib, tempfile
    >>> flat = hlg.unpack(hlg.pack({"a": 1, "b": (abs, "a")}))
    >>> path = render_flat(flat, pathlib.Path(tempfile.mkdtemp()) / "tasks.dot")
    >>> "task0 -> task1;" in path.read_text()
    True
    """
    return render(flat_to_dot(flat, max_tasks), filename)


def _pipe(dot: str, fmt: str) -> bytes:
    try:
        import graphviz
    except ImportError:
        raise NotInstalledError(
            f"drawing {fmt.upper()} needs the graphviz Python package: "
            "pip install 'hlg[viz]' (or write a .dot file, which needs nothing)"
        ) from None
    try:
        data: bytes = graphviz.Source(dot).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise NotInstalledError(
            f"drawing {fmt.upper()} needs Graphviz's 'dot' program, which is not on PATH: "
            "install Graphviz (apt-get install graphviz, brew install graphviz, or "
            "conda install graphviz), or write a .dot file instead"
        ) from None
    return data


def _header(title: str) -> list[str]:
    return [
        "digraph hlg {",
        f"  graph [rankdir=TB, fontname=Helvetica, fontsize=11, label=<{_escape(title)}>,",
        '         labelloc=t, nodesep=0.3, ranksep=0.45, bgcolor="white"];',
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10,',
        '        color="#555555", margin="0.15,0.06"];',
        '  edge [color="#666666", arrowsize=0.7];',
    ]


def _legend(title: str, colours: dict[str, str]) -> list[str]:
    if not colours:
        return []
    rows = "".join(
        f'<tr><td bgcolor="{fill}" width="14"> </td><td align="left">{_escape(name)}</td></tr>'
        for name, fill in colours.items()
    )
    table = f'<table border="0" cellspacing="2" cellpadding="2">{rows}</table>'
    return [
        "  subgraph cluster_legend {",
        f'    label=<{_escape(title)}>; style="rounded"; color="#aaaaaa"; fontsize=10;',
        f"    legend [shape=plaintext, style=solid, label=<{table}>];",
        "  }",
    ]


def _layer_label(row: LayerInfo) -> str:
    tasks = "? tasks" if row.tasks is None else counted(row.tasks, "task")
    parts = [f"<b>{_escape(row.name)}</b>", _escape(row.layer_type), tasks]
    if row.blocks:
        parts.append(_escape(row.blocks))
    if row.annotations:
        parts.append(f"<i>{_escape(format_annotations(row.annotations, limit=24))}</i>")
    return "<br/>".join(parts)


def _sorted(keys: list[Any]) -> list[Any]:
    # ("x", 2) before ("x", 10); keys of mixed shapes keep their order.
    try:
        return sorted(keys)
    except TypeError:
        return keys


def _key_label(key: Any) -> str:
    if type(key) is tuple:
        return ", ".join(str(part) for part in key)
    return str(key)


def _escape(text: str) -> str:
    # Graphviz HTML-like labels: escape markup; a name may hold any character.
    return html.escape(text, quote=True)
