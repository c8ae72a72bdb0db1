"""Graphs the visualize tests draw, and a check that HTML is well formed."""

from __future__ import annotations

from html.parser import HTMLParser
from operator import add, mul

import hlg
from tests.visualize.counting import CountedLayer

# Elements that have no end tag.
VOID = {"br", "hr", "img", "input", "meta", "link", "col", "wbr", "source", "area", "base"}


def sample_graph() -> hlg.HighLevelGraph:
    """Three layers of three types: counted -> blockwise -> materialized, with annotations."""
    counted = CountedLayer("counted", 6, annotations={"priority": 2})
    doubled = hlg.blockwise(
        mul, "doubled", "i", "counted", "i", 2, None, numblocks={"counted": (6,)}
    )
    total = hlg.MaterializedLayer(
        {"total": (sum, [("doubled", i) for i in range(6)])},
        name="total",
        known_keys=set(doubled),
        annotations={"retries": 3},
    )
    return hlg.HighLevelGraph(
        {"counted": counted, "doubled": doubled, "total": total},
        {"doubled": {"counted"}, "total": {"doubled"}},
    )


def small_flat() -> hlg.FlatGraph:
    graph = {("x", i): i for i in range(3)}
    graph.update({("y", i): (add, ("x", i), 1) for i in range(3)})
    graph["z"] = (sum, [("y", i) for i in range(3)])
    return hlg.unpack(hlg.pack(graph, "z"))


class StrictHTML(HTMLParser):
    """Collects text and fails on unbalanced tags."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(html: str) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(html)
    parser.close()
    assert not parser.errors, parser.errors
    assert not parser.stack, f"unclosed: {parser.stack}"
    return parser
