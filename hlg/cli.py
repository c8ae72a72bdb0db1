"""The ``hlg`` command (also ``python -m hlg``).

- ``hlg show FILE`` describes a packed graph without running or materialising
  it: format version, layers with tag, task count, dependencies, annotations
  and packed bytes, the function table (names and sizes, never unpickled), and
  key counts. ``--svg/--png/--html/--dot OUT`` also draw it, ``--json`` prints
  JSON, ``--import MODULE`` imports modules that register user layer types.
  ``hlg inspect`` is the same command.
- ``hlg run FILE`` unpacks and runs a packed graph, then prints the requested
  results and the task-group table. ``--limit FIELD=N`` (repeatable) sets a
  field of :class:`hlg.Limits` for the unpack; ``--max-tasks N`` sets ``tasks``.
- ``hlg demo`` runs the demo; ``--save FILE`` also writes its array expression
  packed, for ``show`` and ``run`` to read.

A file that cannot be read (missing, a directory, not an hlg graph, truncated,
corrupt, a layer whose tag is not registered) gets a one-line message on
stderr and exit status 2, never a traceback. A task that fails in ``hlg run``
gets exit status 1.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import reprlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hlg.errors import counted

__all__ = ["main"]

# Exit statuses: a task failed while running; the input or arguments were unusable.
TASK_FAILED = 1
BAD_INPUT = 2

# The fields of hlg.Limits that ``hlg run --limit FIELD=N`` sets.
_LIMIT_FIELDS = ("tasks", "references", "inputs", "annotations", "text", "bytes")


class _BadInputError(Exception):
    """A problem with the command's input, reported as one line and exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hlg`` command line and return its exit status.

    Examples
    --------
    >>> import hlg, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "graph.hlg"
    >>> graph = hlg.HighLevelGraph.from_dict({"x": 1, "y": (abs, "x")}, name="g")
    >>> _ = path.write_bytes(hlg.pack(graph, "y"))
    >>> main(["show", str(path)])  # doctest: +ELLIPSIS
    packed graph: 1 layer, 2 tasks, ... bytes packed, format version 1
    functions: 1 (... B); requested keys: 1; remote keys: 0
    layer  type               tag               tasks  depends on  packed
    -----  -----------------  ----------------  -----  ----------  ------
    g      MaterializedLayer  hlg.materialized      2               ... B
    <BLANKLINE>
    function  name  bytes
    --------  ----  -----
           0  abs      ...
    0
    >>> main(["show", str(path.parent / "missing.hlg")])
    2
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except _BadInputError as err:
        print(f"hlg {args.command}: {err}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        print(f"hlg {args.command}: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from hlg.version import __version__

    parser = argparse.ArgumentParser(
        prog="hlg",
        description="Lazy layered task graphs: describe, draw and run packed graph files.",
    )
    parser.add_argument("--version", action="version", version=f"hlg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in ("show", "inspect"):
        show = commands.add_parser(
            name,
            help="describe a packed graph file without running it"
            + (" (the same as show)" if name == "inspect" else ""),
            description="Describe a packed graph file: its layers, function table and keys. "
            "Nothing is run, unpickled or materialised.",
        )
        show.add_argument("file", help="a file written with hlg.pack (or hlg demo --save)")
        for fmt in ("svg", "png", "html", "dot"):
            show.add_argument(
                f"--{fmt}", metavar="OUT", help=f"also write the layer graph as {fmt.upper()}"
            )
        show.add_argument("--json", action="store_true", help="print the description as JSON")
        show.add_argument(
            "--import",
            dest="imports",
            action="append",
            default=[],
            metavar="MODULE",
            help="import MODULE first, so that the layer types it registers are known (repeatable)",
        )
        show.set_defaults(handler=_show)
    run = commands.add_parser(
        "run",
        help="unpack and run a packed graph file",
        description="Unpack a packed graph file, compute its requested keys, and print a "
        "summary of the results and the task-group table.",
    )
    run.add_argument("file", help="a file written with hlg.pack (or hlg demo --save)")
    run.add_argument("--scheduler", choices=("sync", "threads", "processes"), default="threads")
    run.add_argument("--workers", type=_positive, default=None, help="threads or processes to use")
    run.add_argument("--progress", action="store_true", help="show a progress bar")
    run.add_argument(
        "--max-tasks",
        type=_positive,
        default=None,
        metavar="N",
        help="refuse graphs of more than N tasks, before materialising them",
    )
    run.add_argument(
        "--limit",
        dest="limits",
        action="append",
        default=[],
        metavar="FIELD=N",
        help="set one field of hlg.Limits, the most unpacking may build, to a whole number "
        f"N >= 0 (repeatable); FIELD is one of {', '.join(_LIMIT_FIELDS)}, e.g. "
        "--limit references=1000000; --max-tasks N is --limit tasks=N",
    )
    run.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable)",
    )
    run.set_defaults(handler=_run)
    demo = commands.add_parser(
        "demo",
        help="run the demo",
        description="Run the demo: a small pipeline, then a million-task array expression.",
    )
    demo.add_argument(
        "--save", metavar="FILE", help="also write the demo's array expression, packed, to FILE"
    )
    demo.set_defaults(handler=_demo)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _limits(options: Sequence[str], max_tasks: int | None) -> dict[str, int]:
    # The --limit FIELD=N options as keyword arguments of hlg.Limits.
    fields: dict[str, int] = {}
    for option in options:
        field, equals, text = option.partition("=")
        field = field.strip()
        if not equals or field not in _LIMIT_FIELDS:
            raise _BadInputError(
                f"--limit {option}: expected FIELD=N with FIELD one of {', '.join(_LIMIT_FIELDS)}"
            )
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise _BadInputError(
                f"--limit {option}: expected a whole number >= 0 after '{field}=', got {text!r}"
            )
        if field in fields:
            raise _BadInputError(f"--limit {option}: {field} is given twice; give it once")
        fields[field] = value
    if "tasks" in fields and max_tasks is not None:
        raise _BadInputError("give --max-tasks N or --limit tasks=N, not both")
    return fields


