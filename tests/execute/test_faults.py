"""The local scheduler and Client under faults: raising hooks, dying workers, errors in transit."""

import io
import threading

import pytest

import hlg
from hlg import Callback, Client

from .helpers import (
    VAR,
    FrozenError,
    LoadFails,
    add,
    boom,
    identity,
    inc,
    kill_after,
    make_unloadable,
    nested_get,
    raise_frozen,
    raise_unpicklable,
    read_var,
    run_with_timeout,
    slow,
)

SCHEDULERS = ["sync", "threads", "processes"]


@pytest.fixture(params=SCHEDULERS)
def scheduler(request):
    return request.param


def chain_graph(n):
    dsk = {("x", 0): 0}
    for i in range(1, n):
        dsk["x", i] = (inc, ("x", i - 1))
    return dsk


# --------------------------------------------------------------------------- sharing a client


def test_client_shared_between_threads_returns_every_value_on_every_scheduler(scheduler):
    with Client(scheduler=scheduler, num_workers=2) as client:
        base = client.scatter(1000)
        failures = []

        def work(t):
            for i in range(12):
                n = t * 100 + i
                dsk = {"a": n, "b": (slow, "a", 0.001), "c": (add, "b", base)}
                got = client.compute(dsk, "c")
                if got != n + 1000:
                    failures.append((n, got))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        run_with_timeout(lambda: [t.start() for t in threads] and [t.join() for t in threads])
        assert failures == []
        if scheduler == "processes":
            assert client._pool is not None and client._pool.size == 2


def test_client_starts_one_pool_however_many_threads_compute_first():
    started = []
    original = hlg.execute.client.ProcessPool

    class Counting(original):
        def __init__(self, n):
            started.append(n)
            super().__init__(n)

    hlg.execute.client.ProcessPool = Counting
    try:
        with Client(scheduler="processes", num_workers=1) as client:
            barrier = threading.Barrier(4)

            def first():
                barrier.wait()
                return client.compute({"a": (inc, 1)}, "a")

            results = []
            threads = [threading.Thread(target=lambda: results.append(first())) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert results == [2, 2, 2, 2]
            assert started == [1]
    finally:
        hlg.execute.client.ProcessPool = original


# --------------------------------------------------------------------------- hooks that raise


class RaisesIn(Callback):
    def __init__(self, where, at="x"):
        self.where, self.at = where, at
        self.finished = None

    def pretask(self, key, state):
        if self.where == "pretask" and key == self.at:
            raise OSError("pretask hook broke")

    def posttask(self, key, result, state, worker_id):
        if self.where == "posttask" and key == self.at:
            raise OSError("posttask hook broke")

    def finish(self, state, errored):
        self.finished = errored


@pytest.mark.parametrize("where", ["pretask", "posttask"])
def test_a_raising_hook_stops_the_run_and_names_hook_and_key(scheduler, where):
    dsk = {"x": 1, "y": (inc, "x"), "z": (inc, "y"), "w": (add, "x", "z")}
    cb = RaisesIn(where)
    with pytest.raises(OSError, match=f"{where} hook broke") as info:
        run_with_timeout(
            lambda: hlg.get(dsk, "w", scheduler=scheduler, num_workers=2, callbacks=[cb])
        )
    notes = "\n".join(info.value.__notes__)
    assert f"RaisesIn.{where}" in notes and "'x'" in notes
    assert cb.finished is True


def test_a_raising_hook_on_threads_lets_running_tasks_finish():
    done = []

    class Slowly(Callback):
        def posttask(self, key, result, state, worker_id):
            done.append(key)
            if key == "fast":
                raise OSError("stop")

    dsk = {"fast": 1, "slow": (slow, 2, 0.3), "later": (inc, "fast")}
    with pytest.raises(OSError, match="stop"):
        run_with_timeout(
            lambda: hlg.get(
                dsk, ["later", "slow"], scheduler="threads", num_workers=2, callbacks=[Slowly()]
            )
        )
    assert "later" not in done


def test_start_and_finish_hooks_that_raise_are_reported(scheduler):
    class BadStart(Callback):
        def start_state(self, state):
            raise RuntimeError("start broke")

    class BadFinish(Callback):
        def finish(self, state, errored):
            raise RuntimeError("finish broke")

    with pytest.raises(RuntimeError, match="start broke") as info:
        hlg.get({"a": 1}, "a", scheduler=scheduler, callbacks=[BadStart()])
    assert "BadStart.start_state" in info.value.__notes__[0]
    with pytest.raises(RuntimeError, match="finish broke"):
        hlg.get({"a": 1}, "a", scheduler=scheduler, callbacks=[BadFinish()])
    with pytest.raises(ValueError, match="bad value") as info:
        hlg.get({"a": (boom, 1)}, "a", scheduler=scheduler, callbacks=[BadFinish()])
    assert any("BadFinish.finish also raised" in n for n in info.value.__notes__)


class ClosingStream(io.StringIO):
    """A stream that goes away after a few writes, like a pipe whose reader exited."""

    def __init__(self, writes):
        super().__init__()
        self.writes = writes

    def write(self, text):
        self.writes -= 1
        if self.writes < 0:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)

    def isatty(self):
        return True


