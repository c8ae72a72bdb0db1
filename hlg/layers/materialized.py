"""MaterializedLayer: a layer that holds its tasks in a dict."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Container, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hlg.convert import KeyUnion, convert_graph
from hlg.errors import MissingKeyError
from hlg.keys import Key, validate_keys
from hlg.layers.base import MATERIALIZED_TAG, Layer, cull_tasks
from hlg.packing.registry import register_layer
from hlg.task import GraphNode

if TYPE_CHECKING:
    from hlg.packing.codec import Decoder, Encoder

__all__ = ["MaterializedLayer"]


@register_layer(MATERIALIZED_TAG)
class MaterializedLayer(Layer):
    """A layer holding its tasks explicitly.

    Parameters
    ----------
    tasks
        Keys to tasks: :class:`~hlg.Task`/:class:`~hlg.DataNode`/:class:`~hlg.Alias`
        values, or dask-style values (tuples, keys, lists, literals). Dask-style
        values are converted once, when the tasks are first needed; packing
        encodes them directly, without building task objects.
    name
        The layer's name; a unique name is made up when omitted.
    annotations
        Scheduling hints for every task of the layer.
    known_keys
        Keys of other layers that dask-style values may refer to. Without it,
        only keys of this layer are recognised as references.
    copy
        Copy ``tasks`` (the default). With ``copy=False`` the layer keeps the
        dict it is given, which must then not be changed.

    Raises
    ------
    InvalidKeyError
        A key is not a ``str`` or a tuple starting with a ``str``.

    Examples
    --------
    >>> from operator import add
    >>> layer = MaterializedLayer({"x": 1, "y": (add, "x", 1)}, name="small")
    >>> len(layer), sorted(layer), layer["y"].dependencies
    (2, ['x', 'y'], frozenset({'x'}))
    """

    def __init__(
        self,
        tasks: Mapping[Any, Any],
        name: str | None = None,
        annotations: Mapping[str, Any] | None = None,
        *,
        known_keys: Container[object] | None = None,
        copy: bool = True,
    ) -> None:
        super().__init__(name or f"materialized-{uuid.uuid4().hex[:12]}", annotations)
        raw = tasks if not copy and type(tasks) is dict else dict(tasks)
        validate_keys(raw, layer=self.name)
        # The tasks as given, until converted; then None. Guarded by _lock.
        self._raw: dict[Key, Any] | None = raw
        self._known_keys = known_keys
        # The converted tasks, once needed.
        self._nodes: dict[Key, GraphNode] | None = None
        self._lock = threading.Lock()

    @classmethod
    def _from_nodes(
        cls, tasks: dict[Key, GraphNode], name: str, annotations: dict[str, Any]
    ) -> MaterializedLayer:
        # Tasks that are already nodes: skip conversion and annotation checks.
        layer = cls.__new__(cls)
        layer.name = name
        layer.annotations = dict(annotations)
        layer._raw = None
        layer._known_keys = None
        layer._nodes = tasks
        layer._lock = threading.Lock()
        return layer

    def __getstate__(self) -> dict[str, Any]:
        # The lock guards this process's lazy conversion; a copy gets its own.
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def _tasks(self) -> dict[Key, GraphNode]:
        nodes = self._nodes
        if nodes is None:
            with self._lock:
                if self._nodes is None:
                    assert self._raw is not None  # invariant: one of the two is set
                    self._nodes = convert_graph(self._raw, self._known_keys)
                    self._raw = None
                nodes = self._nodes
        return nodes

    def _keys(self) -> dict[Key, Any]:
        raw = self._raw
        return self._tasks if raw is None else raw

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._keys()
        except TypeError:
            return False

    def __getitem__(self, key: Key) -> GraphNode:
        try:
            return self._tasks[key]
        except (KeyError, TypeError):
            raise MissingKeyError(f"layer {self.name!r} has no key {key!r}") from None

    def materialize(self) -> Mapping[Key, GraphNode]:
        """Return the tasks.

        Examples
        --------
        >>> MaterializedLayer({"x": 1}, name="x").materialize()
        {'x': DataNode(1)}
        """
        return self._tasks

    def cull(self, keys: Iterable[Key]) -> tuple[MaterializedLayer, set[Key]]:
        """Keep ``keys`` and what they need inside this layer.

        Examples
        --------
        >>> from operator import add
        >>> layer = MaterializedLayer({"a": 1, "b": (add, "a", "z"), "c": 3}, name="l",
        ...                           known_keys={"z"})
        >>> culled, external = layer.cull(["b"])
        >>> sorted(culled), external
        (['a', 'b'], {'z'})
        """
        kept, external = cull_tasks(self.name, self._tasks, keys)
        return MaterializedLayer._from_nodes(kept, self.name, self.annotations), external

    def pack_state(self, encoder: Encoder) -> Any:
        """Pack the tasks, each function once in the envelope's function table."""
        raw = self._raw
        if raw is not None:
            known = raw if self._known_keys is None else KeyUnion(raw, self._known_keys)
            return encoder.raw_tasks(raw, known, layer=self.name)
        return encoder.tasks(self._tasks, layer=self.name)

    @classmethod
    def unpack_state(
        cls, state: Any, decoder: Decoder, *, name: str, annotations: dict[str, Any]
    ) -> MaterializedLayer:
        """Rebuild the tasks on the scheduler, functions still serialised."""
        return cls._from_nodes(decoder.tasks(state, layer=name), name, annotations)
