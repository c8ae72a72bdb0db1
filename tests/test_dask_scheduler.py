"""hlg.get and hlg.dask_scheduler called the way dask calls a scheduler."""

from __future__ import annotations

from operator import add
from typing import Any

import pytest

import hlg
from hlg.daskspec import DASK_SCHEDULER_KWARGS

GRAPH = {"x": 1, "y": (add, "x", 2)}


@pytest.mark.parametrize("name", sorted(DASK_SCHEDULER_KWARGS))
def test_get_accepts_and_ignores_dask_scheduler_kwargs(name: str) -> None:
    assert hlg.get(GRAPH, ["y"], scheduler="sync", **{name: None}) == (3,)


def test_get_refuses_an_unknown_keyword_argument() -> None:
    with pytest.raises(hlg.UsageError, match="unexpected keyword argument 'num_wrokers'"):
        hlg.get(GRAPH, "y", num_wrokers=2)


def test_get_honours_num_workers_from_dask() -> None:
    with pytest.raises(hlg.UsageError, match="num_workers must be at least 1"):
        hlg.get(GRAPH, "y", scheduler="threads", num_workers=0, cache={})


def test_get_honours_rerun_exceptions_locally() -> None:
    with pytest.raises(ZeroDivisionError) as info:
        hlg.get({"z": (divmod, 1, 0)}, "z", rerun_exceptions_locally=True, chunksize=4)
    assert any("rerun locally" in note for note in info.value.__notes__)


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_dask_scheduler_runs_a_dask_call(scheduler: str) -> None:
    run = hlg.dask_scheduler(scheduler, num_workers=1)
    assert run.scheduler == scheduler and run.num_workers == 1
    assert run(GRAPH, ["y", "x"], cache={}, optimize_graph=True) == (3, 1)


def test_dask_scheduler_through_a_client_uses_its_data() -> None:
    with hlg.Client(scheduler="sync") as client:
        ref = client.scatter(10)
        run = hlg.dask_scheduler(client)
        assert run.client is client
        assert run({"y": (add, ref, 1)}, ["y"], num_workers=3, pool=None) == (11,)
        with pytest.raises(hlg.UsageError, match="unexpected keyword argument 'bogus'"):
            run(GRAPH, ["y"], bogus=1)


def test_dask_scheduler_refuses_bad_arguments() -> None:
    with pytest.raises(hlg.UsageError, match="unknown scheduler 'gpu'"):
        hlg.dask_scheduler("gpu")
    with pytest.raises(hlg.UsageError, match="num_workers must be at least 1"):
        hlg.dask_scheduler("threads", num_workers=0)


def test_dask_scheduler_has_no_persist_method() -> None:
    # dask.persist hands a whole collection to a scheduler object's own persist().
    assert not hasattr(hlg.dask_scheduler("sync"), "persist")


def test_dask_scheduler_takes_dask_expressions() -> None:
    dask = pytest.importorskip("dask")

    @dask.delayed
    def scale(a: int, b: int = 1) -> int:
        return a * b

    total: Any = scale(scale(2, b=3), b=scale(4))
    assert dask.compute(total, scheduler=hlg.dask_scheduler("threads")) == (24,)
    assert dask.compute(total, scheduler=hlg.get, num_workers=2) == (24,)
