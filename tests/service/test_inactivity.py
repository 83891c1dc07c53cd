"""The inactivity policy with a clock the test controls: warn, disable, delete, with the
owner's webhook receiving each warning and the real DNS server's answer gone at the end."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import pytest
import sqlalchemy as sa

from homing.dns.index import ZoneIndex
from homing.dns.server import DnsServer, start_dns
from homing.domain.addresses import AddressSet
from homing.service import (
    accounts,
    alerts,
    forms,
    hostcare,
    hosts,
    inactivity,
    portal,
    updates,
    zones,
)
from homing.service.courier import Courier, CourierPolicy
from homing.service.inactivity import Policy, next_step
from homing.service.journal import Follower
from homing.store.db import Database, as_utc
from homing.store.schema import hosts as hosts_table
from homing.store.schema import inactivity_marks, outbox
from tests.webhooks import Receiver, webhook_receiver

ZONE = "dyn.example.net"
HOST = f"cam.{ZONE}"
POLICY = Policy(warn_days=30, disable_days=60, delete_days=90, notice_days=7)
DAY = timedelta(days=1)


class NoMail:
    async def send(self, to: str, subject: str, body: str) -> None:
        raise AssertionError(f"unexpected mail to {to}: {subject}")


@dataclass
class World:
    db: Database
    server: DnsServer
    receiver: Receiver
    courier: Courier
    secret: str

    async def answer(self, name: str = HOST) -> tuple[str, list[str]]:
        query = dns.message.make_query(name, "A")
        response = await dns.asyncquery.udp(
            query, self.server.host, port=self.server.port, timeout=5
        )
        found = [r.to_text() for rrset in response.answer for r in rrset]
        return dns.rcode.to_text(response.rcode()), found

    async def run(self, at: datetime) -> inactivity.RunReport:
        return await inactivity.run_policy(self.db, POLICY, at, group_max_age=3600)

    async def events(self, at: datetime) -> list[str]:
        """Deliver the outbox; the events the owner's webhook received, in order."""
        before = len(self.receiver.requests)
        await self.courier.run_once(at)
        return [json.loads(r.body)["event"] for r in self.receiver.requests[before:]]

    async def host(self) -> Any:
        async def query(conn: Any) -> Any:
            return (
                await conn.execute(sa.select(hosts_table).where(hosts_table.c.name == HOST))
            ).first()

        return await self.db.read(query)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


@pytest.fixture
async def world(db: Database, receiver: Receiver) -> AsyncIterator[World]:
    await zones.add_zone(db, ZONE)
    account = await accounts.create_account(db, "alice", "alice@example.org", "correct horse 1")
    secret = (await hosts.add_host(db, HOST, "alice")).secret
    await alerts.save_settings(
        db, account, email_on=False, webhook=receiver.url, events=["host.stale"]
    )
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    server = await start_dns(index, "127.0.0.1", 0)
    courier = Courier(db, NoMail(), CourierPolicy(webhook_allow_private=True))
    try:
        yield World(db, server, receiver, courier, secret)
    finally:
        await server.close()
        db.on_commit.remove(follower.committed)


async def update(world: World, address: str) -> str:
    request = updates.UpdateRequest(
        HOST, world.secret, [HOST], AddressSet.parse([address]), "dyndns2", "127.0.0.1"
    )
    [result] = await updates.update(world.db, request, updates.UpdatePolicy())
    return result.dyndns2_line()


async def test_warn_disable_delete_with_the_dns_answer_gone(world: World) -> None:
    assert await update(world, "192.0.2.44") == "good 192.0.2.44"
    assert await world.answer() == ("NOERROR", ["192.0.2.44"])
    basis = as_utc((await world.host()).last_update_at)
    assert basis is not None

    assert await world.run(basis + 29 * DAY) == inactivity.RunReport()
    assert await world.run(basis + 30 * DAY) == inactivity.RunReport(warned=1)
    assert await world.events(basis + 30 * DAY) == ["host.stale"]
    # A run is idempotent: the same day again (a restart, a second leader run) adds nothing.
    assert await world.run(basis + 30 * DAY) == inactivity.RunReport()
    assert await world.run(basis + 52 * DAY) == inactivity.RunReport()
    assert await world.run(basis + 53 * DAY) == inactivity.RunReport(warned=1)
    assert await world.events(basis + 53 * DAY) == ["host.disabling"]
    warning = json.loads(world.receiver.requests[-1].body)
    assert warning["details"] == {
        "idle_days": 53,
        "last_update": basis.strftime("%Y-%m-%d"),
        "on": (basis + 60 * DAY).strftime("%Y-%m-%d"),
    }
    assert await world.answer() == ("NOERROR", ["192.0.2.44"])  # warned, not yet disabled

    assert await world.run(basis + 60 * DAY) == inactivity.RunReport(disabled=1)
    assert await world.events(basis + 60 * DAY) == ["host.disabled"]
    host = await world.host()
    assert host.status == inactivity.INACTIVE
    assert await world.answer() == ("NXDOMAIN", [])  # records removed through apply_change
    assert await update(world, "192.0.2.45") == "nohost"  # a disabled host takes no updates
    shown = portal.status_of(host.status, host.last_result)
    assert (shown.code, shown.meaning) == ("ERR 0x80008008", "disabled: no update for too long")

    assert await world.run(basis + 83 * DAY) == inactivity.RunReport(warned=1)
    assert await world.events(basis + 83 * DAY) == ["host.deleting"]
    assert await world.run(basis + 89 * DAY) == inactivity.RunReport()
    assert await world.run(basis + 90 * DAY) == inactivity.RunReport(deleted=1)
    assert await world.events(basis + 90 * DAY) == ["host.deleted"]
    assert await world.host() is None
    assert await world.answer() == ("NXDOMAIN", [])
    assert await world.run(basis + 400 * DAY) == inactivity.RunReport()


