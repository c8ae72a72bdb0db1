"""The plugin route: msgpack bytes straight into the scheduler, ordered by hlg.

:class:`HlgSchedulerPlugin` adds a stream handler, ``hlg-update-graph``, to a
dask.distributed scheduler. A client sends it one message holding the packed
bytes and the requested keys, all msgpack; nothing on this path is pickled by
the client. The handler

1. unpacks the bytes once, on the scheduler's offload thread
   (:func:`hlg.unpack`, which never unpickles);
2. turns the tasks into dask task specs (:func:`~hlg.distributed.to_dask`) and
   orders them with hlg's ordering (:func:`hlg.execute.order.order_tasks`),
   which replaces ``dask.order`` as the scheduler's internal priority;
3. creates the scheduler's task states and reports errors to the client's
   futures, as the scheduler's own ``update-graph`` handler does.

The same bytes sent again, while the scheduler still holds every requested key
they created (each with its task spec, or its data), are not unpacked again.
The handler recognises them by a digest of the bytes, recorded in the
requested keys' task metadata (``TaskState.metadata["hlg-graph"]``) when it
created them; it reads the envelope's keys, checks that they are the
message's, and marks them wanted by the client, as distributed does for the
keys of a graph it knows. Submitting the same computation again, from this
client or another, costs the scheduler time in the size of its bytes (a few
hundred bytes for lazy layers), not in its number of tasks. Any other bytes
naming held keys are unpacked and checked in full.

It skips what :func:`hlg.unpack` has already proved: the graph has no cycle
(so the order is not checked for one again), and every dependency is a task
of the graph or one of its remote keys (so only the remote keys are looked up
among the scheduler's tasks, instead of walking the whole graph for data that
was lost). Step 3 runs with the cyclic garbage collector paused: it builds
several objects per task, all of them alive until the tasks are released.

Step 3 calls the scheduler's non-public methods, so the plugin refuses to
start on a version of distributed it was not tested with
(:data:`SUPPORTED_VERSIONS`); clients then use the expression route.

Install it with ``dask scheduler --preload hlg.distributed`` or, from a client,
:func:`hlg.distributed.install`.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from typing import Any

import distributed
from distributed import Scheduler
from distributed.core import error_message
from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.utils import offload

from hlg._gc import gc_paused
from hlg.distributed.tasks import to_dask
from hlg.errors import UsageError
from hlg.execute.order import order_tasks
from hlg.keys import Key, is_key
from hlg.materialize.flatgraph import FlatGraph
from hlg.materialize.unpack import unpack
from hlg.packing.envelope import read_envelope
from hlg.version import __version__

__all__ = [
    "METADATA_KEY",
    "OP",
    "PLUGIN_NAME",
    "PROTOCOL",
    "SUPPORTED_VERSIONS",
    "HlgSchedulerPlugin",
    "check_version",
    "dask_setup",
]

PLUGIN_NAME = "hlg"
OP = "hlg-update-graph"
# Where the plugin announces itself among the scheduler's metadata.
METADATA_KEY = "hlg-scheduler-plugin"
# Where a requested key's task metadata keeps the digest of the bytes that created it.
DIGEST_FIELD = "hlg-graph"
# The message format clients send; a client uses the plugin only if it speaks this one.
PROTOCOL = 1
# The distributed releases (year, month) the handler was tested with, first and last.
SUPPORTED_VERSIONS = ((2025, 4), (2026, 8))
# Older schedulers take the graph's dependencies as a separate mapping.
_TAKES_DEPENDENCIES = (
    "dependencies" in inspect.signature(Scheduler._create_taskstate_from_graph).parameters
)


def check_version(version: str = distributed.__version__) -> None:
    """Refuse a distributed release the plugin was not tested with.

    Raises
    ------
    UsageError
        ``version`` is outside :data:`SUPPORTED_VERSIONS`.

    Examples
    --------
    >>> check_version("2026.8.0")
    >>> check_version("2024.1.0")
    Traceback (most recent call last):
    hlg.errors.UsageError: hlg's scheduler plugin supports distributed 2025.4 to 2026.8, not 2024.1.0; upgrade or pin distributed, or use the expression route (it needs no plugin)
    """  # noqa: E501 - a doctest's output is one line
    parts = version.split(".")
    try:
        release = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        release = (0, 0)
    first, last = SUPPORTED_VERSIONS
    if not first <= release <= last:
        raise UsageError(
            f"hlg's scheduler plugin supports distributed {first[0]}.{first[1]} to "
            f"{last[0]}.{last[1]}, not {version}; upgrade or pin distributed, or use the "
            "expression route (it needs no plugin)"
        )


class HlgSchedulerPlugin(SchedulerPlugin):  # type: ignore[misc]  # no type information
    """Let a dask.distributed scheduler take packed hlg graphs as msgpack bytes.

    Examples
    --------
    >>> HlgSchedulerPlugin().name
    'hlg'
    """

    name = PLUGIN_NAME

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        # Graphs this plugin has unpacked and created task states for (diagnostics).
        self.graphs = 0
        # Graphs whose requested keys the scheduler held already, taken without
        # unpacking them (diagnostics).
        self.held_again = 0

    async def start(self, scheduler: Scheduler) -> None:
        """Add the stream handler and announce the protocol (called by the scheduler)."""
        check_version()
        self.scheduler = scheduler
        scheduler.stream_handlers[OP] = self.handle_graph
        scheduler.set_metadata(
            keys=[METADATA_KEY], value={"protocol": PROTOCOL, "hlg": __version__}
        )

    async def close(self) -> None:
        """Remove the handler (called when the scheduler closes)."""
        if self.scheduler is not None:
            self.scheduler.stream_handlers.pop(OP, None)
            self.scheduler.set_metadata(keys=[METADATA_KEY], value=None)

    async def handle_graph(
        self, client: str, graph: Any = None, keys: Any = None, **_: Any
    ) -> None:
        """Unpack ``graph`` and create its task states; report any error to ``keys``.

        The message comes from a client and may be anything: whatever it holds,
        the handler returns normally, so the client's connection stays open.
        """
        scheduler = self.scheduler
        assert scheduler is not None  # the handler is added by start()
        start = time.time()
        wanted = _wanted_keys(keys)
        _count_graph_update(scheduler, 1)
        try:
            if type(graph) is not bytes:
                raise UsageError(f"an hlg-update-graph message holds {type(graph).__name__}")
            if _held(scheduler, wanted):
                digest, packed = await offload(_digest_and_keys, graph)
                # Checked after the await: the event loop may have released keys meanwhile.
                if _held(scheduler, wanted, digest):
                    _check_keys(packed, wanted)
                    _want_held(scheduler, wanted, client, start)
                    self.held_again += 1
                    return
            flat, dsk, priority, digest = await offload(_materialize, graph, wanted)
            with gc_paused():
                created = _create_tasks(scheduler, flat, dsk, priority, wanted, client, start)
            if created:
                _record_digest(scheduler, wanted, digest)
                self.graphs += 1
        except Exception as err:
            _report_error(scheduler, err, wanted, client)
        finally:
            _count_graph_update(scheduler, -1)


def _count_graph_update(scheduler: Any, change: int) -> None:
    # dask.distributed's Scheduler counts the graph updates in flight, so that it does
    # not count as idle (and close on its idle timeout) while one is materialising; its
    # own update_graph changes the same counter, and there is no public way to do it.
    scheduler._active_graph_updates += change


def _materialize(
    data: bytes, wanted: list[Key]
) -> tuple[FlatGraph, dict[Key, Any], dict[Key, int], bytes]:
    # On the offload thread, so the scheduler's event loop keeps serving meanwhile.
    flat = unpack(data)
    _check_keys(flat.keys, wanted)
    # unpack refused cycles already: hlg.order's own check for one would repeat it.
    return flat, to_dask(flat), order_tasks(flat.tasks), _digest(data)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _digest_and_keys(data: bytes) -> tuple[bytes, list[Key] | None]:
    # The envelope only: its layers stay undecoded states.
    return _digest(data), read_envelope(data).keys


def _record_digest(scheduler: Scheduler, keys: list[Key], digest: bytes) -> None:
    """Mark the requested keys' task states as created from the bytes of ``digest``."""
    tasks = scheduler.tasks
    for key in keys:
        ts = tasks.get(key)
        if ts is not None:
            if ts.metadata is None:
                ts.metadata = {}
            ts.metadata[DIGEST_FIELD] = digest