@pytest.mark.parametrize("writes", [0, 1, 3])
def test_progress_bar_survives_a_closed_stream(scheduler, writes):
    bar = hlg.ProgressBar(out=ClosingStream(writes))
    assert hlg.get(chain_graph(30), ("x", 29), scheduler=scheduler, callbacks=[bar]) == 29


# --------------------------------------------------------------------------- workers dying


def test_a_worker_dying_between_tasks_is_a_worker_died_error():
    with Client(scheduler="processes", num_workers=1) as client:
        assert client.compute({"a": (inc, 1)}, "a") == 2
        client._pool.processes[0].kill()
        client._pool.processes[0].join(10)
        with pytest.raises(hlg.WorkerDiedError, match="worker process 0 died"):
            run_with_timeout(lambda: client.compute({"a": (inc, 1)}, "a"))
        assert client.compute({"a": (inc, 2)}, "a") == 3  # a new pool


def test_a_worker_dying_before_a_broadcast_is_a_worker_died_error():
    with Client(scheduler="processes", num_workers=1) as client:
        client.compute({"a": 1}, "a")
        client._pool.processes[0].kill()
        client._pool.processes[0].join(10)
        with pytest.raises(hlg.WorkerDiedError, match="could not be broadcast"):
            client.scatter([1, 2], broadcast=True)
        ref = client.scatter(5, broadcast=True)
        assert client.compute({"b": (inc, ref)}, "b") == 6


def test_a_worker_dying_mid_task_names_the_task():
    with pytest.raises(hlg.WorkerDiedError, match="while running task 'k'"):
        run_with_timeout(lambda: hlg.get({"k": (kill_after, 0.05)}, "k", scheduler="processes"))


# --------------------------------------------------------------------------- errors in transit


def test_an_input_that_cannot_load_in_the_worker_raises_its_own_error():
    dsk = {"a": (identity, LoadFails())}
    with pytest.raises(ValueError, match="cannot be loaded") as info:
        hlg.get(dsk, "a", scheduler="processes", num_workers=1)
    assert any("'a'" in note for note in info.value.__notes__)


def test_a_result_that_cannot_load_in_the_parent_is_an_hlg_error_naming_the_key():
    with pytest.raises(hlg.TaskExecutionError, match="LoadFails, could not be loaded") as info:
        hlg.get({"r": (make_unloadable, 1)}, "r", scheduler="processes", num_workers=1)
    assert any("'r'" in note for note in info.value.__notes__)