async def test_an_update_starts_the_spell_over(world: World) -> None:
    await update(world, "192.0.2.50")
    basis = as_utc((await world.host()).last_update_at)
    assert basis is not None
    assert await world.run(basis + 53 * DAY) == inactivity.RunReport(warned=2)
    assert await world.events(basis + 53 * DAY) == ["host.stale", "host.disabling"]
    assert await update(world, "192.0.2.51") == "good 192.0.2.51"
    fresh = as_utc((await world.host()).last_update_at)
    assert fresh is not None
    # The spell that was warned about is over: the new one starts from the first warning.
    assert await world.run(fresh + 29 * DAY) == inactivity.RunReport()
    assert await world.run(fresh + 30 * DAY) == inactivity.RunReport(warned=1)
    assert await world.events(fresh + 30 * DAY) == ["host.stale"]
    assert (await world.host()).status == "active"


async def test_a_policy_over_long_idle_hosts_warns_before_it_acts(world: World) -> None:
    await update(world, "192.0.2.60")
    basis = as_utc((await world.host()).last_update_at)
    assert basis is not None
    switched_on = basis + 400 * DAY  # idle far past every step when the policy starts
    assert await world.run(switched_on) == inactivity.RunReport(warned=2)
    assert await world.events(switched_on) == ["host.stale", "host.disabling"]
    assert await inactivity.stage_counts(world.db) == {
        "stale": 0,
        "disabling": 1,
        "disabled": 0,
        "deleting": 0,
    }
    warning = json.loads(world.receiver.requests[-1].body)
    assert warning["details"]["on"] == (switched_on + 7 * DAY).strftime("%Y-%m-%d")
    assert await world.run(switched_on + 6 * DAY) == inactivity.RunReport()
    assert await world.run(switched_on + 7 * DAY) == inactivity.RunReport(disabled=1, warned=1)
    assert await world.events(switched_on + 7 * DAY) == ["host.disabled", "host.deleting"]
    assert await world.run(switched_on + 13 * DAY) == inactivity.RunReport()
    assert await world.run(switched_on + 14 * DAY) == inactivity.RunReport(deleted=1)
    assert await world.host() is None


async def test_warnings_without_any_channel_go_by_email(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "bob", "bob@example.org", "correct horse 1")
    await hosts.add_host(db, HOST, "bob")
    start = datetime.now().astimezone()
    report = await inactivity.run_policy(db, POLICY, start + 53 * DAY, group_max_age=3600)
    assert report == inactivity.RunReport(warned=2)  # stale (not chosen: no row) and disabling

    async def query(conn: Any) -> list[Any]:
        return list(await conn.execute(sa.select(outbox.c.channel, outbox.c.event)))

    assert [tuple(r) for r in await db.read(query)] == [("email", "host.disabling")]

    async def marks(conn: Any) -> list[Any]:
        return list(await conn.execute(sa.select(inactivity_marks.c.stage)))

    assert [r.stage for r in await db.read(marks)] == ["disabling"]


def test_next_step_table() -> None:
    basis = datetime(2026, 1, 1).astimezone()
    assert next_step(POLICY, basis, "", None, basis + 29 * DAY) is None
    step = next_step(POLICY, basis, "", None, basis + 30 * DAY)
    assert step is not None and step.stage == "stale"
    no_warn = Policy(disable_days=0, delete_days=10, notice_days=3)
    step = next_step(no_warn, basis, "", None, basis + 7 * DAY)
    assert step is not None and step.stage == "deleting"
    assert next_step(no_warn, basis, "deleting", basis + 7 * DAY, basis + 9 * DAY) is None
    step = next_step(no_warn, basis, "deleting", basis + 7 * DAY, basis + 10 * DAY)
    assert step is not None and step.stage == "deleted"
    assert next_step(Policy(), basis, "", None, basis + 9999 * DAY) is None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"warn_days": "x"}, "warn_days"),
        ({"disable_days": "30", "delete_days": "30"}, "delete_days"),
        ({"warn_days": "40", "disable_days": "30"}, "warn_days"),
        ({"notice_days": "0"}, "notice_days"),
    ],
)
def test_bad_policies_are_refused(form: dict[str, str], field: str) -> None:
    values = {"warn_days": "0", "disable_days": "0", "delete_days": "0", "notice_days": "7"}
    with pytest.raises(forms.AdminError) as refused:
        inactivity.policy_input({**values, **form})
    assert refused.value.code == "POLICY_INVALID" and refused.value.field == field


async def test_the_owner_takes_back_a_disabled_host(world: World) -> None:
    await update(world, "192.0.2.70")
    basis = as_utc((await world.host()).last_update_at)
    assert basis is not None
    await world.run(basis + 53 * DAY)
    assert await world.run(basis + 60 * DAY) == inactivity.RunReport(disabled=1)
    host = await world.host()
    owner = await accounts.authenticate(world.db, "alice", "correct horse 1")
    assert owner is not None
    assert await hostcare.enable_inactive_host(world.db, owner, host.id) == HOST
    assert (await world.host()).status == "active"
    with pytest.raises(portal.PortalError) as refused:
        await hostcare.enable_inactive_host(world.db, owner, host.id)
    assert refused.value.code == "HOST_NOT_INACTIVE"
    # Enabled counts as seen: the policy's count starts over, and updates work again.
    seen = as_utc((await world.host()).last_update_at)
    assert seen is not None
    assert await world.run(seen + 29 * DAY) == inactivity.RunReport()
    assert await update(world, "192.0.2.71") == "good 192.0.2.71"
    assert await world.answer() == ("NOERROR", ["192.0.2.71"])
