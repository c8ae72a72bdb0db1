"""Packing: graphs to one msgpack document, and the registries it relies on."""

from hlg.layers.registry import get_layer_class, known_tags, register_layer
from hlg.packing.envelope import FORMAT_NAME, FORMAT_VERSION, read_envelope
from hlg.serializers import register_serializer

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "get_layer_class",
    "known_tags",
    "read_envelope",
    "register_layer",
    "register_serializer",
]
