"""Draw the pictures of docs/visualize.md from the demo's graphs.

Run from the repository root, with the ``viz`` extra and Graphviz installed::

    .venv/bin/python docs/make_pictures.py [--out DIR] [--no-screenshots]

The layer and task pictures come from ``HighLevelGraph.visualize`` and
``FlatGraph.visualize``. The Jupyter table is ``_repr_html_`` rendered by
headless Chromium (Debian package ``chromium``) on a light and a dark page;
without Chromium those two screenshots are skipped with a message.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import hlg
from hlg.demo import build_array_expression, build_groupby, build_pipeline

IMAGES = Path(__file__).resolve().parent / "images"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=2",
]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hlg</title>
<style>
  body {{ margin: 16px 20px; background: {background}; color: {color};
         font-family: system-ui, sans-serif; }}
  .cell {{ border-left: 3px solid {accent}; padding: 4px 12px; }}
  .prompt {{ font-family: monospace; opacity: 0.6; margin-bottom: 6px; }}
</style></head>
<body><div class="prompt">In [3]: graph</div><div class="cell">{body}</div></body></html>
"""

THEMES = {
    "light": {"background": "#ffffff", "color": "#1f2328", "accent": "#4a90d9"},
    "dark": {"background": "#1e1e1e", "color": "#d4d4d4", "accent": "#569cd6"},
}


def annotated_pipeline() -> hlg.HighLevelGraph:
    """Return the demo pipeline, with the store step marked as urgent and retried."""
    graph = build_pipeline("/data/out")
    layers = graph.layers
    layers["store"] = layers["store"].with_annotations(priority=10, retries=2)
    return hlg.HighLevelGraph(layers, graph.dependencies)


def array_with_reduction() -> hlg.HighLevelGraph:
    """Return the demo's array expression, culled to two rows and summed per row."""
    graph = build_array_expression()
    rows = [[("y", i, j) for j in range(577)] for i in range(2)]
    culled = graph.cull(rows)
    sums = hlg.MaterializedLayer(
        {("row_sum", i): (sum, rows[i]) for i in range(2)},
        name="row_sum",
        known_keys=set(culled),
        annotations={"priority": 1},
    )
    layers = {**culled.layers, "row_sum": sums}
    return hlg.HighLevelGraph(layers, {**culled.dependencies, "row_sum": {"y"}})


def screenshot(html: str, out: Path, theme: str, height: int) -> bool:
    """Render ``html`` in a page of ``theme`` with headless Chromium; False without it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print(f"skipped {out.name}: chromium is not installed (apt-get install chromium)")
        return False
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(PAGE.format(body=html, **THEMES[theme]))
        profile = Path(tmp) / "profile"
        profile.mkdir()
        subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                f"--window-size=1040,{height}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return True


def main(argv: list[str] | None = None) -> int:
    """Write every picture into docs/images/ (or ``--out DIR``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="where to write the pictures")
    parser.add_argument(
        "--no-screenshots", action="store_true", help="skip the Chromium screenshots"
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    pipeline = annotated_pipeline()
    reduction = array_with_reduction()
    written = [
        pipeline.visualize(out / "pipeline.svg"),
        pipeline.visualize(out / "pipeline.png"),
        reduction.visualize(out / "array-culled.svg"),
        reduction.visualize(out / "array-culled.png"),
        build_groupby().visualize(out / "groupby.png"),
    ]
    flat = hlg.unpack(hlg.pack(pipeline, "store"))
    written.append(flat.visualize(out / "pipeline-tasks.svg"))
    if not args.no_screenshots:
        # Show one layer's details opened, as after a click on its name.
        html = reduction._repr_html_()
        last = html.rfind("<details>")
        html = html[:last] + "<details open>" + html[last + len("<details>") :]
        for theme in THEMES:
            shot = out / f"html-repr-{theme}.png"
            if screenshot(html, shot, theme, height=250):
                written.append(shot)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
