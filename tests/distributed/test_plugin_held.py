"""The plugin route with a graph whose requested keys the scheduler already holds."""

from __future__ import annotations

from operator import add
from typing import Any

import pytest

import hlg

distributed = pytest.importorskip("distributed")
hd = pytest.importorskip("hlg.distributed")

from tests.distributed import helpers  # noqa: E402 - after the skips

TIMEOUT = 60


def _held_again(dask_scheduler: Any) -> int:
    return int(dask_scheduler.plugins["hlg"].held_again)


def _graphs(dask_scheduler: Any) -> int:
    return int(dask_scheduler.plugins["hlg"].graphs)


def _counts(client: Any) -> tuple[int, int, dict[str, int]]:
    return (
        client.run_on_scheduler(_graphs),
        client.run_on_scheduler(_held_again),
        client.run_on_scheduler(helpers.materializations),
    )


def test_plugin_takes_a_held_graph_again_without_unpacking_it(client):
    graph = {"held-a": 20, "held-b": (add, "held-a", 1), "held-c": (add, "held-b", 1)}
    data = hlg.pack(graph, ["held-c"])
    [first] = hd.submit(data, ["held-c"], client, route="plugin")
    assert first.result(timeout=TIMEOUT) == 22
    graphs, held_again, built = _counts(client)
    # Same keys, same graph: the second client-side future shares the held result.
    [second] = hd.submit(data, ["held-c"], client, route="plugin")
    helpers.wait_until(lambda: client.run_on_scheduler(_held_again) > held_again, TIMEOUT)
    assert second.result(timeout=TIMEOUT) == 22
    assert _counts(client) == (graphs, held_again + 1, built)


def test_plugin_unpacks_a_graph_whose_keys_are_only_partly_held(client):
    data = hlg.pack({"part-a": 1, "part-b": (add, "part-a", 1)}, ["part-a", "part-b"])
    [a] = hd.submit(hlg.pack({"part-a": 1}, ["part-a"]), ["part-a"], client, route="plugin")
    assert a.result(timeout=TIMEOUT) == 1
    graphs, held_again, _ = _counts(client)
    futures = hd.submit(data, ["part-a", "part-b"], client, route="plugin")
    assert client.gather(futures) == [1, 2]
    assert _counts(client)[:2] == (graphs + 1, held_again)


def test_plugin_reports_a_held_error_again(client):
    data = hlg.pack({"held-bad": (helpers.boom, 3)}, ["held-bad"])
    [first] = hd.submit(data, ["held-bad"], client, route="plugin")
    with pytest.raises(ValueError, match="boom on 3"):
        first.result(timeout=TIMEOUT)
    held_again = client.run_on_scheduler(_held_again)
    [second] = hd.submit(data, ["held-bad"], client, route="plugin")
    helpers.wait_until(lambda: client.run_on_scheduler(_held_again) > held_again, TIMEOUT)
    with pytest.raises(ValueError, match="boom on 3"):
        second.result(timeout=TIMEOUT)


def test_plugin_refuses_held_keys_the_bytes_do_not_name(client):
    [held] = hd.submit(hlg.pack({"named-a": 7}, ["named-a"]), ["named-a"], client, route="plugin")
    assert held.result(timeout=TIMEOUT) == 7
    other = hlg.pack({"named-b": 8}, ["named-b"])
    future = distributed.Future("named-a", client)
    client._send_to_scheduler({"op": "hlg-update-graph", "graph": other, "keys": ["named-a"]})
    helpers.wait_until(lambda: future.status == "error", TIMEOUT)
    with pytest.raises(hlg.UsageError, match="keys differ from those packed"):
        future.result(timeout=TIMEOUT)


def test_other_bytes_naming_held_keys_are_unpacked_and_checked_in_full(client):
    data = hlg.pack({"digest-k": 5}, ["digest-k"])
    [held] = hd.submit(data, ["digest-k"], client, route="plugin")
    assert held.result(timeout=TIMEOUT) == 5
    graphs, held_again, _ = _counts(client)
    # A second client sends different bytes for the held key: a graph with a cycle.
    cyclic = hlg.pack(
        {"digest-k": (add, "digest-j", 1), "digest-j": (add, "digest-k", 1)},
        ["digest-k"],
        cull=False,
    )
    with distributed.Client(client.scheduler.address, set_as_default=False) as other:
        [bad] = hd.submit(cyclic, ["digest-k"], other, route="plugin")
        with pytest.raises(hlg.CycleError, match="cycle"):
            bad.result(timeout=TIMEOUT)
    assert _counts(client)[:2] == (graphs, held_again)
