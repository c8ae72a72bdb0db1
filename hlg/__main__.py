"""``python -m hlg``: the same as the ``hlg`` command."""

from hlg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
