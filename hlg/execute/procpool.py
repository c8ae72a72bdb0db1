"""A pool of worker processes for the ``processes`` scheduler.

Each worker owns one pipe to the parent and runs one task at a time. Every
message is a plain pickle of one of the small named tuples below, holding
numbers, strings and bytes; whatever user code produced (a task, its inputs,
a result, an exception) travels inside it as cloudpickle bytes, loaded
separately, so that a value that fails to load is reported as that value's
error, never as a broken pipe or a dead worker:

- parent → worker: ``_TaskRequest(ticket, payload)``, the payload holding
  ``(node, values)``; ``_StoreRequest(key, payload)`` and
  ``_ForgetRequest(key)`` manage data broadcast to every worker;
  ``_StopRequest()``.
- worker → parent: ``_Ready()`` once, when it has started; then one
  ``_WireReply`` per task, which the parent reads into a :class:`Reply`.

Both sides dispatch on the message's type.

Tickets number the tasks sent, so a reply is matched to the task it answers
and a stale reply (left over from an interrupted run) is dropped. A run leases
the whole pool (:meth:`ProcessPool.lease`): concurrent runs on one pool, from
several threads of one :class:`~hlg.Client`, take turns instead of reading
each other's replies.

Workers keep a cache of loaded functions (see
:class:`~hlg.task.SerializedFunction`), so a function is deserialised once per
worker however many tasks call it. A worker that dies is noticed through its
process sentinel. Workers ignore SIGINT: Ctrl-C is the parent's to handle.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import pickle
import signal
import threading
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any, NamedTuple

from hlg.errors import TaskExecutionError, WorkerDiedError, article

__all__ = ["ProcessPool", "Reply"]


class _TaskRequest(NamedTuple):
    # Run a task: cloudpickle bytes of (node, values), numbered by its ticket.
    ticket: int
    payload: bytes


class _StoreRequest(NamedTuple):
    # Hold a broadcast value (cloudpickle bytes) under a key, for tasks that need it.
    key: Any
    payload: bytes


class _ForgetRequest(NamedTuple):
    # Drop a broadcast value.
    key: Any


class _StopRequest(NamedTuple):
    # Exit the worker loop.
    pass


class _Ready(NamedTuple):
    # Sent by a worker once, when it has started.
    pass


#: What the parent sends a worker.
_Request = _TaskRequest | _StoreRequest | _ForgetRequest | _StopRequest


class Reply(NamedTuple):
    """A worker's answer for one task, as the parent reads it."""

    #: Whether the task returned (``value`` is its result) or raised (``value`` is the error).
    ok: bool
    value: Any
    #: The worker-side traceback text when the task raised, else "".
    traceback: str


class _WireReply(NamedTuple):
    # What a worker sends: the payload is cloudpickle bytes of the result or the
    # exception, or b"" when the exception could not be pickled.
    ticket: int
    ok: bool
    payload: bytes
    type_name: str
    message: str
    traceback: str


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
        # The ticket of the task each worker is running, or None when idle.
        self.tickets: list[int | None] = [None] * num_workers
        self._next_ticket = itertools.count()
        # Held by the one run using the pool; see lease().
        self._lease = threading.Lock()
        self.closed = False
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

    @contextlib.contextmanager
    def lease(self) -> Iterator[ProcessPool]:
        """Hold the pool for one run; other runs wait until it is released."""
        with self._lease:
            yield self

    def alive(self) -> bool:
        """Return whether every worker process is still running."""
        return not self.closed and all(p.is_alive() for p in self.processes)

    def submit(self, worker: int, node: Any, values: dict[Any, Any]) -> None:
        """Send a task to an idle worker.

        Raises
        ------
        WorkerDiedError
            The worker is gone (it died after its last task).
        """
        ticket = next(self._next_ticket)
        data = _message(_TaskRequest(ticket, _dumps((node, values))))
        self._send(worker, data, "was idle; the task could not be sent to it")
        self.tickets[worker] = ticket

    def broadcast_store(self, key: Any, value: Any) -> None:
        """Give every worker ``value`` under ``key``, for tasks that need it."""
        data = _message(_StoreRequest(key, _dumps(value)))
        for w in range(self.size):
            self._send(w, data, f"was idle; data {key!r} could not be broadcast to it")

    def broadcast_forget(self, key: Any) -> None:
        """Drop ``key`` from every worker."""
        data = _message(_ForgetRequest(key))
        for w in range(self.size):
            with contextlib.suppress(OSError, ValueError):  # a dead worker holds nothing
                self.connections[w].send_bytes(data)

    def _send(self, worker: int, data: bytes, doing: str) -> None:
        try:
            self.connections[worker].send_bytes(data)
        except (OSError, ValueError) as err:  # BrokenPipeError, or a closed connection
            raise WorkerDiedError(
                f"worker process {worker} died (exit code {self.exitcode(worker)}) while it "
                f"{doing}; start a new pool (a Client does so on its next computation)"
            ) from err

    def wait(self, workers: list[int]) -> list[tuple[int, Reply | None]]:
        """Wait until some of ``workers`` reply or die; return ``(worker, reply or None)``.

        ``None`` means the worker died. The list may be empty when the only news
        was a worker saying it is ready, or a stale reply.
        """
        by_handle: dict[Any, int] = {}
        for w in workers:
            by_handle[self.connections[w]] = w
            by_handle[self.processes[w].sentinel] = w
        out: dict[int, Reply | None] = {}
        for handle in wait(list(by_handle)):
            w = by_handle[handle]
            if w in out:
                continue
            connection = self.connections[w]
            try:
                while w not in out and connection.poll():
                    match pickle.loads(connection.recv_bytes()):
                        case _Ready():
                            self.started[w] = True
                        case _WireReply() as reply if reply.ticket == self.tickets[w]:
                            self.tickets[w] = None
                            out[w] = _read_reply(reply)
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
        self.closed = True
        for connection in self.connections:
            with contextlib.suppress(OSError, ValueError):  # already gone
                connection.send_bytes(_message(_StopRequest()))
        for process in self.processes:
            process.join(timeout=2)
            if process.is_alive():
                process.terminate()
                process.join(timeout=2)
        for connection in self.connections:
            connection.close()


