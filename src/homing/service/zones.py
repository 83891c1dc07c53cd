"""Zones the operator offers: creation with SOA and NS, lookup, where changes go (a hidden
primary's push, a secondary zone's primary)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, HomingError, NotFound
from homing.domain.names import normalize
from homing.domain.records import RRsetValue, ZoneMeta
from homing.service import reverse
from homing.service.changes import ZoneRef, apply_change
from homing.store.db import Database, Txn
from homing.store.schema import tsig_keys, zones


def _check_hostport(text: str) -> str:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        valid_port = sep and port.isdigit() and 0 < int(port) < 65536
    except ValueError:
        valid_port = False
    if not valid_port:
        raise HomingError(f"not an ADDRESS:PORT: {text!r}")
    return text


def _check_cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as exc:
        raise HomingError(f"not an address or network: {text!r}") from exc


# The SOA's timers (RFC 1035 3.3.13, RFC 2308 4): what a zone is created with unless told.
REFRESH, RETRY, EXPIRE = 3600, 600, 1209600
MAX_TTL = 86400
MAX_TIMER = 2**31 - 1  # RFC 2181 8: a 32-bit value with the top bit clear


def check_soa_value(option: str, value: int, low: int, high: int) -> int:
    """One SOA number within its bounds; HomingError names the option."""
    if not low <= value <= high:
        raise HomingError(f"{option} must be between {low} and {high}: {value}")
    return value


async def zone_row(
    conn: AsyncConnection, name: str | None = None, *, zone_id: int | None = None
) -> sa.Row[tuple[object, ...]]:
    """A zone's stored row, by name or by id; NotFound when there is none."""
    where = zones.c.name == name if zone_id is None else zones.c.id == zone_id
    row = (await conn.execute(sa.select(zones).where(where))).first()
    if row is None:
        raise NotFound(f"no zone {name}" if name is not None else "no such zone")
    return row


def own_records(row: sa.Row[tuple[object, ...]], what: str = "records") -> ZoneRef:
    """The zone as a ZoneRef for changing its records; a secondary zone's are its primary's."""
    if row.primary_target is not None:
        raise HomingError(f"zone {row.name} is a secondary zone: its {what} are its primary's")
    return ZoneRef(row.id, row.name)


