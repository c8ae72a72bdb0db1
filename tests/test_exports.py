import hlg


def test_all_is_sorted_and_complete():
    assert hlg.__all__ == sorted(hlg.__all__)
    public = {
        name
        for name, value in vars(hlg).items()
        if not name.startswith("_") and not isinstance(value, type(hlg)) and name != "annotations"
    }
    assert public == set(hlg.__all__)


def test_every_export_has_a_docstring():
    for name in hlg.__all__:
        obj = getattr(hlg, name)
        if callable(obj) and name != "Key":
            assert obj.__doc__, name
