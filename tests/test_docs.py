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
import importlib
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


@pytest.mark.parametrize("name", ["index.md", "writing-a-scheduler.md", "collections.md"])
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


# A dotted name starting with "hlg." that is not followed by more name characters or "-"
# (which would make it a registry tag such as "hlg.block-seeds").
DOTTED = re.compile(r"(?<![\w.-])hlg(?:\.[A-Za-z_]\w*)+(?![\w-])")


def resolve(path: str) -> object:
    """Return what ``path`` names, as user code reaches it: attributes from ``hlg`` down.

    Each importable prefix is imported first (as ``import hlg.distributed`` would be), but
    the path is then followed attribute by attribute, so a submodule shadowed by a function
    of the same name (``hlg.layers.blockwise``) does not resolve to the module.
    """
    parts = path.split(".")
    for i in range(2, len(parts) + 1):
        try:
            importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            break
    obj: object = importlib.import_module(parts[0])
    for part in parts[1:]:
        obj = getattr(obj, part)
    return obj


def dotted_names(text: str) -> set[str]:
    return set(DOTTED.findall(text))


def test_dotted_names_are_found_apart_from_tags():
    text = "`hlg.layers.KeyBox`, `hlg.block-seeds`, hlg.get(x), a.hlg.no, `hlg.Limits(tasks=1)`."
    assert dotted_names(text) == {"hlg.layers.KeyBox", "hlg.get", "hlg.Limits"}


def test_resolve_follows_attributes_not_shadowed_modules():
    assert resolve("hlg.layers.register_blockwise_dep") is not None
    assert resolve("hlg.HighLevelGraph.from_dict") is not None
    with pytest.raises(AttributeError):
        resolve("hlg.layers.blockwise.register_blockwise_dep")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_dotted_hlg_name_in_the_docs_resolves(path):
    from .conftest import LAYER_EXAMPLES

    tags = set(LAYER_EXAMPLES)  # registry tags look like dotted names
    unresolved = []
    for name in sorted(dotted_names(path.read_text()) - tags):
        try:
            resolve(name)
        except (ImportError, AttributeError):
            unresolved.append(name)
    assert unresolved == []
