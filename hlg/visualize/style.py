"""How tables and pictures look: the colours of layer types, and values shown as text.

Shared by every rendering in :mod:`hlg.visualize` (DOT, HTML, rich and plain
text), so that a layer type has the same colour everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["PALETTE", "UNKNOWN_FILL", "format_annotations", "format_size", "palette_for"]

# Colour-blind-safe fills (Okabe-Ito, lightened so black text reads on them), given to
# layer types or task groups in the order they first appear.
PALETTE = (
    "#9fd3f5",
    "#f7c873",
    "#8fd9b6",
    "#f3a6c8",
    "#c9b3e6",
    "#f2e08c",
    "#a9c4e8",
    "#e8b49a",
)
UNKNOWN_FILL = "#d9d9d9"


def palette_for(names: Iterable[str]) -> dict[str, str]:
    """Give each distinct name a fill colour, in the order the names first appear.

    Examples
    --------
    >>> palette_for(["Blockwise", "MaterializedLayer", "Blockwise"])
    {'Blockwise': '#9fd3f5', 'MaterializedLayer': '#f7c873'}
    """
    out: dict[str, str] = {}
    for name in names:
        if name not in out:
            out[name] = UNKNOWN_FILL if name == "unregistered" else PALETTE[len(out) % 8]
    return out


def format_annotations(annotations: Mapping[str, Any], limit: int = 40) -> str:
    """Return annotations as ``name=value`` text, each value cut to ``limit`` characters.

    Examples
    --------
    >>> format_annotations({"priority": 5, "workers": ["a"]})
    "priority=5, workers=['a']"
    """
    return ", ".join(f"{k}={_short(v, limit)}" for k, v in annotations.items())


def format_size(nbytes: int) -> str:
    """Return a byte count for people: ``"694 B"``, ``"12.3 kB"``, ``"4.1 MB"``.

    Examples
    --------
    >>> format_size(694), format_size(12_345), format_size(4_100_000_000)
    ('694 B', '12.3 kB', '4,100.0 MB')
    """
    if nbytes < 10_000:
        return f"{nbytes:,} B"
    if nbytes < 10_000_000:
        return f"{nbytes / 1e3:,.1f} kB"
    return f"{nbytes / 1e6:,.1f} MB"


def _short(value: Any, limit: int) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
