"""Describing packed bytes without running or materialising anything.

The envelope is read as :func:`hlg.unpack` reads it (format, version, function
table, layer records), and each layer is rebuilt from its state by the class
registered under its tag, then asked for its ``len``: a Blockwise layer of 10^8
tasks answers from its block counts. No task is built, no function unpickled.
A layer whose tag is not registered here is listed as ``unregistered`` with an
unknown task count; importing the module that registers it (``hlg show --import``)
lets it be counted.

The size of each layer record is measured by walking the msgpack document a
second time and skipping over each record, so the sizes are exact.
"""

from __future__ import annotations

from typing import Any

import msgpack

from hlg.errors import HlgError, UnknownLayerError
from hlg.layers.base import MATERIALIZED_TAG
from hlg.layers.registry import get_layer_class
from hlg.packing.envelope import Envelope, PackedLayer, read_envelope
from hlg.visualize.description import FunctionInfo, GraphDescription, LayerInfo, block_counts

__all__ = ["describe_packed", "layer_type_for_tag"]

UNREGISTERED = "unregistered"


def describe_packed(data: bytes | bytearray | memoryview) -> GraphDescription:
    """Describe packed bytes: the envelope, each layer's tag, size and task count.

    Raises
    ------
    UnpackError
        The bytes are not an hlg graph, or are truncated or corrupt.
    FormatVersionError
        The bytes were packed in a newer format version.

    Examples
    --------
    >>> import hlg
    >>> y = hlg.blockwise(abs, "y", "ij", "x", "ij", numblocks={"x": (10_000, 10_000)})
    >>> x = hlg.blockwise(abs, "x", "ij", numblocks={}, new_axes={"i": 10_000, "j": 10_000})
    >>> info = describe_packed(hlg.pack(hlg.HighLevelGraph({"x": x, "y": y}, {"y": {"x"}})))
    >>> info.ntasks, [(row.name, row.tag, row.tasks) for row in info.layers]
    (200000000, [('x', 'hlg.blockwise', 100000000), ('y', 'hlg.blockwise', 100000000)])
    """
    envelope = read_envelope(data)
    sizes = _record_sizes(data, len(envelope.layers))
    rows = tuple(
        _describe_record(record, envelope, size)
        for record, size in zip(envelope.layers, sizes, strict=True)
    )
    return GraphDescription(
        "packed graph",
        rows,
        functions=tuple(
            FunctionInfo(i, f.name, len(f.data)) for i, f in enumerate(envelope.functions)
        ),
        format_version=envelope.version,
        requested_keys=None if envelope.keys is None else len(envelope.keys),
        remote_keys=len(envelope.remote_keys),
        total_bytes=len(data),
    )


def layer_type_for_tag(tag: str) -> str:
    """Return the name of the class registered under ``tag``, or ``"unregistered"``.

    Examples
    --------
    >>> layer_type_for_tag("hlg.blockwise"), layer_type_for_tag("nobody.registers.this")
    ('Blockwise', 'unregistered')
    """
    try:
        return get_layer_class(tag).__name__
    except UnknownLayerError:
        return UNREGISTERED


def _describe_record(record: PackedLayer, envelope: Envelope, size: int | None) -> LayerInfo:
    deps = tuple(sorted(record.dependencies))
    base: dict[str, Any] = {
        "name": record.name,
        "tag": record.tag,
        "dependencies": deps,
        "annotations": record.annotations,
        "packed_bytes": size,
    }
    try:
        cls = get_layer_class(record.tag)
    except UnknownLayerError:
        note = (
            f"tag {record.tag!r} is not registered here; import the module that registers "
            "it (hlg show --import MODULE) to count its tasks"
        )
        return LayerInfo(layer_type=UNREGISTERED, tasks=None, blocks="", note=note, **base)
    if record.tag == MATERIALIZED_TAG:
        # Its state is its tasks, column by column: count the keys, build nothing.
        keys = record.state.get("keys") if type(record.state) is dict else None
        if type(keys) is tuple:
            return LayerInfo(layer_type=cls.__name__, tasks=len(keys), blocks="", **base)
    try:
        layer = cls.unpack_state(
            record.state, envelope.decoder, name=record.name, annotations=record.annotations
        )
        tasks, blocks = len(layer), block_counts(layer)
    except HlgError as err:
        note = f"its state could not be read: {err}"
        return LayerInfo(layer_type=cls.__name__, tasks=None, blocks="", note=note, **base)
    except Exception as err:
        note = f"its state could not be read ({type(err).__name__}: {err})"
        return LayerInfo(layer_type=cls.__name__, tasks=None, blocks="", note=note, **base)
    return LayerInfo(layer_type=cls.__name__, tasks=tasks, blocks=blocks, **base)


def _record_sizes(data: bytes | bytearray | memoryview, count: int) -> list[int | None]:
    # The envelope was read already, so this walk over the same bytes cannot fail on
    # anything read_envelope accepted; should it, the sizes are simply unknown.
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    sizes: list[int | None] = []
    try:
        for _ in range(unpacker.read_map_header()):
            name = unpacker.unpack()
            if name != "layers":
                unpacker.skip()
                continue
            for _ in range(unpacker.read_array_header()):
                start = unpacker.tell()
                unpacker.skip()
                sizes.append(unpacker.tell() - start)
    except Exception:
        return [None] * count
    return sizes if len(sizes) == count else [None] * count
