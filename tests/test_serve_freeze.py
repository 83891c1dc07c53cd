"""The loaded zones stay out of the collector's passes after `homing serve` freezes them,
changes included: a zone's table of owners is walked by no collection (at 10M hosts a
walk took most of a second, every update's tail)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from homing.dns.index import ZoneIndex
from homing.domain.records import JournalEntry, RRsetValue, ZoneMeta
from homing.serve import _track_owner_tables

ZONE = "dyn.example.net"


def make_index() -> ZoneIndex:
    index = ZoneIndex()
    index.put_zone(
        ZoneMeta(ZONE, f"ns1.{ZONE}", f"hostmaster.{ZONE}"),
        1,
        [RRsetValue(ZONE, "NS", 3600, (f"ns1.{ZONE}.",))]
        + [RRsetValue(f"h{i}.{ZONE}", "A", 60, (f"192.0.2.{i}",)) for i in range(100)],
    )
    return index


@pytest.fixture
def frozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def collected(table: object) -> bool:
    """Whether a collection of generation 2 (the oldest but the frozen) would walk `table`."""
    return any(obj is table for obj in gc.get_objects())


def change(index: ZoneIndex) -> None:
    serial = index.serial_of(ZONE)
    assert serial is not None
    after = JournalEntry(
        0, ZONE, serial + 1, f"h1.{ZONE}", "A", 60, (), ("198.51.100.1",), "t", "t"
    )
    assert index.apply(after)


@pytest.mark.parametrize("tracked", [True, False], ids=["tracked-first", "as-loaded"])
def test_owners_stay_frozen_through_a_change(frozen: None, tracked: bool) -> None:
    index = make_index()
    zone = index.zone(ZONE)
    assert zone is not None
    gc.collect()  # as serve does: this untracks the table (its values are all untracked)
    assert not gc.is_tracked(zone.owners)
    if tracked:
        _track_owner_tables(index)
    gc.freeze()
    change(index)  # a new tuple of records goes in
    assert gc.is_tracked(zone.owners)
    # Tracked first, the table was frozen with it and no collection walks it; as loaded,
    # the change tracked it anew, among the objects every collection walks.
    assert collected(zone.owners) is not tracked
    assert len(zone.owners) == 101  # the key that tracked it is gone
    assert b"\xff" not in zone.owners
