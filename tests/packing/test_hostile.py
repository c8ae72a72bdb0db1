"""Bytes crafted as an attacker would: nesting, resource bombs, colliding keys, mutations.

Every case runs in a child process under RLIMIT_AS and a timeout (see
``isolated.py``), and must end in an hlg error refused up front, not in a
crash, a hang or memory exhaustion.
"""

import copy
import random
from itertools import product

import msgpack

import hlg
from hlg.layers.blockdeps import BlockPattern
from hlg.limits import NESTING_LIMIT
from hlg.packing.codec import FROZENSET, LIST, OPAQUE, REF, SET, TASK
from hlg.packing.envelope import FORMAT_VERSION
from hlg.testing import RangeLayer

from ..conftest import inc
from .isolated import assert_refused, unpack_isolated

# Python hashes -1 and -2 alike, so these 2**17 distinct keys share one hash.
COLLIDING = [("x", *p) for p in product((-1, -2), repeat=17)]
# One packer for many small values: msgpack.packb builds a new one per call.
PACK = msgpack.Packer(use_bin_type=True).pack
# Ints that hash alike: hash(n) is n modulo 2**61 - 1.
MODULUS = (1 << 61) - 1


def envelope(layers, *, remote_keys=(), keys=None, functions=(("f", b"\x80"),)):
    return msgpack.packb(
        {
            "format": "hlg",
            "version": FORMAT_VERSION,
            "functions": [list(f) for f in functions],
            "layers": layers,
            "keys": keys,
            "remote_keys": list(remote_keys),
        },
        use_bin_type=True,
    )


def record(name, state, *, tag="hlg.materialized", annotations=None, deps=()):
    return {
        "tag": tag,
        "name": name,
        "dependencies": list(deps),
        "annotations": annotations or {},
        "state": state,
    }


def data_layer(name, keys, values):
    n = len(keys)
    return record(name, {"keys": keys, "funcs": [-1] * n, "args": values, "refs": [[]] * n})


def task_layer(name, key, args, *, kwargs=None, deep=False):
    state = {"keys": [key], "funcs": [0], "args": [args], "refs": [[]]}
    if kwargs is not None:
        state["kwargs"] = {0: kwargs}
    if deep:
        state["deep"] = [0]
    return record(name, state)


def nested(code, depth):
    """An extension value of type ``code`` nested ``depth`` deep inside itself."""
    payload = msgpack.packb([1] if code != TASK else [0, [1], None])
    for _ in range(depth):
        inner = msgpack.ExtType(code, payload)
        payload = msgpack.packb([inner] if code != TASK else [0, [inner], None])
    return msgpack.ExtType(code, payload)


def nested_through_tuples(depth):
    """Lists whose items are tuples of lists: containers of both kinds alternate."""
    payload = msgpack.packb([1])
    for _ in range(depth):
        payload = msgpack.packb([[msgpack.ExtType(LIST, payload)]])
    return msgpack.ExtType(LIST, payload)


def decode(data):
    return msgpack.unpackb(data, strict_map_key=False, raw=False)


def encode(env):
    return msgpack.packb(env, use_bin_type=True)


# --------------------------------------------------------------------------- nesting


def nesting_cases():
    deep = 5_000
    cases = {}
    for code, label in [(LIST, "list"), (SET, "set"), (FROZENSET, "frozenset"), (TASK, "task")]:
        cases[f"{label} in a data node"] = envelope([data_layer("d", ["k"], [nested(code, deep)])])
    cases["list in a task argument"] = envelope(
        [task_layer("t", "k", [nested(LIST, deep)], deep=True)]
    )
    cases["lists and tuples alternating"] = envelope(
        [data_layer("d", ["k"], [nested_through_tuples(deep)])]
    )
    cases["list in keyword arguments"] = envelope(
        [task_layer("t", "k", [], kwargs={"a": nested(LIST, deep)}, deep=True)]
    )
    cases["list in annotations"] = envelope(
        [record("d", data_layer("d", ["k"], [1])["state"], annotations={"a": nested(LIST, deep)})]
    )
    cases["list in a key"] = envelope([data_layer("d", [nested(LIST, deep)], [1])])
    cases["list in remote keys"] = envelope([], remote_keys=[nested(LIST, deep)])
    cases["list in the function table"] = envelope([], functions=[("f", nested(LIST, deep))])
    cases["list in a blockwise state"] = blockwise_value_envelope(nested(LIST, deep))
    cases["list in a reference"] = envelope(
        [data_layer("d", ["k"], [msgpack.ExtType(REF, msgpack.packb([nested(LIST, deep)]))])]
    )
    cases["list in an opaque value"] = envelope(
        [data_layer("d", ["k"], [msgpack.ExtType(OPAQUE, msgpack.packb(["p", nested(LIST, 9)]))])]
    )
    cases["one past the limit"] = envelope([data_layer("d", ["k"], [nested(LIST, NESTING_LIMIT)])])
    return cases


