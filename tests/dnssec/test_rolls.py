"""Key rolls: the zone stays valid at every step, the DNSKEY, CDS and CDNSKEY RRsets say
what each step says, and the leader takes a ZSK roll's steps by itself when due."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from homing.dnssec import signer
from homing.dnssec.keys import DnssecError
from homing.domain.records import RRsetValue
from homing.service import dnssec, keyroll
from homing.store.db import Database, Txn
from homing.store.schema import dnssec_keys
from tests.dnssec.test_signing import ZONE, zone  # noqa: F401  (the fixture)
from tests.dnssec.zonecheck import check_signed, zone_text


async def apex(db: Database, rtype: str) -> list[str]:
    """The apex's records of `rtype`, as zone-file lines."""
    lines = (await zone_text(db, ZONE)).splitlines()
    return [line for line in lines if line.split()[0] == f"{ZONE}." and line.split()[3] == rtype]


def signing_tags(text: str) -> set[int]:
    """The key tags of the signatures over the hosts' A RRsets."""
    return {
        int(line.split()[10])
        for line in text.splitlines()
        if " RRSIG A " in line and not line.startswith(f"{ZONE}. ")
    }


async def test_a_zsk_roll_keeps_the_zone_valid(zone: Database) -> None:  # noqa: F811
    await dnssec.enable(zone, ZONE, split=True)
    before = signing_tags(await zone_text(zone, ZONE))
    assert (await keyroll.roll(zone, ZONE, "zsk")).state == "started"
    assert len(await apex(zone, "DNSKEY")) == 3
    check_signed(await zone_text(zone, ZONE), ZONE)
    with pytest.raises(DnssecError):
        await keyroll.roll(zone, ZONE, "zsk")  # one roll at a time
    assert (await keyroll.roll(zone, ZONE, "zsk", step=True)).state == "switched"
    text = await zone_text(zone, ZONE)
    check_signed(text, ZONE)
    after = signing_tags(text)
    assert after and not after & before, "the new ZSK signs every RRset in place of the old"
    assert (await keyroll.roll(zone, ZONE, "zsk", step=True)).state == "done"
    assert len(await apex(zone, "DNSKEY")) == 2
    check_signed(await zone_text(zone, ZONE), ZONE)
    assert not await apex(zone, "CDS"), "a ZSK roll leaves the parent alone"


async def test_a_csk_roll_tells_the_parent_with_cds(zone: Database) -> None:  # noqa: F811
    await dnssec.enable(zone, ZONE)
    (old_ds,) = await dnssec.ds_records(zone, ZONE)
    await keyroll.roll(zone, ZONE, "ksk")
    assert len(await apex(zone, "CDS")) == 2 and len(await apex(zone, "CDNSKEY")) == 2
    both = await dnssec.ds_records(zone, ZONE)
    assert old_ds in both and len(both) == 2
    check_signed(await zone_text(zone, ZONE), ZONE)
    await keyroll.roll(zone, ZONE, "ksk", step=True)
    (new_ds,) = await dnssec.ds_records(zone, ZONE)
    assert new_ds != old_ds and new_ds in both
    (cds,) = await apex(zone, "CDS")
    assert cds.split(" IN CDS ")[1] == new_ds.split(" IN DS ")[1]
    check_signed(await zone_text(zone, ZONE), ZONE)
    await keyroll.roll(zone, ZONE, "ksk", step=True)
    assert not await apex(zone, "CDS") and len(await apex(zone, "DNSKEY")) == 1
    check_signed(await zone_text(zone, ZONE), ZONE)


async def age(txn: Txn) -> None:
    """Every key's last change as long ago as any step of a roll waits for."""
    past = txn.now - timedelta(seconds=keyroll.RETIRE_WAIT + keyroll.ZSK_PUBLISH_WAIT + 1)
    await txn.conn.execute(sa.update(dnssec_keys).values(changed_at=past))


async def test_the_leader_takes_a_zsk_roll_when_due(zone: Database) -> None:  # noqa: F811
    await dnssec.enable(zone, ZONE, split=True)
    await keyroll.roll(zone, ZONE, "zsk")
    assert await keyroll.advance_due(zone) == [], "not yet: the new key was just published"
    await zone.write(age)
    assert [s.state for s in await keyroll.advance_due(zone)] == ["switched"]
    check_signed(await zone_text(zone, ZONE), ZONE)
    await zone.write(age)
    assert [s.state for s in await keyroll.advance_due(zone)] == ["done"]
    check_signed(await zone_text(zone, ZONE), ZONE)


async def test_the_zsk_switch_signs_apart_while_the_loop_serves(
    zone: Database,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The switch's signatures of the whole zone are made off the event loop: while the
    first is being made, a task on the loop runs (and lets the signing go on)."""
    await dnssec.enable(zone, ZONE, split=True)
    await keyroll.roll(zone, ZONE, "zsk")
    await zone.write(age)
    loop = asyncio.get_running_loop()
    signing = asyncio.Event()
    served = threading.Event()
    released: list[bool] = []
    original = signer.Signer._sign

    def watched(self: signer.Signer, value: RRsetValue) -> list[str]:
        if not released:  # the first signature waits for the loop to serve something
            loop.call_soon_threadsafe(signing.set)
            released.append(served.wait(timeout=60))  # a bound, in case it is the loop
        return original(self, value)

    async def serve() -> None:
        await signing.wait()
        served.set()

    monkeypatch.setattr(signer.Signer, "_sign", watched)
    task = asyncio.create_task(serve())
    assert [s.state for s in await keyroll.advance_due(zone)] == ["switched"]
    await task
    assert released == [True], "the loop stood still while the zone was signed"
    check_signed(await zone_text(zone, ZONE), ZONE)