def test_an_exception_that_cannot_be_pickled_arrives_with_type_message_and_traceback():
    with pytest.raises(hlg.TaskExecutionError) as info:
        hlg.get({"e": (raise_unpicklable, 1)}, "e", scheduler="processes", num_workers=1)
    text = str(info.value)
    assert "ValueError" in text and "holds a lock" in text and "raise_unpicklable" in text
    assert any("'e'" in note for note in info.value.__notes__)


def test_an_unpicklable_argument_is_the_tasks_error_and_the_pool_lives_on():
    with Client(scheduler="processes", num_workers=1) as client:
        with pytest.raises(TypeError, match="lock") as info:
            client.compute({"a": (identity, threading.Lock())}, "a")
        assert any("could not be sent" in note for note in info.value.__notes__)
        assert client.compute({"b": (inc, 1)}, "b") == 2


def test_an_exception_refusing_notes_still_arrives_naming_the_key(scheduler):
    if scheduler == "processes":
        # It cannot be rebuilt in the parent (its own __setattr__ refuses its state).
        with pytest.raises(hlg.TaskExecutionError, match="FrozenError") as info:
            hlg.get({"f": (raise_frozen, 1)}, "f", scheduler=scheduler)
    else:
        with pytest.raises(FrozenError) as info:
            hlg.get({"f": (raise_frozen, 1)}, "f", scheduler=scheduler)
    assert any("'f'" in note for note in info.value.__notes__)


# --------------------------------------------------------------------------- context


def test_threads_carry_the_callers_context_variables():
    token = VAR.set("from the caller")
    try:
        dsk = {("v", i): (read_var, i) for i in range(8)}
        got = hlg.get(dsk, list(dsk), scheduler="threads", num_workers=4)
        assert set(got) == {"from the caller"}
        assert hlg.get(dsk, ("v", 0), scheduler="sync") == "from the caller"
    finally:
        VAR.reset(token)


def test_with_callbacks_are_off_inside_tasks_that_call_get(scheduler):
    seen = []

    class Seen(Callback):
        def posttask(self, key, result, state, worker_id):
            seen.append(key)

    dsk = {("n", i): (nested_get, i) for i in range(4)}
    with Seen():
        got = run_with_timeout(lambda: hlg.get(dsk, list(dsk), scheduler=scheduler, num_workers=2))
    assert got == (1, 2, 3, 4)
    assert sorted(seen) == sorted(dsk)


def test_with_callbacks_still_see_concurrent_runs_of_other_threads():
    seen = []

    class Seen(Callback):
        def posttask(self, key, result, state, worker_id):
            seen.append(key)

    with Seen():
        threads = [
            threading.Thread(target=hlg.get, args=({f"k{i}": i}, f"k{i}"), kwargs={"scheduler": s})
            for i, s in enumerate(["sync", "threads"])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(seen) == ["k0", "k1"]


# --------------------------------------------------------------------------- sizes


class Sized:
    measured = 0

    def __sizeof__(self):
        Sized.measured += 1
        return 1000


def make_sized(_=None):
    return Sized()


def test_result_sizes_are_measured_only_while_a_callback_reads_them():
    Sized.measured = 0
    dsk = {("s", i): (make_sized, i) for i in range(5)}
    hlg.get(dsk, list(dsk), scheduler="sync")
    assert Sized.measured == 0
    with hlg.TaskGroups() as tg:
        hlg.get(dsk, list(dsk), scheduler="sync")
    assert Sized.measured == 5
    assert tg.groups["s"].nbytes_total >= 5000


def test_a_stale_reply_is_dropped_instead_of_answering_another_task():
    from hlg import Task
    from hlg.execute.procpool import ProcessPool, Reply

    pool = ProcessPool(1)
    try:
        pool.submit(0, Task(inc, 1), {})  # its reply becomes stale: the worker is re-tasked
        pool.submit(0, Task(inc, 2), {})

        def first_reply():
            replies = []
            while not replies:
                replies = pool.wait([0])
            return replies

        assert run_with_timeout(first_reply) == [(0, Reply(True, 3, ""))]
    finally:
        pool.close()
