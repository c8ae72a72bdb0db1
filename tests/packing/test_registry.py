import importlib.metadata

import pytest

import hlg
from hlg.packing import registry
from hlg.testing import RangeLayer, check_layer

from ..conftest import CountingLayer, inc


def test_register_layer_sets_the_tag_and_finds_the_class():
    @hlg.register_layer("tests.registry.demo")
    class Demo(CountingLayer):
        pass

    assert Demo.tag == "tests.registry.demo"
    assert registry.get_layer_class("tests.registry.demo") is Demo
    assert "tests.registry.demo" in registry.known_tags()


def test_a_taken_tag_is_refused_for_another_class():
    @hlg.register_layer("tests.registry.taken")
    class First(CountingLayer):
        pass

    with pytest.raises(hlg.PackError, match="taken by"):

        @hlg.register_layer("tests.registry.taken")
        class Second(CountingLayer):
            pass


def test_builtin_layers_are_found_by_tag():
    assert registry.get_layer_class("hlg.materialized") is hlg.MaterializedLayer
    assert registry.get_layer_class("hlg.testing.range") is RangeLayer


class EntryPointLayer(RangeLayer):
    pass


class FakeEntryPoint:
    def __init__(self, name, obj):
        self.name = name
        self.obj = obj

    def load(self):
        return self.obj


def test_entry_points_register_third_party_layers_lazily(monkeypatch):
    def entry_points(group):
        assert group == "hlg.layers"
        return [FakeEntryPoint("thirdparty.ranges", EntryPointLayer)]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_ENTRY_POINTS_LOADED", registry.threading.Event())
    assert "thirdparty.ranges" in registry.known_tags()
    assert registry.get_layer_class("thirdparty.ranges") is EntryPointLayer
    layer = EntryPointLayer("ep", inc, 0, 5)
    check_layer(layer)
    assert hlg.get(hlg.pack(layer), ("ep", 4)) == 5


def test_an_entry_point_that_is_not_a_layer_is_refused(monkeypatch):
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: [FakeEntryPoint("bad.tag", object)]
    )
    monkeypatch.setattr(registry, "_ENTRY_POINTS_LOADED", registry.threading.Event())
    with pytest.raises(hlg.UnknownLayerError, match="not a subclass of hlg.Layer"):
        registry.get_layer_class("bad.tag")
