import pytest

import hlg
from hlg.testing import RangeLayer, check_layer

from .conftest import CountingLayer, inc


def test_every_registered_layer_type_passes_the_conformance_check(example_layer):
    report = check_layer(example_layer)
    assert report.ntasks == len(example_layer)
    assert report.packed_bytes > 0


def test_check_layer_enforces_a_size_budget():
    check_layer(RangeLayer("r", inc, 0, 10**5), max_packed_bytes=2_000)
    with pytest.raises(AssertionError, match="over the budget"):
        check_layer(
            hlg.MaterializedLayer({("m", i): (inc, i) for i in range(1000)}, name="m"),
            max_packed_bytes=2_000,
        )


class LosingCull(CountingLayer):
    def cull(self, keys):
        _culled, external = super().cull(keys)
        return CountingLayer(self.name, 0), external


class WrongLength(CountingLayer):
    def __len__(self):
        return self.n + 1


class ForeignContains(CountingLayer):
    def __contains__(self, key):
        return True


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (LosingCull("l", 5), "lost requested keys"),
        (WrongLength("w", 5), "len\\(\\) is 6"),
        (ForeignContains("f", 5), "accepts a foreign key"),
    ],
)
def test_check_layer_catches_broken_layers(layer, message):
    with pytest.raises(AssertionError, match=message):
        check_layer(layer)


def test_range_layer_culls_to_a_range_or_indices():
    layer = RangeLayer("r", inc, 0, 100)
    culled, _ = layer.cull([("r", 3), ("r", 4)])
    assert (culled.start, culled.stop, culled.indices) == (3, 5, None)
    sparse, _ = layer.cull([("r", 3), ("r", 50)])
    assert sparse.indices == (3, 50) and len(sparse) == 2
    check_layer(sparse)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"indices": [1, 1]}, "repeat a number"),
        ({"indices": [1, "x"]}, "not an array of ints"),
        ({"start": 0.5}, "not both ints"),
    ],
)
def test_range_layer_states_are_checked(state, match):
    import msgpack

    layer, _ = RangeLayer("r", inc, 0, 10).cull([("r", 1), ("r", 5)])
    env = msgpack.unpackb(hlg.pack(layer), strict_map_key=False, raw=False)
    env["layers"][0]["state"].update(state)
    with pytest.raises(hlg.LayerStateError, match=f"layer 'r'.*{match}"):
        hlg.unpack(msgpack.packb(env, use_bin_type=True))


def test_range_layer_cost_needs_no_range_object():
    assert RangeLayer("r", inc, 0, 10**30).cost().tasks == 10**30
