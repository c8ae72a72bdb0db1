"""Draw docs/shuffle-stages.svg: the tasks of a small two-stage shuffle.

The picture is made from the dependencies of a real ``hlg.ShuffleLayer``
(6 inputs, 9 outputs, 2 stages of 3 groups), so it shows what hlg builds.
Each split's pieces are drawn as edges to the combines that take them,
coloured by group.

Run: python docs/draw_shuffle.py   (rewrites docs/shuffle-stages.svg)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hlg

N_IN, N_OUT, STAGES = 6, 9, 2
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
ROW, COLUMN, TOP, LEFT, RADIUS = 34, 150, 60, 60, 11


def _identity(value: Any, *rest: Any) -> Any:
    return value


def layer() -> hlg.ShuffleLayer:
    """Return the shuffle the picture shows."""
    return hlg.ShuffleLayer(
        "out", "in", N_IN, _identity, _identity, npartitions_out=N_OUT, stages=STAGES
    )


def columns(shuffle: hlg.ShuffleLayer) -> list[tuple[str, list[Any]]]:
    """Node columns, left to right: inputs, then each stage's splits and combines."""
    out: list[tuple[str, list[Any]]] = [("input", [("in", i) for i in range(N_IN)])]
    split_keys = list(shuffle.role_keys("split"))
    combine_keys = list(shuffle.role_keys("combine")) + list(shuffle.role_keys("output"))
    for s in range(shuffle.nstages):
        out.append((f"stage {s}: split", [k for k in split_keys if k[1] == s]))
        title = "output" if s == shuffle.nstages - 1 else f"stage {s}: combine"
        stage = [k for k in combine_keys if (k[0] == "out") == (s == shuffle.nstages - 1)]
        out.append((title, [k for k in stage if k[0] == "out" or k[1] == s]))
    return out


def draw() -> str:
    """Return the SVG text."""
    shuffle = layer()
    tasks = shuffle.materialize()
    cols = columns(shuffle)
    where: dict[Any, tuple[float, float]] = {}
    height = TOP + ROW * max(len(keys) for _, keys in cols) + 40
    width = LEFT * 2 + COLUMN * (len(cols) - 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    for c, (title, keys) in enumerate(cols):
        x = LEFT + c * COLUMN
        parts.append(f'<text x="{x}" y="{TOP - 30}" text-anchor="middle">{title}</text>')
        for r, key in enumerate(keys):
            where[key] = (x, TOP + r * ROW)
    edges, nodes = [], []
    for key, (x, y) in where.items():
        node = tasks.get(key)
        for dep in sorted(node.dependencies, key=repr) if node is not None else ():
            if dep[0] == "piece-out":  # a piece: draw it from its split, coloured by group
                source, colour = ("split-out", dep[1], dep[2]), COLOURS[dep[3] % len(COLOURS)]
            else:
                source, colour = dep, "#888888"
            sx, sy = where[source]
            edges.append(
                f'<line x1="{sx}" y1="{sy}" x2="{x}" y2="{y}" stroke="{colour}" '
                'stroke-width="1.4" opacity="0.8"/>'
            )
        label = key[-1]
        nodes.append(
            f'<circle cx="{x}" cy="{y}" r="{RADIUS}" fill="white" stroke="black"/>'
            f'<text x="{x}" y="{y + 4}" text-anchor="middle">{label}</text>'
        )
    legend_y = height - 14
    legend = [
        f'<text x="{LEFT}" y="{legend_y}">pieces by group: </text>',
        *(
            f'<rect x="{LEFT + 110 + 80 * j}" y="{legend_y - 10}" width="12" height="12" '
            f'fill="{COLOURS[j]}"/><text x="{LEFT + 126 + 80 * j}" y="{legend_y}">group {j}</text>'
            for j in range(shuffle.plan.nsplits)
        ),
    ]
    return "\n".join([*parts, *edges, *nodes, *legend, "</svg>"]) + "\n"


def main() -> None:
    """Write the picture next to this script."""
    path = Path(__file__).with_name("shuffle-stages.svg")
    path.write_text(draw())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
