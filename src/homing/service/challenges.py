"""ACME DNS-01 challenge values: TXT at `_acme-challenge.<host>`, set and deleted by the host's
own credentials, limited by its plan, and deleted by the leader once they are old.

Every change goes through apply_change, so the journal carries it to IXFR, NOTIFY, the
other workers and the host's history like any other change. The expiry pass reads the
journal for each challenge RRset's last change, so values set by any door (dyndns2, the
API, RFC 2136 host keys, the acme-dns API) expire alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import HomingError, InvalidName, NotFound
from homing.domain.names import is_fqdn, normalize
from homing.domain.outcomes import Outcome
from homing.domain.records import RRsetValue
from homing.service.changes import ZoneRef, apply_change
from homing.service.secrets import secret_matches
from homing.service.throttle import Throttle
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import accounts, hosts, journal, plans, rrsets, zones

log = logging.getLogger(__name__)

ACME_LABEL = "_acme-challenge"
MAX_VALUE = 255  # one TXT character-string; an ACME key authorisation digest is 43
VIA = "acme"
EXPIRY_ACTOR = "expiry"
# Without a plan (an operator's own account): the plan table's defaults.
DEFAULT_VALUES = 4
DEFAULT_CHANGES_PER_HOUR = 60


class ChallengeRefused(HomingError):
    """A challenge change refused with nothing changed; `code` is the API's error code."""

    outcome = Outcome.BAD_REQUEST

    def __init__(self, code: str, message: str, outcome: Outcome | None = None) -> None:
        super().__init__(message, outcome)
        self.code = code


@dataclass(frozen=True)
class Challenge:
    """A host's challenge RRset as it is after a request."""

    host: str
    name: str
    values: tuple[str, ...]
    changed: bool


def challenge_name(host: str) -> str:
    return f"{ACME_LABEL}.{host}"


def txt_rdata(value: str) -> str:
    """The TXT rdata text of a challenge value; ChallengeRefused unless it is 1 to 255
    printable ASCII characters without quotes or backslashes (ACME's are base64url)."""
    if not value or len(value) > MAX_VALUE:
        raise ChallengeRefused(
            "ACME_VALUE_INVALID", f"A challenge value has 1 to {MAX_VALUE} characters."
        )
    if any(not (0x21 <= ord(c) <= 0x7E) or c in '"\\' for c in value):
        raise ChallengeRefused(
            "ACME_VALUE_INVALID",
            "A challenge value is printable ASCII without spaces, quotes or backslashes.",
        )
    return f'"{value}"'


def value_of(rdata: str) -> str:
    """The value in a TXT rdata text as stored (one quoted string)."""
    return rdata[1:-1] if len(rdata) >= 2 and rdata[0] == rdata[-1] == '"' else rdata


@dataclass(frozen=True)
class _Host:
    id: int
    name: str
    zone: ZoneRef
    ttl: int
    status: str
    max_values: int
    changes_per_hour: int


_HOST_COLUMNS = (
    hosts.c.id,
    hosts.c.name,
    hosts.c.zone_id,
    zones.c.name.label("zone_name"),
    hosts.c.ttl,
    hosts.c.status,
    plans.c.acme_values,
    plans.c.acme_changes_per_hour,
)


def _host_query() -> sa.Select[tuple[object, ...]]:
    return sa.select(*_HOST_COLUMNS).select_from(
        hosts.join(zones, zones.c.id == hosts.c.zone_id)
        .join(accounts, accounts.c.id == hosts.c.owner_id)
        .outerjoin(plans, plans.c.id == accounts.c.plan_id)
    )


async def _host(conn: AsyncConnection, host_id: int) -> _Host:
    row = (await conn.execute(_host_query().where(hosts.c.id == host_id))).first()
    if row is None:
        raise NotFound("No such host.")
    m = row._mapping
    return _Host(
        int(m["id"]),
        str(m["name"]),
        ZoneRef(int(m["zone_id"]), str(m["zone_name"])),
        int(m["ttl"]),
        str(m["status"]),
        DEFAULT_VALUES if m["acme_values"] is None else int(m["acme_values"]),
        DEFAULT_CHANGES_PER_HOUR
        if m["acme_changes_per_hour"] is None
        else int(m["acme_changes_per_hour"]),
    )


