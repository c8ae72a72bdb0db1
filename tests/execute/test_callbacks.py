import io

import pytest

import hlg
from hlg import Callback, Profiler, ProgressBar

from .helpers import inc, total


def graph(n=20):
    dsk = {("x", i): (inc, i) for i in range(n)}
    dsk["sum"] = (total, [("x", i) for i in range(n)])
    return dsk


class Everything(Callback):
    def __init__(self):
        self.events = []

    def start(self, graph):
        self.events.append(("start", len(graph)))

    def start_state(self, state):
        self.events.append(("start_state", state.ntasks))

    def pretask(self, key, state):
        self.events.append(("pre", key))

    def posttask(self, key, result, state, worker_id):
        self.events.append(("post", key, result))

    def finish(self, state, errored):
        self.events.append(("finish", errored))


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_every_hook_is_called_in_order(scheduler):
    cb = Everything()
    assert hlg.get(graph(3), "sum", scheduler=scheduler, num_workers=2, callbacks=[cb]) == 6
    kinds = [e[0] for e in cb.events]
    assert kinds[:2] == ["start", "start_state"] and kinds[-1] == "finish"
    assert kinds.count("pre") == kinds.count("post") == 4
    assert ("post", "sum", 6) in cb.events
    assert cb.events[-1] == ("finish", False)


def test_finish_reports_errors():
    from .helpers import boom

    cb = Everything()
    with pytest.raises(ValueError, match="bad value"):
        hlg.get({"b": (boom, 1)}, "b", scheduler="sync", callbacks=[cb])
    assert cb.events[-1] == ("finish", True)


def test_a_callback_is_global_inside_a_with_block():
    cb = Everything()
    with cb:
        hlg.get({"a": 1}, "a", scheduler="sync")
    hlg.get({"a": 1}, "a", scheduler="sync")
    assert [e[0] for e in cb.events].count("finish") == 1


def test_progress_bar_draws_when_forced_and_is_quiet_otherwise():
    out = io.StringIO()
    hlg.get(graph(), "sum", scheduler="threads", callbacks=[ProgressBar(out=out, force=True)])
    assert "21/21" in out.getvalue()
    quiet = io.StringIO()
    hlg.get(graph(), "sum", scheduler="sync", callbacks=[ProgressBar(out=quiet)])
    assert quiet.getvalue() == ""


def test_profiler_records_every_task_with_a_table_and_a_timeline():
    with Profiler() as prof:
        hlg.get(graph(10), "sum", scheduler="threads", num_workers=2)
    assert len(prof.records) == 11
    assert {r.worker_id for r in prof.records} <= {0, 1}
    assert all(r.end >= r.start for r in prof.records)
    table = prof.table()
    assert table.splitlines()[0].split() == [
        "group",
        "tasks",
        "total",
        "s",
        "mean",
        "ms",
        "max",
        "ms",
    ]
    assert any(line.startswith("x ") and " 10 " in line for line in table.splitlines())
    svg = prof.to_svg()
    assert svg.startswith("<svg") and svg.count("<rect") == 11
    assert "<title>(&#x27;x&#x27;, 3)" in svg


def test_profiler_keeps_every_run_of_its_with_block_and_forgets_older_ones():
    prof = Profiler()
    hlg.get({"old": 1}, "old", scheduler="sync", callbacks=[prof])
    with prof:
        hlg.get(graph(2), "sum", scheduler="sync")
        hlg.get({"a": 1}, "a", scheduler="threads")
    assert [r.key for r in prof.records] == [("x", 0), ("x", 1), "sum", "a"]
