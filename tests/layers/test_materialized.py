import pytest

import hlg
from hlg import MaterializedLayer
from hlg.testing import check_layer

from ..conftest import inc


def test_materialized_layer_converts_dask_values_once():
    layer = MaterializedLayer({"a": 1, "b": (inc, "a")}, name="m")
    first = layer.materialize()
    assert layer.materialize() is first
    assert first["b"].dependencies == {"a"}


def test_materialized_layer_copies_its_input():
    tasks = {"a": 1}
    layer = MaterializedLayer(tasks, name="m")
    tasks["b"] = 2
    assert list(layer) == ["a"]


def test_materialized_layer_validates_keys_eagerly():
    with pytest.raises(hlg.InvalidKeyError, match="layer 'm'"):
        MaterializedLayer({("x", None): 1}, name="m")


def test_materialized_layer_default_name_is_unique():
    assert MaterializedLayer({"a": 1}).name != MaterializedLayer({"a": 1}).name


def test_cull_keeps_what_the_kept_keys_need_inside_the_layer():
    layer = MaterializedLayer({"a": 1, "b": (inc, "a"), "c": (inc, "b"), "d": 0}, name="m")
    culled, external = layer.cull(["c"])
    assert sorted(culled) == ["a", "b", "c"] and external == set()
    with pytest.raises(hlg.MissingKeyError):
        layer.cull(["zz"])


def test_materialized_layer_passes_the_conformance_check(example_layer):
    check_layer(example_layer)
