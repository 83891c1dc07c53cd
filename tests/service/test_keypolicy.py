"""Zone keys over several zones with an update policy: grants parsed and matched, a key made
and loaded with its zones and policy, and every refusal leaving the zone as it was."""

from __future__ import annotations

import dns.name
import dns.rcode
import pytest
import sqlalchemy as sa

from homing.dns.access import Access
from homing.domain.errors import HomingError
from homing.service import keys, zones
from homing.service.dnsupdate import Operation, UpdateRefused, UpdateScope, apply_update
from homing.service.keypolicy import Grant, allowed_types, parse_grant, parse_policy
from homing.service.zones import TransferSettings
from homing.store.db import Database
from homing.store.schema import journal, rrsets

ZONE = "lan.example.net"
REV = "2.0.192.in-addr.arpa"


def test_grants() -> None:
    grant = parse_grant("subdomain LAN.example.net a dhcid", "k")
    assert grant == Grant("subdomain", ZONE, frozenset({"A", "DHCID"}))
    assert grant.matches(f"pc.{ZONE}") and grant.matches(ZONE)
    assert not grant.matches("xlan.example.net")
    assert parse_grant("name pc.lan.example.net", "k") == Grant("name", f"pc.{ZONE}", None)
    assert parse_grant("self TXT", "pc.lan.example.net").name == "pc.lan.example.net"
    assert parse_grant("name x.lan.example.net A ANY", "k").types is None
    grants = (grant, Grant("name", f"pc.{ZONE}", frozenset({"TXT"})))
    assert allowed_types(grants, f"pc.{ZONE}") == {"A", "DHCID", "TXT"}
    assert allowed_types(grants, "other.example.org") == frozenset()
    assert parse_grant(grant.to_text(), "k") == grant


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "start with one of"),
        ("zone lan.example.net", "start with one of"),
        ("subdomain", "needs a name"),
        ("subdomain lan.example.net NOPE", "unknown type"),
        ("subdomain lan.example.net SOA", "cannot be updated"),
        ("name bad..name A", "not a valid host name"),
    ],
)
def test_bad_grants(text: str, why: str) -> None:
    with pytest.raises(HomingError, match=why):
        parse_grant(text, "k")


def test_grant_outside_the_zones() -> None:
    with pytest.raises(HomingError, match="in none of the key's zones"):
        parse_policy(["subdomain example.org A"], "k", [ZONE, REV])


async def test_key_over_two_zones_with_policy(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    await zones.add_zone(db, REV)
    made = await keys.add_key(
        db, "dhcp", zone=ZONE, also=[REV],
        grants=[f"subdomain {ZONE} A DHCID", f"subdomain {REV} PTR DHCID"],
    )  # fmt: skip
    assert made.zones == (ZONE, REV)
    loaded = {k.name: k for k in await db.read(keys.all_keys)}
    assert loaded["dhcp"] == made
    plain = await keys.add_key(db, "xfr", zone=ZONE)
    access = Access.build(
        [made, plain],
        [TransferSettings(ZONE, (), ()), TransferSettings(REV, (), ())],
        allow_md5=False,
    )
    scoped = access.keyring.get(dns.name.from_text("dhcp"))
    assert scoped is not None and scoped.zones == (ZONE, REV)
    # A policy key updates only: no transfer of either zone; a plain zone key transfers.
    assert not access.may_transfer(ZONE, scoped, "203.0.113.1")
    assert not access.may_transfer(REV, scoped, "203.0.113.1")
    assert access.may_transfer(ZONE, access.keyring.get(dns.name.from_text("xfr")), "203.0.113.1")


async def test_key_add_refusals(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    with pytest.raises(HomingError, match="named twice"):
        await keys.add_key(db, "k", zone=ZONE, also=[ZONE])
    with pytest.raises(HomingError, match="no zone"):
        await keys.add_key(db, "k", zone=ZONE, also=[REV])
    with pytest.raises(HomingError, match="host key"):
        await keys.add_key(db, "k", host=f"pc.{ZONE}", grants=["self A"])
    assert [k.name for k in await db.read(keys.all_keys)] == []


async def journal_rows(db: Database) -> int:
    async def count(conn: sa.ext.asyncio.AsyncConnection) -> int:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(journal)) or 0)

    return await db.read(count)


async def test_policy_refuses_what_it_does_not_grant(db: Database) -> None:
    """The attack: a DHCP server's key used for another name, another type, another zone;
    each refused with nothing written."""
    await zones.add_zone(db, ZONE)
    await zones.add_zone(db, REV)
    await zones.add_zone(db, "example.org")
    scope = UpdateScope(
        ZONE, None, (REV,),
        (Grant("subdomain", f"dhcp.{ZONE}", frozenset({"A", "DHCID"})),
         Grant("subdomain", REV, frozenset({"PTR", "DHCID"}))),
    )  # fmt: skip
    ok = [Operation("add", f"pc.dhcp.{ZONE}", "A", 60, "192.0.2.5")]
    assert await apply_update(db, ZONE, [], ok, scope, actor="t") == 1
    ptr = [Operation("add", f"5.{REV}", "PTR", 60, f"pc.dhcp.{ZONE}.")]
    assert await apply_update(db, REV, [], ptr, scope, actor="t") == 1
    before = await journal_rows(db)
    attacks = [
        (ZONE, Operation("add", f"www.{ZONE}", "A", 60, "192.0.2.6"), dns.rcode.Rcode.REFUSED),
        (ZONE, Operation("add", f"pc.dhcp.{ZONE}", "TXT", 60, '"x"'), dns.rcode.Rcode.REFUSED),
        (ZONE, Operation("add", ZONE, "NS", 60, "ns.evil.example."), dns.rcode.Rcode.REFUSED),
        (REV, Operation("add", f"5.{REV}", "CNAME", 60, "x.example."), dns.rcode.Rcode.REFUSED),
        ("example.org", Operation("add", "x.example.org", "A", 60, "192.0.2.7"),
         dns.rcode.Rcode.NOTAUTH),
    ]  # fmt: skip
    for zone, op, rcode in attacks:
        with pytest.raises(UpdateRefused) as refused:
            # The granted operation first: the whole message is refused, not half applied.
            await apply_update(db, zone, [], [*ok, op] if zone == ZONE else [op], scope, actor="t")
        assert refused.value.rcode == rcode, op
    assert await journal_rows(db) == before


async def test_policy_delete_name_takes_only_granted_types(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    zone_key = UpdateScope(ZONE)
    name = f"pc.{ZONE}"
    await apply_update(
        db, ZONE, [],
        [Operation("add", name, "A", 60, "192.0.2.5"), Operation("add", name, "TXT", 60, '"x"')],
        zone_key, actor="t",
    )  # fmt: skip
    scope = UpdateScope(ZONE, None, (), (Grant("name", name, frozenset({"A", "DHCID"})),))
    assert await apply_update(db, ZONE, [], [Operation("delete_name", name)], scope, actor="t") == 1

    async def types(conn: sa.ext.asyncio.AsyncConnection) -> list[str]:
        rows = await conn.execute(sa.select(rrsets.c.rtype).where(rrsets.c.name == name))
        return [r.rtype for r in rows]

    assert await db.read(types) == ["TXT"]
