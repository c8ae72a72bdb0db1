import importlib.metadata
import subprocess
import sys

import pytest

import hlg
from hlg.layers import registry
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

    with pytest.raises(hlg.UsageError, match="taken by"):

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


def test_the_builtin_table_leaves_test_only_tags_to_hlg_testing():
    assert "hlg.testing.range" not in registry._BUILTIN
    assert not any(module.startswith("hlg.testing") for module, _ in registry._BUILTIN.values())
    assert registry.get_layer_class(RangeLayer.tag) is RangeLayer  # registered by hlg.testing


FRESH_UNPACK = """
import sys
import hlg
if sys.argv[1] == "import-testing":
    import hlg.testing
print("hlg.testing imported:", "hlg.testing" in sys.modules)
try:
    flat = hlg.unpack(sys.stdin.buffer.read())
except hlg.UnknownLayerError as err:
    print("UnknownLayerError:", err)
else:
    print("result:", hlg.get(flat, ("r", -3)))
"""


def unpack_in_fresh_interpreter(data: bytes, mode: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", FRESH_UNPACK, mode],
        input=data,
        capture_output=True,
        timeout=120,
        check=True,
    )
    return result.stdout.decode().splitlines()


def test_a_test_only_tag_unpacks_where_hlg_testing_is_imported_and_is_named_elsewhere():
    data = hlg.pack(RangeLayer("r", abs, -5, 5), ("r", -3))
    without = unpack_in_fresh_interpreter(data, "plain")
    assert without[0] == "hlg.testing imported: False"
    assert without[1].startswith(
        "UnknownLayerError: no layer type is registered under tag 'hlg.testing.range'"
    )
    assert "Import the module that defines it ('hlg.testing', by its tag)" in without[1]
    assert unpack_in_fresh_interpreter(data, "import-testing") == [
        "hlg.testing imported: True",
        "result: 3",
    ]


def test_an_unknown_tag_without_a_package_prefix_is_still_explained():
    with pytest.raises(hlg.UnknownLayerError, match=r"Import the module that defines it on the"):
        registry.get_layer_class("nodots")


def test_register_layer_refuses_a_tag_that_is_not_a_string():
    with pytest.raises(hlg.UsageError, match="non-empty str; got 5"):
        hlg.register_layer(5)  # type: ignore[arg-type]
