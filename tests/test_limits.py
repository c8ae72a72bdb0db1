"""Limits, costs, the budget of one unpack, and the census of key hashes."""

import dataclasses
from itertools import product

import pytest

import hlg
from hlg.limits import COLLISION_LIMIT, Budget, Cost, KeyCensus, check_distinct_hashes


def test_limits_have_safe_defaults_and_are_raised_field_by_field():
    limits = hlg.Limits(tasks=50_000_000)
    assert limits.tasks == 50_000_000
    assert limits.references == hlg.Limits().references
    assert dataclasses.replace(limits, text=5).text == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.tasks = 1  # type: ignore[misc]


@pytest.mark.parametrize("value", [-1, 1.5, "10", None])
def test_limits_refuse_values_that_are_not_counts(value):
    with pytest.raises(hlg.UsageError, match="Limits.references must be an int >= 0"):
        hlg.Limits(references=value)


def test_costs_add_field_by_field():
    assert Cost(tasks=1, text=2) + Cost(tasks=3, inputs=4) == Cost(tasks=4, inputs=4, text=2)


def test_budget_names_the_limit_crossed_and_how_to_raise_it():
    budget = Budget(hlg.Limits(references=10))
    budget.charge(Cost(tasks=5, references=10), "layer 'a'")
    with pytest.raises(hlg.ResourceLimitError) as info:
        budget.charge(Cost(references=1), "layer 'b'")
    assert not isinstance(info.value, hlg.TooManyTasksError)
    message = str(info.value)
    assert "layer 'b'" in message and "11 references" in message
    assert "limits=hlg.Limits(references=...)" in message
    assert budget.spent == Cost(tasks=5, references=10)  # a refused charge is not kept


def test_budget_refuses_tasks_with_too_many_tasks_error():
    with pytest.raises(hlg.TooManyTasksError, match="max_tasks=..."):
        Budget(hlg.Limits(tasks=0)).charge(Cost(tasks=1), "layer 'a'")


def test_census_lets_honest_keys_with_negative_indices_pass():
    census = KeyCensus()
    census.add([("x", i, j) for i in range(-40, 40) for j in range(-40, 40)], "layer 'x'")
    census.add([("y", i) for i in range(-1000, 0)], "layer 'y'")
    census.add([-1, -2, 0.5], "layer 'z'")


def test_census_refuses_keys_colliding_across_batches():
    colliding = [("x", *p) for p in product((-1, -2), repeat=8)]
    census = KeyCensus()
    census.add(colliding[:COLLISION_LIMIT], "layer 'a'")
    with pytest.raises(hlg.ResourceLimitError, match="layer 'b': more than 64 distinct keys"):
        census.add(colliding[COLLISION_LIMIT:], "layer 'b'")


def test_census_remembers_a_larger_batch_after_a_smaller_one():
    colliding = [("x", *p) for p in product((-1, -2), repeat=7)]
    census = KeyCensus()
    census.add([("a", 0)], "layer 'a'")
    census.add([colliding[0], *(("z", i) for i in range(1_000))], "layer 'b'")
    with pytest.raises(hlg.ResourceLimitError, match="layer 'c': more than 64 distinct keys"):
        census.add(colliding[1 : COLLISION_LIMIT + 1], "layer 'c'")


def test_distinct_hash_check_counts_distinct_items_only():
    check_distinct_hashes([("x", -1)] * 10_000, "a set")
    colliding = [("x", *p) for p in product((-1, -2), repeat=7)]
    check_distinct_hashes(colliding[:COLLISION_LIMIT] * 50, "a set")
    with pytest.raises(hlg.ResourceLimitError, match="a set: more than 64 distinct items"):
        check_distinct_hashes(colliding, "a set")
