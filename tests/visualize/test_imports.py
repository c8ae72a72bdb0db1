import subprocess
import sys
from pathlib import Path

import hlg
from tests.visualize.helpers import sample_graph

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
for name in ("graphviz", "networkx", "rich"):
    sys.modules[name] = None  # as if not installed
import hlg
import hlg.visualize as viz
import tests.visualize.counting  # registers the counted layer type
from hlg.demo import build_pipeline

data = sys.stdin.buffer.read()
info = viz.describe(data)
assert info.ntasks == 13, info
assert viz.to_dot(data).startswith("digraph")
assert "<table" in viz.to_html(data)
assert "cloudpickle" not in sys.modules, "describing packed bytes imported cloudpickle"
graph = build_pipeline("/tmp")
assert str(graph).startswith("HighLevelGraph: 4 layers")
graph._repr_html_()
for call in (lambda: graph.to_networkx(), lambda: graph.visualize("never.svg")):
    try:
        call()
    except hlg.NotInstalledError as err:
        assert "pip install" in str(err)
    else:
        raise AssertionError("expected NotInstalledError")
print("ok")
"""


def test_visualize_works_without_optional_packages_and_never_unpickles():
    data = hlg.pack(sample_graph())
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        input=data,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip() == b"ok"
