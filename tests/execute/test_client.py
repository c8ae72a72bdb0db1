import re
import threading
import time

import pytest

import hlg
from hlg import Client, ClientState, Ref, Task, TaskRef

from .helpers import add, inc, pid, total, wait_for_file


@pytest.fixture(params=["sync", "threads", "processes"])
def client(request):
    with Client(scheduler=request.param, num_workers=2) as c:
        yield c


def test_scatter_one_object_gives_one_ref(client):
    ref = client.scatter(41)
    assert isinstance(ref, Ref) and ref.key.startswith("int-")
    assert client.gather(ref) == 41


def test_scatter_a_list_gives_a_list_of_refs_and_a_tuple_a_tuple(client):
    refs = client.scatter([1, 2, 3])
    assert isinstance(refs, list) and len(refs) == 3
    assert client.gather(refs) == [1, 2, 3]
    pair = client.scatter((4, 5))
    assert isinstance(pair, tuple) and client.gather(pair) == (4, 5)


def test_scatter_a_dict_keeps_its_keys(client):
    refs = client.scatter({"x": 1, ("y", 0): 2})
    assert refs == {"x": Ref("x"), ("y", 0): Ref(("y", 0))}
    assert client.gather(refs) == {"x": 1, ("y", 0): 2}
    assert client.compute({"z": (add, "x", ("y", 0))}, "z") == 3


def test_hash_true_names_equal_data_alike_and_hash_false_does_not(client):
    assert client.scatter([1, 2]) == client.scatter([1, 2])
    assert client.scatter("a") != client.scatter("b")
    assert client.scatter(7, hash=False) != client.scatter(7, hash=False)
    assert client.scatter(7, hash=False).key.startswith("int-")


def test_compute_takes_refs_taskrefs_and_keys_to_scattered_data(client):
    x = client.scatter(10)
    graph = {
        "a": (inc, x),
        "b": Task(add, TaskRef(x.key), 5),
        "c": (add, x.key, "a"),
        "d": (total, [x, "a"]),
    }
    assert client.compute(graph, ["a", "b", "c", "d"]) == (11, 15, 21, 21)
    assert client.compute(graph, x.key) == 10


def test_data_persists_between_computations_until_released(client):
    x = client.scatter(3)
    assert client.compute({"y": (inc, x)}, "y") == 4
    assert client.compute({"y": (add, x, x)}, "y") == 6
    client.release(x)
    with pytest.raises(hlg.MissingDependencyError, match=repr(x.key)):
        client.compute({"y": (inc, x)}, "y")
    with pytest.raises(hlg.MissingKeyError, match="released or never scattered"):
        client.gather(x)


def test_compute_of_packed_and_high_level_graphs(client):
    x = client.scatter(5)
    layer = hlg.MaterializedLayer({"y": (inc, x)}, name="y")
    graph = hlg.HighLevelGraph({"y": layer})
    data = hlg.pack(graph, "y")
    assert x.key.encode() in data
    assert hlg.unpack(data).remote_keys == {x.key}
    assert client.compute(data) == (6,)
    assert client.compute(graph, "y") == 6


def test_packing_ships_ref_keys_never_their_data():
    with Client(scheduler="sync") as c:
        big = c.scatter(b"x" * 100_000)
        data = hlg.pack({"n": (len, big)}, "n")
        assert len(data) < 2_000
        assert hlg.unpack(data).remote_keys == {big.key}
        assert c.compute(data) == (100_000,)


def test_broadcast_copies_data_to_every_worker_once():
    with Client(scheduler="processes", num_workers=2) as c:
        x = c.scatter({"big": list(range(1000))}, broadcast=True)["big"]
        pids = c.compute({("p", i): (pid, x) for i in range(6)}, [("p", i) for i in range(6)])
        assert 1 <= len(set(pids)) <= 2
        assert c.compute({"s": (total, x)}, "s") == sum(range(1000))
        c.release(x)
        assert x.key not in c.held_keys


def test_the_process_pool_lives_as_long_as_the_client():
    with Client(scheduler="processes", num_workers=1) as c:
        first = c.compute({"p": (pid, 1)}, "p")
        second = c.compute({"p": (pid, 2)}, "p")
        assert first == second


