"""The ``hlg`` command, run as users run it: in a subprocess."""

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hlg
from tests.visualize.counting import CountedLayer
from tests.visualize.helpers import parse_html, sample_graph

ROOT = Path(__file__).resolve().parent.parent
IMPORT = ["--import", "tests.visualize.counting"]


def hlg_cmd(*args, log=None, limit_memory=None, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if log is not None:
        env["HLG_TEST_MATERIALIZE_LOG"] = str(log)

    def limit():  # runs in the child: a materialised 10**8-task graph could not fit
        resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))

    return subprocess.run(
        [sys.executable, "-m", "hlg", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        preexec_fn=limit if limit_memory else None,
        check=False,
    )


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "graph.hlg"
    path.write_bytes(hlg.pack(sample_graph(), "total"))
    return path


@pytest.fixture
def huge_file(tmp_path):
    blocks = hlg.blockwise(abs, "h", "ij", numblocks={}, new_axes={"i": 10_000, "j": 10_000})
    graph = hlg.HighLevelGraph({"h": blocks, "c": CountedLayer("c", 10**8)})
    path = tmp_path / "huge.hlg"
    path.write_bytes(hlg.pack(graph))
    return path


def test_cli_version_and_help():
    assert hlg_cmd("--version").stdout.strip() == f"hlg {hlg.__version__}"
    for command in ("show", "inspect", "run", "demo"):
        result = hlg_cmd(command, "--help")
        assert result.returncode == 0 and f"usage: hlg {command}" in result.stdout
    assert "show" in hlg_cmd("--help").stdout


def test_cli_show_good_file(good_file, tmp_path):
    log = tmp_path / "materialized.log"
    result = hlg_cmd("show", good_file, *IMPORT, log=log)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("packed graph: 3 layers, 13 tasks, ")
    assert "format version 1" in out and "requested keys: 1; remote keys: 0" in out
    for text in ("counted", "CountedLayer", "tests.visualize.counting", "doubled", "6 blocks"):
        assert text in out
    assert "priority=2" in out and "retries=3" in out
    assert "function  name" in out and " mul " in out and " sum " in out
    assert not log.exists()


def test_cli_inspect_is_show(good_file):
    assert (
        hlg_cmd("inspect", good_file, *IMPORT).stdout == hlg_cmd("show", good_file, *IMPORT).stdout
    )


def test_cli_show_json(good_file):
    result = hlg_cmd("show", good_file, "--json", *IMPORT)
    data = json.loads(result.stdout)
    assert data["tasks"] == 13 and data["requested_keys"] == 1
    assert [layer["tasks"] for layer in data["layers"]] == [6, 6, 1]


def test_cli_show_huge_file_without_expanding_it(huge_file, tmp_path):
    log = tmp_path / "materialized.log"
    result = hlg_cmd("show", huge_file, *IMPORT, log=log, limit_memory=1 << 30)
    assert result.returncode == 0, result.stderr
    assert "200,000,000 tasks" in result.stdout
    assert "10,000 x 10,000 blocks" in result.stdout
    assert not log.exists()


def test_cli_show_unregistered_tag(good_file):
    result = hlg_cmd("show", good_file)  # without --import: the counting layer is unknown
    assert result.returncode == 2
    assert "unregistered" in result.stdout and "doubled" in result.stdout
    assert result.stderr.count("\n") == 1
    assert "'tests.visualize.counting' is not registered" in result.stderr
    assert "--import" in result.stderr


def test_cli_show_import_failure_is_one_line(good_file):
    result = hlg_cmd("show", good_file, "--import", "no_such_module_here")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "ModuleNotFoundError" in result.stderr


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.hlg", None, "no such file"),
        ("a-directory", "dir", "is a directory"),
        ("notes.txt", b"hello, not a graph\n", "not an hlg packed graph"),
        ("empty.hlg", b"", "is empty"),
        ("truncated.hlg", "truncated", "truncated or corrupt"),
    ],
)
@pytest.mark.parametrize("command", ["show", "run"])
def test_cli_bad_files_get_one_line_and_status_2(tmp_path, command, name, content, message):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content == "truncated":
        data = hlg.pack(sample_graph())
        path.write_bytes(data[: len(data) - 20])
    elif content is not None:
        path.write_bytes(content)
    result = hlg_cmd(command, path)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert message in result.stderr and name in result.stderr
    assert result.stderr.startswith(f"hlg {command}: ")


def test_cli_run_unknown_tag_is_status_2(good_file):
    result = hlg_cmd("run", good_file)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no layer type is registered under tag 'tests.visualize.counting'" in result.stderr


def test_cli_run_computes_and_prints_groups(good_file, tmp_path):
    log = tmp_path / "materialized.log"
    result = hlg_cmd("run", good_file, *IMPORT, "--scheduler", "sync", log=log)
    assert result.returncode == 0, result.stderr
    assert "1 requested key computed" in result.stdout
    assert "'total'  int   42" in result.stdout
    assert "task groups:" in result.stdout and "counted" in result.stdout
    assert log.read_text() == "counted\n"  # running does materialise: the log works