async def add_zone(
    db: Database,
    name: str,
    *,
    ns: list[str] | None = None,
    rname: str | None = None,
    notify: list[str] | None = None,
    allow_transfer: list[str] | None = None,
    ttl: int = 60,
    negative_ttl: int | None = None,
    refresh: int = REFRESH,
    retry: int = RETRY,
    expire: int = EXPIRE,
    public: bool = True,
    exist_ok: bool = False,
    push: str | None = None,
    push_key: str | None = None,
    primary: str | None = None,
    primary_key: str | None = None,
    notify_key: str | None = None,
    auto_ptr: bool = False,
) -> ZoneRef:
    """Create a zone with its NS RRset at the apex (journal serial 1).

    `ttl` is the zone's default TTL and its SOA's, and its negative-caching TTL (the SOA
    minimum, RFC 2308) unless `negative_ttl` is given; `refresh`, `retry`, `expire` are the
    SOA timers its secondaries follow. `auto_ptr`: a reverse zone whose PTRs follow the
    hosts' addresses (see `reverse`).

    `push` and `push_key` make it a hidden primary's zone (see `set_push`); `primary`
    (and `primary_key`) a secondary zone, empty until its first transfer (see
    `set_primary`); `notify_key` signs its NOTIFYs. With `exist_ok`, an existing zone
    is left as it is.
    """
    zone_name = normalize(name)
    nameservers = [normalize(n) for n in (ns or [f"ns1.{zone_name}"])]
    soa_rname = normalize(rname) if rname else f"hostmaster.{zone_name}"
    notify_list = [_check_hostport(n) for n in notify or []]
    transfer_list = [_check_cidr(c) for c in allow_transfer or []]
    check_soa_value("--ttl", ttl, 1, MAX_TTL)
    minimum = ttl if negative_ttl is None else negative_ttl
    check_soa_value("--negative-ttl", minimum, 0, MAX_TTL)
    for option, value in (("--refresh", refresh), ("--retry", retry), ("--expire", expire)):
        check_soa_value(option, value, 1, MAX_TIMER)
    push_target, push_key_name = check_push(push, push_key)
    primary_target = None if primary is None else check_primary(primary)
    if primary_key is not None and primary is None:
        raise HomingError("--primary-key goes with --primary HOST:PORT")
    if primary_target is not None and push_target is not None:
        raise HomingError("a secondary zone (--primary) is not pushed anywhere (--push)")
    primary_key_name = None if primary_key is None else normalize(primary_key)
    notify_key_name = None if notify_key is None else normalize(notify_key)
    if auto_ptr:
        reverse.check_reverse(zone_name)
        if primary_target is not None:
            raise HomingError("a secondary zone's PTRs come from its primary (no --auto-ptr)")

    async def unit(txn: Txn) -> ZoneRef:
        existing = await txn.conn.scalar(sa.select(zones.c.id).where(zones.c.name == zone_name))
        if existing is not None:
            if exist_ok:
                return ZoneRef(existing, zone_name)
            raise Conflict(f"zone {zone_name} exists")
        for key_name in (primary_key_name, notify_key_name):
            if key_name is not None:
                # A new zone has no keys yet: the key is made for it afterwards.
                raise NotFound(
                    f"no key {key_name} of zone {zone_name} (a new zone has none): add the"
                    f" zone, then `homing key add {key_name} --zone {zone_name} --secret ...`"
                    f" and `homing zone set {zone_name} ... {key_name}`"
                )
        zone_id = (
            await txn.conn.execute(
                sa.insert(zones)
                .values(
                    name=zone_name,
                    serial=0,
                    mname=nameservers[0],
                    rname=soa_rname,
                    refresh=refresh,
                    retry=retry,
                    expire=expire,
                    minimum=minimum,
                    soa_ttl=ttl,
                    default_ttl=ttl,
                    public=public,
                    notify="\n".join(notify_list),
                    allow_transfer="\n".join(transfer_list),
                    push_target=push_target,
                    push_key=push_key_name,
                    pushed_serial=None,
                    primary_target=primary_target,
                    auto_ptr=auto_ptr,
                    created_at=txn.now,
                )
                .returning(zones.c.id)
            )
        ).scalar_one()
        zone = ZoneRef(zone_id, zone_name)
        if primary_target is not None:
            return zone  # its records, NS included, come from the primary
        ns_value = RRsetValue(zone_name, "NS", 3600, tuple(n + "." for n in nameservers))
        await apply_change(txn, zone, ns_value, actor="operator", via="cli")
        found = reverse.reverse_zone(zone) if auto_ptr else None
        if found is not None:
            await txn.run_sync(lambda sync_txn: reverse.fill_or_clear_sync(sync_txn, found, True))
        return zone

    return await db.write(unit)


def check_push(target: str | None, key: str | None) -> tuple[str | None, str | None]:
    """A push target and key name, both or neither; normalised."""
    if (target is None) != (key is None):
        raise HomingError("--push and --push-key go together")
    if target is None or key is None:
        return None, None
    return _check_hostport(target), normalize(key)


async def set_push(db: Database, name: str, target: str | None, key: str | None) -> ZoneRef:
    """Push the zone's changes to an external primary (RFC 2136 + TSIG), or stop (None, None).

    The key need not exist yet (`homing key add KEY --zone ZONE` may come after); until it
    does, pushes fail and are retried. A new target first gets the whole zone.
    """
    zone_name = normalize(name)
    check_push(target, key)

    async def unit(txn: Txn) -> ZoneRef:
        row = await zone_row(txn.conn, zone_name)
        values = push_values(row, target, key)
        await txn.conn.execute(sa.update(zones).where(zones.c.id == row.id).values(values))
        return ZoneRef(row.id, zone_name)

    return await db.write(unit)


def push_values(
    row: sa.Row[tuple[object, ...]], target: str | None, key: str | None
) -> dict[str, object]:
    """The zone row's columns for pushing to `target` signed by `key` (None, None: nowhere)."""
    push_target, push_key_name = check_push(target, key)
    values: dict[str, object] = {"push_target": push_target, "push_key": push_key_name}
    if row.push_target != push_target:
        values["pushed_serial"] = None  # another server: it needs the whole zone
    return values


def check_primary(text: str) -> str:
    try:
        return _check_hostport(text)
    except HomingError:
        raise HomingError(f"--primary: not an ADDRESS:PORT: {text!r}") from None


async def _zone_key(txn: Txn, zone_id: int, zone_name: str, key_name: str) -> None:
    """The key must exist and belong to this zone (`homing key add NAME --zone ZONE`)."""
    owner = (
        await txn.conn.execute(sa.select(tsig_keys.c.zone_id).where(tsig_keys.c.name == key_name))
    ).first()
    if owner is None:
        raise NotFound(
            f"no key {key_name}: add it with `homing key add {key_name} --zone {zone_name}`"
        )
    if owner.zone_id != zone_id:
        raise HomingError(f"key {key_name} is not a key of zone {zone_name}")