def _read(path: str, imports: Sequence[str]) -> bytes:
    for module in imports:
        try:
            importlib.import_module(module)
        except Exception as err:
            raise _BadInputError(
                f"--import {module}: {type(err).__name__}: {err}".splitlines()[0]
            ) from None
    file = Path(path)
    if not file.exists():
        raise _BadInputError(f"{path}: no such file")
    if file.is_dir():
        raise _BadInputError(f"{path}: is a directory, not a packed graph file")
    try:
        data = file.read_bytes()
    except OSError as err:
        raise _BadInputError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not data:
        raise _BadInputError(f"{path}: is empty, not a packed graph file")
    return data


def _show(args: argparse.Namespace) -> int:
    from hlg.errors import HlgError
    from hlg.visualize import describe_packed, render, to_dot, to_html

    data = _read(args.file, args.imports)
    try:
        info = describe_packed(data)
    except HlgError as err:
        raise _BadInputError(f"{args.file}: {_one_line(err)}") from None
    print(info.to_json() if args.json else info.to_text())
    try:
        if args.html:
            Path(args.html).write_text(_html_page(args.file, to_html(info)))
        for fmt in ("svg", "png", "dot"):
            out = getattr(args, fmt)
            if out:
                render(to_dot(info), out, fmt=fmt)
    except (HlgError, OSError) as err:
        raise _BadInputError(_one_line(err)) from None
    unknown = [row for row in info.layers if row.tasks is None]
    if unknown:
        row = unknown[0]
        raise _BadInputError(f"{args.file}: layer {row.name!r}: {row.note}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from hlg.errors import HlgError
    from hlg.execute.callbacks import ProgressBar, TaskGroups
    from hlg.execute.local import get
    from hlg.limits import Limits
    from hlg.materialize.unpack import unpack

    fields = _limits(args.limits, args.max_tasks)
    data = _read(args.file, args.imports)
    try:
        flat = unpack(data, limits=Limits(**fields), max_tasks=args.max_tasks)
    except HlgError as err:
        raise _BadInputError(f"{args.file}: {_one_line(err)}") from None
    print(f"{args.file}: {flat!r}")
    callbacks: list[Any] = [ProgressBar()] if args.progress else []
    try:
        with TaskGroups() as groups:
            values = get(
                flat,
                list(flat.keys),
                scheduler=args.scheduler,
                num_workers=args.workers,
                callbacks=callbacks,
            )
    except Exception as err:
        # A task's own exception, or the hlg error saying why it could not run.
        print(f"hlg run: {args.file}: {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        return TASK_FAILED
    print(_results(flat.keys, values))
    print("\ntask groups:")
    print(groups.table())
    return 0


def _results(keys: Sequence[Any], values: Sequence[Any], limit: int = 20) -> str:
    from hlg._table import format_table

    rows = [["key", "type", "value"]]
    for key, value in itertools.islice(zip(keys, values, strict=True), limit):
        text = reprlib.repr(value)  # bounded: a result may be a huge container
        rows.append(
            [repr(key), type(value).__name__, text if len(text) <= 60 else text[:57] + "..."]
        )
    more = f"\n... and {len(keys) - limit:,} more" if len(keys) > limit else ""
    computed = f"{counted(len(keys), 'requested key')} computed:\n"
    return computed + format_table(rows, left=(0, 1, 2)) + more


def _demo(args: argparse.Namespace) -> int:
    from hlg.demo import build_array_expression
    from hlg.demo import main as demo
    from hlg.packing.pack import pack

    status = demo()
    if args.save:
        data = pack(build_array_expression())
        try:
            Path(args.save).write_bytes(data)
        except OSError as err:
            raise _BadInputError(
                f"{args.save}: cannot be written ({err.strerror or err})"
            ) from None
        print(f"\nSaved the array expression, packed ({len(data):,} bytes), to {args.save}.")
        print(f"Try: hlg show {args.save}")
    return status


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split())


def _html_page(title: str, body: str) -> str:
    from html import escape

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n<body>{body}</body></html>\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
