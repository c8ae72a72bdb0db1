"""Scheduler side: packed bytes to a flat task graph. Imports no numpy, pandas or cloudpickle."""

from hlg.materialize.flatgraph import FlatGraph, LayerSummary
from hlg.materialize.groups import TaskGroup, TaskPrefix, TaskState, build_groups, format_groups
from hlg.materialize.unpack import unpack

__all__ = [
    "FlatGraph",
    "LayerSummary",
    "TaskGroup",
    "TaskPrefix",
    "TaskState",
    "build_groups",
    "format_groups",
    "unpack",
]
