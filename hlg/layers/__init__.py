"""Client-side layers: lazy mappings from keys to tasks."""

from hlg.layers.annotate import annotate, current_annotations
from hlg.layers.base import KeyBox, Layer, NeededKeys
from hlg.layers.blockwise import (
    BlockIndex,
    BlockPattern,
    BlockSeeds,
    BlockSlices,
    Blockwise,
    BlockwiseDep,
    blockwise,
    concatenate_blocks,
    register_blockwise_dep,
)
from hlg.layers.materialized import MaterializedLayer
from hlg.layers.registry import get_layer_class, known_tags, register_layer

__all__ = [
    "BlockIndex",
    "BlockPattern",
    "BlockSeeds",
    "BlockSlices",
    "Blockwise",
    "BlockwiseDep",
    "KeyBox",
    "Layer",
    "MaterializedLayer",
    "NeededKeys",
    "annotate",
    "blockwise",
    "concatenate_blocks",
    "current_annotations",
    "get_layer_class",
    "known_tags",
    "register_blockwise_dep",
    "register_layer",
]
