"""FlatGraph's views of dependencies."""

import pytest

import hlg


def test_flat_dependencies_is_one_cached_read_only_mapping():
    dsk = {("x", i): (abs, ("x", i - 1)) for i in range(1, 2000)}
    dsk["x", 0] = 1
    flat = hlg.unpack(hlg.pack(dsk, ("x", 1999)))
    deps = flat.dependencies
    assert deps is flat.dependencies
    assert deps[("x", 5)] == {("x", 4)} and deps[("x", 0)] == frozenset()
    assert len(deps) == 2000 and ("x", 3) in deps and "nope" not in deps and [] not in deps
    assert dict(deps) == {k: node.dependencies for k, node in flat.tasks.items()}
    with pytest.raises(TypeError):
        deps["y"] = frozenset()  # type: ignore[index]