def _message(message: _Request | _Ready | _WireReply) -> bytes:
    """Pickle one message of the pool's protocol."""
    return pickle.dumps(message, protocol=5)


def _dumps(obj: Any) -> bytes:
    import cloudpickle

    return bytes(cloudpickle.dumps(obj, protocol=5))


def _read_reply(wire: _WireReply) -> Reply:
    """Load a reply's result or exception; one that cannot be loaded becomes an hlg error."""
    if wire.payload:
        try:
            return Reply(wire.ok, pickle.loads(wire.payload), wire.traceback)
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
    else:
        reason = "it could not be pickled in the worker"
    if wire.ok:
        return Reply(
            False,
            TaskExecutionError(
                f"the task's result, {article(wire.type_name)}, could not be loaded in the calling "
                f"process ({reason}); make the result picklable, or use the 'threads' scheduler"
            ),
            "",
        )
    return Reply(
        False,
        TaskExecutionError(
            f"the task raised {wire.type_name}: {wire.message}; that exception could not be "
            f"sent back from the worker ({reason}). Its traceback in the worker:\n"
            f"{wire.traceback}"
        ),
        "",
    )


class _Unloadable:
    """Broadcast data that failed to load in this worker; tasks that need it raise."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _worker_main(connection: Connection) -> None:
    """Serve tasks until told to stop or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    connection.send_bytes(_message(_Ready()))
    store: dict[Any, Any] = {}
    while True:
        try:
            message: _Request = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        match message:
            case _TaskRequest(ticket, payload):
                connection.send_bytes(_run(ticket, payload, store))
            case _StoreRequest(key, payload):
                try:
                    store[key] = pickle.loads(payload)
                except Exception as err:
                    store[key] = _Unloadable(err)
            case _ForgetRequest(key):
                store.pop(key, None)
            case _StopRequest():
                return


def _run(ticket: int, payload: bytes, store: dict[Any, Any]) -> bytes:
    try:
        node, values = pickle.loads(payload)
        for key in node.dependencies:
            if key not in values and key in store:
                value = store[key]
                if type(value) is _Unloadable:
                    raise value.error
                values[key] = value
        result = node(values)
    except BaseException as err:
        return _error_reply(ticket, err, "")
    try:
        data = _dumps(result)
    except Exception as err:
        return _error_reply(ticket, err, "the task's result could not be pickled:\n")
    return _message(_WireReply(ticket, True, data, type(result).__name__, "", ""))


def _error_reply(ticket: int, err: BaseException, context: str) -> bytes:
    text = context + "".join(traceback.format_exception(err))
    try:
        message = str(err)
    except Exception:
        message = "<the exception's message could not be read>"
    try:
        data = _dumps(err)
    except Exception:
        data = b""
    return _message(_WireReply(ticket, False, data, type(err).__qualname__, message, text))
