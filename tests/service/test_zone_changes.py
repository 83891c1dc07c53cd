"""A zone's options changed after its creation reach a server following the journal: the
SOA's values (which have no journal entry of their own), the NS and glue, and the zone's
deletion; a form with several bad fields is refused whole, each field named."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest
import sqlalchemy as sa

from homing.dns.index import ZoneIndex
from homing.domain.errors import HomingError
from homing.service import inventory, zoneoptions, zones
from homing.service.forms import AdminError
from homing.service.journal import Follower
from homing.store.db import Database
from homing.store.schema import journal
from homing.store.schema import zones as zones_table

ZONE = "dyn.example.net"


async def stored_serial(db: Database) -> int:
    return int(
        await db.read(
            lambda conn: conn.scalar(
                sa.select(zones_table.c.serial).where(zones_table.c.name == ZONE)
            )
        )
    )


async def test_soa_changes_reach_a_following_server(db: Database) -> None:
    await zones.add_zone(db, ZONE, ns=["ns1.example.org"])
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    before = await stored_serial(db)
    soa = zoneoptions.Soa(
        rname="ops.example.org", ttl=300, negative_ttl=30, refresh=7200, retry=900, expire=86400
    )
    await zoneoptions.set_zone_options(db, ZONE, zoneoptions.ZoneOptions(soa=soa))
    # A new serial for the secondaries, with no journal entry: the follower reloads the zone.
    assert await stored_serial(db) == before + 1
    journaled = await db.read(lambda conn: conn.scalar(sa.select(sa.func.max(journal.c.serial))))
    assert journaled == before
    await follower.sync()
    zone = index.zone(ZONE)
    assert zone is not None and zone.serial == before + 1
    (rdata,) = zone.soa()
    assert rdata.rname == dns.name.from_text("ops.example.org")
    assert (rdata.refresh, rdata.retry, rdata.expire, rdata.minimum) == (7200, 900, 86400, 30)
    assert zone.soa().ttl == 300 and zone.negative_ttl() == 30
    # The same values again change nothing: no serial moves.
    await zoneoptions.set_zone_options(db, ZONE, zoneoptions.ZoneOptions(soa=soa))
    assert await stored_serial(db) == before + 1


async def test_name_servers_and_their_soa_primary_follow(db: Database) -> None:
    await zones.add_zone(db, ZONE, ns=["ns1.example.org"])
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    options = zoneoptions.ZoneOptions(
        ns=[f"a.{ZONE}", "b.example.org"], glue={f"a.{ZONE}": ["192.0.2.53"]}
    )
    await zoneoptions.set_zone_options(db, ZONE, options)
    await follower.sync()
    zone = index.zone(ZONE)
    assert zone is not None and zone.serial == await stored_serial(db)
    node = zone.node(dns.name.from_text(ZONE))
    assert node is not None
    assert sorted(r.to_text() for r in node[dns.rdatatype.NS]) == [f"a.{ZONE}.", "b.example.org."]
    glue = zone.node(dns.name.from_text(f"a.{ZONE}"))
    assert glue is not None and [r.to_text() for r in glue[dns.rdatatype.A]] == ["192.0.2.53"]
    (rdata,) = zone.soa()
    assert rdata.mname == dns.name.from_text(f"a.{ZONE}")


async def test_bad_soa_values_change_nothing(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    before = await stored_serial(db)
    for soa in (
        zoneoptions.Soa(ttl=0),
        zoneoptions.Soa(refresh=2**31),
        zoneoptions.Soa(rname="a..b"),
    ):
        with pytest.raises(HomingError):
            await zoneoptions.set_zone_options(db, ZONE, zoneoptions.ZoneOptions(soa=soa))
    assert await stored_serial(db) == before


async def test_a_secondary_zones_soa_is_its_primarys(db: Database) -> None:
    await zones.add_zone(db, ZONE, primary="192.0.2.1:53")
    with pytest.raises(HomingError, match="secondary zone"):
        await zoneoptions.set_zone_options(
            db, ZONE, zoneoptions.ZoneOptions(soa=zoneoptions.Soa(ttl=300))
        )


async def test_a_deleted_zone_is_no_longer_served(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    await zones.add_zone(db, "other.example.net")
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    assert index.zone(ZONE) is not None
    await inventory.delete_zone(db, ZONE)
    await follower.sync()
    assert index.zone(ZONE) is None
    assert index.find(dns.name.from_text(f"host.{ZONE}")) is None
    assert index.zone("other.example.net") is not None
    # Made again under the same name: the new zone is served, not the old one's serial.
    await zones.add_zone(db, ZONE, ns=["ns9.example.org"])
    await follower.sync()
    zone = index.zone(ZONE)
    assert zone is not None and zone.serial == await stored_serial(db)


def test_the_options_form_names_every_bad_field() -> None:
    form = {
        "ns": "ns1.example.net\nbad..name",
        "notify": "192.0.2.1:53\nnowhere",
        "allow_transfer": "not-a-network",
        "rname": "hostmaster.example.net",
        "ttl": "0",
        "negative_ttl": "ten",
        "refresh": "3600",
        "retry": "600",
        "expire": "1209600",
    }
    with pytest.raises(AdminError) as refused:
        zoneoptions.options_from_form(form, secondary=False)
    assert set(refused.value.fields) == {"ns", "notify", "allow_transfer", "ttl", "negative_ttl"}
    assert "nowhere" in refused.value.fields["notify"]
    good = zoneoptions.options_from_form(
        {**form, "ns": "ns1.example.net", "notify": "", "allow_transfer": "", "ttl": "300",
         "negative_ttl": "30"},
        secondary=False,
    )  # fmt: skip
    assert good.soa == zoneoptions.Soa("hostmaster.example.net", 300, 30, 3600, 600, 1209600)
    assert good.ns == ["ns1.example.net"] and good.notify == []
