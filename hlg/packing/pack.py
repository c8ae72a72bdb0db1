"""Writing the packed envelope, on the client.

:func:`pack` culls the graph to the requested keys, asks each layer for its
state in topological order (never materialising a layer that packs a small
state), and writes the function table those states refer to, each distinct
function once. ``docs/format.md`` specifies the document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hlg._gc import gc_paused
from hlg.errors import PackError
from hlg.graph import HighLevelGraph, ensure_graph, flatten_keys
from hlg.keys import Key, validate_key, validate_keys
from hlg.layers.base import MATERIALIZED_TAG
from hlg.layers.materialized import MaterializedLayer
from hlg.packing.codec import Encoder, packb
from hlg.packing.envelope import FORMAT_NAME, FORMAT_VERSION

__all__ = ["pack"]


def pack(
    graph: Any,
    keys: Any = None,
    *,
    remote_keys: Iterable[Key] = (),
    cull: bool = True,
) -> bytes:
    """Pack a graph into bytes for a scheduler, without materialising lazy layers.

    Parameters
    ----------
    graph
        A :class:`~hlg.HighLevelGraph`, a collection, a layer or a dict graph.
    keys
        The keys to compute: a key or a (nested) list of keys. None means the
        outputs of the graph's last layers, decided by the unpacker.
    remote_keys
        Keys of data already held by the scheduler (scattered data) that tasks
        may depend on. Keys of :class:`~hlg.Ref` arguments are added
        automatically.
    cull
        Drop what ``keys`` do not need before packing.

    Returns
    -------
    bytes
        One msgpack document; see ``docs/format.md``.

    Examples
    --------
    >>> from operator import add
    >>> data = pack({"x": 1, "y": (add, "x", 10), "unused": 0}, "y")
    >>> import hlg
    >>> flat = hlg.unpack(data)
    >>> sorted(flat.tasks), flat.keys
    (['x', 'y'], ['y'])
    """
    with gc_paused():
        if type(graph) is dict:
            # Packed within this call: the layer may use the dict as it is.
            layer = MaterializedLayer(graph, copy=False)
            return _pack(HighLevelGraph({layer.name: layer}), keys, remote_keys, cull)
        return _pack(ensure_graph(graph), keys, remote_keys, cull)


class _HeldForNow:
    """Says that every key is held, and keeps the keys it was asked about.

    Culling asks only about keys that no layer produces. Those must be data held
    remotely: named in ``remote_keys``, or by a :class:`~hlg.Ref` in a value, which
    only encoding finds. So they are checked after encoding.
    """

    __slots__ = ("asked",)

    def __init__(self) -> None:
        self.asked: set[object] = set()

    def __contains__(self, key: object) -> bool:
        self.asked.add(key)
        return True


def _pack(g: HighLevelGraph, keys: Any, remote_keys: Iterable[Key], cull: bool) -> bytes:
    requested = None if keys is None else list(flatten_keys(keys))
    if requested is not None:
        validate_keys(requested)  # checked in bulk, by type, in C
    remote = {validate_key(k) for k in remote_keys}
    unproduced = _HeldForNow()
    local: list[Key] = []
    if requested is not None and cull:
        local = [k for k in requested if k not in remote or k in g]
        g = g.cull(local, held=unproduced) if local else HighLevelGraph({})
    encoder = Encoder()
    layers = []
    for name in g.topological_layers():
        layer = g._layers[name]
        tag = layer.packed_tag()
        state = encoder.state(layer.pack_state(encoder), layer=name)
        record = {
            "tag": tag,
            "name": name,
            "dependencies": tuple(sorted(g._dependencies[name])),
            "annotations": encoder.state(layer.annotations, layer=name),
            "state": state,
        }
        if layer.role_annotations:
            if tag == MATERIALIZED_TAG:
                raise PackError(
                    f"layer {name!r} has annotations per task role but packs as its "
                    "materialised tasks, which have no roles on the scheduler; give its type "
                    "a pack_state/unpack_state and a registry tag"
                )
            record["roles"] = encoder.state(layer.role_annotations, layer=name)
        layers.append(record)
    remote |= encoder.remote_keys
    if not remote.issuperset(unproduced.asked):
        g.cull(local, held=remote)  # raises, naming the task that needs a key nobody holds
    envelope: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "functions": tuple(encoder.functions),
        "layers": tuple(layers),
        "keys": None if requested is None else tuple(requested),
        "remote_keys": tuple(sorted(remote, key=repr)),
    }
    try:
        return packb(envelope)
    except OverflowError as err:
        raise PackError(
            f"a key holds an integer that does not fit in 64 bits ({err}); keys travel as "
            "msgpack, whose integers are 64-bit: use a smaller int or a str in the key"
        ) from err
