"""hlg.order holds no more results at peak than dask.order, on dask's own cases and array shapes."""

from itertools import pairwise

import pytest

import hlg
from hlg.execute.memory_order import memory_order, order_acyclic
from hlg.execute.order import order_tasks

from .helpers import printed_under_hash_seeds
from .order_cases import (
    CASES,
    DASK_PEAK,
    avoid_upwards_branching,
    f,
    map_reduce_with_slicing,
    overlap_sum,
    peak_held,
    rechunk_map_reduce_cohorts,
)


@pytest.mark.parametrize("name", sorted(CASES))
def test_order_holds_no_more_than_dask_at_peak(name):
    graph = CASES[name]()
    assert peak_held(graph, hlg.order(graph)) <= DASK_PEAK[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_order_is_a_topological_numbering_of_each_case(name):
    graph = CASES[name]()
    priority = hlg.order(graph)
    assert sorted(priority.values()) == list(range(len(graph)))
    for key, node in hlg.convert_graph(graph).items():
        assert all(priority[d] < priority[key] for d in node.dependencies)


def test_every_case_has_a_recorded_dask_figure():
    assert set(CASES) == set(DASK_PEAK)


def test_peak_held_counts_as_dask_diagnostics_does():
    # a -> b -> c, with d beside: before each run, held = results still needed.
    graph = {"a": (f,), "d": (f,), "b": (f, "a"), "c": (f, "b", "d")}
    assert peak_held(graph, {"a": 0, "b": 1, "d": 2, "c": 3}) == 2  # b and d before c
    assert peak_held(graph, {"d": 0, "a": 1, "b": 2, "c": 3}) == 2
    assert peak_held(graph, {"a": 0, "d": 1, "b": 2, "c": 3}) == 2  # a and d before b
    assert peak_held({"x": (f,), "y": (f, "x")}, {"x": 0, "y": 1}) == 1  # y is handed over


def test_order_runs_the_second_dependent_of_a_splitter_right_after_the_first():
    # Each load feeds a P and a Q task. Once P0 has run, Q0 releases load 0 and
    # adds one result: it runs at once, before load 1.
    graph = {("load", i): (f,) for i in range(2)}
    for i in range(2):
        graph[("P", i)] = (f, ("load", i))
        graph[("Q", i)] = (f, ("load", i))
    graph["P"] = (f, ("P", 0), ("P", 1))
    graph["Q"] = (f, ("Q", 0), ("Q", 1))
    priority = hlg.order(graph)
    assert priority[("Q", 0)] == priority[("P", 0)] + 1
    assert priority[("load", 1)] == priority[("Q", 0)] + 1


def test_order_finishes_the_outputs_that_share_held_inputs_first():
    # Two clusters of outputs; finishing one cluster before loading the other's
    # inputs needs the walk that takes its goals from what is held.
    graph = rechunk_map_reduce_cohorts()
    priority = hlg.order(graph)
    outputs = sorted((("transpose", i, j, 0) for i in range(2) for j in range(2)), key=priority.get)
    assert [key[2] for key in outputs] in ([0, 0, 1, 1], [1, 1, 0, 0])
    assert peak_held(graph, priority) == 7


def test_order_keeps_the_static_walk_where_it_holds_less():
    # On map_overlap's grid the goal-driven walk holds more (67); the static one 51.
    graph = overlap_sum()
    assert peak_held(graph, hlg.order(graph)) == 51


def test_order_computes_a_shared_dependency_before_a_private_one():
    # c1 feeds a3 and d1: computing it first lets d1 run at once, so neither b1
    # nor c1 waits through the other branch.
    priority = hlg.order(avoid_upwards_branching())
    assert priority["d1"] < priority["b1"]


def test_order_loads_each_input_group_once_per_output():
    priority = hlg.order(map_reduce_with_slicing())
    outputs = sorted((("transpose", 0, i, j) for i in range(2) for j in range(2)), key=priority.get)
    steps = {priority[b] - priority[a] for a, b in pairwise(outputs)}
    assert steps == {8}  # per output: 2 opens, 2 getitems, 2 chunks, aggregate, transpose


def test_order_is_the_same_under_every_hash_seed_on_string_keys():
    code = (
        "from tests.execute.order_cases import eager_to_free_parent; import hlg; "
        "print(sorted(hlg.order(eager_to_free_parent()).items(), key=lambda kv: kv[1]))"
    )
    outs = printed_under_hash_seeds(code, ("1", "2"))
    assert len(outs) == 1


def test_memory_order_handles_the_empty_graph_and_lone_tasks():
    assert memory_order([]) == []
    assert memory_order([[], [], []]) == [0, 1, 2]
    assert hlg.order({}) == {}


def test_memory_order_walks_from_the_outputs_given_first():
    # Two independent chains: 0 -> 1 and 2 -> 3; prefer output 3.
    assert memory_order([[], [0], [], [2]], outputs=[3, 1]) == [2, 3, 0, 1]
    assert memory_order([[], [0], [], [2]], outputs=[0, 3, 1]) == [2, 3, 0, 1]  # 0 is no output


def test_memory_order_puts_a_cycle_last_and_what_can_run_first():
    # 0 is free; 1 and 2 need each other; 3 needs 1; 4 needs 0.
    assert memory_order([[], [2], [1], [1], [0]]) == [0, 4, 1, 2, 3]
    # The cycle is reached from an output: the static walk notices it.
    assert memory_order([[], [0, 2], [1], [1]]) == [0, 1, 2, 3]


def test_order_tasks_with_roots_orders_what_they_need_by_memory():
    tasks = hlg.convert_graph(rechunk_map_reduce_cohorts())
    wanted = [("transpose", 0, 0, 0), ("transpose", 1, 0, 0)]
    priority = order_tasks(tasks, roots=wanted)
    assert ("transpose", 0, 1, 0) not in priority
    assert sorted(priority.values()) == list(range(len(priority)))
    # The two outputs share inputs: one follows the other closely.
    assert abs(priority[wanted[0]] - priority[wanted[1]]) < len(priority) // 2


def test_order_tasks_with_roots_orders_the_needed_tasks_as_a_graph_of_only_them():
    graph = rechunk_map_reduce_cohorts()
    tasks = hlg.convert_graph(graph)
    wanted = [("transpose", 0, 0, 0), ("transpose", 1, 0, 0)]
    priority = order_tasks(tasks, roots=iter(wanted))  # roots are read once
    needed = {k: graph[k] for k in tasks if k in priority}
    assert priority == order_tasks(hlg.convert_graph(needed), roots=wanted)
    assert 0 < len(priority) < len(tasks)


def test_order_tasks_with_roots_accepts_known_data_and_names_a_missing_key():
    ref = hlg.TaskRef
    tasks = {"b": hlg.Task(f, ref("a")), "c": hlg.Task(f, ref("b")), "d": hlg.Task(f, ref("z"))}
    assert order_tasks(tasks, roots=["c"], known={"a"}) == {"b": 0, "c": 1}
    with pytest.raises(hlg.MissingDependencyError, match="'b' needs 'a'"):
        order_tasks(tasks, roots=["c"], known=set())


def test_order_handles_deep_chains_and_wide_fans_without_recursion():
    chain = {("c", 0): (f,)}
    chain.update({("c", i): (f, ("c", i - 1)) for i in range(1, 50_000)})
    assert hlg.order(chain)[("c", 49_999)] == 49_999
    fan = {("x", i): (f,) for i in range(10_000)}
    fan["total"] = (f, [("x", i) for i in range(10_000)])
    assert peak_held(fan, hlg.order(fan)) == 10_000


def test_order_acyclic_reports_cycles_the_walk_meets():
    assert order_acyclic([[1], [0]]) is None  # no task is free of dependents: no output
    assert order_acyclic([[], [0, 2], [1], [1]]) is None  # reached from output 3
    assert order_acyclic([[0]]) is None  # a task that needs itself
    assert order_acyclic([[], [0], [1]]) == [0, 1, 2]


def test_order_names_a_cycle_behind_the_tasks_that_can_run():
    graph = {"a": (f,), "b": (f, "a", "c"), "c": (f, "d"), "d": (f, "c"), "e": (f, "b")}
    with pytest.raises(hlg.CycleError, match="'c' -> 'd' -> 'c'|'d' -> 'c' -> 'd'"):
        hlg.order(graph)
