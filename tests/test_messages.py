"""Messages and reprs word counts and type names for the count and the name they show."""

import pytest

import hlg
from hlg.errors import article, counted
from hlg.limits import Budget, Cost, Limits
from hlg.visualize import block_counts, flat_to_dot

from .conftest import combine_rows, split_rows


def one_task_flat() -> hlg.FlatGraph:
    return hlg.unpack(hlg.pack({"x": 1}, "x"))


def test_counted_is_singular_for_one_only():
    assert [counted(n, "task") for n in (0, 1, 2, 1_000)] == [
        "0 tasks",
        "1 task",
        "2 tasks",
        "1,000 tasks",
    ]
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"


def test_article_follows_the_first_letter():
    assert [article(w) for w in ("int", "Opaque", "list", "tuple", "")] == [
        "an int",
        "an Opaque",
        "a list",
        "a tuple",
        "a ",
    ]


def test_a_key_of_a_type_starting_with_a_vowel_gets_an():
    with pytest.raises(hlg.InvalidKeyError, match=r"key \[1\] is a list;"):
        hlg.validate_key([1])
    with pytest.raises(hlg.InvalidKeyError, match=r"key 1j is a complex;"):
        hlg.validate_key(1j)
    with pytest.raises(hlg.InvalidKeyError, match=r"key <object object at .*> is an object;"):
        hlg.validate_key(object())


def test_reprs_of_one_task_are_singular():
    graph = hlg.HighLevelGraph.from_dict({"x": 1}, name="g")
    assert repr(graph) == "<HighLevelGraph: 1 layer, 1 task>"
    assert repr(graph.layers["g"]) == "<MaterializedLayer 'g': 1 task>"
    flat = one_task_flat()
    assert repr(flat) == "<FlatGraph: 1 task, 1 requested key, 0 remote keys>"
    assert repr(flat.prefixes["x"]) == "<TaskPrefix 'x': 1 group>"
    bw = hlg.blockwise(abs, "y", "i", "x", "i", numblocks={"x": (1,)})
    assert repr(bw).startswith("<Blockwise 'y': 1 task, ")


def test_shuffle_repr_counts_partitions_and_stages():
    layer = hlg.SimpleShuffleLayer("ss", "x", 5, split_rows, combine_rows, npartitions_out=1)
    assert repr(layer).endswith(" -> 1 partition in 1 stage>")


def test_client_repr_counts_the_keys_it_holds():
    with hlg.Client(scheduler="sync") as client:
        client.scatter(5)
        assert repr(client) == "<hlg.Client scheduler='sync': 1 key held>"
        client.scatter(6)
        assert repr(client) == "<hlg.Client scheduler='sync': 2 keys held>"


def test_limit_messages_are_singular_for_one():
    budget = Budget(Limits(tasks=0, references=1))
    with pytest.raises(hlg.TooManyTasksError, match="to 1 task, more than the limit of 0 tasks"):
        budget.charge(Cost(tasks=1), "layer 'a'")
    with pytest.raises(
        hlg.ResourceLimitError,
        match="to 2 references to other keys inside task arguments, more than the limit of "
        "1 reference to other keys inside task arguments",
    ):
        budget.charge(Cost(references=2), "layer 'a'")
    with pytest.raises(hlg.ResourceLimitError, match="is 2 bytes, more than the limit of 1 byte "):
        Limits(bytes=1).check_bytes(2)


def test_flat_picture_refusal_counts_one_task():
    with pytest.raises(hlg.UsageError, match="has 1 task, more than max_tasks=0"):
        flat_to_dot(one_task_flat(), max_tasks=0)
    assert "1 task in 1 task group" in flat_to_dot(one_task_flat())


def test_block_counts_of_one_block():
    one = hlg.blockwise(abs, "y", "i", "x", "i", numblocks={"x": (1,)})
    assert block_counts(one) == "1 block"
    grid = hlg.blockwise(abs, "y", "ij", "x", "ij", numblocks={"x": (1, 3)})
    assert block_counts(grid) == "1 x 3 blocks"


def test_finalize_note_names_the_type_with_its_article():
    class Odd:
        def __hlg_graph__(self):
            return hlg.HighLevelGraph.from_dict({"x": 1}, name="x")

        def __hlg_layers__(self):
            return ("x",)

        def __hlg_keys__(self):
            return "x"

        def __hlg_postcompute__(self):
            return (lambda value: 1 / 0), ()

    with pytest.raises(ZeroDivisionError) as info:
        hlg.compute(Odd(), scheduler="sync")
    assert info.value.__notes__[-1] == "hlg: raised while finalizing an Odd"
