import hlg
from hlg.visualize import to_html
from tests.visualize.counting import CountedLayer
from tests.visualize.helpers import parse_html, sample_graph, small_flat


def test_graph_html_is_well_formed_and_lists_every_layer():
    html = sample_graph()._repr_html_()
    parsed = parse_html(html)
    text = " ".join(parsed.text)
    for name in ("counted", "doubled", "total", "CountedLayer", "Blockwise", "priority=2"):
        assert name in text
    assert {"table", "details", "summary"} <= parsed.tags


def test_html_has_no_external_assets_or_scripts():
    html = sample_graph()._repr_html_()
    lowered = html.lower()
    for forbidden in ("<script", "<link", "<img", "http://", "https://", "url(", "@import"):
        assert forbidden not in lowered


def test_html_inherits_the_theme_colours():
    html = sample_graph()._repr_html_()
    assert "color:inherit" in html and "background:transparent" in html
    assert "#fff" not in html.lower() and "#000" not in html.lower()


def test_html_escapes_names():
    html = to_html(CountedLayer("<b>bold</b>", 1))
    parse_html(html)
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_layer_flat_and_packed_html():
    layer = CountedLayer("c", 5)
    assert "c" in " ".join(parse_html(layer._repr_html_()).text)
    flat_text = " ".join(parse_html(small_flat()._repr_html_()).text)
    assert "FlatGraph" in flat_text
    packed = parse_html(to_html(hlg.pack(sample_graph())))
    assert "function table" in " ".join(packed.text)


def test_html_never_materializes():
    CountedLayer.calls = 0
    CountedLayer("c", 10**9)._repr_html_()
    assert CountedLayer.calls == 0
