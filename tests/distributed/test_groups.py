"""Task groups and prefixes are named as dask.distributed's scheduler names them."""

from __future__ import annotations

import itertools

import pytest

import hlg
from hlg.materialize.groups import build_groups

pytest.importorskip("distributed")
from dask.utils import key_split as dask_key_split
from distributed.utils import key_split_group as dask_key_group

# Words that exercise every rule: letters, digits, tokens of 8 letters from a to f,
# longer hexadecimal runs, reprs, stringified tuples, quotes, non-ASCII letters.
_WORDS = [
    "x",
    "hello",
    "World",
    "3",
    "3f2a9c1d",
    "deadbeef",
    "features",
    "database",
    "abcdefabc",
    "ünï",
    "<lambda>",
    "<mod.Point object at 0x7f>",
    "('x",
    " 0)",
    "_(y)",
    "'q'",
    "",
    "0123456789abcdef0123456789abcdef",
]


def _names() -> list[str]:
    names = []
    for n in (1, 2, 3):
        names += ["-".join(parts) for parts in itertools.product(_WORDS, repeat=n)]
    # distributed cannot name a key that is empty or only "<", ">" and spaces: not compared.
    return [name for name in names if name.strip("<> ")]


NAMES = _names()


def test_key_split_is_distributed_key_split_for_str_and_tuple_keys():
    assert len(NAMES) > 5000
    for name in NAMES:
        expected = dask_key_split(name)
        assert hlg.key_split(name) == expected, name
        assert hlg.key_split((name, 0, 1)) == expected, name
        assert hlg.key_split(name.encode()) == expected, name


def test_key_group_is_distributed_key_split_group_for_str_and_tuple_keys():
    for name in NAMES:
        assert hlg.key_group(name) == dask_key_group(name), name
        assert hlg.key_group(name.encode()) == dask_key_group(name.encode()), name
        assert hlg.key_group((name, 4)) == dask_key_group((name, 4)) == name


@pytest.mark.parametrize("key", [7, 2.5, (3, 0), (2.5, "x")])
def test_keys_without_text_have_distributed_prefix_other(key):
    assert hlg.key_split(key) == dask_key_split(key) == "Other"


def test_tuple_keys_without_a_str_first_item_group_by_text():
    # distributed names these groups by the first item itself; hlg groups are text.
    assert dask_key_group((b"y-1", 0)) == b"y-1"
    assert hlg.key_group((b"y-1", 0)) == "y-1"
    assert dask_key_group((3, 0)) == 3
    assert hlg.key_group((3, 0)) == "Other"
    assert hlg.key_group((("y-1", 0), 2)) == dask_key_split((("y-1", 0), 2)) == "y"


def test_build_groups_prefix_is_the_prefix_distributed_gives_each_key():
    keys = [*NAMES[::7], *[(name, 0) for name in NAMES[::11]]]
    tasks = {key: hlg.DataNode(1) for key in keys}
    groups, prefixes = build_groups(tasks)
    # As on distributed's scheduler, a group takes the prefix of the first key that
    # made it ("<lambda>-x" and "<m.lambda object>" share group "lambda").
    expected: dict[str, str] = {}
    for key in keys:
        expected.setdefault(dask_key_group(key), dask_key_split(key))
    assert {name: group.prefix for name, group in groups.items()} == expected
    assert sorted(prefixes) == sorted(set(expected.values()))
