"""Hidden primary, the service side: push settings, pushed serials, dnserr for failed pushes."""

from __future__ import annotations

import pytest

from homing.domain.addresses import AddressSet
from homing.domain.errors import HomingError, NotFound
from homing.domain.outcomes import Outcome
from homing.service import push, updates, zones
from homing.service.updates import HostResult
from homing.store.db import Database
from tests.service.test_updates import POLICY, request, setup_host

ZONE = "dyn.example.net"


async def state(db: Database) -> push.PushState:
    found = await db.read(lambda conn: push.push_state(conn, ZONE))
    assert found is not None
    return found


async def test_a_good_update_carries_its_zone_and_serial(db: Database) -> None:
    secret = await setup_host(db)
    name = f"cam.{ZONE}"
    [good] = await updates.update(
        db, request(name, secret, [name], "192.0.2.1", "2001:db8::1"), POLICY
    )
    assert good.outcome is Outcome.GOOD
    assert (good.zone, good.serial) == (ZONE, (await state(db)).serial)
    [same] = await updates.update(db, request(name, secret, [name], "192.0.2.1"), POLICY)
    assert same.outcome is Outcome.NOCHG and same.serial is None


async def test_push_settings_and_the_pushed_serial(db: Database) -> None:
    await zones.add_zone(db, ZONE, push="127.0.0.1:5300", push_key="Push-Key")
    first = await state(db)
    assert (first.target, first.key, first.pushed) == ("127.0.0.1:5300", "push-key", None)
    assert await push.mark_pushed(db, ZONE, "127.0.0.1:5300", first.serial)
    assert not await push.mark_pushed(db, ZONE, "127.0.0.1:5300", first.serial)  # only forward
    assert not await push.mark_pushed(db, ZONE, "192.0.2.9:53", first.serial + 1)  # not its target
    assert (await state(db)).pushed == first.serial

    await zones.set_push(db, ZONE, "127.0.0.1:5300", "other-key")  # same server: kept
    assert (await state(db)).pushed == first.serial
    await zones.set_push(db, ZONE, "127.0.0.1:5301", "other-key")  # another: the whole zone again
    assert (await state(db)).pushed is None
    await zones.set_push(db, ZONE, None, None)
    assert (await state(db)).target is None


@pytest.mark.parametrize(
    ("target", "key"),
    [("127.0.0.1:5300", None), (None, "k"), ("nowhere:53", "k"), ("127.0.0.1", "k")],
)
async def test_bad_push_settings_change_nothing(
    db: Database, target: str | None, key: str | None
) -> None:
    with pytest.raises(HomingError):
        await zones.add_zone(db, ZONE, push=target, push_key=key)
    assert await db.read(lambda conn: push.push_state(conn, ZONE)) is None
    with pytest.raises(NotFound):
        await zones.set_push(db, ZONE, "127.0.0.1:53", "k")


class Waiter:
    def __init__(self, ok: dict[str, bool]) -> None:
        self.ok = ok
        self.asked: list[tuple[str, int]] = []

    async def pushed(self, zone: str, serial: int, within: float) -> bool:
        self.asked.append((zone, serial))
        return self.ok[zone]

    def pushes_nowhere(self, zone: str) -> bool:
        return False


async def test_good_becomes_dnserr_when_its_zone_was_not_pushed() -> None:
    addresses = AddressSet.parse(["192.0.2.1"])
    results = [
        HostResult("a.one.example", Outcome.GOOD, addresses, "one.example", 7),
        HostResult("b.one.example", Outcome.GOOD, addresses, "one.example", 9),
        HostResult("c.two.example", Outcome.GOOD, addresses, "two.example", 3),
        HostResult("d.two.example", Outcome.NOCHG, addresses),
        HostResult("e.two.example", Outcome.BADAUTH),
    ]
    waiter = Waiter({"one.example": False, "two.example": True})
    confirmed = await push.confirm_pushed(results, waiter, 1.0)
    assert [r.dyndns2_line() for r in confirmed] == [
        "dnserr", "dnserr", "good 192.0.2.1", "nochg 192.0.2.1", "badauth",
    ]  # fmt: skip
    assert sorted(waiter.asked) == [("one.example", 9), ("two.example", 3)]  # one wait per zone