def test_cli_run_progress_and_threads(good_file):
    result = hlg_cmd("run", good_file, *IMPORT, "--progress", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "42" in result.stdout


def test_cli_run_max_tasks(huge_file):
    result = hlg_cmd("run", huge_file, *IMPORT, "--max-tasks", "1000", limit_memory=1 << 30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "limit of 1,000 tasks" in result.stderr


def test_cli_run_failing_task_is_status_1(tmp_path):
    path = tmp_path / "fails.hlg"
    path.write_bytes(hlg.pack({"x": 0, "y": (divmod, 1, "x")}, "y"))
    result = hlg_cmd("run", path, "--scheduler", "sync")
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr and "Traceback" not in result.stderr


def test_cli_show_draws_html_and_dot(good_file, tmp_path):
    html, dot = tmp_path / "g.html", tmp_path / "g.dot"
    result = hlg_cmd("show", good_file, *IMPORT, "--html", html, "--dot", dot)
    assert result.returncode == 0, result.stderr
    page = parse_html(html.read_text())
    assert "counted" in " ".join(page.text)
    assert dot.read_text().startswith("digraph hlg {")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_cli_show_draws_svg_and_png(good_file, tmp_path):
    svg, png = tmp_path / "g.svg", tmp_path / "g.png"
    result = hlg_cmd("show", good_file, *IMPORT, "--svg", svg, "--png", png)
    assert result.returncode == 0, result.stderr
    assert svg.read_bytes().startswith(b"<?xml") and png.read_bytes().startswith(b"\x89PNG")


def test_cli_show_unwritable_output_is_status_2(good_file, tmp_path):
    result = hlg_cmd("show", good_file, *IMPORT, "--dot", tmp_path / "no" / "such" / "dir.dot")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_cli_demo_save_then_show(tmp_path):
    path = tmp_path / "demo.hlg"
    result = hlg_cmd("demo", "--save", path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"hlg show {path}" in result.stdout
    shown = hlg_cmd("show", path)
    assert shown.returncode == 0 and "998,787 tasks" in shown.stdout


def test_cli_in_process_main_returns_status(good_file, capsys):
    from hlg.cli import main

    assert main(["show", str(good_file), *IMPORT]) == 0
    assert "13 tasks" in capsys.readouterr().out


@pytest.mark.parametrize("option", ["--workers", "--max-tasks"])
def test_cli_run_rejects_non_positive_numbers(good_file, option):
    result = hlg_cmd("run", good_file, option, "0")
    assert result.returncode == 2 and "expected a positive whole number, got '0'" in result.stderr


def test_cli_show_newer_format_version_is_status_2(tmp_path):
    data = hlg.pack({"x": 1})
    assert data.count(b"\xa7version\x01") == 1
    path = tmp_path / "future.hlg"
    path.write_bytes(data.replace(b"\xa7version\x01", b"\xa7version\x63"))
    result = hlg_cmd("show", path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "format version 99" in result.stderr and "upgrade hlg" in result.stderr


def test_cli_run_limit_sets_fields_of_limits(good_file):
    result = hlg_cmd(
        "run",
        good_file,
        *IMPORT,
        "--scheduler",
        "sync",
        "--limit",
        "references=1000",
        "--limit",
        "tasks=13",
    )
    assert result.returncode == 0, result.stderr
    assert "42" in result.stdout
    refused = hlg_cmd("run", good_file, *IMPORT, "--limit", "references=0")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "references to other keys" in refused.stderr
    assert "limits=hlg.Limits(references=...)" in refused.stderr
    small = hlg_cmd("run", good_file, *IMPORT, "--limit", "bytes=10")
    assert small.returncode == 2 and "more than the limit of 10 bytes" in small.stderr


def test_cli_run_limit_tasks_refuses_a_huge_graph(huge_file):
    result = hlg_cmd("run", huge_file, *IMPORT, "--limit", "tasks=1000", limit_memory=1 << 30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "limit of 1,000 tasks" in result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--limit", "refs=10"], "expected FIELD=N with FIELD one of tasks, references,"),
        (["--limit", "tasks"], "expected FIELD=N with FIELD one of"),
        (["--limit", "tasks=many"], "expected a whole number >= 0 after 'tasks=', got 'many'"),
        (["--limit", "text=-1"], "expected a whole number >= 0 after 'text=', got '-1'"),
        (["--limit", "text=1.5"], "got '1.5'"),
        (["--limit", "text=1", "--limit", "text=2"], "text is given twice"),
        (["--limit", "tasks=5", "--max-tasks", "5"], "--max-tasks N or --limit tasks=N, not both"),
    ],
)
def test_cli_run_limit_rejects_bad_fields_and_numbers(good_file, options, message):
    result = hlg_cmd("run", good_file, *IMPORT, *options)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_limit_fields_are_the_fields_of_limits():
    import dataclasses

    from hlg.cli import _LIMIT_FIELDS

    assert tuple(f.name for f in dataclasses.fields(hlg.Limits)) == _LIMIT_FIELDS
    help_text = hlg_cmd("run", "--help").stdout
    assert "--limit FIELD=N" in help_text and "references" in help_text
