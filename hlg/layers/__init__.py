"""Client-side layers: lazy mappings from keys to tasks."""

from hlg.layers.annotate import annotate, current_annotations
from hlg.layers.base import KeyBox, Layer, NeededKeys
from hlg.layers.blockwise import (
    BlockHint,
    BlockIndex,
    BlockPattern,
    BlockSeeds,
    BlockSlices,
    Blockwise,
    BlockwiseDep,
    BlockwiseInput,
    BlockwiseState,
    DepInput,
    KeyInput,
    ValueInput,
    blockwise,
    concatenate_blocks,
    register_blockwise_dep,
)
from hlg.layers.materialized import MaterializedLayer
from hlg.layers.registry import get_layer_class, known_tags, register_layer

__all__ = [
    "BlockHint",
    "BlockIndex",
    "BlockPattern",
    "BlockSeeds",
    "BlockSlices",
    "Blockwise",
    "BlockwiseDep",
    "BlockwiseInput",
    "BlockwiseState",
    "DepInput",
    "KeyBox",
    "KeyInput",
    "Layer",
    "MaterializedLayer",
    "NeededKeys",
    "ValueInput",
    "annotate",
    "blockwise",
    "concatenate_blocks",
    "current_annotations",
    "get_layer_class",
    "known_tags",
    "register_blockwise_dep",
    "register_layer",
]