async def _current(
    conn: AsyncConnection, zone: ZoneRef, name: str, rtype: str = "TXT"
) -> tuple[str, ...]:
    stored = await conn.scalar(
        sa.select(rrsets.c.rdatas).where(
            rrsets.c.zone_id == zone.id, rrsets.c.name == name, rrsets.c.rtype == rtype
        )
    )
    return RRsetValue.decode_rdatas(stored) if stored else ()


async def changes_within(conn: AsyncConnection, zone_id: int, name: str, since: datetime) -> int:
    """The journal's changes of `name`'s TXT since `since` (what the hourly limit counts)."""
    count = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(journal)
        .where(
            journal.c.name == name,
            journal.c.zone_id == zone_id,
            journal.c.rtype == "TXT",
            journal.c.at >= since,
        )
    )
    return int(count or 0)


async def limit_reached(
    conn: AsyncConnection,
    zone_id: int,
    name: str,
    held: int,
    max_values: int,
    per_hour: int,
    now: datetime,
) -> Literal["values", "often"] | None:
    """Which of a plan's challenge limits a change to `held` values at `name` would pass:
    more values than `max_values`, or a change past `per_hour` within the hour; None: none.
    Every door that sets challenges (dyndns2, the API, RFC 2136) asks this one rule."""
    if held > max_values:
        return "values"
    if await changes_within(conn, zone_id, name, now - timedelta(hours=1)) >= per_hour:
        return "often"
    return None


async def _change(
    db: Database, host_id: int, add: str | None, remove: str | None, clear: bool, actor: str
) -> Challenge:
    """Add `add`, remove `remove`, or (clear) remove every value, in one transaction."""

    async def unit(txn: Txn) -> Challenge:
        host = await _host(txn.conn, host_id)
        name = challenge_name(host.name)
        current = await _current(txn.conn, host.zone, name)
        if host.status != "active":
            outcome = Outcome.ABUSE if host.status == "blocked" else Outcome.DISABLED
            raise ChallengeRefused(
                "HOST_BLOCKED" if host.status == "blocked" else "HOST_DISABLED",
                f"Host {host.name} is {host.status}: its challenge cannot change.",
                outcome,
            )
        if add is not None and await _current(txn.conn, host.zone, name, "CNAME"):
            raise ChallengeRefused(
                "ACME_DELEGATED",
                f"{name} is delegated to acme-dns by a CNAME; remove the delegation first.",
            )
        values = set(current)
        if clear:
            values.clear()
        if remove is not None:
            values.discard(remove)
        if add is not None:
            values.add(add)
        if values == set(current):
            return Challenge(host.name, name, tuple(value_of(v) for v in current), False)
        limit = await limit_reached(
            txn.conn,
            host.zone.id,
            name,
            len(values),
            host.max_values,
            host.changes_per_hour,
            txn.now,
        )
        if limit == "values":
            raise ChallengeRefused(
                "ACME_VALUES_FULL",
                f"{name} holds {len(current)} values, as many as the plan allows "
                f"({host.max_values}); delete one first.",
            )
        if limit == "often":
            raise ChallengeRefused(
                "ACME_TOO_OFTEN",
                f"{name} changed {host.changes_per_hour} times within the hour, "
                "as often as the plan allows; try again later.",
                Outcome.TOO_SOON,
            )
        after = RRsetValue(name, "TXT", host.ttl, tuple(sorted(values)))
        await apply_change(txn, host.zone, after, actor=actor, via=VIA)
        return Challenge(host.name, name, tuple(value_of(v) for v in after.rdatas), True)

    return await db.write(unit)


async def set_value(db: Database, host_id: int, value: str, *, actor: str) -> Challenge:
    """Add a value to the host's challenge TXT (kept with the ones there, as a name and its
    wildcard validate together); an unchanged request changes nothing."""
    return await _change(db, host_id, txt_rdata(value), None, False, actor)


async def delete_value(db: Database, host_id: int, value: str | None, *, actor: str) -> Challenge:
    """Remove one value, or (None) every value, of the host's challenge TXT."""
    if value is None:
        return await _change(db, host_id, None, None, True, actor)
    return await _change(db, host_id, None, txt_rdata(value), False, actor)


