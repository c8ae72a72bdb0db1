import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path):
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_demo_prints_the_pipeline_and_its_result():
    out = subprocess.run(
        [sys.executable, "-m", "hlg", "demo"], capture_output=True, text=True, check=True
    )
    assert "load     MaterializedLayer  hlg.materialized      3" in out.stdout
    assert "analyze -> {'count': 54" in out.stdout
    assert "Task groups after the run" in out.stdout
    assert "clean        3" in out.stdout
    assert "998,787 tasks pack to" in out.stdout
    assert "Fused: 6 tasks in 1 layer (y)" in out.stdout
    assert "4.0  4.0  4.0" in out.stdout


def test_cli_inspects_packed_files(tmp_path):
    import hlg

    path = tmp_path / "graph.hlg"
    path.write_bytes(hlg.pack({("x", 0): 1, ("y", 0): (abs, ("x", 0))}))
    out = subprocess.run(
        [sys.executable, "-m", "hlg", "inspect", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and "2 tasks" in out.stdout
    path.write_bytes(b"garbage")
    bad = subprocess.run(
        [sys.executable, "-m", "hlg", "inspect", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "not an hlg packed graph" in bad.stderr
