"""An update with a group's secret naming the group itself in hostname= (what ddclient sends
when told the group's name) updates the members, as one without hostname= does."""

from __future__ import annotations

from homing.domain.outcomes import Outcome
from homing.service import hosts, updates
from homing.store.db import Database
from tests.service.test_updates import POLICY, records, request, setup_host

POOL = "pool.dyn.example.net"


async def test_the_group_name_stands_for_its_members(db: Database) -> None:
    await setup_host(db, "a.dyn.example.net")
    await hosts.add_host(db, "b.dyn.example.net", "alice")
    group = await hosts.add_group(db, POOL, "alice", ["a.dyn.example.net", "b.dyn.example.net"])
    results = await updates.update(
        db, request(POOL, group.secret, ["Pool.Dyn.Example.Net"], "203.0.113.9"), POLICY
    )
    assert [(r.hostname, r.dyndns2_line()) for r in results] == [
        ("a.dyn.example.net", "good 203.0.113.9"),
        ("b.dyn.example.net", "good 203.0.113.9"),
    ]
    assert await records(db, "a.dyn.example.net", "A") == ("203.0.113.9",)
    assert await records(db, POOL, "A") == ("203.0.113.9",)
    # A member named beside the group is updated once.
    results = await updates.update(
        db, request(POOL, group.secret, ["a.dyn.example.net", POOL], "203.0.113.10"), POLICY
    )
    assert [r.hostname for r in results] == ["a.dyn.example.net", "b.dyn.example.net"]


async def test_a_wrong_secret_or_an_empty_group_changes_nothing(db: Database) -> None:
    await setup_host(db, "a.dyn.example.net")
    group = await hosts.add_group(db, POOL, "alice", ["a.dyn.example.net"])
    results = await updates.update(db, request(POOL, "wrong", [POOL], "203.0.113.9"), POLICY)
    assert [r.outcome for r in results] == [Outcome.BADAUTH]
    assert await records(db, "a.dyn.example.net", "A") == ()
    empty = await hosts.add_group(db, "none.dyn.example.net", "alice", [])
    results = await updates.update(
        db, request(empty.name, empty.secret, [empty.name], "203.0.113.9"), POLICY
    )
    assert [r.outcome for r in results] == [Outcome.NOHOST]
    assert group.name == POOL
