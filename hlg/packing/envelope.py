"""Reading the packed envelope, on the scheduler.

:func:`read_envelope` checks the format name and version, decodes the
function table into :class:`~hlg.task.SerializedFunction` objects, then decodes
each layer record
on its own, so an error names the layer it is in. ``docs/format.md`` specifies
the document.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack

from hlg.errors import (
    FormatVersionError,
    HlgError,
    LayerStateError,
    ResourceLimitError,
    UnpackError,
)
from hlg.keys import Key, all_keys, is_key
from hlg.limits import Limits, check_distinct_hashes
from hlg.packing.codec import Decoder
from hlg.task import SerializedFunction

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Envelope", "PackedLayer", "read_envelope"]

FORMAT_NAME = "hlg"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, slots=True)
class PackedLayer:
    """One layer record of an envelope, decoded but not yet rebuilt."""

    tag: str
    name: str
    dependencies: tuple[str, ...]
    annotations: dict[str, Any]
    state: Any
    # Role -> annotations for that role's keys (optional field, absent when empty).
    roles: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded envelope: everything but the layers' tasks."""

    version: int
    functions: list[SerializedFunction]
    layers: list[PackedLayer]
    keys: list[Key] | None
    remote_keys: frozenset[Key]
    decoder: Decoder


