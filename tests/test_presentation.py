import subprocess
import sys
from typing import Any

import pytest

import hlg
from hlg import presentation
from hlg.visualize import GraphDescription, VisualizePresenter


class Recording:
    """A presenter that records what it is asked to show."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def describe(self, obj: Any, *, sizes: bool = True) -> Any:
        self.calls.append(("describe", obj, sizes))
        return hlg.visualize.describe(obj, sizes=sizes)

    def visualize(self, obj: Any, filename: Any) -> Any:
        self.calls.append(("visualize", obj, filename))
        return filename

    def to_dot(self, obj: Any) -> str:
        self.calls.append(("to_dot", obj))
        return "dot"

    def to_html(self, obj: Any) -> str:
        self.calls.append(("to_html", obj))
        return "html"

    def to_networkx(self, obj: Any) -> Any:
        self.calls.append(("to_networkx", obj))
        return "nx"

    def visualize_flat(self, flat: Any, filename: Any, max_tasks: int) -> Any:
        self.calls.append(("visualize_flat", flat, filename, max_tasks))
        return filename

    def flat_to_dot(self, flat: Any, max_tasks: int) -> str:
        self.calls.append(("flat_to_dot", flat, max_tasks))
        return "flat dot"


def sample() -> tuple[hlg.HighLevelGraph, hlg.Layer, hlg.FlatGraph]:
    layer = hlg.MaterializedLayer({"a": 1, "b": (abs, "a")}, name="l")
    graph = hlg.HighLevelGraph({"l": layer})
    return graph, layer, hlg.unpack(hlg.pack(graph, "b"))


def test_presentation_import_hlg_installs_the_visualize_presenter():
    assert isinstance(presentation.presenter(), VisualizePresenter)
    graph, layer, flat = sample()
    assert isinstance(graph.describe(), GraphDescription)
    assert layer.to_dot().startswith("digraph")
    assert flat.describe().layers[0].tasks == 2


def test_presentation_display_methods_call_the_installed_presenter(monkeypatch):
    recording = Recording()
    monkeypatch.setattr(presentation, "_INSTALLED", [recording])
    graph, layer, flat = sample()
    assert str(graph).startswith("HighLevelGraph: 1 layer, 2 tasks")
    assert (graph.to_dot(), graph._repr_html_(), graph.to_networkx()) == ("dot", "html", "nx")
    assert graph.visualize("g.svg") == "g.svg"
    assert (layer.to_dot(), layer._repr_html_(), layer.visualize("l.svg")) == (
        "dot",
        "html",
        "l.svg",
    )
    layer.describe(sizes=False)
    assert (flat.to_dot(7), flat.visualize("f.svg", 9), flat.to_networkx()) == (
        "flat dot",
        "f.svg",
        "nx",
    )
    flat.describe()
    assert recording.calls == [
        ("describe", graph, False),
        ("to_dot", graph),
        ("to_html", graph),
        ("to_networkx", graph),
        ("visualize", graph, "g.svg"),
        ("to_dot", layer),
        ("to_html", layer),
        ("visualize", layer, "l.svg"),
        ("describe", layer, False),
        ("flat_to_dot", flat, 7),
        ("visualize_flat", flat, "f.svg", 9),
        ("to_networkx", flat),
        ("describe", flat, True),
    ]


def test_presentation_without_a_presenter_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(presentation, "_INSTALLED", [])
    graph, layer, flat = sample()
    for show in (graph.to_dot, layer._repr_html_, flat.describe, lambda: str(graph)):
        with pytest.raises(hlg.UsageError, match=r"needs hlg.visualize.*import hlg.visualize"):
            show()
    assert repr(graph).startswith("<HighLevelGraph: 1 layer")  # repr needs no presenter


def test_presentation_import_hlg_leaves_optional_packages_unimported():
    script = (
        "import sys, hlg\n"
        "assert type(hlg.presentation.presenter()).__name__ == 'VisualizePresenter'\n"
        "print(sorted(m for m in ('graphviz', 'networkx', 'rich') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, check=True
    )
    assert result.stdout.decode().strip() == "[]"
