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

from hlg.errors import FormatVersionError, HlgError, LayerStateError, UnpackError
from hlg.keys import Key, is_key
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


def read_envelope(data: bytes | bytearray | memoryview) -> Envelope:
    """Decode an envelope's fields and layer records; unpickle nothing.

    Raises
    ------
    UnpackError
        The bytes are not an hlg envelope, or are truncated or corrupt.
    FormatVersionError
        The envelope was written in a newer format version.
    LayerStateError
        A layer record lacks a field or holds one of the wrong type.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UnpackError(f"expected bytes to unpack; got {type(data).__name__}")
    decoder = Decoder([])
    unpacker = msgpack.Unpacker(
        use_list=False,
        strict_map_key=False,
        raw=False,
        ext_hook=decoder.ext_hook,
        max_buffer_size=max(len(data), 1),
    )
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
            ) from None
        for _ in range(nfields):
            name = unpacker.unpack()
            if name == "layers":
                if "functions" not in fields:
                    raise UnpackError("the envelope lists its layers before its function table")
                for i in range(unpacker.read_array_header()):
                    where = f"layer record {i}"
                    layers.append(_layer_record(unpacker.unpack(), i))
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
    except RecursionError:
        raise UnpackError(f"{where} is nested too deeply to be an hlg graph") from None
    except Exception as err:
        raise UnpackError(
            f"the packed graph is truncated or corrupt in {where} ({type(err).__name__}: {err})"
        ) from None
    _check_format(fields)
    if "functions" not in fields:
        raise UnpackError("the envelope has no function table")
    return Envelope(
        version=fields["version"],
        functions=decoder.functions,
        layers=layers,
        keys=_keys(fields.get("keys"), "keys"),
        remote_keys=frozenset(_keys(fields.get("remote_keys", ()), "remote_keys") or ()),
        decoder=decoder,
    )


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


def _layer_record(record: Any, index: int) -> PackedLayer:
    if type(record) is not dict:
        raise LayerStateError(f"layer record {index} is {type(record).__name__}, not a map")
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
    for key in value:
        if not is_key(key):
            raise UnpackError(f"the envelope's {field!r} holds {key!r}, which is not a key")
    return list(value)
