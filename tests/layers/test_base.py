"""The Layer base class's defaults, through a layer that overrides only what it must."""

import pytest

import hlg
from hlg.testing import RangeLayer, check_layer

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
    with pytest.raises(hlg.UsageError, match="name"):
        CountingLayer("", 1)


@hlg.register_layer("tests.parity")
class ParityLayer(RangeLayer):
    """A user layer whose tasks have two roles, even and odd indices."""

    roles = ("even", "odd")

    def _of(self, role):
        self.role_size(role)
        return [k for k in self if k[1] % 2 == (role == "odd")]

    def role_keys(self, role):
        return self._of(role)

    def role_size(self, role):
        if role not in self.roles:
            raise hlg.UsageError(f"no role {role!r}")
        n = len(range(self.start, self.stop))
        odd = len(range(self.start | 1, self.stop, 2))
        return odd if role == "odd" else n - odd


def test_user_layer_roles_expand_per_key_on_unpack():
    layer = ParityLayer("p", abs, 0, 7, annotations={"retries": 1})
    layer = layer.with_role_annotations("odd", priority=5, retries=2)
    assert layer.annotation_entries() == 7 + 2 * 3
    flat = hlg.unpack(hlg.pack(layer))
    assert flat.annotations["priority"] == {("p", i): 5 for i in (1, 3, 5)}
    assert flat.annotations["retries"] == {("p", i): 2 if i % 2 else 1 for i in range(7)}
    check_layer(layer, cull_keys=None)


def test_role_annotations_on_a_layer_packed_as_tasks_are_refused():
    class Roles(CountingLayer):
        roles = ("all",)

    layer = Roles("c", 3).with_role_annotations("all", priority=1)
    with pytest.raises(hlg.PackError, match="per task role"):
        hlg.pack(layer)


def test_default_cull_holds_the_kept_tasks_in_a_materialized_layer(monkeypatch):
    from hlg.layers import base

    culled, external = CountingLayer("c", 4).cull([("c", 2)])
    assert type(culled) is hlg.MaterializedLayer and culled.packed_tag() == "hlg.materialized"
    assert list(culled) == [("c", 2)] and external == set()
    monkeypatch.setattr(base, "_TASK_HOLDER", [])
    with pytest.raises(hlg.UsageError, match="layer 'c': culling a CountingLayer needs"):
        CountingLayer("c", 4).cull([("c", 2)])
