"""Running hlg graphs on dask.distributed; see ``docs/distributed.md``.

Needs the ``distributed`` extra (``pip install 'hlg[distributed]'``). The
client sends packed bytes; the scheduler process unpacks them. Scheduler
processes need hlg (and any third-party layer types the graphs use)
installed, never the users' code.

``dask scheduler --preload hlg.distributed`` installs the scheduler plugin
(:data:`dask_setup` is what the preload runs).
"""

from hlg.distributed.client import ROUTES, compute, install, route_of, submit
from hlg.distributed.expr import Collection, PackedFinalize, PackedGraph, collection, packed_keys
from hlg.distributed.plugin import SUPPORTED_VERSIONS, HlgSchedulerPlugin, dask_setup
from hlg.distributed.tasks import HlgNode, to_dask

__all__ = [
    "ROUTES",
    "SUPPORTED_VERSIONS",
    "Collection",
    "HlgNode",
    "HlgSchedulerPlugin",
    "PackedFinalize",
    "PackedGraph",
    "collection",
    "compute",
    "dask_setup",
    "install",
    "packed_keys",
    "route_of",
    "submit",
    "to_dask",
]
