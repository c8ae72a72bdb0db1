"""Every layer type hlg registers has an example in conftest, so every core test covers it."""

import importlib
import pkgutil

import hlg

from .conftest import LAYER_EXAMPLES


def _import_every_hlg_module() -> None:
    for info in pkgutil.walk_packages(hlg.__path__, "hlg."):
        if info.name == "hlg.__main__":  # runs the command line
            continue
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as err:
            # An optional dependency (distributed, say) that is not installed; a module
            # of hlg itself that is missing is a failure.
            if (err.name or "hlg").partition(".")[0] == "hlg":
                raise


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    stack = [cls]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                stack.append(sub)
    return found


def builtin_tags() -> set[str]:
    """The registry tags of the layer classes defined inside the hlg package."""
    _import_every_hlg_module()
    return {
        cls.tag
        for cls in _subclasses(hlg.Layer)
        if cls.__module__.partition(".")[0] == "hlg" and vars(cls).get("tag") is not None
    }


def test_builtin_tags_are_found():
    tags = builtin_tags()
    assert {"hlg.materialized", "hlg.blockwise", "hlg.shuffle"} <= tags
    assert all(tag.startswith("hlg.") for tag in tags)


def test_every_builtin_tag_has_an_example():
    assert builtin_tags() == set(LAYER_EXAMPLES)


def test_every_example_is_of_the_type_registered_under_its_tag():
    for tag, make in LAYER_EXAMPLES.items():
        layer = make()
        assert type(layer).tag == tag
        assert layer.packed_tag() == tag
