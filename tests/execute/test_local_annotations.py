"""The local scheduler ignores annotations: placement, priority and retries alike."""

import pytest

import hlg


class Trace(hlg.Callback):
    def __init__(self):
        self.keys = []

    def pretask(self, key, state):
        self.keys.append(key)


def two_chains(annotated):
    """Chains a and b; ``annotated`` is the layer annotated with a high priority."""
    layers = {}
    for name in ("a", "b"):
        tasks = {(name, 0): 1, (name, 1): (abs, (name, 0))}
        placed = {"priority": 100, "retries": 3, "workers": ["gpu-1"], "resources": {"GPU": 1}}
        annotations = placed if name == annotated else None
        layers[name] = hlg.MaterializedLayer(tasks, name=name, annotations=annotations)
    layers["total"] = {"total": (sum, [("a", 1), ("b", 1)])}  # refers to keys of a and b
    return hlg.HighLevelGraph(layers, {"total": {"a", "b"}})


@pytest.mark.parametrize("annotated", ["a", "b"])
def test_priority_annotations_do_not_change_the_order(annotated):
    graph = two_chains(annotated)
    data = hlg.pack(graph, "total")
    assert hlg.unpack(data).annotations["priority"] == {(annotated, 0): 100, (annotated, 1): 100}
    trace = Trace()
    assert hlg.get(data, "total", scheduler="sync", callbacks=[trace]) == 2
    by_order = sorted(hlg.order(data).items(), key=lambda kv: kv[1])
    assert trace.keys == [key for key, _ in by_order]
    assert trace.keys[:2] == [("a", 0), ("a", 1)]  # a first, whichever chain is annotated


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_placement_annotations_are_ignored(scheduler):
    data = hlg.pack(two_chains("a"), "total")
    flat = hlg.unpack(data)
    assert flat.annotations["workers"][("a", 0)] == ["gpu-1"]
    assert flat.annotations["resources"][("a", 1)] == {"GPU": 1}
    assert hlg.get(flat, "total", scheduler=scheduler, num_workers=1) == 2


calls = []


def fail_once(x):
    calls.append(x)
    if len(calls) == 1:
        raise ConnectionError("flaky")
    return x


def test_retries_annotations_do_not_rerun_a_failed_task():
    calls.clear()
    with hlg.annotate(retries=3):
        graph = hlg.HighLevelGraph.from_dict({"x": 1, "y": (fail_once, "x")}, name="g")
    data = hlg.pack(graph, "y")
    assert hlg.unpack(data).annotations["retries"] == {"x": 3, "y": 3}
    with pytest.raises(ConnectionError, match="flaky"):
        hlg.get(data, "y", scheduler="sync")
    assert calls == [1]
    assert hlg.get(data, "y", scheduler="sync") == 1  # a second run is a new run
