"""Unpacking: packed bytes to a :class:`~hlg.FlatGraph`, on the scheduler.

The steps, each of which names the layer and key of any problem:

1. read the envelope (format, version, function table, layer records);
2. check layer names: unique, dependencies that name layers, no cycle;
3. in topological order of layers, find each layer's class by its registry
   tag, rebuild it from its state, check its size against ``max_tasks``,
   materialise it, merge its tasks, and expand its annotations per key (then
   its per-role annotations over the keys of each role, see ``Layer.role_keys``);
4. check every dependency: produced by a task or held remotely;
5. check that tasks form no cycle.

Merging records, for each task, whether its dependencies were already merged.
In a layer graph written in dependency order they all are, which proves the
graph acyclic without a separate pass; only *forward* references (to a key
merged later) call for the full cycle check of step 5. A layer that knows which
of its references leave its own build order says so
(``Layer.outside_references``), and only those are looked at.

Nothing here unpickles: functions stay :class:`~hlg.task.SerializedFunction`
and opaque arguments :class:`~hlg.task.Opaque` until a worker runs the task.
This package imports neither numpy, pandas nor cloudpickle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain
from typing import TYPE_CHECKING, Any

from hlg._gc import gc_paused
from hlg.errors import (
    DuplicateKeyError,
    HlgError,
    LayerStateError,
    MissingDependencyError,
    MissingKeyError,
    MissingLayerError,
    TooManyTasksError,
    UnpackError,
)
from hlg.keys import Key
from hlg.materialize.flatgraph import FlatGraph, LayerSummary
from hlg.packing.envelope import Envelope, PackedLayer, read_envelope
from hlg.packing.registry import get_layer_class
from hlg.task import GraphNode
from hlg.toposort import toposort

if TYPE_CHECKING:
    from hlg.layers.base import Layer

__all__ = ["unpack"]


def unpack(data: bytes | bytearray | memoryview, *, max_tasks: int | None = None) -> FlatGraph:
    """Materialise packed bytes into a flat task graph.

    Parameters
    ----------
    data
        What :func:`hlg.pack` returned.
    max_tasks
        Refuse graphs with more tasks than this, before materialising the
        layer that crosses the limit.

    Returns
    -------
    FlatGraph

    Raises
    ------
    UnpackError
        The bytes are not an hlg graph, or are truncated or corrupt.
    FormatVersionError
        The graph was packed by a newer hlg.
    UnknownLayerError
        A layer's registry tag is not registered here.
    LayerStateError
        A layer's state is malformed.
    GraphError
        Duplicate keys, missing layers or dependencies, cycles, or more than
        ``max_tasks`` tasks.

    Examples
    --------
    >>> import hlg
    >>> from operator import mul
    >>> data = hlg.pack({("x", 0): 3, ("y", 0): (mul, ("x", 0), 2)})
    >>> flat = unpack(data)
    >>> flat[("y", 0)]
    Task(mul, TaskRef(('x', 0)), 2)
    >>> hlg.get(flat, ("y", 0))
    6
    """
    with gc_paused():
        return _unpack(data, max_tasks)


def _unpack(data: bytes | bytearray | memoryview, max_tasks: int | None) -> FlatGraph:
    envelope = read_envelope(data)
    order = _layer_order(envelope.layers)
    tasks: dict[Key, GraphNode] = {}
    annotations: dict[str, dict[Key, Any]] = {}
    # (layer, key, dependency) for dependencies not merged before their dependent.
    forward: list[tuple[str, Key, Key]] = []
    summaries = []
    # Without requested keys, the outputs of the layers no other layer depends on.
    needed = {d for record in order for d in record.dependencies}
    default_keys: list[Key] = []
    for record in order:
        layer, layer_tasks = _materialize(record, envelope, max_tasks, len(tasks))
        unseen = envelope.decoder.take_unseen(layer_tasks)
        if unseen is None and type(layer_tasks) is dict:
            unseen = layer.outside_references()
        if unseen is None:
            _merge(record.name, layer_tasks, tasks, forward)
        elif not tasks and type(layer_tasks) is dict:
            # The first layer, built by the decoder for this call: adopt its dict.
            forward.extend((record.name, key, dep) for key, dep in unseen)
            tasks = layer_tasks
        else:
            _merge_checked(record.name, layer_tasks, unseen, tasks, forward)
        for name, value in record.annotations.items():
            annotations.setdefault(name, {}).update(dict.fromkeys(layer_tasks, value))
        if record.roles:
            _expand_roles(record, layer, annotations)
        summaries.append(
            LayerSummary(record.name, record.tag, len(layer_tasks), record.dependencies)
        )
        if envelope.keys is None and record.name not in needed:
            default_keys.extend(layer_tasks)
    _check_forward(forward, tasks, envelope.remote_keys)
    keys = default_keys if envelope.keys is None else envelope.keys
    for key in keys:
        if key not in tasks and key not in envelope.remote_keys:
            raise MissingKeyError(
                f"requested key {key!r} is produced by no layer of the packed graph"
            )
    return FlatGraph(tasks, keys, envelope.remote_keys, annotations, tuple(summaries))


def _expand_roles(
    record: PackedLayer, layer: Layer, annotations: dict[str, dict[Key, Any]]
) -> None:
    # Per-role annotations, expanded to the keys of each role; they win over the
    # layer's own. The layer lists a role's keys from its state (see Layer.role_keys).
    # Roles giving a name the same value are expanded in one pass (a shuffle's split
    # and piece tasks share their priority): one dict, built without merging.
    by_name: dict[str, list[tuple[Any, Iterable[Key]]]] = {}
    for role, values in record.roles.items():
        if role not in layer.roles:
            raise LayerStateError(
                f"layer {record.name!r} (tag {record.tag!r}) has annotations for task role "
                f"{role!r}, which its layer type does not have"
            )
        keys = layer.role_keys(role)
        for name, value in values.items():
            by_name.setdefault(name, []).append((value, keys))
    for name, entries in by_name.items():
        first = entries[0][0]
        if all(type(v) is type(first) and v == first for v, _ in entries):
            expanded = dict.fromkeys(chain.from_iterable(k for _, k in entries), first)
        else:
            expanded = {}
            for value, keys in entries:
                expanded.update(dict.fromkeys(keys, value))
        if name in annotations:
            annotations[name].update(expanded)
        else:
            annotations[name] = expanded


def _layer_order(records: list[PackedLayer]) -> list[PackedLayer]:
    by_name: dict[str, PackedLayer] = {}
    for record in records:
        if record.name in by_name:
            raise UnpackError(f"two layers are named {record.name!r}; layer names are unique")
        by_name[record.name] = record
    for record in records:
        for dep in record.dependencies:
            if dep not in by_name:
                raise MissingLayerError(
                    f"layer {record.name!r} depends on layer {dep!r}, which is not in the "
                    "packed graph"
                )
    names = toposort(
        {r.name: r.dependencies for r in records},
        describe=lambda cycle: (
            "packed layers depend on each other in a cycle: " + " -> ".join(map(repr, cycle))
        ),
    )
    return [by_name[name] for name in names]


def _materialize(
    record: PackedLayer, envelope: Envelope, max_tasks: int | None, so_far: int
) -> tuple[Layer, Mapping[Key, GraphNode]]:
    cls = get_layer_class(record.tag)
    where = f"layer {record.name!r} (tag {record.tag!r})"
    try:
        layer = cls.unpack_state(
            record.state, envelope.decoder, name=record.name, annotations=record.annotations
        )
        if max_tasks is not None and so_far + len(layer) > max_tasks:
            raise TooManyTasksError(
                f"{where} brings the graph to {so_far + len(layer):,} tasks, more than "
                f"max_tasks={max_tasks:,}; raise the limit or send a smaller graph"
            )
        return layer, layer.materialize()
    except HlgError:
        raise
    except Exception as err:
        raise LayerStateError(
            f"{where}: its packed state could not be rebuilt ({type(err).__name__}: {err}); "
            "the data is corrupt or was packed by an incompatible version of the layer"
        ) from err


def _merge(
    name: str,
    layer_tasks: Any,
    tasks: dict[Key, GraphNode],
    forward: list[tuple[str, Key, Key]],
) -> None:
    for key, node in layer_tasks.items():
        if key in tasks:
            raise DuplicateKeyError(
                f"layer {name!r} produces key {key!r}, which an earlier layer produced too"
            )
        for dep in node.dependencies:
            if dep not in tasks:
                forward.append((name, key, dep))  # noqa: PERF401 - rare; no generator per task
        tasks[key] = node


def _merge_checked(
    name: str,
    layer_tasks: Any,
    unseen: list[tuple[Key, Key]],
    tasks: dict[Key, GraphNode],
    forward: list[tuple[str, Key, Key]],
) -> None:
    # The decoder saw every other dependency of this layer before its dependent, so
    # only ``unseen`` needs a look, and the tasks merge in one C-level update.
    if tasks and not tasks.keys().isdisjoint(layer_tasks):
        key = next(k for k in layer_tasks if k in tasks)
        raise DuplicateKeyError(
            f"layer {name!r} produces key {key!r}, which an earlier layer produced too"
        )
    for key, dep in unseen:
        if dep not in tasks:
            forward.append((name, key, dep))
    tasks.update(layer_tasks)


def _check_forward(
    forward: list[tuple[str, Key, Key]],
    tasks: dict[Key, GraphNode],
    remote_keys: frozenset[Key],
) -> None:
    cycle_possible = False
    for layer, key, dep in forward:
        try:
            if dep in tasks:
                cycle_possible = True
                continue
            if dep in remote_keys:
                continue
        except TypeError:
            pass
        raise MissingDependencyError(
            f"layer {layer!r}: task {key!r} needs {dep!r}, which no layer produces and which "
            "is not held remotely; add that layer or scatter the data first"
        )
    if cycle_possible:
        toposort(
            {k: node.dependencies for k, node in tasks.items()},
            describe=lambda cycle: (
                "tasks depend on each other in a cycle: " + " -> ".join(map(repr, cycle))
            ),
        )
