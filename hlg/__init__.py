"""hlg: lazy layered task graphs that pack small and materialise on the scheduler.

>>> import hlg
>>> from operator import add
>>> graph = hlg.HighLevelGraph.from_dict({"x": 1, "y": (add, "x", 41)})
>>> hlg.get(hlg.unpack(hlg.pack(graph, "y")), "y")
42
"""

from hlg.compute import Computable, compute, persist
from hlg.convert import convert_graph
from hlg.dask_scheduler import DaskScheduler, dask_scheduler
from hlg.errors import (
    CycleError,
    DuplicateKeyError,
    FormatVersionError,
    GraphError,
    HlgError,
    InvalidKeyError,
    LayerClassError,
    LayerStateError,
    MissingDependencyError,
    MissingKeyError,
    MissingLayerError,
    NotInstalledError,
    PackError,
    ResourceLimitError,
    TaskExecutionError,
    TaskSpecError,
    TooManyTasksError,
    UnknownLayerError,
    UnpackError,
    UsageError,
    WorkerDiedError,
)
from hlg.execute.callbacks import Callback, Profiler, ProgressBar, TaskGroups
from hlg.execute.client import Client, ClientState
from hlg.execute.local import get
from hlg.execute.order import order
from hlg.graph import HighLevelGraph, HlgCollection
from hlg.keys import Key, key_group, key_split, tokenize, validate_key
from hlg.layers.annotate import annotate
from hlg.layers.base import Layer
from hlg.layers.blockwise import Blockwise, BlockwiseDep, blockwise
from hlg.layers.materialized import MaterializedLayer
from hlg.layers.registry import register_layer
from hlg.layers.shuffle import ShuffleLayer, ShuffleRoute, SimpleShuffleLayer
from hlg.limits import Cost, Limits
from hlg.materialize.flatgraph import FlatGraph
from hlg.materialize.groups import TaskGroup, TaskPrefix, TaskState
from hlg.materialize.unpack import unpack
from hlg.optimize import optimize
from hlg.packing.pack import pack
from hlg.task import Alias, DataNode, GraphNode, Ref, Task, TaskRef, apply
from hlg.version import __version__ as __version__
from hlg.visualize import describe

__all__ = [
    "Alias",
    "Blockwise",
    "BlockwiseDep",
    "Callback",
    "Client",
    "ClientState",
    "Computable",
    "Cost",
    "CycleError",
    "DaskScheduler",
    "DataNode",
    "DuplicateKeyError",
    "FlatGraph",
    "FormatVersionError",
    "GraphError",
    "GraphNode",
    "HighLevelGraph",
    "HlgCollection",
    "HlgError",
    "InvalidKeyError",
    "Key",
    "Layer",
    "LayerClassError",
    "LayerStateError",
    "Limits",
    "MaterializedLayer",
    "MissingDependencyError",
    "MissingKeyError",
    "MissingLayerError",
    "NotInstalledError",
    "PackError",
    "Profiler",
    "ProgressBar",
    "Ref",
    "ResourceLimitError",
    "ShuffleLayer",
    "ShuffleRoute",
    "SimpleShuffleLayer",
    "Task",
    "TaskExecutionError",
    "TaskGroup",
    "TaskGroups",
    "TaskPrefix",
    "TaskRef",
    "TaskSpecError",
    "TaskState",
    "TooManyTasksError",
    "UnknownLayerError",
    "UnpackError",
    "UsageError",
    "WorkerDiedError",
    "annotate",
    "apply",
    "blockwise",
    "compute",
    "convert_graph",
    "dask_scheduler",
    "describe",
    "get",
    "key_group",
    "key_split",
    "optimize",
    "order",
    "pack",
    "persist",
    "register_layer",
    "tokenize",
    "unpack",
    "validate_key",
]
