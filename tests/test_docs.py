import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_doc_examples_run(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_index_example_runs():
    text = (Path(__file__).parent.parent / "docs" / "index.md").read_text()
    code = text.split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec(compile(code, "docs/index.md", "exec"), namespace)
    assert namespace["flat"].annotations["priority"] == {"total": 10}
