import os
import shutil

import pytest

import hlg
from hlg.visualize import flat_to_dot, render, to_dot
from tests.visualize.counting import CountedLayer
from tests.visualize.helpers import sample_graph, small_flat

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot program is not installed (apt-get install graphviz)",
)

EXPECTED_TWO_LAYERS = """\
digraph hlg {
  graph [rankdir=TB, fontname=Helvetica, fontsize=11, label=<HighLevelGraph: 2 layers, 2 tasks>,
         labelloc=t, nodesep=0.3, ranksep=0.45, bgcolor="white"];
  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10,
        color="#555555", margin="0.15,0.06"];
  edge [color="#666666", arrowsize=0.7];
  layer0 [label=<<b>a</b><br/>MaterializedLayer<br/>1 task>, fillcolor="#9fd3f5"];
  layer1 [label=<<b>b</b><br/>MaterializedLayer<br/>1 task<br/><i>priority=1</i>>, \
fillcolor="#9fd3f5"];
  layer0 -> layer1;
  subgraph cluster_legend {
    label=<layer types>; style="rounded"; color="#aaaaaa"; fontsize=10;
    legend [shape=plaintext, style=solid, label=<<table border="0" cellspacing="2" \
cellpadding="2"><tr><td bgcolor="#9fd3f5" width="14"> </td><td align="left">MaterializedLayer\
</td></tr></table>>];
  }
}"""


def two_layers() -> hlg.HighLevelGraph:
    a = hlg.MaterializedLayer({"a": 1}, name="a")
    b = hlg.MaterializedLayer({"b": (abs, "a")}, name="b", known_keys={"a"})
    return hlg.HighLevelGraph({"a": a, "b": b.with_annotations(priority=1)}, {"b": {"a"}})


def test_to_dot_known_graph():
    assert to_dot(two_layers()) == EXPECTED_TWO_LAYERS
    assert two_layers().to_dot() == EXPECTED_TWO_LAYERS


def test_to_dot_colours_by_layer_type_with_legend():
    dot = to_dot(sample_graph())
    assert 'fillcolor="#9fd3f5"' in dot and 'fillcolor="#f7c873"' in dot
    assert 'fillcolor="#8fd9b6"' in dot
    for layer_type in ("CountedLayer", "Blockwise", "MaterializedLayer"):
        assert f'<td align="left">{layer_type}</td>' in dot
    assert "layer0 -> layer1;" in dot and "layer1 -> layer2;" in dot
    assert "6 blocks" in dot and "priority=2" in dot


def test_to_dot_escapes_names():
    layer = CountedLayer('<odd> "name" & more', 1)
    dot = to_dot(layer)
    assert "<b>&lt;odd&gt; &quot;name&quot; &amp; more</b>" in dot


def test_to_dot_never_materializes():
    CountedLayer.calls = 0
    to_dot(CountedLayer("c", 10**9))
    assert CountedLayer.calls == 0


def test_flat_to_dot_groups_and_edges():
    dot = small_flat().to_dot()
    assert dot.count("subgraph cluster_group") == 2  # z, a group of one task, has no box
    for group in ("x", "y"):
        assert f"label=<{group}>;" in dot
    assert "label=<x, 0>" in dot and "label=<z>" in dot
    assert dot.index("label=<x, 0>") < dot.index("label=<x, 1>") < dot.index("label=<x, 2>")
    # y-i depends on x-i; z on all three y
    assert dot.count(" -> ") == 6
    assert "label=<7 tasks in 3 task groups>" in dot


def test_flat_to_dot_refuses_past_the_limit():
    flat = hlg.unpack(hlg.pack({("x", i): i for i in range(20)}))
    with pytest.raises(hlg.UsageError, match="20 tasks, more than max_tasks=10 .* pass a larger"):
        flat_to_dot(flat, max_tasks=10)
    assert flat_to_dot(flat, max_tasks=20).startswith("digraph")
    with pytest.raises(hlg.UsageError, match="max_tasks=500"):
        hlg.unpack(hlg.pack({("x", i): i for i in range(501)})).to_dot()


def test_flat_to_dot_shows_remote_keys():
    data = hlg.pack({"y": hlg.Task(abs, hlg.TaskRef("remote"))}, "y", remote_keys=["remote"])
    dot = flat_to_dot(hlg.unpack(data))
    assert "<i>remote</i>" in dot and "remote0 -> task0;" in dot


def test_render_dot_needs_nothing(tmp_path):
    path = render(to_dot(two_layers()), tmp_path / "g.gv")
    assert path.read_text() == EXPECTED_TWO_LAYERS + "\n"
    assert two_layers().visualize(tmp_path / "g.dot").read_text() == EXPECTED_TWO_LAYERS + "\n"


def test_render_unknown_extension(tmp_path):
    with pytest.raises(hlg.UsageError, match="end its name with one of .svg"):
        render("digraph {}", tmp_path / "g.jpeg")


@needs_dot
@pytest.mark.parametrize("ext", ["svg", "png", "pdf"])
def test_visualize_renders_files(tmp_path, ext):
    path = sample_graph().visualize(tmp_path / f"graph.{ext}")
    data = path.read_bytes()
    magic = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF"}[ext]
    assert data.startswith(magic) and len(data) > 1000


@needs_dot
def test_visualize_svg_holds_every_layer(tmp_path):
    svg = sample_graph().visualize(tmp_path / "graph.svg").read_text()
    for name in ("counted", "doubled", "total", "CountedLayer", "layer types"):
        assert name in svg


@needs_dot
def test_flat_graph_and_layer_visualize(tmp_path):
    assert small_flat().visualize(tmp_path / "flat.svg").read_bytes().startswith(b"<?xml")
    layer = CountedLayer("c", 3)
    assert layer.visualize(tmp_path / "layer.png").read_bytes().startswith(b"\x89PNG")


def test_visualize_without_dot_says_how_to_install(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(hlg.NotInstalledError, match="apt-get install graphviz") as info:
        sample_graph().visualize(tmp_path / "graph.svg")
    assert isinstance(info.value, ImportError)
    assert not os.path.exists(tmp_path / "graph.svg")


def test_visualize_without_graphviz_package(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(hlg.NotInstalledError, match=r"pip install 'hlg\[viz\]'"):
        sample_graph().visualize(tmp_path / "graph.png")


@needs_dot
def test_docs_picture_script_draws_every_picture(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "docs/make_pictures.py", "--out", str(tmp_path), "--no-screenshots"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    names = {"pipeline.svg", "pipeline.png", "array-culled.svg", "array-culled.png", "groupby.png"}
    assert names | {"pipeline-tasks.svg"} == {p.name for p in tmp_path.iterdir()}
    assert all(p.stat().st_size > 1000 for p in tmp_path.iterdir())
    # The committed pictures are the ones docs/visualize.md shows.
    text = (root / "docs" / "visualize.md").read_text()
    shown = ("pipeline.png", "array-culled.png", "groupby.png", "pipeline-tasks.svg")
    for name in (*shown, "html-repr-light.png", "html-repr-dark.png"):
        assert f"images/{name}" in text and (root / "docs" / "images" / name).exists()


def test_flat_to_dot_draws_a_cyclic_flat_graph():
    a = hlg.Task(abs, hlg.TaskRef("b"))
    b = hlg.Task(abs, hlg.TaskRef("a"))
    dot = flat_to_dot(hlg.FlatGraph({"a": a, "b": b}, ["a"]))
    assert "task0 -> task1;" in dot and "task1 -> task0;" in dot
