"""What dask's own scheduler tests expect of a local scheduler, checked against hlg.

The behaviours come from dask's ``test_local.py``, ``test_threaded.py``,
``test_multiprocessing.py`` and ``test_callbacks.py``; the tests are written
for hlg's API.
"""

import threading

import pytest

import hlg
from hlg import Callback, HighLevelGraph, Task, TaskRef

from .helpers import add, inc, run_with_timeout

SCHEDULERS = ["sync", "threads", "processes"]


@pytest.fixture(params=SCHEDULERS)
def scheduler(request):
    return request.param


class DetailedError(Exception):
    """An exception with attributes and its own message."""

    def __init__(self, a, b):
        super().__init__(a, b)
        self.a, self.b = a, b

    def __str__(self):
        return "a detailed failure"


def raise_detailed():
    raise DetailedError(1, 2)


def test_an_exception_arrives_with_its_attributes_and_message(scheduler):
    with pytest.raises(DetailedError, match="a detailed failure") as info:
        hlg.get({"x": (raise_detailed,)}, "x", scheduler=scheduler)
    assert (info.value.a, info.value.b) == (1, 2)


def test_sibling_leaves_run_last_first_before_their_reduction():
    ran = []
    dsk = {("x", i): (ran.append, i) for i in range(10)}
    dsk["y"] = (lambda *_: None, sorted(dsk))
    hlg.get(dsk, "y", scheduler="sync")
    assert sorted(ran) == list(range(10))
    # One worker runs tasks in priority order, exactly as hlg.order numbers them.
    priority = hlg.order(dsk)
    assert ran == [k[1] for k in sorted(priority, key=priority.get) if k != "y"]


def test_one_worker_runs_tasks_in_the_order_of_hlg_order():
    dsk = {("a", i): (inc, i) for i in range(6)}
    dsk.update({("b", i): (add, ("a", i), ("a", (i + 1) % 6)) for i in range(6)})
    dsk["c"] = (sum, [("b", i) for i in range(6)])
    started = []

    class Track(Callback):
        def pretask(self, key, state):
            started.append(key)

    hlg.get(dsk, "c", scheduler="sync", callbacks=[Track()])
    priority = hlg.order(dsk)
    assert started == sorted(priority, key=priority.get)


def test_tasks_the_keys_do_not_need_never_run(scheduler):
    dsk = {
        "x1": Task(inc, 0),
        "x2": Task(inc, 0),
        "y": Task(add, 1, TaskRef("x2")),
    }
    started = []

    class Track(Callback):
        def pretask(self, key, state):
            started.append(key)

    assert hlg.get(dsk, "y", scheduler=scheduler, callbacks=[Track()]) == 2
    assert sorted(started) == ["x2", "y"]


def test_a_missing_dependency_is_reported_and_held_data_fills_it():
    dsk = {"y": Task(inc, TaskRef("x"))}
    with pytest.raises(hlg.MissingDependencyError, match="'x'"):
        hlg.get(dsk, "y", scheduler="sync")
    with hlg.Client(scheduler="sync") as client:
        client.scatter({"x": 1})
        assert client.compute(dsk, "y") == 2


def test_a_key_that_is_plain_data_needs_no_computation(scheduler):
    assert hlg.get({"x": 1}, "x", scheduler=scheduler) == 1
    assert hlg.get({"x": 1, "y": 2, "a": (add, "x", "y"), "b": (sum, ["x", "y"])},
                   ["a", "b"], scheduler=scheduler) == (3, 3)  # fmt: skip


def test_a_raising_start_hook_stops_the_run_and_every_finish_hook_runs(scheduler):
    finished = []

    class Broken(Callback):
        def start(self, graph):
            raise ValueError("broken start")

        def finish(self, state, errored):
            finished.append("broken")

    class Fine(Callback):
        def finish(self, state, errored):
            finished.append("fine")

    # A start hook fails before the state exists: no finish hook is owed a state.
    with Broken(), Fine(), pytest.raises(ValueError, match="broken start"):
        hlg.get({"x": 1}, "x", scheduler=scheduler)
    assert finished == []


def test_finish_hooks_run_after_a_task_error(scheduler):
    seen = []

    class Finish(Callback):
        def finish(self, state, errored):
            seen.append(errored)

    with pytest.raises(ZeroDivisionError):
        hlg.get({"x": (divmod, 1, 0)}, "x", scheduler=scheduler, callbacks=[Finish()])
    hlg.get({"x": 1}, "x", scheduler=scheduler, callbacks=[Finish()])
    assert seen == [True, False]


def test_start_and_start_state_hooks_see_the_graph_and_the_state(scheduler):
    seen = {}

    class Look(Callback):
        def start(self, graph):
            seen["graph"] = sorted(graph)

        def start_state(self, state):
            seen["ready"] = sorted(state.keys[i] for i in state.ready)

    hlg.get({"x": 1, "y": (inc, "x")}, "y", scheduler=scheduler, callbacks=[Look()])
    assert seen == {"graph": ["x", "y"], "ready": ["x"]}


