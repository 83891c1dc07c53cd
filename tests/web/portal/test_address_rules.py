"""The portal's address form keeps the publishing rules: a zone ID, broadcast, reserved and
loopback addresses are refused beside the field with the rule named, and nothing changes."""

from __future__ import annotations

import html

import pytest
import sqlalchemy as sa

from homing.store.schema import hosts as hosts_table
from homing.store.schema import journal, rrsets
from tests.web.portal.conftest import Portal, field_error
from tests.web.portal.test_host_care import NAME, _host


async def stored(portal: Portal) -> tuple[list[tuple[str, str]], int]:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple[list[tuple[str, str]], int]:
        rows = await conn.execute(
            sa.select(rrsets.c.rtype, rrsets.c.rdatas).where(rrsets.c.name == NAME)
        )
        count = await conn.scalar(sa.select(sa.func.count()).select_from(journal))
        return sorted(tuple(r) for r in rows), int(count or 0)

    return await portal.homing.db.read(read)


@pytest.mark.parametrize(
    ("ipv4", "ipv6", "field", "rule"),
    [
        ("", "fe80::1%eth0", "ipv6", "scope IDs are not allowed"),
        ("", "fe80::1%25eth0", "ipv6", "scope IDs are not allowed"),
        ("255.255.255.255", "", "ipv4", "broadcast address"),
        ("240.0.0.1", "", "ipv4", "reserved addresses (240.0.0.0/4)"),
        ("127.0.0.1", "", "ipv4", "loopback addresses are not allowed"),
        ("", "fe80::1", "ipv6", "link-local addresses are not allowed"),
    ],
)
async def test_the_address_form_refuses_naming_the_rule(
    portal: Portal, ipv4: str, ipv6: str, field: str, rule: str
) -> None:
    host_id, _ = await _host(portal)
    done = await portal.post_form(
        f"/hosts/{host_id}/address", {"ipv4": "192.0.2.5", "ipv6": ""}, f"/hosts/{host_id}"
    )
    assert done.status_code == 303
    before = await stored(portal)
    refused = await portal.post_form(
        f"/hosts/{host_id}/address", {"ipv4": ipv4, "ipv6": ipv6}, f"/hosts/{host_id}"
    )
    assert refused.status_code == 422
    shown = html.unescape(field_error(refused, field) or "")
    assert shown.startswith("Address not accepted") and rule in shown, shown
    assert await stored(portal) == before


async def test_the_address_form_publishes_a_lan_address(portal: Portal) -> None:
    host_id, _ = await _host(portal)
    done = await portal.post_form(
        f"/hosts/{host_id}/address",
        {"ipv4": "192.168.178.20", "ipv6": "fd00::20"},
        f"/hosts/{host_id}",
    )
    assert done.status_code == 303
    assert (await stored(portal))[0] == [("A", "192.168.178.20"), ("AAAA", "fd00::20")]
    status = await portal.homing.db.read(
        lambda conn: conn.scalar(
            sa.select(hosts_table.c.last_result).where(hosts_table.c.name == NAME)
        )
    )
    assert status == "GOOD"
