"""Unpacking: packed bytes to a :class:`~hlg.FlatGraph`, on the scheduler.

The steps, each of which names the layer and key of any problem:

1. read the envelope (format, version, function table, layer records);
2. check layer names: unique, dependencies that name layers, no cycle;
3. in topological order of layers, find each layer's class by its registry
   tag, rebuild it from its state, charge its declared cost
   (:meth:`~hlg.Layer.cost`) to the budget of :class:`~hlg.Limits`,
   materialise it, count its keys' hashes, merge its tasks, and expand its
   annotations per key (then its per-role annotations over the keys of each
   role, see ``Layer.role_keys``);
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

Errors blame one party: the limits (:class:`~hlg.ResourceLimitError`, naming
the limit and how to raise it), the layer class (:class:`~hlg.LayerClassError`,
naming the class and the method to fix), or the data (:class:`~hlg.UnpackError`
and its subclasses). ``docs/format.md`` ("Limits and hostile input") lists
what ``unpack`` guarantees.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

from hlg._gc import gc_paused
from hlg.errors import (
    DuplicateKeyError,
    HlgError,
    LayerClassError,
    LayerStateError,
    MissingDependencyError,
    MissingKeyError,
    MissingLayerError,
    ResourceLimitError,
    UnpackError,
    UsageError,
    counted,
)
from hlg.keys import Key
from hlg.layers.base import Layer
from hlg.layers.registry import get_layer_class
from hlg.limits import Budget, Cost, Limits
from hlg.materialize.flatgraph import FlatGraph, LayerSummary
from hlg.packing.envelope import Envelope, PackedLayer, read_envelope
from hlg.task import GraphNode
from hlg.toposort import toposort

__all__ = ["unpack"]


def unpack(
    data: bytes | bytearray | memoryview,
    *,
    limits: Limits | None = None,
    max_tasks: int | None = None,
) -> FlatGraph:
    """Materialise packed bytes into a flat task graph.

    Safe on any bytes: it returns a graph or raises an hlg error, in time
    linear in ``len(data)`` and memory within ``limits``; it never unpickles,
    imports or runs anything the bytes name.

    Parameters
    ----------
    data
        What :func:`hlg.pack` returned.
    limits
        The most the graph may make this call build, checked for each layer
        before it is materialised; the defaults of :class:`~hlg.Limits` when None.
    max_tasks
        Shorthand for ``limits.tasks``: refuse graphs with more tasks than this.

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
    ResourceLimitError
        The graph needs more than ``limits`` allow (:class:`~hlg.TooManyTasksError`
        for tasks), or its keys are chosen to collide.
    LayerClassError
        A registered layer class breaks the layer contract.
    GraphError
        Duplicate keys, missing layers or dependencies, cycles.

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
    >>> unpack(data, max_tasks=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hlg.errors.TooManyTasksError: layer ... brings the graph to 2 tasks, more than ...
    """
    chosen = _limits(limits, max_tasks)
    with gc_paused():
        try:
            return _unpack(data, chosen)
        except MemoryError:
            raise ResourceLimitError(
                "ran out of memory while unpacking, within limits larger than this machine "
                "holds; lower them (limits=hlg.Limits(...)) so such graphs are refused up front"
            ) from None


def _limits(limits: Limits | None, max_tasks: int | None) -> Limits:
    if limits is not None and type(limits) is not Limits:
        raise UsageError(f"limits must be an hlg.Limits; got {type(limits).__name__}")
    chosen = limits or Limits()
    if max_tasks is not None:
        if type(max_tasks) is not int or max_tasks < 0:
            raise UsageError(f"max_tasks must be an int >= 0; got {max_tasks!r}")
        chosen = dataclasses.replace(chosen, tasks=max_tasks)
    return chosen


def _unpack(data: bytes | bytearray | memoryview, limits: Limits) -> FlatGraph:
    envelope = read_envelope(data, limits)
    order = _layer_order(envelope.layers)
    budget = Budget(limits)
    census = envelope.decoder.census
    tasks: dict[Key, GraphNode] = {}
    annotations: dict[str, dict[Key, Any]] = {}
    # (layer, key, dependency) for dependencies not merged before their dependent.
    forward: list[tuple[str, Key, Key]] = []
    summaries = []
    # Without requested keys, the outputs of the layers no other layer depends on.
    needed = {d for record in order for d in record.dependencies}
    default_keys: list[Key] = []
    for record in order:
        layer, layer_tasks, references = _materialize(record, envelope, budget)
        unseen: Iterable[tuple[Key, Key]] | None = envelope.decoder.take_unseen(layer_tasks)
        if unseen is None:
            # Built by the layer, not the decoder: count its keys' hashes before merging.
            census.add(layer_tasks.keys(), f"layer {record.name!r}")
            if type(layer_tasks) is dict:
                unseen = references
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
            _expand_roles(record, layer, annotations, budget)
        summaries.append(
            LayerSummary(record.name, record.tag, len(layer_tasks), record.dependencies)
        )
        if envelope.keys is None and record.name not in needed:
            default_keys.extend(_outputs(record.name, layer, layer_tasks))
    _check_forward(forward, tasks, envelope.remote_keys)
    # Default keys were taken from merged tasks; only requested keys need a look.
    keys = default_keys if envelope.keys is None else envelope.keys
    for key in envelope.keys or ():
        if key not in tasks and key not in envelope.remote_keys:
            raise MissingKeyError(
                f"requested key {key!r} is produced by no layer of the packed graph"
            )
    return FlatGraph(tasks, keys, envelope.remote_keys, annotations, tuple(summaries))


def _outputs(name: str, layer: Layer, tasks: Mapping[Key, GraphNode]) -> Iterable[Key]:
    """Return the results of a layer nothing depends on: every task, or those it names.

    Each named key must be a task of the layer, and there are never more of them
    than tasks, so a layer giving endless keys is stopped, not followed.
    """
    where = f"layer {name!r}: {type(layer).__name__}.output_keys()"
    keys: list[Key] = []
    try:
        outputs = layer.output_keys()
        if outputs is None:
            return tasks
        for key in outputs:
            if key not in tasks:
                raise LayerClassError(
                    f"{where} gave {key!r}, which is not one of its tasks; "
                    "return only keys the layer builds"
                )
            keys.append(key)
            if len(keys) > len(tasks):
                raise LayerClassError(
                    f"{where} gave more keys than the layer has tasks "
                    f"({len(tasks):,}); return each output key once"
                )
    except HlgError:
        raise
    except MemoryError:
        raise
    except Exception as err:
        raise LayerClassError(f"{where} failed ({type(err).__name__}: {err})") from err
    return keys


def _expand_roles(
    record: PackedLayer, layer: Layer, annotations: dict[str, dict[Key, Any]], budget: Budget
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
        # Charged before listing or expanding: the layer's cost() counts only its
        # layer-wide entries, and role_size comes from the state.
        budget.charge(
            Cost(annotations=layer.role_size(role) * len(values)),
            f"layer {record.name!r} (tag {record.tag!r}), role {role!r}",
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
    record: PackedLayer, envelope: Envelope, budget: Budget
) -> tuple[Layer, Mapping[Key, GraphNode], Iterable[tuple[Key, Key]] | None]:
    cls = get_layer_class(record.tag)
    where = f"layer {record.name!r} (tag {record.tag!r})"
    layer = _rebuild(cls, record, envelope, where)
    cost = _cost(layer, cls, where)
    budget.charge(cost, where)
    try:
        tasks, references = layer.materialize_with_references()
    except HlgError:
        raise
    except RecursionError:
        raise UnpackError(f"{where}: its state is nested too deeply to materialise") from None
    except MemoryError:
        raise
    except Exception as err:
        raise LayerStateError(
            f"{where}: materialising it failed ({type(err).__name__}: {err}); its state is "
            f"corrupt, or {_qualname(cls)}.materialize has a bug"
        ) from err
    if not isinstance(tasks, Mapping):
        raise LayerClassError(
            f"{where}: {_qualname(cls)}.materialize returned {type(tasks).__name__}, not a "
            "mapping of keys to tasks; fix the class"
        )
    if len(tasks) > cost.tasks:
        raise LayerClassError(
            f"{where}: {_qualname(cls)}.cost() declared {counted(cost.tasks, 'task')} "
            "but materialize "
            f"built {len(tasks):,}; fix {_qualname(cls)}.cost so that it never under-counts"
        )
    return layer, tasks, references


def _rebuild(cls: type[Layer], record: PackedLayer, envelope: Envelope, where: str) -> Layer:
    """Call ``cls.unpack_state``; blame the class for contract breaches, the data for the rest."""
    name = _qualname(cls)
    base = Layer.unpack_state.__func__  # type: ignore[attr-defined]
    if getattr(cls.unpack_state, "__func__", None) is base:
        raise LayerClassError(
            f"{where}: {name} does not implement unpack_state; a layer type registered "
            "under a tag must rebuild itself from its packed state: add the classmethod"
        )
    _check_signature(cls)
    try:
        layer = cls.unpack_state(
            record.state, envelope.decoder, name=record.name, annotations=record.annotations
        )
    except LayerStateError as err:
        # Name the tag too, once: the layer's own message may name the layer already.
        message = str(err).removeprefix(f"layer {record.name!r}: ")
        raise type(err)(f"{where}: {message}") from None
    except HlgError:
        raise
    except RecursionError:
        raise UnpackError(f"{where}: its state is nested too deeply") from None
    except MemoryError:
        raise
    except NotImplementedError as err:
        raise LayerClassError(
            f"{where}: {name}.unpack_state is not implemented ({err}); fix the class"
        ) from err
    except Exception as err:
        raise LayerStateError(
            f"{where}: its packed state could not be rebuilt ({type(err).__name__}: {err}); "
            "the data is corrupt or was packed by an incompatible version of the layer"
        ) from err
    if not isinstance(layer, Layer):
        raise LayerClassError(
            f"{where}: {name}.unpack_state returned {type(layer).__name__}, not a Layer; "
            "fix the class"
        )
    return layer


@functools.lru_cache(maxsize=256)
def _check_signature(cls: type[Layer]) -> None:
    try:
        inspect.signature(cls.unpack_state).bind(None, None, name="", annotations={})
    except TypeError as err:
        raise LayerClassError(
            f"{_qualname(cls)}.unpack_state cannot be called as "
            f"unpack_state(state, decoder, *, name, annotations) ({err}); declare it as a "
            "classmethod with that signature"
        ) from None


def _cost(layer: Layer, cls: type[Layer], where: str) -> Cost:
    try:
        cost = layer.cost()
    except HlgError:
        raise
    except Exception as err:
        raise LayerStateError(
            f"{where}: its cost could not be computed ({type(err).__name__}: {err}); its state "
            f"is corrupt, or {_qualname(cls)}.cost has a bug"
        ) from err
    if type(cost) is not Cost or not all(
        type(getattr(cost, f)) is int and getattr(cost, f) >= 0 for f in Cost.__slots__
    ):
        raise LayerClassError(
            f"{where}: {_qualname(cls)}.cost() returned {cost!r:.200}, not an hlg.Cost of "
            "ints >= 0; fix the class"
        )
    return cost


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


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
    unseen: Iterable[tuple[Key, Key]],
    tasks: dict[Key, GraphNode],
    forward: list[tuple[str, Key, Key]],
) -> None:
    # The decoder saw every other dependency of this layer before its dependent, so
    # only ``unseen`` needs a look, and the tasks merge in one C-level update.
    # Two key views: isdisjoint then walks the smaller side (a dict would be walked whole).
    if tasks and not tasks.keys().isdisjoint(layer_tasks.keys()):
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
