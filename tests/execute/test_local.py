import _thread
import gc
import signal
import threading
import weakref

import pytest

import hlg
from hlg import Callback

from .helpers import add, boom, die, inc, slow, total

SCHEDULERS = ["sync", "threads", "processes"]


@pytest.fixture(params=SCHEDULERS)
def scheduler(request):
    return request.param


def test_get_key_conventions(scheduler):
    dsk = {"x": 1, "y": 2, "z": (add, "x", "y")}
    assert hlg.get(dsk, "z", scheduler=scheduler, num_workers=2) == 3
    assert hlg.get(dsk, ["x", "z"], scheduler=scheduler, num_workers=2) == (1, 3)
    assert hlg.get(dsk, [["x"], "y"], scheduler=scheduler, num_workers=2) == ((1,), 2)
    assert hlg.get(dsk, [["x", ["y"]], []], scheduler="sync") == ((1, (2,)), ())


def test_get_accepts_every_graph_form(scheduler):
    dsk = {"x": 1, "y": (inc, "x")}
    graph = hlg.HighLevelGraph.from_dict(dsk)
    layer = next(iter(graph.layers.values()))
    flat = hlg.unpack(hlg.pack(graph, "y"))
    for form in (dsk, graph, layer, flat, hlg.pack(graph, "y")):
        assert hlg.get(form, "y", scheduler=scheduler, num_workers=2) == 2
    assert hlg.get(flat, scheduler=scheduler, num_workers=2) == (2,)


def test_dask_conventions_hold_for_dict_graphs(scheduler):
    dsk = {
        "a": 1,
        "alias": "a",
        "list-with-tasks": [(inc, "a"), "alias", 5],
        "nested": (add, (inc, "a"), (inc, (inc, "a"))),
        "unhashable": {"k": [1, 2]},
        "kw": (hlg.apply, add, ["a"], {"y": 10}),
    }
    out = hlg.get(dsk, list(dsk), scheduler=scheduler, num_workers=2)
    assert out == (1, 1, [2, 1, 5], 5, {"k": [1, 2]}, 11)


def test_unknown_key_raises_key_error_naming_it(scheduler):
    with pytest.raises(KeyError, match="'missing'") as info:
        hlg.get({"x": 1}, "missing", scheduler=scheduler)
    assert isinstance(info.value, hlg.MissingKeyError)


def test_only_what_the_keys_need_runs(scheduler):
    dsk = {"a": (inc, 1), "b": (boom, 1), "c": (add, "a", "a")}
    assert hlg.get(dsk, "c", scheduler=scheduler, num_workers=2) == 4


def test_task_errors_keep_their_type_and_name_the_key(scheduler):
    with pytest.raises(ValueError, match="bad value 1") as info:
        hlg.get({"x": 1, "y": (boom, "x")}, "y", scheduler=scheduler, num_workers=2)
    assert any("'y'" in note for note in info.value.__notes__)
    if scheduler == "processes":
        assert any("Traceback" in note and "boom" in note for note in info.value.__notes__)
    else:
        assert info.traceback[-1].name == "boom"


def test_an_error_stops_new_tasks_from_starting():
    started = []

    class Record(Callback):
        def pretask(self, key, state):
            started.append(key)

    dsk = {("ok", i): (inc, i) for i in range(50)}
    dsk["bad"] = (boom, 0)
    dsk["all"] = (total, [*[("ok", i) for i in range(50)], "bad"])
    with pytest.raises(ValueError, match="bad value 0"):
        hlg.get(dsk, "all", scheduler="sync", callbacks=[Record()])
    assert "all" not in started


def test_rerun_exceptions_locally_raises_in_the_calling_thread():
    seen = []

    def where(x):
        seen.append(threading.current_thread().name)
        raise KeyError(x)

    with pytest.raises(KeyError) as info:
        hlg.get({"y": (where, 1)}, "y", scheduler="threads", rerun_exceptions_locally=True)
    assert seen[-1] == threading.current_thread().name
    assert seen[0].startswith("hlg-worker")
    assert any("rerun locally" in note for note in info.value.__notes__)


def test_a_dead_worker_process_is_an_hlg_error_naming_the_key():
    with pytest.raises(hlg.WorkerDiedError, match="'dies'"):
        hlg.get({"dies": (die, 1)}, "dies", scheduler="processes", num_workers=1)