async def values_of(db: Database, host_id: int) -> Challenge:
    async def query(conn: AsyncConnection) -> Challenge:
        host = await _host(conn, host_id)
        name = challenge_name(host.name)
        current = await _current(conn, host.zone, name)
        return Challenge(host.name, name, tuple(value_of(v) for v in current), False)

    return await db.read(query)


async def owned_host(db: Database, account_id: int, name: str) -> int:
    """The id of the account's host `name` (or of the host whose challenge name it is);
    NotFound for any other name, so a caller learns nothing of other accounts' hosts."""
    if name.lower().startswith(f"{ACME_LABEL}."):
        name = name[len(ACME_LABEL) + 1 :]
    try:
        host = normalize(name)
    except InvalidName as exc:
        raise NotFound("No such host.") from exc
    found = await db.read(
        lambda conn: conn.scalar(
            sa.select(hosts.c.id).where(hosts.c.name == host, hosts.c.owner_id == account_id)
        )
    )
    if found is None:
        raise NotFound("No such host.")
    return int(found)


async def host_by_secret(
    db: Database, name: str, secret: str, *, throttle: Throttle | None, address: str
) -> int | None:
    """The id of host `name` when `secret` is its own update secret, else None.

    Only the host's secret: a group's secret or the account password is broader than
    a challenge needs. A source the throttle has locked is refused before the look-up; a
    wrong secret counts for it.
    """
    if throttle is not None and await throttle.source_wait(address) > 0:
        return None
    try:
        host = normalize(name)
    except InvalidName:
        host = ""
    found = None
    if host and is_fqdn(host):
        found = (
            await db.read(
                lambda conn: conn.execute(
                    sa.select(hosts.c.id, hosts.c.secret_hash).where(hosts.c.name == host)
                )
            )
        ).first()
    if found is not None and secret_matches(secret, found.secret_hash):
        return int(found.id)
    if throttle is not None:
        await throttle.failed(throttle.source(address))
    return None


async def expire(
    db: Database, lifetime: int, *, acme_dns_zone: str | None = None, now: datetime | None = None
) -> int:
    """Delete challenge TXT RRsets not changed for `lifetime` seconds: at
    `_acme-challenge.*` in any zone, and every TXT under the acme-dns zone. Returns how many."""

    if acme_dns_zone is not None:
        acme_dns_zone = acme_dns_zone.lower().rstrip(".")

    async def candidates(conn: AsyncConnection) -> list[tuple[int, str, str]]:
        challenge = rrsets.c.name.startswith(f"{ACME_LABEL}.", autoescape=True)
        if acme_dns_zone is not None:
            challenge = sa.or_(
                challenge, rrsets.c.name.endswith(f".{acme_dns_zone}", autoescape=True)
            )
        rows = await conn.execute(
            sa.select(rrsets.c.zone_id, zones.c.name, rrsets.c.name)
            .join(zones, zones.c.id == rrsets.c.zone_id)
            .where(rrsets.c.rtype == "TXT", zones.c.primary_target.is_(None), challenge)
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    found = await db.read(candidates)
    expired = 0
    for zone_id, zone_name, name in found:

        async def unit(
            txn: Txn, zone_id: int = zone_id, zone_name: str = zone_name, name: str = name
        ) -> bool:
            last = await txn.conn.scalar(
                sa.select(sa.func.max(journal.c.at)).where(
                    journal.c.name == name, journal.c.zone_id == zone_id, journal.c.rtype == "TXT"
                )
            )
            deadline = (now or txn.now) - timedelta(seconds=lifetime)
            last_at = as_utc(last)
            if last_at is not None and last_at > deadline:
                return False
            gone = RRsetValue(name, "TXT", 0, ())
            entry = await apply_change(
                txn, ZoneRef(zone_id, zone_name), gone, actor=EXPIRY_ACTOR, via=VIA
            )
            return entry is not None

        try:
            if await db.write(unit):
                expired += 1
        except HomingError as exc:  # one zone's trouble leaves the others' expiry be
            log.warning("challenge %s not expired: %s", name, exc)
    return expired