def blockwise_value_envelope(value):
    env = decode(hlg.pack(hlg.blockwise(inc, "b", "i", "a", "i", numblocks={"a": (2,)})))
    env["layers"][0]["state"]["args"] = [["value", value], *env["layers"][0]["state"]["args"]]
    return encode(env)


def test_nested_extension_values_are_refused_at_any_depth_in_any_field():
    cases = nesting_cases()
    results = unpack_isolated([(name, data, {}) for name, data in cases.items()])
    for name in cases:
        if name in ("list in a reference", "list in an opaque value"):
            assert_refused(results, name, ("UnpackError",), "where only plain values may")
        else:
            assert_refused(results, name, ("UnpackError", "LayerStateError"), "nested more than")


def test_the_deepest_value_pack_accepts_unpacks():
    value = 1
    for _ in range(NESTING_LIMIT):
        value = [value]
    data = hlg.pack({"b": value}, "b")
    results = unpack_isolated([("at the limit", data, {})])
    assert results["at the limit"][0] == "ok"


# --------------------------------------------------------------------------- resource bombs


def pattern_envelope(pattern, numblocks=(4,)):
    layer = hlg.blockwise(inc, "p", "i", BlockPattern("f-{0}", numblocks), "i", numblocks={})
    env = decode(hlg.pack(layer))
    env["layers"][0]["state"]["args"][0][2]["pattern"] = pattern
    return encode(env)


def bomb_cases():
    annotated = RangeLayer("r", inc, 0, 10_000, annotations={f"a{i}": i for i in range(5_000)})
    contraction = hlg.blockwise(sum, "s", "i", "x", "ij", numblocks={"x": (1, 10**8)})
    return {
        "contraction of 10**8 blocks": (hlg.pack(contraction), "ResourceLimitError", "references"),
        "pattern with a huge width": (
            pattern_envelope("{0:>300000000}"),
            "LayerStateError",
            "not a field",
        ),
        "pattern with attribute access": (
            pattern_envelope("{0.__class__}"),
            "LayerStateError",
            "not a field",
        ),
        "pattern with long text": (
            pattern_envelope("x" * 100_000 + "{0}", (20_000,)),
            "ResourceLimitError",
            "block patterns",
        ),
        "5,000 annotations on 10,000 tasks": (
            hlg.pack(annotated),
            "ResourceLimitError",
            "annotation entries",
        ),
        "10**18 tasks": (hlg.pack(RangeLayer("r", inc, 0, 10**18)), "TooManyTasksError", "tasks"),
        "a huge array header": (
            b"\x81\xa6format\xdd\xff\xff\xff\xff",
            "UnpackError",
            "corrupt",
        ),
        "pickle bytes": (
            b"\x80\x05\x95" + b"\x00" * 20,
            "UnpackError",
            "not an hlg packed graph",
        ),
    }


def test_resource_bombs_are_refused_before_anything_is_built():
    cases = bomb_cases()
    results = unpack_isolated([(name, data, {}) for name, (data, _, _) in cases.items()])
    for name, (_, error, match) in cases.items():
        assert_refused(results, name, (error,), match)


def colliding_map():
    # Written by hand: building it as a dict here would itself take quadratic time.
    pairs = b"".join([PACK(k) + b"\x01" for k in COLLIDING])
    return b"\xdf" + len(COLLIDING).to_bytes(4, "big") + pairs