def test_a_closed_client_refuses_work():
    c = Client(scheduler="sync")
    c.close()
    with pytest.raises(hlg.UsageError, match="closed"):
        c.scatter(1)


def test_unknown_scheduler_is_refused():
    with pytest.raises(hlg.UsageError, match="unknown scheduler"):
        Client(scheduler="cluster")


# --------------------------------------------------------------------------- lifecycle


def _until(condition, timeout=120):
    # Poll for a state another thread or process reaches; no result depends on timing.
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {timeout} s: {condition}"
        time.sleep(0.005)


def test_closing_twice_is_allowed_and_the_state_only_moves_forward():
    c = Client(scheduler="sync")
    assert c.state is ClientState.OPEN and "0 keys held" in repr(c)
    c.close()
    assert c.state is ClientState.CLOSED
    c.close()
    assert c.state is ClientState.CLOSED and repr(c).endswith(": closed>")


@pytest.mark.parametrize(
    "use",
    [
        lambda c: c.scatter(1),
        lambda c: c.gather(Ref("x")),
        lambda c: c.release("x"),
        lambda c: c.compute({"y": 1}, "y"),
    ],
)
def test_every_use_of_a_closed_client_is_a_usage_error(use):
    with Client(scheduler="threads", num_workers=1) as c:
        c.scatter({"x": 1})
    with pytest.raises(hlg.UsageError, match="this hlg.Client is closed; create a new one"):
        use(c)


def test_data_scattered_while_the_client_closes_is_refused_not_held():
    client = hlg.Client(scheduler="sync")

    class ClosesWhenNamed:
        # Naming scattered data tokenizes it: close the client right then, after
        # scatter's first check that it is open.
        def __hlg_tokenize__(self):
            client.close()
            return "closes"

    with pytest.raises(hlg.UsageError, match="closed"):
        client.scatter(ClosesWhenNamed())
    assert client.held_keys == frozenset()


def test_a_threads_computation_running_when_the_client_closes_finishes(tmp_path):
    started, go = str(tmp_path / "started"), str(tmp_path / "go")
    c = Client(scheduler="threads", num_workers=1)
    x = c.scatter(5)
    results = []
    worker = threading.Thread(
        target=lambda: results.append(
            c.compute({"w": (wait_for_file, started, go), "y": (inc, x)}, ["w", "y"])
        )
    )
    worker.start()
    _until((tmp_path / "started").exists)
    c.close()  # nothing runs on worker processes: close does not wait
    assert c.state is ClientState.CLOSED and c.held_keys == frozenset()
    with pytest.raises(hlg.UsageError, match="closed"):
        c.scatter(1)
    (tmp_path / "go").touch()
    worker.join()
    assert results == [("done", 6)]  # it computed with the data it started with


def test_closing_while_the_worker_processes_compute_waits_and_refuses_new_work(tmp_path):
    started, go = str(tmp_path / "started"), str(tmp_path / "go")
    c = Client(scheduler="processes", num_workers=1)
    results, errors = [], []
    running = threading.Thread(
        target=lambda: results.append(c.compute({"w": (wait_for_file, started, go)}, "w"))
    )
    running.start()
    _until((tmp_path / "started").exists)

    def queued():
        try:
            c.compute({"p": (pid, 1)}, "p")
        except hlg.UsageError as err:
            errors.append(str(err))

    waiting = threading.Thread(target=queued)
    waiting.start()
    closer = threading.Thread(target=c.close)
    closer.start()
    _until(lambda: c.state is not ClientState.OPEN)
    assert c.state is ClientState.CLOSING  # the running computation holds the workers
    with pytest.raises(hlg.UsageError, match="this hlg.Client is closing"):
        c.scatter(1)
    (tmp_path / "go").touch()
    for thread in (running, waiting, closer):
        thread.join()
    assert results == ["done"]
    assert c.state is ClientState.CLOSED
    # The queued computation never ran: refused before, or after, waiting for the workers.
    assert len(errors) == 1
    assert re.match(
        r"this hlg.Client (is closing|is closed|was closed while this computation waited)",
        errors[0],
    )
