"""The ``hlg`` command: ``hlg demo`` runs the demo; ``hlg inspect FILE`` describes packed bytes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _inspect(path: str) -> int:
    from hlg.errors import HlgError
    from hlg.materialize.unpack import unpack

    with open(path, "rb") as f:
        data = f.read()
    try:
        flat = unpack(data)
    except HlgError as err:
        print(f"hlg: {path}: {err}", file=sys.stderr)
        return 1
    print(
        f"{path}: {len(data):,} bytes, {len(flat.tasks):,} tasks, {len(flat.keys):,} requested keys"
    )
    width = max((len(s.name) for s in flat.layers), default=5)
    for summary in flat.layers:
        deps = ", ".join(summary.dependencies)
        print(f"  {summary.name:<{width}}  {summary.tag:<20} {summary.ntasks:>10,} tasks  {deps}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hlg`` command line.

    Examples
    --------
    >>> main(["--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    SystemExit: 0
    """
    parser = argparse.ArgumentParser(prog="hlg", description="Lazy layered task graphs.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the demo pipeline")
    inspect = commands.add_parser("inspect", help="describe a packed graph file")
    inspect.add_argument("file")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from hlg.demo import main as demo

        return demo()
    return _inspect(args.file)


if __name__ == "__main__":
    raise SystemExit(main())