def _check_keys(packed: list[Key] | None, wanted: list[Key]) -> None:
    if packed is None or set(packed) != set(wanted):
        raise UsageError(
            "the message's keys differ from those packed in the graph; "
            "send what hlg.distributed.submit sends"
        )


def _held(scheduler: Scheduler, keys: list[Key], digest: bytes | None = None) -> bool:
    """Whether the scheduler holds a task state for every key, with its task spec or data.

    With ``digest``, also whether each was created from the bytes of that digest.
    """
    tasks = scheduler.tasks
    for key in keys:
        ts = tasks.get(key)
        if ts is None or (ts.run_spec is None and ts.state != "memory"):
            return False
        if digest is not None and (ts.metadata or {}).get(DIGEST_FIELD) != digest:
            return False
    return bool(keys)


def _want_held(scheduler: Scheduler, keys: list[Key], client: str, start: float) -> None:
    # distributed's own path for a graph's keys, with no task to add: the client
    # wants them, released ones wait to run again, held results and errors are reported.
    common = _graph_arguments({}, {}, {}, keys, client, start)
    if _TAKES_DEPENDENCIES:
        common["dependencies"] = {}
    scheduler._create_taskstate_from_graph(**common)


def _graph_arguments(  # noqa: PLR0917 - two private call sites
    dsk: dict[Key, Any],
    priority: dict[Key, int],
    annotations: Any,
    keys: list[Key],
    client: str,
    start: float,
) -> dict[str, Any]:
    """Return the keyword arguments for ``Scheduler._create_taskstate_from_graph``.

    Releases that also take ``dependencies`` get them from the caller.
    """
    return {
        "dsk": dsk,
        "client": client,
        "keys": set(keys),
        "ordered": priority,
        "submitting_task": None,
        "user_priority": 0,
        "actors": None,
        "fifo_timeout": 0.0,
        "code": (),
        "span_metadata": {"collections": [{"type": "hlg"}]},
        "annotations_by_type": annotations,
        "global_annotations": None,
        "start": start,
        "stimulus_id": f"hlg-update-graph-{start}",
    }


