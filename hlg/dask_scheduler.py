"""Running dask collections on hlg's local scheduler.

dask calls a scheduler as ``schedule(graph, keys, **kwargs)``: ``graph`` is a
dask expression (or a dict of dask's task-spec nodes and tuples), ``keys`` a
flat list of keys, and ``kwargs`` whatever the user passed to ``compute``.
:func:`hlg.get` takes that call as it is::

    dask.compute(x, scheduler=hlg.get)                 # threads
    with dask.config.set(scheduler=hlg.get): x.compute()

:func:`dask_scheduler` makes a scheduler with a fixed driver, worker count or
:class:`~hlg.Client` (whose worker processes then stay up between
computations)::

    dask.compute(x, scheduler=hlg.dask_scheduler("processes", num_workers=2))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hlg.daskspec import check_scheduler_kwargs, dask_graph
from hlg.errors import UsageError
from hlg.execute.client import Client
from hlg.execute.local import driver_for, get

__all__ = ["DaskScheduler", "dask_scheduler"]

# What Client.compute takes besides the graph and keys.
_CLIENT_KWARGS = ("callbacks", "rerun_exceptions_locally")


@dataclass(frozen=True)
class DaskScheduler:
    """A dask scheduler function that runs graphs on hlg; see :func:`dask_scheduler`.

    Attributes
    ----------
    scheduler : str
        ``"sync"``, ``"threads"`` or ``"processes"``.
    num_workers : int or None
        Threads or processes; dask's ``num_workers=`` at compute time wins.
    client : Client or None
        Run through this client instead: its driver, workers and scattered data.
    """

    scheduler: str = "threads"
    num_workers: int | None = None
    client: Client | None = None

    def __call__(self, graph: Any, keys: Any, **kwargs: Any) -> Any:
        """Compute ``keys`` of ``graph`` as dask asks a scheduler to."""
        tasks = dask_graph(graph)
        if tasks is None:
            tasks = graph
        if self.client is not None:
            # The client's own driver and workers run the graph: num_workers is its own.
            kwargs.pop("num_workers", None)
            passed = {k: kwargs.pop(k) for k in _CLIENT_KWARGS if k in kwargs}
            check_scheduler_kwargs(kwargs)
            return self.client.compute(tasks, keys, **passed)
        kwargs.setdefault("num_workers", self.num_workers)
        return get(tasks, keys, scheduler=self.scheduler, **kwargs)


def dask_scheduler(
    scheduler: str | Client = "threads", *, num_workers: int | None = None
) -> DaskScheduler:
    """Return a scheduler for dask's ``compute``/``persist`` that runs on hlg.

    Parameters
    ----------
    scheduler
        ``"sync"``, ``"threads"`` or ``"processes"``, or a :class:`~hlg.Client`
        to run through (its worker processes stay up between computations).
    num_workers
        Threads or processes; the number of CPUs by default.

    Returns
    -------
    DaskScheduler
        A callable to pass as ``scheduler=`` to ``dask.compute``,
        ``dask.persist``, ``collection.compute`` or ``dask.config.set``.

    Raises
    ------
    UsageError
        ``scheduler`` names no scheduler, or ``num_workers`` is below 1.

    Notes
    -----
    The keyword arguments dask passes to schedulers are accepted:
    ``num_workers`` and ``rerun_exceptions_locally`` are honoured, ``callbacks``
    takes :class:`hlg.Callback` objects, and these are ignored:
    ``cache``, ``pool``, ``chunksize``, ``optimize_graph``, ``get_id``,
    ``pack_exception``, ``raise_exception``, ``dumps``, ``loads``,
    ``func_dumps``, ``func_loads``, ``initializer``.

    Examples
    --------
    >>> import dask
    >>> @dask.delayed
    ... def add(a, b=0):
    ...     return a + b
    >>> total = add(add(1, b=2), b=add(3))
    >>> dask.compute(total, scheduler=dask_scheduler("sync"))
    (6,)
    """
    if isinstance(scheduler, Client):
        return DaskScheduler(scheduler.scheduler, num_workers, scheduler)
    try:
        driver_for(scheduler)
    except UsageError as err:
        raise UsageError(f"{err}; or pass an hlg.Client") from None
    if num_workers is not None and num_workers < 1:
        raise UsageError(f"num_workers must be at least 1; got {num_workers}")
    return DaskScheduler(scheduler, num_workers)
