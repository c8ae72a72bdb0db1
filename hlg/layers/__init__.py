"""Client-side layers: lazy mappings from keys to tasks."""

from hlg.layers.annotate import annotate, current_annotations
from hlg.layers.base import Layer
from hlg.layers.materialized import MaterializedLayer

__all__ = ["Layer", "MaterializedLayer", "annotate", "current_annotations"]
