import pytest

import hlg
from hlg import Client, Ref, Task, TaskRef

from .helpers import add, inc, pid, total


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
