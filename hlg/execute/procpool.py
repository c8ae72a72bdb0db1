"""A pool of worker processes for the ``processes`` scheduler.

Each worker owns one pipe to the parent and runs one task at a time. Messages
are cloudpickle bytes:

- parent → worker: ``("task", number, node, values)``: run ``node`` with
  ``values`` (plus any broadcast data); ``("store", key, value)`` and
  ``("forget", key)`` manage data broadcast to every worker; ``("stop",)``.
- worker → parent: ``("ready",)`` once, when it has started; then
  ``(number, True, result)`` or ``(number, False, exception, traceback text)``.

Workers keep a cache of loaded functions (see
:class:`~hlg.task.SerializedFunction`), so a function is deserialised once per
worker however many tasks call it. A worker that dies is noticed through its
process sentinel, and the pool says which task it was running, or that it
never started. Workers ignore SIGINT: Ctrl-C is the parent's to handle.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["ProcessPool"]

_READY = ("ready",)


class ProcessPool:
    """Worker processes, each reachable on its own pipe.

    Parameters
    ----------
    num_workers
        The number of processes.
    """

    def __init__(self, num_workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.processes: list[Any] = []
        self.connections: list[Connection] = []
        # Whether each worker has said it is ready: one that dies before has not
        # started at all (spawn imports the main module first, and that can fail).
        self.started: list[bool] = [False] * num_workers
        for n in range(num_workers):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_worker_main, args=(child,), name=f"hlg-worker-{n}", daemon=True
            )
            process.start()
            child.close()
            self.processes.append(process)
            self.connections.append(parent)

    @property
    def size(self) -> int:
        """The number of worker processes."""
        return len(self.processes)

    def send(self, worker: int, message: tuple[Any, ...]) -> None:
        """Send ``message`` to one worker."""
        self.connections[worker].send_bytes(_dumps(message))

    def broadcast(self, message: tuple[Any, ...]) -> None:
        """Send ``message`` to every worker."""
        data = _dumps(message)
        for connection in self.connections:
            connection.send_bytes(data)

    def wait(self, workers: list[int]) -> list[tuple[int, Any]]:
        """Wait until some of ``workers`` reply or die; return ``(worker, reply or None)``.

        ``None`` means the worker died. The list may be empty when the only news
        was a worker saying it is ready.
        """
        by_handle: dict[Any, int] = {}
        for w in workers:
            by_handle[self.connections[w]] = w
            by_handle[self.processes[w].sentinel] = w
        out: dict[int, Any] = {}
        for handle in wait(list(by_handle)):
            w = by_handle[handle]
            if w in out:
                continue
            connection = self.connections[w]
            try:
                while w not in out and connection.poll():
                    message = pickle.loads(connection.recv_bytes())
                    if message == _READY:
                        self.started[w] = True
                    else:
                        out[w] = message
            except (EOFError, OSError):
                pass
            if w not in out and not self.processes[w].is_alive():
                out[w] = None
        return list(out.items())

    def exitcode(self, worker: int) -> int | None:
        """Return the exit code of a worker that died."""
        process = self.processes[worker]
        process.join(timeout=1)
        return process.exitcode  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop every worker."""
        for connection in self.connections:
            with contextlib.suppress(OSError, ValueError):  # already gone
                connection.send_bytes(_dumps(("stop",)))
        for process in self.processes:
            process.join(timeout=2)
            if process.is_alive():
                process.terminate()
                process.join(timeout=2)
        for connection in self.connections:
            connection.close()


def _dumps(obj: Any) -> bytes:
    import cloudpickle

    return bytes(cloudpickle.dumps(obj, protocol=5))


def _worker_main(connection: Connection) -> None:
    """Serve tasks until told to stop or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection.send_bytes(pickle.dumps(_READY))
    store: dict[Any, Any] = {}
    while True:
        try:
            message = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "task":
            _, number, node, values = message
            connection.send_bytes(_run(number, node, values, store))
        elif kind == "store":
            store[message[1]] = message[2]
        elif kind == "forget":
            store.pop(message[1], None)
        elif kind == "stop":
            return


def _run(number: int, node: Any, values: dict[Any, Any], store: dict[Any, Any]) -> bytes:
    for key in node.dependencies:
        if key not in values and key in store:
            values[key] = store[key]
    try:
        result = node(values)
    except BaseException as err:
        text = "".join(traceback.format_exception(err))
        try:
            return _dumps((number, False, err, text))
        except Exception:
            return _dumps((number, False, RuntimeError(f"{type(err).__name__}: {err}"), text))
    try:
        return _dumps((number, True, result))
    except Exception as err:
        text = "".join(traceback.format_exception(err))
        return _dumps((number, False, err, f"the result could not be sent back:\n{text}"))
