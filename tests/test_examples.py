import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples():
    assert EXAMPLES


# Lines each example must print (regular expressions, each matching a whole line), in order.
# Token-derived names and packed sizes, which change with hlg and cloudpickle, are matched
# loosely; computed values exactly.
NAME = r"[a-z-]+-[0-9a-f]{32}"
SIZE = r"[0-9][0-9,]*"
EXPECTED_LINES = {
    "chunked_array.py": [
        rf"Array<{NAME}, shape=\(4, 6\), blocks=\(2, 2\), tasks=24> -> 324\.0 == 324\.0",
        r"mean of random: 0\.5\d\d",
        r"matmul: 30\.0 == 30\.0",
        rf"persisted: Array<{NAME}, shape=\(40, 20\), blocks=\(4, 2\), tasks=8> -> 30\.0",
        r"two sums in one run: ([0-9.]+) == \1",
        rf"PartialReduce passes check_layer: tasks 1, packed bytes {SIZE}",
    ],
    "custom_layer.py": [
        rf"200,000 tiles pack to {SIZE} bytes",
        rf"culled to 4 tasks; packed {SIZE} bytes",
        r"total of three tiles: 336",
    ],
    "distributed.py": [
        r"route: plugin",
        r"array, plugin route: 324\.0 \(local: 324\.0\)",
        r"array, expr route: 324\.0 \(local: 324\.0\)",
        r"array, client\.compute: 324\.0",
        rf"a 4,335,334-task graph packs to {SIZE} bytes",
        r"table, groupby-sum of 5 groups: equal to local: True",
        r"cluster closed",
    ],
    "pipeline.py": [
        r"dict graph: \(102, 202\)",
        rf"packed {SIZE} bytes; layers \['load', 'clean', 'analyze'\]",
        r"priority annotations: \{'analyze': 10\}",
        r"via bytes: 102",
    ],
    "table.py": [
        rf"Table<{NAME}, 7 partitions, columns=\['key', 'value'\], tasks=7>",
        rf"Table<{NAME}, 7 partitions, columns=\['key', 'value'\], tasks=77>",
        r"  key 0: mean value 0\.521",
        r"  key 4: mean value 0\.495",
        rf"packed: {SIZE} bytes; unpacked: <FlatGraph: 77 tasks, 7 requested keys, 0 remote keys>",
        r"sorted: True",
    ],
}


def lines_missing(expected: list[str], printed: str) -> list[str]:
    """The patterns of ``expected`` that no line of ``printed`` matches, in order."""
    lines = iter(printed.splitlines())
    missing = []
    for pattern in expected:
        if not any(re.fullmatch(pattern, line) for line in lines):
            missing.append(pattern)
            lines = iter(printed.splitlines())  # look for the next pattern from the top
    return missing


def test_every_example_has_expected_lines():
    assert {path.name for path in EXAMPLES} == set(EXPECTED_LINES)


def test_lines_missing_reports_a_changed_value_and_the_order():
    printed = "a: 1\nb: 2\n"
    assert lines_missing([r"a: 1", r"b: 2"], printed) == []
    assert lines_missing([r"a: 1", r"b: 3"], printed) == [r"b: 3"]
    assert lines_missing([r"b: 2", r"a: 1"], printed) == [r"a: 1"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_prints_its_results(path):
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert lines_missing(EXPECTED_LINES[path.name], out.stdout) == [], out.stdout


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