def test_a_worker_that_cannot_start_says_how_to_guard_the_main_module(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import hlg
            print(hlg.get({"x": (abs, -1)}, "x", scheduler="processes", num_workers=1))
            """
        )
    )
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("hlg.errors.WorkerDiedError: worker process 0 exited")
    assert "before it started, so task 'x' never ran" in last
    assert "if __name__ == '__main__':" in last
    # Guarded, the same script runs.
    script.write_text(
        script.read_text().replace("print(", "if __name__ == '__main__':\n    print(")
    )
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0 and run.stdout.strip() == "1", run.stderr


def test_keyboard_interrupt_stops_new_tasks_waits_and_reraises():
    started = []
    finished = []

    class Record(Callback):
        def pretask(self, key, state):
            started.append(key)

        def posttask(self, key, result, state, worker_id):
            finished.append(key)

    interrupted = threading.Event()

    def on_interrupt(signum, frame):
        interrupted.set()
        raise KeyboardInterrupt

    def interrupt(x):
        _thread.interrupt_main()
        # Run on only once the main thread has taken the interrupt, however long the
        # machine keeps it waiting; the scheduler then stops before this task ends.
        assert interrupted.wait(60)
        return slow(x, 0.2)

    dsk = {"first": (interrupt, 1)}
    dsk.update({("later", i): (slow, "first", 0.01) for i in range(20)})
    # Python runs the Ctrl-C handler at its next chance in the main thread; inside a
    # garbage-collector callback or a finaliser the KeyboardInterrupt is printed and
    # dropped. With the collector off, it reaches the scheduler's own wait.
    gc.disable()
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            hlg.get(
                dsk,
                [("later", i) for i in range(20)],
                scheduler="threads",
                num_workers=1,
                callbacks=[Record()],
            )
    finally:
        signal.signal(signal.SIGINT, previous)
        gc.enable()
    assert interrupted.is_set()
    assert started == ["first"]
    assert finished == ["first"]  # the running task was allowed to finish


def test_intermediate_results_are_released(scheduler):
    peak = [0]

    class Watch(Callback):
        def posttask(self, key, result, state, worker_id):
            peak[0] = max(peak[0], len(state.cache))

    n = 200
    dsk = {("c", 0): 0}
    dsk.update({("c", i): (inc, ("c", i - 1)) for i in range(1, n)})
    assert (
        hlg.get(dsk, ("c", n - 1), scheduler=scheduler, num_workers=2, callbacks=[Watch()]) == n - 1
    )
    assert peak[0] <= 2


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_results_die_once_released(scheduler):
    class Big:
        pass

    refs = []

    def make(_):
        obj = Big()
        refs.append(weakref.ref(obj))
        return obj

    def check(prev):
        assert sum(r() is not None for r in refs) <= 2
        return prev

    dsk = {("s", 0): (make, 0)}
    for i in range(1, 50):
        dsk[("m", i)] = (check, ("s", i - 1))
        dsk[("s", i)] = (make, ("m", i))
    hlg.get(dsk, ("s", 49), scheduler=scheduler, num_workers=2)


@pytest.mark.parametrize("watched", [False, True])
def test_an_idle_thread_holds_no_released_result(watched):
    # R is released once D has run; the thread that ran R then sits idle while E
    # runs on the other thread, and must not keep R alive meanwhile.
    class Big:
        pass

    made = []

    def make():
        obj = slow(Big(), 0.1)
        made.append(weakref.ref(obj))
        return obj

    def join(r, s):
        return s

    def check(e):
        return made[0]() is None

    dsk = {
        "R": (make,),
        "S": (slow, 0, 0.1),
        "D": (join, "R", "S"),
        "E": (slow, "D", 0.1),
        "F": (check, "E"),
    }
    callbacks = [Callback()] if watched else []
    assert hlg.get(dsk, "F", scheduler="threads", num_workers=2, callbacks=callbacks) is True


def test_only_requested_results_are_held_at_the_end():
    seen = {}

    class Last(Callback):
        def finish(self, state, errored):
            seen["cache"] = set(state.cache)

    dsk = {"a": 1, "b": (inc, "a"), "c": (inc, "b"), "d": (add, "b", "c")}
    hlg.get(dsk, ["d", "b"], scheduler="sync", callbacks=[Last()])
    assert seen["cache"] == {"b", "d"}


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_a_100000_task_chain_runs(scheduler):
    n = 100_000
    dsk = {("c", 0): 0}
    dsk.update({("c", i): (inc, ("c", i - 1)) for i in range(1, n)})
    assert hlg.get(dsk, ("c", n - 1), scheduler=scheduler, num_workers=2) == n - 1


def test_sync_runs_are_deterministic():
    traces = []
    for _ in range(3):
        trace = []

        class Trace(Callback):
            def pretask(self, key, state, trace=trace):
                trace.append(key)

        dsk = {("x", i): (inc, i) for i in range(30)}
        dsk.update({("y", i): (add, ("x", i), ("x", (i * 7) % 30)) for i in range(30)})
        dsk["z"] = (total, [("y", i) for i in range(30)])
        hlg.get(dsk, "z", scheduler="sync", callbacks=[Trace()])
        traces.append(trace)
    assert traces[0] == traces[1] == traces[2]


def test_cycles_are_reported():
    with pytest.raises(hlg.CycleError, match="'a'"):
        hlg.get({"a": (inc, "b"), "b": (inc, "a"), "c": 1}, "a", scheduler="sync")


def test_unknown_scheduler_and_bad_worker_counts_are_refused():
    with pytest.raises(hlg.UsageError, match="unknown scheduler 'gpu'"):
        hlg.get({"a": 1}, "a", scheduler="gpu")
    with pytest.raises(hlg.UsageError, match="num_workers"):
        hlg.get({"a": 1}, "a", num_workers=0)


def test_get_without_keys_needs_a_packed_or_flat_graph():
    with pytest.raises(hlg.UsageError, match="pass the keys"):
        hlg.get({"x": 1})


def test_processes_load_each_function_once_per_worker():
    import os

    from .helpers import CountedFunction

    counted = CountedFunction()
    dsk = {("p", i): (counted, i) for i in range(40)}
    results = hlg.get(dsk, list(dsk), scheduler="processes", num_workers=2)
    pids = {p for p, _ in results}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    assert {loads for _, loads in results} == {1}


def test_live_task_groups_count_states_and_results(scheduler):
    seen = {}

    class Groups(Callback):
        measures_sizes = True

        def finish(self, state, errored):
            seen.update(state.groups)

    dsk = {("x-1a2b3c4d", i): (inc, i) for i in range(4)}
    dsk["total-9f8e7d6c"] = (total, [("x-1a2b3c4d", i) for i in range(4)])
    hlg.get(dsk, "total-9f8e7d6c", scheduler=scheduler, num_workers=2, callbacks=[Groups()])
    x = seen["x-1a2b3c4d"]
    assert x.states[hlg.TaskState.RELEASED] == 4 and x.ntasks == 4
    assert x.types == {"int"} and x.nbytes_total > 0 and x.duration >= 0
    assert seen["total"].states[hlg.TaskState.MEMORY] == 1
    assert seen["total"].dependencies == {"x-1a2b3c4d"}


def _traced_graph(trace):
    def note(name, *inputs):
        trace.append(name)
        return len(inputs)

    dsk = {("x", i): (note, f"x{i}") for i in range(30)}
    dsk.update({("y", i): (note, f"y{i}", ("x", i), ("x", (i * 7) % 30)) for i in range(30)})
    dsk["total"] = (note, "z", [("y", i) for i in range(30)])
    return dsk


def test_sync_runs_tasks_in_the_same_order_whether_watched_or_not():
    unwatched, watched = [], []
    hlg.get(_traced_graph(unwatched), "total", scheduler="sync")
    hlg.get(_traced_graph(watched), "total", scheduler="sync", callbacks=[Callback()])
    assert len(unwatched) == 61
    assert unwatched == watched


def test_threads_start_nothing_after_a_failure_even_among_tasks_taken_together():
    ran = []

    def note(i):
        ran.append(i)
        if i == 10:
            raise ValueError("ten")
        return i

    dsk = {("t", i): (note, i) for i in range(300)}
    with pytest.raises(ValueError, match="ten"):
        hlg.get(dsk, list(dsk), scheduler="sync")
    on_sync = list(ran)
    ran.clear()
    with pytest.raises(ValueError, match="ten") as info:
        hlg.get(dsk, list(dsk), scheduler="threads", num_workers=1)
    assert ran == on_sync and ran[-1] == 10
    assert any("('t', 10)" in note for note in info.value.__notes__)


def test_threads_run_wide_graphs_of_quick_tasks_completely():
    dsk = {("x", i): (inc, i) for i in range(5000)}
    dsk.update({("y", i): (add, ("x", i), ("x", 4999 - i)) for i in range(5000)})
    dsk["z"] = (total, [("y", i) for i in range(5000)])
    assert hlg.get(dsk, "z", scheduler="threads", num_workers=3) == 5000 * 5001
    assert hlg.get(dsk, ["z", ("x", 7)], scheduler="threads", num_workers=2) == (5000 * 5001, 8)


@pytest.mark.parametrize("name", sorted(hlg.execute.local.SCHEDULERS))
def test_every_scheduler_name_selects_a_driver_that_runs_graphs(name):
    from hlg.execute.local import driver_for

    driver = driver_for(name)
    assert driver.name in {"sync", "threads", "processes"}
    assert driver.uses_processes == (driver.name == "processes")
    assert driver.concurrent == (driver.name != "sync")
    assert hlg.get({"a": 1, "b": (inc, "a")}, "b", scheduler=name, num_workers=1) == 2


def test_an_unknown_scheduler_name_lists_the_choices():
    with pytest.raises(hlg.UsageError, match="choose 'sync', 'threads' or 'processes'") as info:
        hlg.get({"a": 1}, "a", scheduler="cluster")
    assert "'multiprocessing'" in str(info.value)
    with pytest.raises(hlg.UsageError, match="or pass an hlg.Client"):
        hlg.dask_scheduler("cluster")
    with pytest.raises(hlg.UsageError, match="unknown scheduler"):
        hlg.get({"a": 1}, "a", scheduler=hlg.get)