def _wanted_keys(keys: Any) -> list[Key]:
    if type(keys) not in (list, tuple) or not all(is_key(k) for k in keys):
        return []
    return list(keys)


def _create_tasks(  # noqa: PLR0917 - one private call site
    scheduler: Scheduler,
    flat: FlatGraph,
    dsk: dict[Key, Any],
    priority: dict[Key, int],
    keys: list[Key],
    client: str,
    start: float,
) -> bool:
    """Do what ``Scheduler.update_graph`` does once it holds a materialised graph.

    hlg's order is the internal priority instead of dask.order's. Returns
    False when the graph needs data the scheduler no longer holds (the client
    is told, as distributed tells it).
    """
    common = _graph_arguments(dsk, priority, flat.annotations, keys, client, start)
    stimulus_id = common["stimulus_id"]
    # Data can be lost only where the graph relies on the scheduler holding it.
    maybe_lost = not scheduler.tasks.keys() >= flat.remote_keys
    if _TAKES_DEPENDENCIES:
        # distributed 2025.4 to 2025.x: a separate dependencies mapping, and
        # only the keys whose data was lost are cancelled.
        dependencies = {key: set(node.dependencies) for key, node in dsk.items()}
        if maybe_lost:
            lost = scheduler._find_lost_dependencies(dsk, dependencies, set(keys))
            if lost:
                _cancel(scheduler, list(lost), client, stimulus_id)
        scheduler._remove_done_tasks_from_dsk(dsk, dependencies)
        scheduler._create_taskstate_from_graph(dependencies=dependencies, **common)
        return True
    if maybe_lost and scheduler._find_lost_dependencies(dsk, set(keys)):
        _cancel(scheduler, keys, client, stimulus_id)
        return False
    scheduler._create_taskstate_from_graph(**common)
    return True


def _cancel(scheduler: Scheduler, keys: list[Key], client: str, stimulus_id: str) -> None:
    scheduler.report(
        {"op": "cancelled-keys", "keys": keys, "reason": "lost dependencies"}, client=client
    )
    scheduler.client_releases_keys(keys=keys, client=client, stimulus_id=stimulus_id)


def _report_error(scheduler: Scheduler, err: Exception, keys: list[Key], client: str) -> None:
    message = error_message(err)
    scheduler.log_event(["scheduler", client], {"action": OP, "status": "error"})
    for key in keys:
        scheduler.report(
            {
                "op": "task-erred",
                "key": key,
                "exception": message["exception"],
                "traceback": message["traceback"],
            },
            client=client,
        )


async def dask_setup(scheduler: Scheduler) -> None:
    """Install the plugin when the scheduler starts with ``--preload hlg.distributed``."""
    await scheduler.register_scheduler_plugin(
        HlgSchedulerPlugin(), name=PLUGIN_NAME, idempotent=True
    )
