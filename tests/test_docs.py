"""The code in docs/*.md and README.md runs, and prints what the page shows.

A page holds three kinds of code block:

- ```` ```python ```` blocks of ``>>>`` examples: doctests, whose output doctest checks;
- ```` ```python ```` blocks of plain code (scripts): run in order, in one namespace per
  page. A script that prints is followed by an ```` ```output ```` block holding exactly
  what it prints (text may sit between them);
- ```` ```python fragment ```` blocks: code that needs what a page cannot provide (a
  cluster, a dask collection named ``x``); compiled, not run.
"""

import contextlib
import doctest
import io
import re
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).parent.parent
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


class Block(NamedTuple):
    info: str
    body: str
    line: int


def blocks(text: str) -> list[Block]:
    return [
        Block(m["info"].strip(), m["body"], text.count("\n", 0, m.start()) + 2)
        for m in FENCE.finditer(text)
    ]


def is_script(block: Block) -> bool:
    return block.info == "python" and not block.body.lstrip().startswith(">>>")


class Script(NamedTuple):
    code: Block
    output: Block | None


def scripts(text: str) -> list[Script]:
    """The page's scripts, each with the output block that follows it, if any."""
    found = blocks(text)
    out = []
    for i, block in enumerate(found):
        if block.info == "output" and not (i and is_script(found[i - 1])):
            raise AssertionError(f"line {block.line}: an output block follows no script")
        if is_script(block):
            after = found[i + 1] if i + 1 < len(found) else None
            out.append(Script(block, after if after and after.info == "output" else None))
    return out


def run_scripts(path: Path) -> int:
    """Run the scripts of the page at ``path``, check their output; return how many ran."""
    namespace: dict = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    ran = 0
    for code, output in scripts(path.read_text()):
        printed = io.StringIO()
        compiled = compile("\n" * (code.line - 1) + code.body, str(path), "exec")
        with contextlib.redirect_stdout(printed):
            exec(compiled, namespace)
        expected = output.body if output is not None else ""
        if printed.getvalue() != expected:
            raise AssertionError(
                f"{path.name}, line {code.line}: the script printed\n{printed.getvalue()}"
                f"but the page shows\n{expected}"
            )
        ran += 1
    return ran


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_examples_run(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_scripts_print_what_the_page_shows(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a script that writes files writes them here
    run_scripts(path)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_fragments_compile(path):
    for block in blocks(path.read_text()):
        if block.info == "python fragment":
            compile(block.body, f"{path}:{block.line}", "exec")


def test_doc_blocks_are_of_known_kinds():
    kinds = {"", "python", "python fragment", "output"}
    for path in DOCS:
        for block in blocks(path.read_text()):
            assert block.info in kinds, f"{path.name}, line {block.line}: ```{block.info}"


@pytest.mark.parametrize("name", ["index.md"])
def test_pages_show_what_their_scripts_print(name):
    assert any(output is not None for _, output in scripts((ROOT / "docs" / name).read_text()))


def test_a_script_whose_output_differs_from_the_page_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(6 * 7)\n```\n\nprints\n\n```output\n41\n```\n")
    with pytest.raises(AssertionError, match="the script printed\n42\nbut the page shows\n41"):
        run_scripts(page)


def test_a_script_that_prints_without_an_output_block_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nprint('hello')\n```\n")
    with pytest.raises(AssertionError, match="printed\nhello\nbut the page shows\n$"):
        run_scripts(page)


def test_an_output_block_must_follow_a_script():
    with pytest.raises(AssertionError, match="line 2: an output block follows no script"):
        scripts("```output\n1\n```\n")


def test_a_page_of_matching_scripts_passes(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 6\n```\n\n```python\nprint(x * 7)\nprint('done')\n```\n\n"
        "```output\n42\ndone\n```\n\n```python\n>>> 1 + 1\n2\n\n```\n"
    )
    assert run_scripts(page) == 2
