import pytest

import hlg
from hlg import MaterializedLayer


def test_annotate_applies_to_layers_created_inside_and_nests():
    with hlg.annotate(priority=1, retries=2):
        with hlg.annotate(priority=5, workers=["w1"], resources={"GPU": 1}, team="x"):
            inner = MaterializedLayer({"a": 1}, name="a")
        outer = MaterializedLayer({"b": 1}, name="b")
    after = MaterializedLayer({"c": 1}, name="c")
    assert inner.annotations == {
        "priority": 5,
        "retries": 2,
        "workers": ["w1"],
        "resources": {"GPU": 1},
        "team": "x",
    }
    assert outer.annotations == {"priority": 1, "retries": 2}
    assert after.annotations == {}


def test_explicit_layer_annotations_win_over_the_context():
    with hlg.annotate(priority=1):
        layer = MaterializedLayer({"a": 1}, name="a", annotations={"priority": 9})
    assert layer.annotations == {"priority": 9}
    assert layer.with_annotations(retries=3).annotations == {"priority": 9, "retries": 3}
    assert layer.annotations == {"priority": 9}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("priority", "high", "a number"),
        ("retries", -1, "an int >= 0"),
        ("workers", [1], "a str or a list of str"),
        ("resources", {"GPU": "one"}, "a dict of str to number"),
        ("custom", object(), "msgpack-native"),
        ("custom", lambda key: 1, "never unpickles"),
    ],
)
def test_bad_annotations_are_refused_with_what_to_do(name, value, message):
    with pytest.raises(hlg.UsageError, match=message), hlg.annotate(**{name: value}):
        pass


def test_annotations_survive_cull_and_packing():
    with hlg.annotate(priority=7, team="blue"):
        layer = MaterializedLayer({"a": 1, "b": (abs, "a"), "c": 2}, name="l")
    graph = hlg.HighLevelGraph({"l": layer})
    culled = graph.cull("b")
    assert culled.layers["l"].annotations == {"priority": 7, "team": "blue"}
    flat = hlg.unpack(hlg.pack(graph, "b"))
    assert flat.annotations == {"priority": {"a": 7, "b": 7}, "team": {"a": "blue", "b": "blue"}}
