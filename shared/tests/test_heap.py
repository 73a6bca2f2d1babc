"""A service's heap at start: frozen out of the cyclic collector's sight, its youngest generation
collected less often (shared/service.settle_heap, GC_GEN0_THRESHOLD)."""

import gc

import pytest

from shared.service import settle_heap
from shared.settings import PlatformSettings


@pytest.fixture
def collector():
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_started_service_freezes_what_it_holds_and_collects_its_youngest_generation_less_often(collector):
    held = [[i] for i in range(1000)]  # what a service holds once started: containers the collector tracks
    gen1, gen2 = gc.get_threshold()[1:]
    assert any(o is held for o in gc.get_objects())
    settle_heap(PlatformSettings().gc_gen0_threshold)
    assert gc.get_threshold() == (10_000, gen1, gen2)
    assert not any(o is held for o in gc.get_objects())  # frozen: no collection scans it again
    cycle: list = []
    cycle.append(cycle)  # garbage made afterwards is still collected
    del cycle
    assert gc.collect() >= 1


def test_zero_keeps_pythons_collector_as_it_is(collector, monkeypatch):
    monkeypatch.setenv("GC_GEN0_THRESHOLD", "0")
    before = gc.get_threshold()
    settle_heap(PlatformSettings().gc_gen0_threshold)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
