import dataclasses
import enum
import functools
import os
import subprocess
import sys

import numpy as np
import pytest

import hlg
from hlg.keys import all_keys, is_key, key_group, key_split, tokenize, validate_key, validate_keys


@pytest.mark.parametrize(
    "key",
    [
        "x",
        ("x",),
        ("x", 0),
        ("x-3f2a", 0, 4),
        ("", 0),
        1,
        -7,
        1.5,
        b"x",
        (),
        (0, "x"),
        ("getitem-8fa3", 0, 0.9),
        ("x", ("y", 0)),
        (b"x", 2.5, ("z", (1,))),
    ],
)
def test_is_key_accepts_dasks_key_model(key):
    assert is_key(key)
    assert validate_key(key) == key
    assert all_keys([key])
    assert all_keys(["fine", key])
    assert all_keys([("fine", 0), key])


@pytest.mark.parametrize(
    "key",
    [None, True, ["x", 0], ("x", True), ("x", None), ("x", ("y", [0])), {"x"}, np.int64(3)],
)
def test_validate_key_rejects_other_values_with_hlg_error(key):
    assert not is_key(key)
    assert not all_keys(["fine", key])
    assert not all_keys([("fine", 0), key])
    with pytest.raises(hlg.InvalidKeyError) as info:
        validate_key(key, layer="lay")
    assert isinstance(info.value, TypeError)
    assert "layer 'lay'" in str(info.value)


def test_is_key_walks_deeply_nested_tuples_without_recursion():
    key: object = "x"
    for _ in range(100_000):
        key = (key, 0)
    assert is_key(key)
    assert not is_key((key, None))


def test_validate_key_names_a_numpy_integer_and_says_what_to_do():
    with pytest.raises(hlg.InvalidKeyError, match="convert it to str, bytes, int or float"):
        validate_key(("x", np.int64(3)))


def test_validate_keys_reports_the_first_bad_key():
    with pytest.raises(hlg.InvalidKeyError, match="'bad'"):
        validate_keys(["ok", 3, ("bad", None)])


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("x", "x"),
        ("x-1", "x"),
        ("hello-world-1", "hello-world"),
        (("x-3f2a9c", 0), "x"),
        (("add-deadbeef", 3), "add"),
        ("sum-aggregate-5e3c1f7a9b", "sum-aggregate"),
        ("('x-1', 0)", "x"),
        ("<lambda>-1", "lambda"),
        ("0123456789abcdef0123456789abcdef", "data"),
        (("x",), "x"),
        (b"load-3f2a9c1d", "load"),
        ((b"load-1", 0), "load"),
        ((("y-1", 0), 2), "y"),
        (7, "Other"),
        (0.5, "Other"),
        ((), "Other"),
        ((3, "x"), "Other"),
        ("", "Other"),
        ("x-features-1", "x"),  # an 8-letter word from a to f reads as a token
        ("x-abcdefabc", "x-abcdefabc"),
        ("<mod.Point object at 0x7f>", "Point"),
    ],
)
def test_key_split_drops_tokens_and_indices(key, prefix):
    assert key_split(key) == prefix


@pytest.mark.parametrize(
    ("key", "group"),
    [
        (("x-3f2a9c", 0), "x-3f2a9c"),
        (("x-3f2a9c", 0, 1), "x-3f2a9c"),
        ("x-1", "x"),
        ("y", "y"),
        ((b"y-1", 0), "y-1"),
        ((3, 0), "Other"),
        (2.5, "Other"),
        ("('x-2', 1)", "x-2"),
        ("<lambda>-3", "lambda>-3"),
        ("0123456789abcdef0123456789abcdef", "data"),
    ],
)
def test_key_group_is_first_item_of_tuple_keys(key, group):
    assert key_group(key) == group


def test_tokenize_is_deterministic_and_distinguishes_types():
    assert tokenize(1, "a") == tokenize(1, "a")
    assert tokenize(1) != tokenize(1.0) != tokenize("1")
    assert tokenize([1, 2]) != tokenize((1, 2))
    assert tokenize({1, 2}) == tokenize({2, 1})
    assert tokenize({"a": [1]}) != tokenize({"a": [2]})
    assert tokenize(True) != tokenize(1)
    assert tokenize(b"x") != tokenize("x")
    assert tokenize(x=1) != tokenize(1)


def test_tokenize_numpy_arrays_by_content_dtype_and_shape():
    a = np.arange(6)
    assert tokenize(a) == tokenize(np.arange(6))
    assert tokenize(a) != tokenize(a.astype("f8"))
    assert tokenize(a) != tokenize(a.reshape(2, 3))
    assert tokenize(a[::2]) == tokenize(np.array([0, 2, 4]))
    assert tokenize(np.float64(1.5)) != tokenize(1.5)
    assert tokenize(np.array([{"a": 1}], dtype=object)) == tokenize(
        np.array([{"a": 1}], dtype=object)
    )


def top_level(x):
    return x


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Custom:
    def __init__(self, v):
        self.v = v

    def __hlg_tokenize__(self):
        return self.v


def test_tokenize_functions_partials_enums_dataclasses_and_hooks():
    assert tokenize(top_level) == tokenize(top_level)
    assert tokenize(top_level) != tokenize(len)
    assert tokenize(functools.partial(top_level, 1)) != tokenize(functools.partial(top_level, 2))
    square = lambda x: x * x
    assert tokenize(square) == tokenize(square)
    assert tokenize(square) != tokenize(lambda x: x + 1)
    assert tokenize(Color.RED) == tokenize(Color.RED)
    assert tokenize(Point(1, 2)) != tokenize(Point(2, 1))
    assert tokenize(Custom(3)) == tokenize(Custom(3)) != tokenize(Custom(4))


def test_tokenize_handles_reference_cycles_and_unpicklable_objects():
    cycle: list = [1]
    cycle.append(cycle)
    assert tokenize(cycle) == tokenize(cycle)
    import threading

    lock = threading.Lock()
    assert tokenize(lock) != tokenize(lock)  # unpicklable: unique, never colliding


def test_tokenize_is_stable_across_processes_and_hash_seeds():
    code = (
        "import hlg, numpy as np; "
        "print(hlg.tokenize({'a': (1, 2.5, None), 'b': {3, 4}, 'c': np.arange(3)}, 'x', [b'y']))"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(out.stdout.strip())
    assert len(outputs) == 1
    assert len(outputs.pop()) == 32


def test_key_split_cache_is_bounded_by_characters_not_count():
    from hlg.keys import _NAMES

    for i in range(40):
        key_split(f"big{i}-" + "a" * 200_000)  # longer than any cached name
    for i in range(50_000):
        key_split(f"name-{i}-" + "b" * 200)
    assert _NAMES.chars <= _NAMES.limit
    assert sum(map(len, _NAMES.entries)) == _NAMES.chars
    assert key_split("name-3-" + "b" * 200) == "name"
