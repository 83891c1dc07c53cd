"""acme-dns compatible registrations: an anonymous account that can set one TXT name under
the operator's acme-dns zone, and nothing else.

A host delegates its challenge with `_acme-challenge.<host> CNAME <subdomain>.<zone>`, so
the key an ACME client keeps can never touch the host's addresses. As acme-dns does, the
two most recent values are published (a name and its wildcard validate together), and a
registration may be limited to source networks (`allowfrom`). The password is 40 random
characters, stored as SHA-256; wrong ones count in the shared throttle.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import HomingError
from homing.domain.records import RRsetValue
from homing.domain.windows import Window
from homing.service.challenges import challenge_name, changes_within, txt_rdata
from homing.service.changes import ZoneRef, apply_change
from homing.service.secrets import hash_secret, secret_matches
from homing.service.throttle import Charge, Throttle
from homing.store.db import Database, Txn
from homing.store.schema import acmedns_registrations as registrations
from homing.store.schema import hosts, rrsets, zones

VIA = "acme-dns"
MAX_ALLOWFROM = 16  # networks per registration
CHANGES_PER_HOUR = 60  # TXT changes of one registration's name within an hour
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TXT = re.compile(r"^[A-Za-z0-9_-]{43}$")  # an ACME DNS-01 value: SHA-256, base64url
_KEY = re.compile(r"^[A-Za-z0-9_-]{40}$")
TTL = 1  # acme-dns serves its TXT with TTL 1: a new value is seen at once


class AcmeDnsError(HomingError):
    """An acme-dns request refused with nothing changed: its HTTP status and error word."""

    def __init__(self, status: int, word: str) -> None:
        super().__init__(word)
        self.status = status
        self.word = word


FORBIDDEN = 401, "forbidden"


@dataclass(frozen=True)
class Registration:
    username: str
    password: str
    fulldomain: str
    subdomain: str
    allowfrom: tuple[str, ...]


def parse_allowfrom(texts: object) -> tuple[str, ...]:
    """The networks of a registration, normalised; AcmeDnsError unless a short list of CIDRs."""
    if texts is None:
        return ()
    if not isinstance(texts, list) or len(texts) > MAX_ALLOWFROM:
        raise AcmeDnsError(400, "invalid_allowfrom_cidr")
    networks = []
    for text in texts:
        if not isinstance(text, str) or len(text) > 64:
            raise AcmeDnsError(400, "invalid_allowfrom_cidr")
        try:
            networks.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError as exc:
            raise AcmeDnsError(400, "invalid_allowfrom_cidr") from exc
    return tuple(networks)


def allowed_from(allowfrom: tuple[str, ...], address: str) -> bool:
    if not allowfrom:
        return True
    try:
        peer = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(n) for n in allowfrom)


def register_charge(throttle: Throttle, address: str, windows: tuple[Window, ...]) -> Charge:
    return Charge(f"acmedns:{throttle.prefix(address)}", windows)


async def _zone(conn: AsyncConnection, acme_dns_zone: str) -> ZoneRef:
    """The served zone holding the acme-dns names: the setting names a zone of its own, or a
    name inside one (then a host's CNAME to it stays in one zone, answered whole)."""
    labels = acme_dns_zone.split(".")
    candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    rows = await conn.execute(
        sa.select(zones.c.id, zones.c.name).where(
            zones.c.name.in_(candidates), zones.c.primary_target.is_(None)
        )
    )
    found = max(rows, key=lambda r: len(r.name), default=None)
    if found is None:
        raise AcmeDnsError(503, "internal_error")  # the operator named a zone not served here
    return ZoneRef(int(found.id), str(found.name))


async def register(
    db: Database,
    zone_name: str,
    allowfrom: tuple[str, ...],
    *,
    throttle: Throttle,
    address: str,
    windows: tuple[Window, ...],
) -> Registration:
    """A new registration; every one counts for its source prefix (Throttled when spent)."""
    await throttle.reserve([register_charge(throttle, address, windows)])
    username = str(uuid.uuid4())
    password = secrets.token_urlsafe(30)  # 40 characters, as acme-dns's
    subdomain = str(uuid.uuid4())

    async def unit(txn: Txn) -> None:
        await _zone(txn.conn, zone_name)
        await txn.conn.execute(
            sa.insert(registrations).values(
                username=username,
                password_hash=hash_secret(password),
                subdomain=subdomain,
                allowfrom="\n".join(allowfrom),
                txt="",
                created_at=txn.now,
            )
        )

    await db.write(unit)
    return Registration(username, password, f"{subdomain}.{zone_name}", subdomain, allowfrom)


async def update(
    db: Database,
    zone_name: str,
    username: str,
    key: str,
    subdomain: str,
    txt: str,
    *,
    throttle: Throttle,
    address: str,
) -> str:
    """Publish `txt` at the registration's name beside the value before it; the value."""
    if await throttle.source_wait(address) > 0:
        raise AcmeDnsError(*FORBIDDEN)
    username = username.strip().lower()
    found = None
    if _UUID.match(username) and _KEY.match(key):
        found = (
            await db.read(
                lambda conn: conn.execute(
                    sa.select(registrations).where(registrations.c.username == username)
                )
            )
        ).first()
    if found is None or not secret_matches(key, found.password_hash):
        await throttle.failed(throttle.source(address))
        raise AcmeDnsError(*FORBIDDEN)
    allowfrom = tuple(n for n in found.allowfrom.split("\n") if n)
    if not allowed_from(allowfrom, address):
        raise AcmeDnsError(*FORBIDDEN)
    if subdomain.strip().lower() != found.subdomain:
        raise AcmeDnsError(*FORBIDDEN)  # another registration's name
    if not _TXT.match(txt):
        raise AcmeDnsError(400, "bad_txt")
    txt_rdata(txt)  # the rules every challenge value meets (the pattern is narrower)
    name = f"{found.subdomain}.{zone_name}"

    async def unit(txn: Txn) -> None:
        zone = await _zone(txn.conn, zone_name)
        stored = await txn.conn.scalar(
            sa.select(rrsets.c.rdatas).where(
                rrsets.c.zone_id == zone.id, rrsets.c.name == name, rrsets.c.rtype == "TXT"
            )
        )
        current = RRsetValue.decode_rdatas(stored) if stored else ()
        recent = [v for v in found.txt.split("\n") if v and f'"{v}"' in current][-1:]
        values = [*(v for v in recent if v != txt), txt]
        after = RRsetValue(name, "TXT", TTL, tuple(sorted(f'"{v}"' for v in values)))
        if set(after.rdatas) != set(current):
            since = txn.now - timedelta(hours=1)
            if await changes_within(txn.conn, zone.id, name, since) >= CHANGES_PER_HOUR:
                raise AcmeDnsError(429, "too_many_updates")
            await apply_change(txn, zone, after, actor=f"acme-dns:{username[:8]}", via=VIA)
        await txn.conn.execute(
            sa.update(registrations)
            .where(registrations.c.id == found.id)
            .values(txt="\n".join(values), updated_at=txn.now)
        )

    await db.write(unit)
    return txt


async def delegate(
    db: Database, host_id: int, fulldomain: str | None, acme_dns_zone: str, *, actor: str
) -> str | None:
    """Point the host's `_acme-challenge` at a registration's name by CNAME (None: remove the
    CNAME); only to a name registered here, and not while challenge TXT values are there."""
    target = None
    if fulldomain is not None:
        target = fulldomain.strip().lower().rstrip(".")
        subdomain, _, under = target.partition(".")
        if under != acme_dns_zone or not _UUID.match(subdomain):
            raise AcmeDnsError(422, f"not a name under {acme_dns_zone}")

    async def unit(txn: Txn) -> str | None:
        if target is not None:
            known = await txn.conn.scalar(
                sa.select(registrations.c.id).where(registrations.c.subdomain == subdomain)
            )
            if known is None:
                raise AcmeDnsError(422, f"{target} is not registered here")
        host = (
            await txn.conn.execute(
                sa.select(hosts.c.name, hosts.c.ttl, zones.c.id, zones.c.name.label("zone"))
                .join(zones, zones.c.id == hosts.c.zone_id)
                .where(hosts.c.id == host_id)
            )
        ).one()
        zone = ZoneRef(int(host.id), str(host.zone))
        name = challenge_name(host.name)
        txt = await txn.conn.scalar(
            sa.select(rrsets.c.id).where(
                rrsets.c.zone_id == zone.id, rrsets.c.name == name, rrsets.c.rtype == "TXT"
            )
        )
        if txt is not None and target is not None:
            raise AcmeDnsError(409, f"{name} holds challenge values; delete them first")
        rdatas = () if target is None else (f"{target}.",)
        value = RRsetValue(name, "CNAME", int(host.ttl), rdatas)
        await apply_change(txn, zone, value, actor=actor, via=VIA)
        return target

    return await db.write(unit)