async def set_primary(
    db: Database, name: str, primary: str | None, key: str | None, *, notify_key: str | None = None
) -> ZoneRef:
    """Set where a secondary zone is transferred from and the key that signs the
    transfers, or (`primary` None) only the key that signs the zone's NOTIFYs.

    An existing zone of our own cannot become a secondary (its journal would lose its
    meaning); make the secondary zone with `add_zone(primary=...)`.
    """
    zone_name = normalize(name)
    if primary is not None:
        check_primary(primary)
    if key is not None and primary is None:
        raise HomingError("--primary-key goes with --primary HOST:PORT")

    async def unit(txn: Txn) -> ZoneRef:
        row = await zone_row(txn.conn, zone_name)
        values = await primary_values(txn, row, primary, key, notify_key)
        if values:
            await txn.conn.execute(sa.update(zones).where(zones.c.id == row.id).values(values))
        return ZoneRef(row.id, zone_name)

    return await db.write(unit)


async def primary_values(
    txn: Txn,
    row: sa.Row[tuple[object, ...]],
    primary: str | None,
    key: str | None,
    notify_key: str | None,
) -> dict[str, object]:
    """The zone row's columns for a secondary zone's primary and its key, and the key its
    NOTIFYs are signed with (None: as they are); each key must be one of the zone's."""
    values: dict[str, object] = {}
    if primary is not None:
        if row.primary_target is None:
            raise HomingError(f"zone {row.name} is not a secondary zone (no --primary)")
        key_name = None if key is None else normalize(key)
        if key_name is not None:
            await _zone_key(txn, row.id, row.name, key_name)
        values.update(primary_target=check_primary(primary), primary_key=key_name)
    if notify_key is not None:
        notify_key_name = normalize(notify_key)
        await _zone_key(txn, row.id, row.name, notify_key_name)
        values["notify_key"] = notify_key_name
    return values


def zone_meta(row: sa.Row[tuple[object, ...]]) -> ZoneMeta:
    r = row._mapping
    return ZoneMeta(
        name=r["name"],
        mname=r["mname"] + ".",
        rname=r["rname"] + ".",
        refresh=r["refresh"],
        retry=r["retry"],
        expire=r["expire"],
        minimum=r["minimum"],
        soa_ttl=r["soa_ttl"],
        # A secondary zone not transferred yet has nothing to answer with.
        expired=r.get("primary_target") is not None and r.get("last_transfer") is None,
    )


async def zone_refs(conn: AsyncConnection) -> dict[str, ZoneRef]:
    """All zones whose records are ours to change, by name (not the secondary zones: their
    names come from their primary, so no host or group is made there)."""
    rows = await conn.execute(
        sa.select(zones.c.id, zones.c.name).where(zones.c.primary_target.is_(None))
    )
    return {row.name: ZoneRef(row.id, row.name) for row in rows}


async def get_zone(conn: AsyncConnection, name: str) -> ZoneRef:
    row = await zone_row(conn, name)
    return ZoneRef(row.id, row.name)


@dataclass(frozen=True)
class TransferSettings:
    """Who a zone notifies (HOST:PORT), who may transfer it without a key (CIDR), and the
    external primary its changes are pushed to (HOST:PORT, TSIG key name), if any."""

    zone: str
    notify: tuple[str, ...]
    allow_transfer: tuple[str, ...]
    push: str | None = None
    push_key: str | None = None
    primary: str | None = None  # a secondary zone's primary, ADDRESS:PORT
    primary_key: str | None = None
    notify_key: str | None = None


async def transfer_settings(conn: AsyncConnection) -> list[TransferSettings]:
    """Every zone's notify targets, transfer list and push target (loaded by the DNS server)."""
    rows = await conn.execute(
        sa.select(
            zones.c.name, zones.c.notify, zones.c.allow_transfer, zones.c.push_target,
            zones.c.push_key, zones.c.primary_target, zones.c.primary_key, zones.c.notify_key,
        )
    )  # fmt: skip
    return [
        TransferSettings(
            r.name,
            tuple(line for line in (r.notify or "").split("\n") if line),
            tuple(line for line in (r.allow_transfer or "").split("\n") if line),
            r.push_target or None,
            r.push_key or None,
            r.primary_target or None,
            r.primary_key or None,
            r.notify_key or None,
        )
        for r in rows
    ]
