"""Submitting hlg graphs to a dask.distributed client: compute, submit, install.

The client packs the graph (never materialising a lazy layer) and sends the
bytes by one of two routes:

- ``"plugin"``: one msgpack message to the scheduler's ``hlg-update-graph``
  handler (see :mod:`hlg.distributed.plugin`), which must be installed;
- ``"expr"``: a :class:`~hlg.distributed.expr.PackedGraph` expression through
  distributed's own ``update-graph``, which works on any scheduler that has
  hlg installed.

``route="auto"`` asks the scheduler once per client whether the plugin is
there (a metadata lookup, msgpack only) and falls back to the expression
route when it is not.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import distributed
from distributed import Future

from hlg.distributed.expr import PackedGraph, packed_keys
from hlg.distributed.plugin import (
    METADATA_KEY,
    OP,
    PLUGIN_NAME,
    PROTOCOL,
    HlgSchedulerPlugin,
    check_version,
)
from hlg.errors import UsageError
from hlg.graph import flatten_keys
from hlg.keys import Key, validate_key
from hlg.packing.pack import pack
from hlg.task import register_remote_type

__all__ = ["ROUTES", "compute", "install", "route_of", "submit"]

ROUTES = ("auto", "plugin", "expr")

# Client -> whether its scheduler has the plugin; asked once per client.
_HAS_PLUGIN: weakref.WeakKeyDictionary[distributed.Client, bool] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _future_key(future: Future) -> Key:
    return future.key  # type: ignore[no-any-return]


# A future (from client.scatter, or an earlier computation) is remote data, like a Ref.
register_remote_type(Future, _future_key)


def install(client: distributed.Client) -> None:
    """Install the hlg scheduler plugin on ``client``'s scheduler.

    The scheduler unpickles the plugin object, as it does for every plugin a
    client registers; ``dask scheduler --preload hlg.distributed`` installs it
    without that.

    Raises
    ------
    UsageError
        The scheduler runs a version of distributed the plugin does not support.
    """
    client.register_plugin(HlgSchedulerPlugin(), name=PLUGIN_NAME)
    with _LOCK:
        _HAS_PLUGIN[client] = True


def route_of(client: distributed.Client, route: str = "auto") -> str:
    """Return the route graphs take to ``client``'s scheduler: ``"plugin"`` or ``"expr"``.

    Raises
    ------
    UsageError
        ``route`` is not one of ``"auto"``, ``"plugin"``, ``"expr"``, or is
        ``"plugin"`` and the scheduler has no hlg plugin, or this process runs a
        release of distributed the plugin route does not support.
    """
    if route not in ROUTES:
        raise UsageError(f"unknown route {route!r}; choose one of {', '.join(ROUTES)}")
    if route == "expr":
        return route
    try:
        check_version()  # the client side of the plugin route uses client internals too
    except UsageError:
        if route == "plugin":
            raise
        return "expr"
    with _LOCK:
        known = _HAS_PLUGIN.get(client)
    if known is None:
        info = client.get_metadata([METADATA_KEY], default=None)
        known = isinstance(info, dict) and info.get("protocol") == PROTOCOL
        with _LOCK:
            _HAS_PLUGIN[client] = known
    if known:
        return "plugin"
    if route == "plugin":
        raise UsageError(
            "the scheduler has no hlg plugin speaking protocol "
            f"{PROTOCOL}; start it with --preload hlg.distributed, call "
            "hlg.distributed.install(client), or use route='expr'"
        )
    return "expr"


def submit(
    graph: Any,
    keys: Any = None,
    client: distributed.Client | None = None,
    *,
    route: str = "auto",
    cull: bool = True,
) -> Any:
    """Send a graph to a dask.distributed cluster; return futures shaped like ``keys``.

    Parameters
    ----------
    graph
        Anything :func:`hlg.pack` takes (a collection, :class:`~hlg.HighLevelGraph`,
        layer or dict graph), or packed bytes. Tasks may take futures from
        ``client.scatter`` (or earlier computations) as arguments: only their
        keys travel.
    keys
        A key or (nested) lists of keys. May be left out for packed bytes that
        name their keys.
    client
        The ``distributed.Client``; the current one by default.
    route
        ``"auto"`` (the plugin if the scheduler has it, else the expression
        route), ``"plugin"`` or ``"expr"``.
    cull
        Drop what ``keys`` do not need before packing (the default), so the
        scheduler never materialises layers the keys do not use. hlg's layers
        cull symbolically, reductions included, at a cost that does not grow
        with their size; a layer that cannot is culled by materialising it
        here, in the client, so pass ``cull=False`` for graphs holding one.

    Returns
    -------
    Future, or (nested) lists of them
        One ``distributed.Future`` per key, nested like ``keys``.
    """
    client = distributed.get_client() if client is None else client
    if isinstance(graph, bytes | bytearray | memoryview):
        data = bytes(graph)
        if keys is None:
            keys = packed_keys(data)
        flat_keys = [validate_key(k) for k in flatten_keys(keys)]
    else:
        if keys is None:
            raise UsageError("pass the keys to compute; only packed bytes carry their own")
        flat_keys = [validate_key(k) for k in flatten_keys(keys)]
        data = pack(graph, flat_keys, cull=cull)
    if not flat_keys:
        raise UsageError("no keys to compute: pass at least one key")
    if route_of(client, route) == "plugin":
        futures = _submit_plugin(client, data, flat_keys)
    else:
        futures = client.get(PackedGraph(data, flat_keys), flat_keys, sync=False)
        futures = dict(zip(flat_keys, futures, strict=True))
    return _shape(keys, futures)


def compute(
    graph: Any,
    keys: Any = None,
    client: distributed.Client | None = None,
    *,
    route: str = "auto",
    cull: bool = True,
    timeout: float | None = None,
) -> Any:
    """Compute a graph on a dask.distributed cluster; return results as :func:`hlg.get` does.

    Takes the same arguments as :func:`submit`, and ``timeout``: seconds to
    wait for the results (``None``: no limit). Results are nested like
    ``keys``, in tuples, as the local scheduler returns them.

    Raises
    ------
    Exception
        A task's exception, with its original type; its notes name the key of
        the task that raised it.
    TimeoutError
        The results took longer than ``timeout``.
    """
    client = distributed.get_client() if client is None else client
    futures = submit(graph, keys, client, route=route, cull=cull)
    flat = _leaves(futures)
    try:
        if timeout is not None:
            _wait(flat, timeout)
        return _as_tuples(client.gather(futures))
    finally:
        for future in flat:
            future.release()


def _wait(futures: list[Future], timeout: float) -> None:
    # Public API only: each future's wait, within what is left of the time allowed.
    deadline = time.monotonic() + timeout
    for future in futures:
        left = deadline - time.monotonic()
        try:
            if future.exception(timeout=max(left, 0.001)) is not None:
                return  # gather raises it
        except distributed.TimeoutError:
            raise TimeoutError(
                f"the results were not ready within {timeout} s (waiting for {future.key!r})"
            ) from None


def _submit_plugin(client: distributed.Client, data: bytes, keys: list[Key]) -> dict[Key, Future]:
    # Futures first, then the message, under the client's refcount lock, as the
    # client does for its own graphs: no release can slip in between.
    with client._refcount_lock:
        futures = {key: Future(key, client) for key in keys}
        client._send_to_scheduler({"op": OP, "graph": data, "keys": list(futures)})
    return futures


def _leaves(nested: Any) -> list[Any]:
    if isinstance(nested, list):
        return [leaf for item in nested for leaf in _leaves(item)]
    return [nested]


def _as_tuples(results: Any) -> Any:
    if isinstance(results, list):
        return tuple(_as_tuples(r) for r in results)
    return results


def _shape(keys: Any, futures: dict[Key, Any]) -> Any:
    if isinstance(keys, list):
        return [_shape(k, futures) for k in keys]
    return futures[keys]
