"""TSIG keys (RFC 8945): a zone key may change and transfer its zones, a host key only its host.

A zone key covers one zone or several (a DHCP server's one key for its forward and
reverse zones); with an update policy (see `keypolicy`) it changes only the names and
types its grants allow, and transfers nothing.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, HomingError, NotFound
from homing.domain.names import normalize
from homing.service.keypolicy import Grant, load_policy, parse_policy
from homing.store.db import Database, Txn
from homing.store.schema import hosts, tsig_key_zones, tsig_keys, zones

# Secret sizes follow the hash's output length (RFC 2104's recommendation).
ALGORITHMS = {
    "hmac-sha256": 32,
    "hmac-sha384": 48,
    "hmac-sha512": 64,
    "hmac-sha224": 28,
    "hmac-sha1": 20,
    "hmac-md5": 16,
}
LEGACY = {"hmac-md5"}
# A given secret shorter than this is refused: RFC 8945 6 asks for at least half the
# hash's length, and 16 bytes is that for the shortest hash offered.
MIN_SECRET = 16  # only where the operator allows it, for old equipment


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: str  # base64
    zone: str | None
    host: str | None
    also: tuple[str, ...] = ()  # further zones of a zone key
    policy: tuple[Grant, ...] | None = None  # None: anything in its zones

    @property
    def zones(self) -> tuple[str, ...]:
        return (self.zone, *self.also) if self.zone is not None else self.also

    def nsupdate_form(self) -> str:
        """ALG:NAME:SECRET, as `nsupdate -y` takes it."""
        return f"{self.algorithm}:{self.name}:{self.secret}"


async def add_key(
    db: Database,
    name: str,
    *,
    zone: str | None = None,
    host: str | None = None,
    algorithm: str = "hmac-sha256",
    allow_legacy: bool = False,
    secret: str | None = None,
    also: Sequence[str] = (),
    grants: Sequence[str] = (),
) -> TsigKey:
    """A new key for a zone (and `also` further zones) or for one host: random, or
    `secret` (base64) when the same key must be installed on another server too (a
    secondary's key of its primary). `grants`: its update policy (see `keypolicy`)."""
    key_name = normalize(name)
    algorithm = algorithm.lower()
    if algorithm not in ALGORITHMS:
        raise HomingError(f"unknown algorithm {algorithm}; use one of {', '.join(ALGORITHMS)}")
    if algorithm in LEGACY and not allow_legacy:
        raise HomingError(f"{algorithm} is disabled; set tsig_allow_md5 to use it")
    if zone is None and host is None:
        raise HomingError("a key needs what it covers: zones (--zone) or one host (--host)")
    if zone is not None and host is not None:
        raise HomingError("a key belongs to zones (--zone) or to one host (--host), not both")
    if host is not None and (also or grants):
        raise HomingError(
            "a host key covers its host alone: --grant and more zones are for zone keys"
        )
    zone_names = [normalize(z) for z in ([zone] if zone else [])] + [normalize(z) for z in also]
    if len(set(zone_names)) != len(zone_names):
        raise HomingError("a zone is named twice")
    policy = parse_policy(grants, key_name, zone_names) if grants else None
    if secret is None:
        secret = base64.b64encode(secrets.token_bytes(ALGORITHMS[algorithm])).decode()
    else:
        secret = _check_secret(secret.strip())

    async def unit(txn: Txn) -> TsigKey:
        conn = txn.conn
        if await conn.scalar(sa.select(tsig_keys.c.id).where(tsig_keys.c.name == key_name)):
            raise Conflict(f"key {key_name} exists")
        zone_id = host_id = None
        zone_ids = []
        for zone_name in zone_names:
            found = await conn.scalar(sa.select(zones.c.id).where(zones.c.name == zone_name))
            if found is None:
                raise NotFound(f"no zone {zone_name}")
            zone_ids.append(found)
        if zone_ids:
            zone_id = zone_ids[0]
        if host is not None:
            host_id = await conn.scalar(
                sa.select(hosts.c.id).where(hosts.c.name == normalize(host))
            )
            if host_id is None:
                raise NotFound(f"no host {host}")
        key_id = (
            await conn.execute(
                sa.insert(tsig_keys)
                .values(
                    name=key_name,
                    algorithm=algorithm,
                    secret=secret,
                    zone_id=zone_id,
                    host_id=host_id,
                    created_at=txn.now,
                    policy=None if policy is None else "\n".join(g.to_text() for g in policy),
                )
                .returning(tsig_keys.c.id)
            )
        ).scalar_one()
        for further in zone_ids[1:]:
            await conn.execute(sa.insert(tsig_key_zones).values(key_id=key_id, zone_id=further))
        return TsigKey(
            key_name,
            algorithm,
            secret,
            zone_names[0] if zone_names else None,
            normalize(host) if host else None,
            tuple(zone_names[1:]),
            policy,
        )

    return await db.write(unit)


def _check_secret(text: str) -> str:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise HomingError("--secret is not base64 (as `homing key add` prints it)") from None
    if len(raw) < MIN_SECRET:
        raise HomingError(f"--secret is too short: {len(raw)} bytes, at least {MIN_SECRET}")
    return text


async def all_keys(conn: AsyncConnection) -> list[TsigKey]:
    """Every key with the zones or host it belongs to and its policy (loaded by the DNS server)."""
    further: dict[int, list[str]] = {}
    for row in await conn.execute(
        sa.select(tsig_key_zones.c.key_id, zones.c.name)
        .join(zones, zones.c.id == tsig_key_zones.c.zone_id)
        .order_by(zones.c.name)
    ):
        further.setdefault(row.key_id, []).append(row.name)
    rows = await conn.execute(
        sa.select(
            tsig_keys.c.id,
            tsig_keys.c.name,
            tsig_keys.c.algorithm,
            tsig_keys.c.secret,
            tsig_keys.c.policy,
            zones.c.name.label("zone"),
            hosts.c.name.label("host"),
        )
        .outerjoin(zones, zones.c.id == tsig_keys.c.zone_id)
        .outerjoin(hosts, hosts.c.id == tsig_keys.c.host_id)
    )
    return [
        TsigKey(
            r.name,
            r.algorithm,
            r.secret,
            r.zone,
            r.host,
            tuple(further.get(r.id, ())),
            load_policy(r.policy, r.name),
        )
        for r in rows
    ]