def collision_cases():
    n = len(COLLIDING)
    across = [
        data_layer(f"l{i}", COLLIDING[i * 64 : i * 64 + 64], [1] * 64) for i in range(n // 64)
    ]
    ref_keys = [msgpack.ExtType(REF, PACK(k)) for k in COLLIDING]
    wide = 12
    rows = [list(p) for p in product((1, 1 + MODULUS), repeat=wide)]
    blocks = decode(hlg.pack(hlg.blockwise(inc, "b", "ij", "a", "ij", numblocks={"a": (1, 1)})))
    state = blocks["layers"][0]["state"]
    state["out_ind"] = "abcdefghijkl"
    state["args"] = [["key", "a", "abcdefghijkl"]]
    state["numblocks"] = {"a": [1 << 62] * wide}
    state["blocks"] = ["list", wide, [i for row in rows for i in row]]
    return {
        "colliding keys of one layer": envelope([data_layer("d", COLLIDING, [1] * n)]),
        "colliding keys across layers": envelope(across),
        "colliding remote keys": envelope([], remote_keys=COLLIDING),
        "a set of colliding items": envelope(
            [data_layer("d", ["k"], [msgpack.ExtType(SET, msgpack.packb(COLLIDING))])]
        ),
        "a map with colliding keys": envelope([data_layer("d", ["k"], ["@@map@@"])]).replace(
            msgpack.packb("@@map@@"), colliding_map()
        ),
        "a task referring to colliding keys": envelope(
            [task_layer("t", "k", [msgpack.ExtType(LIST, msgpack.packb(ref_keys))], deep=True)],
            remote_keys=[],
        ),
        "colliding kept blocks": encode(blocks),
    }


def test_colliding_keys_are_refused_in_linear_time():
    # Built as dicts, each of these would take minutes (quadratic); the child's timeout
    # fails it, and leaves room for a slow, loaded machine (the cases take seconds there).
    cases = collision_cases()
    honest = [("x", i) for i in range(len(COLLIDING))]
    runs = [(name, data, {}) for name, data in cases.items()]
    runs.append(("honest keys", envelope([data_layer("d", honest, [1] * len(honest))]), {}))
    results = unpack_isolated(runs)
    for name in cases:
        assert_refused(results, name, ("ResourceLimitError",), "share one hash")
    assert results["honest keys"][0] == "ok"


# --------------------------------------------------------------------------- mutation


def sample():
    from operator import add

    from hlg.layers.blockdeps import BlockSlices

    graph = hlg.HighLevelGraph(
        {
            "a": {("a", i): (inc, i) for i in range(4)},
            "b": {
                ("b", 0): (add, ("a", 0), ("a", 1)),
                ("b", 1): (sum, [("a", 2), ("a", 3)]),
                ("b", 2): (sorted, {3, 1}),
                ("b", 3): (dict, [("k", [1, (2, 3)])]),
            },
            "r": RangeLayer("r", inc, 0, 3, annotations={"priority": 1}),
            "w": hlg.blockwise(
                add, "w", "i", "a", "i", BlockSlices(((1, 1, 1, 1),)), "i", numblocks={"a": (4,)}
            ),
            "p": hlg.blockwise(
                str, "p", "i", BlockPattern("part-{0:03d}", (3,)), "i", numblocks={}
            ),
        },
        {"b": {"a"}, "w": {"a"}},
    )
    return hlg.pack(graph)


class Ext:
    """An extension value opened for mutation: its code and decoded payload."""

    def __init__(self, code, value):
        self.code = code
        self.value = value


def open_value(data):
    def hook(code, payload):
        return Ext(code, msgpack.unpackb(payload, strict_map_key=False, raw=False, ext_hook=hook))

    return msgpack.unpackb(data, strict_map_key=False, raw=False, ext_hook=hook)


def close_value(value):
    def default(obj):
        if isinstance(obj, Ext):
            return msgpack.ExtType(obj.code, msgpack.packb(obj.value, default=default))
        raise TypeError(type(obj))

    return msgpack.packb(value, default=default, use_bin_type=True)


def slots(value):
    """Every (container, index or key) in an opened value, found without recursion."""
    out, stack = [], [value]
    while stack:
        obj = stack.pop()
        if isinstance(obj, Ext):
            obj = obj.value
        if isinstance(obj, list):
            out.extend((obj, i) for i in range(len(obj)))
            stack.extend(obj)
        elif isinstance(obj, dict):
            out.extend((obj, k) for k in obj)
            stack.extend(obj.values())
    return out


def replacement(rng, value):
    choices = [
        lambda: rng.choice([-1, -2, 0, 1, 2**63 - 1, -(2**63), 2**64 - 1, 10**9, 10**18]),
        lambda: rng.choice(["", "x", "{0:>99999999}", "{0.__class__}", "{0[0]}", "hlg.nope"]),
        lambda: rng.choice([None, True, 1.5, float("nan"), b"\x00"]),
        list,
        dict,
        lambda: [rng.randrange(-3, 10**6) for _ in range(rng.randrange(1, 40))],
        lambda: Ext(rng.choice([LIST, REF, TASK, SET, FROZENSET, OPAQUE, 4, 99]), [1]),
        lambda: nested(rng.choice([LIST, SET, TASK]), rng.choice([3, NESTING_LIMIT + 5])),
        lambda: {(-1 - i % 2, i // 2): 0 for i in range(200)},
        lambda: copy.deepcopy(rng.choice(slots(value))[0]),
    ]
    return rng.choice(choices)()


def mutations(count, seed=9):
    rng = random.Random(seed)
    base = sample()
    out = []
    for n in range(count):
        value = open_value(base)
        for _ in range(rng.randrange(1, 4)):
            container, slot = rng.choice(slots(value))
            if isinstance(container, dict) and rng.random() < 0.15:
                del container[slot]
            elif isinstance(container, list) and rng.random() < 0.1:
                del container[slot:]
            else:
                container[slot] = replacement(rng, value)
        out.append((f"mutation {n}", close_value(value)))
    return out


def test_structure_aware_mutations_raise_hlg_errors_only():
    limits = hlg.Limits(tasks=10_000, references=100_000, inputs=100_000, annotations=100_000)
    cases = [(name, data, {"limits": limits}) for name, data in mutations(400)]
    assert len(cases) > 300
    results = unpack_isolated(cases)
    assert set(results) == {name for name, _, _ in cases}
    bare = {n: r for n, r in results.items() if r[0].startswith("bare")}
    assert not bare, bare
    outcomes = {outcome for outcome, _ in results.values()}
    assert "ok" in outcomes and len(outcomes) > 4  # the mutations reach past the envelope
