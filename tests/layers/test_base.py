"""The Layer base class's defaults, through a layer that overrides only what it must."""

import pytest

import hlg
from hlg.testing import check_layer

from ..conftest import CountingLayer


def test_minimal_layer_gets_working_defaults():
    layer = CountingLayer("c", 10)
    assert layer[("c", 3)]({}) == 4
    assert layer.get_dependencies(("c", 3)) == frozenset()
    culled, external = layer.cull([("c", 2)])
    assert isinstance(culled, hlg.MaterializedLayer)
    assert list(culled) == [("c", 2)] and external == set()
    assert layer.packed_tag() == "hlg.materialized"
    with pytest.raises(hlg.MissingKeyError, match="layer 'c' has no key 'x'"):
        layer["x"]


def test_minimal_layer_passes_the_conformance_check():
    check_layer(CountingLayer("c", 20))


def test_layer_that_overrides_pack_state_without_a_tag_is_refused():
    class Untagged(CountingLayer):
        def pack_state(self, encoder):
            return {"n": self.n}

    with pytest.raises(hlg.PackError, match="register_layer"):
        hlg.pack(Untagged("u", 3))


def test_layers_compare_by_identity():
    a, b = CountingLayer("c", 1), CountingLayer("c", 1)
    assert a != b and a == a
    assert len({a, b}) == 2


def test_layer_names_must_be_non_empty_strings():
    with pytest.raises(hlg.PackError, match="name"):
        CountingLayer("", 1)
