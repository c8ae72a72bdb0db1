"""Running graphs: ordering, the local scheduler, callbacks and the Client."""

from hlg.execute.callbacks import Callback, Profiler, ProgressBar, TaskGroups, TaskRecord
from hlg.execute.client import Client, ClientState
from hlg.execute.local import get
from hlg.execute.order import order
from hlg.execute.state import SchedulerState

__all__ = [
    "Callback",
    "Client",
    "ClientState",
    "Profiler",
    "ProgressBar",
    "SchedulerState",
    "TaskGroups",
    "TaskRecord",
    "get",
    "order",
]