def test_callbacks_of_nested_with_blocks_are_removed_in_turn():
    outer, inner = Callback(), Callback()
    with outer:
        with inner:
            assert hlg.execute.callbacks.active_callbacks() == [outer, inner]
        assert hlg.execute.callbacks.active_callbacks() == [outer]
    assert hlg.execute.callbacks.active_callbacks() == []


def test_a_nested_get_inside_a_task_sees_only_its_own_callbacks():
    outer_keys, inner_keys = [], []

    class Outer(Callback):
        def posttask(self, key, result, state, worker_id):
            outer_keys.append(key)

    class Inner(Callback):
        def posttask(self, key, result, state, worker_id):
            inner_keys.append(key)

    def runs_inner(x):
        return hlg.get({"i": (inc, x)}, "i", scheduler="sync", callbacks=[Inner()])

    with Outer():
        assert hlg.get({"o": (runs_inner, 1)}, "o", scheduler="threads") == 2
    assert outer_keys == ["o"] and inner_keys == ["i"]


def test_get_from_many_short_lived_threads_leaves_no_threads_behind():
    before = threading.active_count()
    results = []

    def one():
        results.append(hlg.get({"x": (inc, 1)}, "x", scheduler="threads", num_workers=2))

    for _ in range(20):
        t = threading.Thread(target=one)
        t.start()
        t.join(30)
    assert results == [2] * 20
    assert threading.active_count() <= before + 1


def test_threads_never_exceed_the_worker_count():
    before = threading.active_count()
    peak = []

    def count(i):
        peak.append(threading.active_count())
        return i

    dsk = {("x", i): (count, i) for i in range(10)}
    dsk["x"] = (sum, sorted(dsk))
    for _ in range(5):
        assert hlg.get(dsk, "x", scheduler="threads", num_workers=4) == 45
    assert max(peak) <= before + 4
    assert threading.active_count() == before


def test_one_graph_computed_from_many_threads_at_once():
    dsk = {("x", i): (inc, i) for i in range(20)}
    dsk["total"] = (sum, sorted(dsk))
    out = []

    def compute():
        out.append(hlg.get(dsk, "total", scheduler="threads", num_workers=2))

    threads = [threading.Thread(target=compute) for _ in range(10)]
    run_with_timeout(lambda: [t.start() for t in threads] and [t.join() for t in threads])
    assert out == [210] * 10


def test_processes_run_local_functions_and_lambdas_and_return_them():
    offset = 10

    def local(x):
        return x + offset

    dsk = {"a": (local, 1), "b": (lambda x: x * 2, "a"), "f": (lambda: lambda y: y + 1,)}
    a, b, f = hlg.get(dsk, ["a", "b", "f"], scheduler="processes", num_workers=2)
    assert (a, b, f(1)) == (11, 22, 2)


def test_processes_run_a_high_level_graph():
    x = HighLevelGraph.from_dict({("x", i): i for i in range(4)}, name="x")
    y = HighLevelGraph.from_collections("y", {("y", i): (inc, ("x", i)) for i in range(4)}, [x])
    keys = [("y", i) for i in range(4)]
    assert hlg.get(y, keys, scheduler="processes", num_workers=2) == (1, 2, 3, 4)


def test_processes_report_the_workers_traceback():
    def fails(x):
        raise KeyError(f"missing {x}")

    with pytest.raises(KeyError, match="missing 3") as info:
        hlg.get({"k": (fails, 3)}, "k", scheduler="processes", num_workers=1)
    notes = "\n".join(info.value.__notes__)
    assert "traceback in the worker process" in notes and "fails" in notes


def test_a_callback_entered_inside_a_task_sees_the_inner_run_only():
    class Keys(Callback):
        def __init__(self):
            self.keys = []

        def posttask(self, key, result, state, worker_id):
            self.keys.append(key)

    inner = Keys()

    def runs_inner(x):
        with inner:
            return hlg.get({"i": (inc, x), "j": (inc, "i")}, "j", scheduler="threads") + x

    outer = Keys()
    with outer:
        got = hlg.get({"a": (runs_inner, 1), "b": (inc, "a")}, "b", scheduler="sync")
    assert got == 5
    assert outer.keys == ["a", "b"] and inner.keys == ["i", "j"]
    assert hlg.execute.callbacks.active_callbacks() == []


def interrupt():
    raise KeyboardInterrupt


def test_finish_hooks_see_an_interrupted_run_as_errored():
    seen = []

    class Finish(Callback):
        def finish(self, state, errored):
            seen.append(errored)

    with Finish(), pytest.raises(KeyboardInterrupt):
        hlg.get({"x": (interrupt,)}, "x", scheduler="sync")
    assert seen == [True]