def read_envelope(data: bytes | bytearray | memoryview, limits: Limits | None = None) -> Envelope:
    """Decode an envelope's fields and layer records; unpickle nothing.

    Parameters
    ----------
    data
        The packed graph.
    limits
        Refuse data larger than ``limits.bytes``; the defaults of
        :class:`~hlg.Limits` when None.

    Raises
    ------
    UnpackError
        The bytes are not an hlg envelope, or are truncated or corrupt.
    FormatVersionError
        The envelope was written in a newer format version.
    LayerStateError
        A layer record lacks a field or holds one of the wrong type.
    ResourceLimitError
        The data is larger than ``limits.bytes``, or holds keys chosen to collide.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UnpackError(f"expected bytes to unpack; got {type(data).__name__}")
    (limits or Limits()).check_bytes(len(data))
    decoder = Decoder([])
    unpacker = msgpack.Unpacker(max_buffer_size=max(len(data), 1), **decoder.unpack_options())
    unpacker.feed(data)
    fields: dict[str, Any] = {}
    layers: list[PackedLayer] = []
    where = "the envelope header"
    try:
        try:
            nfields = unpacker.read_map_header()
        except Exception:
            raise UnpackError(
                "these bytes are not an hlg packed graph: they do not start with a msgpack map"
                + _pickle_hint(data)
            ) from None
        if not nfields:
            raise UnpackError(
                "these bytes are not an hlg packed graph: they hold an empty map"
                + _pickle_hint(data)
            )
        for n in range(nfields):
            name = unpacker.unpack()
            if n == 0 and name != "format":
                raise UnpackError(
                    "these bytes are not an hlg packed graph: their first field is "
                    f"{name!r:.80}, not 'format'" + _pickle_hint(data)
                )
            if name == "layers":
                if "functions" not in fields:
                    raise UnpackError("the envelope lists its layers before its function table")
                for i in range(unpacker.read_array_header()):
                    where = f"layer record {i}"
                    layers.append(_layer_record(unpacker, i))
                where = "the envelope"
                continue
            fields[name] = unpacker.unpack()
            if name == "version":
                _check_format(fields)
            elif name == "functions":
                decoder.functions.extend(_function_table(fields["functions"]))
        try:
            unpacker.unpack()
        except msgpack.OutOfData:
            pass
        else:
            raise UnpackError("there are extra bytes after the envelope")
    except HlgError:
        raise
    except MemoryError:
        raise ResourceLimitError(
            f"ran out of memory decoding {where}; lower limits.bytes so that this scheduler "
            "refuses such data up front"
        ) from None
    except RecursionError:
        raise UnpackError(f"{where} is nested too deeply to be an hlg graph") from None
    except Exception as err:
        raise UnpackError(
            f"the packed graph is truncated or corrupt in {where} ({type(err).__name__}: {err})"
        ) from None
    return _envelope(fields, layers, decoder)


def _envelope(fields: dict[str, Any], layers: list[PackedLayer], decoder: Decoder) -> Envelope:
    _check_format(fields)
    if "functions" not in fields:
        raise UnpackError("the envelope has no function table")
    remote_keys = _keys(fields.get("remote_keys", ()), "remote_keys") or []
    check_distinct_hashes(remote_keys, "the envelope's 'remote_keys'")
    return Envelope(
        version=fields["version"],
        functions=decoder.functions,
        layers=layers,
        keys=_keys(fields.get("keys"), "keys"),
        remote_keys=frozenset(remote_keys),
        decoder=decoder,
    )


def _pickle_hint(data: bytes | bytearray | memoryview) -> str:
    if bytes(data[:1]) == b"\x80" and len(data) > 1 and 2 <= data[1] <= 5:
        return " (they look like a pickle; send what hlg.pack returns)"
    return ""


def _check_format(fields: dict[str, Any]) -> None:
    if fields.get("format") != FORMAT_NAME:
        raise UnpackError(
            f"these bytes are not an hlg packed graph (format {fields.get('format')!r}, "
            f"expected {FORMAT_NAME!r} first)"
        )
    version = fields.get("version")
    if type(version) is not int or version < 1:
        raise UnpackError(f"the envelope's version is {version!r}, not a positive int")
    if version > FORMAT_VERSION:
        raise FormatVersionError(
            f"the graph was packed in format version {version}, but this hlg reads versions "
            f"up to {FORMAT_VERSION}; upgrade hlg where the graph is unpacked"
        )


def _function_table(entries: Any) -> list[SerializedFunction]:
    if type(entries) is not tuple:
        raise UnpackError("the function table is not an array")
    out = []
    for i, entry in enumerate(entries):
        if (
            type(entry) is not tuple
            or len(entry) != 2
            or type(entry[0]) is not str
            or type(entry[1]) is not bytes
        ):
            raise UnpackError(f"function table entry {i} is not a [name, bytes] pair")
        out.append(SerializedFunction(entry[0], entry[1]))
    return out


def _layer_record(unpacker: msgpack.Unpacker, index: int) -> PackedLayer:
    """Read one layer record field by field, so an error in its state names the layer."""
    try:
        nfields = unpacker.read_map_header()
    except msgpack.UnpackValueError:
        raise LayerStateError(f"layer record {index} is not a map") from None
    record: dict[str, Any] = {}
    for _ in range(nfields):
        field = unpacker.unpack()
        name = record.get("name")
        label = f"layer {name!r}" if type(name) is str else f"layer record {index}"
        try:
            value = unpacker.unpack()
        except HlgError as err:
            raise type(err)(f"{label}, field {field!r:.40}: {err}") from None
        if type(field) is not str:
            raise LayerStateError(f"{label} has a field named {field!r:.80}, not a str")
        record[field] = value
    name = record.get("name")
    label = f"layer {name!r}" if type(name) is str else f"layer record {index}"
    for field, types in (
        ("tag", (str,)),
        ("name", (str,)),
        ("dependencies", (tuple,)),
        ("annotations", (dict,)),
    ):
        if field not in record:
            raise LayerStateError(f"{label} has no {field!r} field")
        if type(record[field]) not in types:
            raise LayerStateError(
                f"{label}: field {field!r} is {type(record[field]).__name__}, "
                f"expected {types[0].__name__}"
            )
    if "state" not in record:
        raise LayerStateError(f"{label} has no 'state' field")
    if not all(type(d) is str for d in record["dependencies"]):
        raise LayerStateError(f"{label}: its dependencies are not all layer names")
    if not all(type(a) is str for a in record["annotations"]):
        raise LayerStateError(f"{label}: its annotation names are not all str")
    roles = record.get("roles", {})
    if type(roles) is not dict or not all(
        type(role) is str and type(a) is dict and all(type(n) is str for n in a)
        for role, a in roles.items()
    ):
        raise LayerStateError(f"{label}: field 'roles' is not a map of role to annotations")
    return PackedLayer(
        tag=record["tag"],
        name=record["name"],
        dependencies=record["dependencies"],
        annotations=record["annotations"],
        state=record["state"],
        roles=roles,
    )


def _keys(value: Any, field: str) -> list[Key] | None:
    if value is None:
        return None
    if type(value) is not tuple:
        raise UnpackError(f"the envelope's {field!r} is not an array")
    if not all_keys(value):  # checked by type, in C
        key = next(k for k in value if not is_key(k))
        raise UnpackError(f"the envelope's {field!r} holds {key!r}, which is not a key")
    return list(value)
