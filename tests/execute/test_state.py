from heapq import heappop

import pytest

import hlg
from hlg import MissingDependencyError, Task, TaskRef
from hlg.execute.order import order_tasks
from hlg.execute.state import SchedulerState

from .helpers import add, inc
from .order_cases import CASES


def _tasks():
    return {
        "a": Task(inc, 1),
        "b": Task(inc, TaskRef("a")),
        "c": Task(add, TaskRef("a"), TaskRef("b")),
        "unused": Task(inc, 5),
    }


def test_build_numbers_only_what_the_requested_keys_need_after_their_dependencies():
    state = SchedulerState.build(_tasks(), ["c"])
    assert state.keys == ["a", "b", "c"]
    assert [sorted(deps) for deps in state.dependencies] == [[], [0], [0, 1]]
    assert state.dependents == [[1, 2], [2], []]
    assert state.ordered
    assert state.waiting == [0, 1, 2] and state.ready == [0]


def test_build_counts_a_key_referred_to_twice_by_a_task_once():
    tasks = {"a": Task(inc, 1), "b": Task(add, TaskRef("a"), TaskRef("a"))}
    for serial in (False, True):
        state = SchedulerState.build(tasks, ["b"], serial=serial)
        assert state.dependencies == [[], [0]]
        assert state.waiting_data == [1, 1]
    assert hlg.get(tasks, "b", scheduler="sync") == 4


def test_build_counts_a_requested_key_as_one_more_dependent():
    state = SchedulerState.build(_tasks(), ["c", "b", "b"])
    assert state.waiting_data == [2, 2, 1]
    assert state.requested == {"b", "c"}


def test_build_keeps_task_groups_only_when_asked():
    watched = SchedulerState.build(_tasks(), ["c"])
    assert sorted(watched.groups) == ["a", "b", "c"]
    assert watched.groups["c"].dependencies == {"a", "b"}
    assert [g.name for g in watched.group_of] == ["a", "b", "c"]
    unwatched = SchedulerState.build(_tasks(), ["c"], track_groups=False)
    assert (unwatched.groups, unwatched.prefixes, unwatched.group_of) == ({}, {}, [])
    assert not unwatched.tracks_groups
    unwatched.start(heappop(unwatched.ready))
    assert unwatched.finish(0, 2, 0.0) == 1  # b became ready; no group to count it in
    assert unwatched.cache == {"a": 2} and unwatched.ready == [1]


def test_build_puts_data_dependencies_in_the_cache():
    tasks = {"b": Task(add, TaskRef("a"), TaskRef("held")), "a": Task(inc, 1)}
    state = SchedulerState.build(tasks, ["b"], {"held": 10})
    assert state.keys == ["a", "b"] and state.dependencies == [[], [0]]
    assert state.cache == {"held": 10}


def test_a_cycle_leaves_the_order_unordered():
    tasks = {"a": Task(inc, TaskRef("b")), "b": Task(inc, TaskRef("a")), "c": Task(inc, 1)}
    state = SchedulerState.build(tasks, ["a", "c"])
    assert not state.ordered


def test_finish_releases_inputs_with_their_last_dependent_but_never_a_requested_key():
    state = SchedulerState.build(_tasks(), ["c", "a"])
    for i, result in enumerate([2, 3, 5]):
        assert heappop(state.ready) == i
        state.start(i)
        state.finish(i, result, 0.0)
    assert state.cache == {"a": 2, "c": 5}
    assert state.finished == 3 and not state.running


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_numbers_tasks_as_order_tasks_does(name):
    tasks = hlg.convert_graph(CASES[name]())
    sinks = set(tasks) - {d for node in tasks.values() for d in node.dependencies}
    for wanted in (sorted(sinks, key=repr), sorted(sinks, key=repr)[:1]):
        priority = order_tasks(tasks, roots=wanted)
        state = SchedulerState.build(tasks, wanted)
        assert state.keys == sorted(priority, key=priority.__getitem__)
        assert state.index == priority
        expected = [sorted(priority[d] for d in tasks[k].dependencies) for k in state.keys]
        assert [sorted(deps) for deps in state.dependencies] == expected


def test_build_orders_a_part_of_a_graph_with_data_as_order_tasks_does():
    tasks = {
        "unused": Task(inc, TaskRef("absent")),
        "a": Task(add, TaskRef("held"), 1),
        "b": Task(inc, TaskRef("a")),
        "c": Task(add, TaskRef("a"), TaskRef("held")),
        "d": Task(add, TaskRef("b"), TaskRef("c")),
        "e": Task(inc, 1),
    }
    priority = order_tasks(tasks, roots=["e", "d"], known={"held"})
    state = SchedulerState.build(tasks, ["e", "d"], {"held": 1, "other": 2})
    assert state.keys == sorted(priority, key=priority.__getitem__)
    assert state.cache == {"held": 1}
    assert [sorted(state.keys[d] for d in deps) for deps in state.dependencies] == [
        sorted(tasks[k].dependencies - {"held"}) for k in state.keys
    ]


def test_build_names_a_needed_dependency_that_is_neither_a_task_nor_data():
    tasks = {"a": Task(inc, TaskRef("absent")), "b": Task(inc, TaskRef("a")), "c": Task(inc, 1)}
    assert SchedulerState.build(tasks, ["c"]).keys == ["c"]  # "a" is not needed
    with pytest.raises(MissingDependencyError, match=r"task 'a' needs 'absent'.*scatter"):
        SchedulerState.build(tasks, ["b"], {"other": 1})


def test_build_serial_skips_what_only_the_ready_heap_reads_unless_there_is_a_cycle():
    full = SchedulerState.build(_tasks(), ["c"])
    lean = SchedulerState.build(_tasks(), ["c"], serial=True)
    assert (lean.keys, lean.dependencies) == (full.keys, full.dependencies)
    assert lean.waiting_data == full.waiting_data == [2, 1, 1]
    assert (lean.dependents, lean.waiting, lean.ready) == ([], [], [])
    tasks = {"a": Task(inc, TaskRef("b")), "b": Task(inc, TaskRef("a")), "c": Task(inc, 1)}
    cyclic = SchedulerState.build(tasks, ["a", "c"], serial=True)
    assert not cyclic.ordered
    assert cyclic.dependents == SchedulerState.build(tasks, ["a", "c"]).dependents
    assert cyclic.ready == [0]
