"""Running graphs: the local scheduler."""

from hlg.execute.local import get

__all__ = ["get"]
