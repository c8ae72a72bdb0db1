"""The collector pause: cheap for big builds, and never a leak or a thaw."""

from __future__ import annotations

import gc
import weakref

import pytest

from hlg import _gc


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def small_thresholds(monkeypatch):
    gc.collect()
    monkeypatch.setattr(_gc, "PROMOTE_FROM", 100)
    monkeypatch.setattr(_gc, "FULL_FROM", 5_000)
    monkeypatch.setattr(_gc._STATE, "moved", 0)
    monkeypatch.setattr(_gc._STATE, "due_at", 5_000)


def build(n: int) -> list[tuple[int, list[int]]]:
    return [(i, [i]) for i in range(n)]


def test_a_pause_disables_the_collector_and_nests():
    assert gc.isenabled()
    with _gc.gc_paused():
        with _gc.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with _gc.gc_paused_for(_gc.PAUSE_FROM - 1):
        assert gc.isenabled()


def test_cyclic_garbage_moved_by_pauses_is_collected_in_time(small_thresholds):
    garbage = Cycle()
    alive = weakref.ref(garbage)
    del garbage  # young cyclic garbage: only the collector frees it
    kept = []
    for _ in range(20):
        with _gc.gc_paused():
            kept.append(build(1_000))  # moves about 2 000 young objects along each time
        if alive() is None:
            break
    assert alive() is None  # a full collection came due and ran; no gc.collect() here
    assert _gc._STATE.moved < _gc._STATE.due_at


def test_objects_the_application_froze_stay_frozen(small_thresholds):
    # The freeze count alone is not enough: threads left by other tests may free frozen
    # objects meanwhile. A frozen object is in no generation, so it is absent from
    # gc.get_objects() for as long as it stays frozen.
    sentinel: list[object] = []
    gc.freeze()
    try:
        assert gc.get_freeze_count() > 0
        assert not any(obj is sentinel for obj in gc.get_objects())
        with _gc.gc_paused():
            built = build(1_000)
        assert not any(obj is sentinel for obj in gc.get_objects())
        assert gc.get_freeze_count() > 0
        assert _gc._STATE.moved == 0  # nothing was moved, so nothing is owed
    finally:
        gc.unfreeze()
    assert len(built) == 1_000


def test_any_full_collection_clears_the_count(small_thresholds):
    with _gc.gc_paused():
        built = build(1_000)
    assert _gc._STATE.moved > 0
    gc.collect()
    assert _gc._STATE.moved == 0
    assert len(built) == 1_000
