"""TSIG keys (RFC 8945): a zone key may change and transfer its zone, a host key only its host."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, HomingError, NotFound
from homing.domain.names import normalize
from homing.store.db import Database, Txn
from homing.store.schema import hosts, tsig_keys, zones

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
) -> TsigKey:
    """A new key for a zone or for one host: random, or `secret` (base64) when the same
    key must be installed on another server too (a secondary's key of its primary)."""
    key_name = normalize(name)
    algorithm = algorithm.lower()
    if algorithm not in ALGORITHMS:
        raise HomingError(f"unknown algorithm {algorithm}; use one of {', '.join(ALGORITHMS)}")
    if algorithm in LEGACY and not allow_legacy:
        raise HomingError(f"{algorithm} is disabled; set tsig_allow_md5 to use it")
    if (zone is None) == (host is None):
        raise HomingError("a key belongs to exactly one zone or one host")
    if secret is None:
        secret = base64.b64encode(secrets.token_bytes(ALGORITHMS[algorithm])).decode()
    else:
        secret = _check_secret(secret.strip())

    async def unit(txn: Txn) -> TsigKey:
        conn = txn.conn
        if await conn.scalar(sa.select(tsig_keys.c.id).where(tsig_keys.c.name == key_name)):
            raise Conflict(f"key {key_name} exists")
        zone_id = host_id = None
        if zone is not None:
            zone_id = await conn.scalar(
                sa.select(zones.c.id).where(zones.c.name == normalize(zone))
            )
            if zone_id is None:
                raise NotFound(f"no zone {zone}")
        if host is not None:
            host_id = await conn.scalar(
                sa.select(hosts.c.id).where(hosts.c.name == normalize(host))
            )
            if host_id is None:
                raise NotFound(f"no host {host}")
        await conn.execute(
            sa.insert(tsig_keys).values(
                name=key_name,
                algorithm=algorithm,
                secret=secret,
                zone_id=zone_id,
                host_id=host_id,
                created_at=txn.now,
            )
        )
        return TsigKey(
            key_name,
            algorithm,
            secret,
            normalize(zone) if zone else None,
            normalize(host) if host else None,
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
    """Every key with the zone or host it belongs to (loaded by the DNS server)."""
    rows = await conn.execute(
        sa.select(
            tsig_keys.c.name,
            tsig_keys.c.algorithm,
            tsig_keys.c.secret,
            zones.c.name.label("zone"),
            hosts.c.name.label("host"),
        )
        .outerjoin(zones, zones.c.id == tsig_keys.c.zone_id)
        .outerjoin(hosts, hosts.c.id == tsig_keys.c.host_id)
    )
    return [TsigKey(r.name, r.algorithm, r.secret, r.zone, r.host) for r in rows]
