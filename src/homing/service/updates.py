"""The address update use case behind dyndns2 and the DVR endpoint.

Order of checks per request: credentials, then per host name: syntax, ownership,
status, unchanged (nochg, counted toward abuse), minimum interval, change.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv6Network
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.addresses import AddressSet, parse_address
from homing.domain.errors import InvalidName
from homing.domain.names import is_fqdn, normalize
from homing.domain.notifications import ADDRESS_CHANGED, AUTH_FAILURES, HOST_BLOCKED
from homing.domain.outcomes import Outcome
from homing.domain.records import JournalEntry, RRsetValue
from homing.service import alerts, prefixes
from homing.service.accounts import authenticate
from homing.service.changes import ZoneRef, apply_changes_sync
from homing.service.hosts import ADDRESS_TYPES, refresh_group_sync
from homing.service.secrets import secret_matches
from homing.service.throttle import Throttle, Throttled
from homing.store.db import Database, SyncTxn, as_utc, execute_many, fetch_all
from homing.store.schema import (
    accounts,
    alert_settings,
    group_members,
    groups,
    hosts,
    outbox,
    plans,
    rrsets,
    zones,
)


@dataclass(frozen=True)
class UpdatePolicy:
    """The operator's abuse rules (from Settings)."""

    max_hosts_per_request: int = 20
    abuse_nochg_limit: int = 10
    abuse_window: int = 3600
    group_member_max_age: int = 3600
    badauth_limit: int = 5  # wrong secrets for a host within badauth_window: one alert
    badauth_window: int = 3600
    allow_local_addresses: bool = False  # loopback and link-local may be published


@dataclass(frozen=True)
class UpdateRequest:
    username: str
    password: str
    hostnames: list[str] | None  # None: the hosts the credentials stand for
    addresses: AddressSet
    via: str  # "dyndns2", "dvr", ...
    client_ip: str
    agent: str = ""


class HostResult(NamedTuple):
    """One requested host's answer (a named tuple, as RRsetValue: made per update)."""

    hostname: str
    outcome: Outcome
    addresses: AddressSet = AddressSet()  # frozen: one shared empty set is safe
    # A change's zone and journal serial (its last, when both A and AAAA changed): what a
    # hidden primary must have before the change is confirmed. None when nothing changed.
    zone: str | None = None
    serial: int | None = None

    def dyndns2_line(self) -> str:
        if self.outcome.carries_address and self.addresses.by_type:
            return f"{self.outcome.dyndns2} {self.addresses.to_text()}"
        return self.outcome.dyndns2


@dataclass(frozen=True)
class _Grant:
    """Which host ids the credentials may update, and which they stand for by default."""

    allowed: frozenset[int]
    default_names: tuple[str, ...]
    group: str | None = None  # a group's secret: its own name stands for its members


UNKNOWN_NAME = _Grant(frozenset(), ())  # the user name is a host name we do not know
_WRONG_SECRET = _Grant(frozenset(), ())  # a host's or group's secret did not match


async def _resolve_credentials(
    db: Database, request: UpdateRequest, throttle: Throttle | None
) -> _Grant | None:
    """Host secret, group secret, or account password (in that order); None: badauth.

    UNKNOWN_NAME when the user name is a host name that is neither host, group nor
    account here: the request is about a domain we do not have (nohost), not a bad password.
    A wrong secret counts for the source; an account password goes through the throttle
    (badauth, without argon2, once the source or the account has failed too often).
    """
    username, password = request.username, request.password
    try:
        name = normalize(username) if "." in username else None
    except InvalidName:
        name = None

    async def by_secret(conn: AsyncConnection) -> _Grant | None:
        if name is None:
            return None
        host = (
            await conn.execute(
                sa.select(hosts.c.id, hosts.c.secret_hash).where(hosts.c.name == name)
            )
        ).first()
        if host is not None:
            if secret_matches(password, host.secret_hash):
                return _Grant(frozenset({host.id}), (name,))
            return _WRONG_SECRET
        group = (
            await conn.execute(
                sa.select(groups.c.id, groups.c.secret_hash).where(groups.c.name == name)
            )
        ).first()
        if group is not None and secret_matches(password, group.secret_hash):
            rows = await conn.execute(
                sa.select(hosts.c.id, hosts.c.name)
                .join(group_members, group_members.c.host_id == hosts.c.id)
                .where(group_members.c.group_id == group.id)
                .order_by(hosts.c.name)
            )
            members = rows.all()
            return _Grant(
                frozenset(m.id for m in members), tuple(m.name for m in members), group=name
            )
        return None if group is None else _WRONG_SECRET

    grant = await db.read(by_secret)
    if grant is _WRONG_SECRET:
        if throttle is not None:
            await throttle.failed(throttle.source(request.client_ip))
        return None
    if grant is not None:
        return grant
    try:
        account = await authenticate(
            db, username, password, throttle=throttle, address=request.client_ip
        )
    except Throttled:
        return None
    if account is None:
        if name is not None and not await db.read(lambda conn: _name_exists(conn, name)):
            return UNKNOWN_NAME
        return None

    async def owned(conn: AsyncConnection) -> _Grant:
        rows = await conn.execute(sa.select(hosts.c.id).where(hosts.c.owner_id == account.id))
        return _Grant(frozenset(r.id for r in rows), ())

    return await db.read(owned)


async def _name_exists(conn: AsyncConnection, name: str) -> bool:
    for column in (hosts.c.name, groups.c.name):
        if await conn.scalar(sa.select(column).where(column == name)) is not None:
            return True
    return False


_SLOW = None  # the batch could not decide the credentials: resolve them outside


@dataclass
class _Item:
    """One update request as the batch sees it; `grant` None: check a host secret in the batch."""

    request: UpdateRequest
    grant: _Grant | None
    policy: UpdatePolicy
    username: str | None = None  # the user name as a host name (FQDN), when worked out


async def update(
    db: Database,
    request: UpdateRequest,
    policy: UpdatePolicy,
    throttle: Throttle | None = None,
) -> list[HostResult]:
    """Apply one update request; one result per requested host, in order.

    The common case (a host's own secret) is decided entirely inside the batched write,
    so concurrent updates cost a few statements per commit, not per request. A source
    the throttle has locked is answered badauth before any secret is looked at.
    """
    requested = request.hostnames
    if requested is not None and len(requested) > policy.max_hosts_per_request:
        return [HostResult(",".join(requested)[:64], Outcome.NUMHOST)]
    if throttle is not None and await throttle.source_wait(request.client_ip) > 0:
        return _answered(request, Outcome.BADAUTH)
    username = _host_name(request.username)
    if username is not None:
        results = await db.write_batched_sync(_BATCHER, _Item(request, None, policy, username))
        if results is not _SLOW:
            if throttle is not None and results and results[0].outcome is Outcome.BADAUTH:
                await throttle.failed(throttle.source(request.client_ip))  # a wrong secret
            return results
    grant = await _resolve_credentials(db, request, throttle)
    if grant is None or grant is UNKNOWN_NAME:
        return _answered(request, Outcome.BADAUTH if grant is None else Outcome.NOHOST)
    results = await db.write_batched_sync(_BATCHER, _Item(request, grant, policy))
    assert results is not None
    return results


def _members_for_group(requested: list[str], grant: _Grant) -> list[str]:
    """The group's name in `hostname=` (what a client told the group's name sends) as its
    members, in place, each name once."""
    names: dict[str, None] = {}
    for name in requested:
        # A group of no hosts stays its own name, answered nohost.
        group = _host_name(name) == grant.group and grant.default_names
        for one in grant.default_names if group else (name,):
            names[one] = None
    return list(names)


def _answered(request: UpdateRequest, outcome: Outcome) -> list[HostResult]:
    """The same outcome for every host the request names."""
    return [HostResult(n, outcome) for n in request.hostnames or [request.username]]


def _host_name(text: str) -> str | None:
    """The normalised FQDN in `text`, or None."""
    try:
        name = normalize(text)
    except InvalidName:
        return None
    return name if is_fqdn(name) else None


class _Names(dict[str, str | None]):
    """Host names as requested -> their normalised FQDN (None: not one), each worked out once."""

    def __missing__(self, raw: str) -> str | None:
        name = self[raw] = _host_name(raw)
        return name


@dataclass
class _Batch:
    """The hosts and address RRsets a batch touches, as they become; written at the end."""

    txn: SyncTxn
    names: _Names
    hosts: dict[str, dict[str, Any]]  # by name: the row, with zone_name and min_interval
    stored: dict[tuple[str, str], RRsetValue]  # the hosts' address RRsets as read
    rrsets: dict[tuple[str, str], RRsetValue]  # the same, as the batch's requests leave them
    changes: dict[int, list[tuple[RRsetValue, str, str]]] = field(default_factory=dict)
    dirty: dict[str, set[str]] = field(default_factory=dict)  # host name: columns changed
    regroup: set[int] = field(default_factory=set)  # ids of group members to refresh groups of
    alerts: alerts.Pending = field(default_factory=list)  # outbox rows, written with the batch
    # Prefix hosts, read only for a batch that carries an IPv6 prefix: by router id, each
    # router's stored prefix, the prefixes to keep, and the hosts each router's update moved.
    followers: dict[int, list[prefixes.Follower]] = field(default_factory=dict)
    prefixes: dict[int, str] = field(default_factory=dict)
    new_prefixes: dict[int, str] = field(default_factory=dict)
    moved: dict[str, list[str]] = field(default_factory=dict)

    def set_host(self, name: str, **values: Any) -> None:
        self.set_host_values(name, values)

    def set_host_values(self, name: str, values: dict[str, Any]) -> None:
        """Change the host row's columns in `values`; those that differ are written."""
        row = self.hosts[name]
        changed = [column for column, value in values.items() if row[column] != value]
        if changed:
            row.update(values)
            dirty = self.dirty.get(name)
            if dirty is None:
                self.dirty[name] = set(changed)
            else:
                dirty.update(changed)


class _UpdateBatcher:
    """Every waiting update request in one pass: one read, then set-based writes.

    Synchronous, so on SQLite the writer thread runs it and its commit in one call.
    """

    def run_sync(self, txn: SyncTxn, items: list[_Item]) -> list[list[HostResult] | None]:
        names = _Names()
        wanted: set[str] = set()
        for item in items:
            if item.username is not None:
                names[item.request.username] = item.username  # normalised once, outside
            defaults = item.grant.default_names if item.grant else ()
            for raw in [item.request.username, *(item.request.hostnames or []), *defaults]:
                name = names[raw]
                if name is not None:
                    wanted.add(name)
        found, stored = _load_hosts(txn, wanted)
        batch = _Batch(txn, names, found, stored, dict(stored))
        if any(item.request.addresses.prefix is not None for item in items):
            _load_followers(batch)
        results = [self._one(batch, item) for item in items]
        serials = self._write(batch, items[0].policy)
        return [None if r is None else [_stamped(batch, x, serials) for x in r] for r in results]

    def _one(self, batch: _Batch, item: _Item) -> list[HostResult] | None:
        request = item.request
        grant = item.grant
        if grant is None:
            row = batch.hosts.get(batch.names[request.username] or "")
            if row is None:
                return _SLOW  # perhaps a group or an account: decided outside
            names = request.hostnames if request.hostnames else [request.username]
            if not secret_matches(request.password, row["secret_hash"]):
                _bad_secret(batch, row, request, item.policy)
                return [HostResult(n, Outcome.BADAUTH) for n in names]
            grant = _Grant(frozenset({row["id"]}), (row["name"],))
        requested = request.hostnames
        if requested and grant.group is not None:
            requested = _members_for_group(requested, grant)
        if requested is None:
            if not grant.default_names:
                return [HostResult(request.username, Outcome.NOTFQDN)]
            requested = list(grant.default_names)
        if not requested:
            return [HostResult("", Outcome.NOTFQDN)]
        return [_update_host(batch, name, grant, request, item.policy) for name in requested]

    def _write(self, batch: _Batch, policy: UpdatePolicy) -> dict[str, int]:
        """Write the batch; the last journal serial of each host name that changed."""
        txn = batch.txn
        zone_names = {row["zone_id"]: row["zone_name"] for row in batch.hosts.values()}
        serials: dict[str, int] = {}
        for zone_id, changes in batch.changes.items():
            entries = apply_changes_sync(
                txn,
                ZoneRef(zone_id, zone_names[zone_id]),
                [value for value, _, _ in changes],
                actor=[actor for _, actor, _ in changes],
                via=[via for _, _, via in changes],
                stored=batch.stored,
            )
            serials.update((e.name, e.serial) for e in entries)  # in serial order: the last
            _address_alerts(batch, entries)
        prefixes.remember_sync(txn, batch.new_prefixes)
        # One UPDATE per set of changed columns: mostly one, of the two update times.
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for name in sorted(batch.dirty):
            row = batch.hosts[name]
            columns = tuple(sorted(batch.dirty[name]))
            values = {f"b_{column}": row[column] for column in columns}
            by_columns.setdefault(columns, []).append({"b_id": row["id"], **values})
        for columns, params in by_columns.items():
            execute_many(txn.conn, _host_update(columns), params)
        if batch.alerts:
            txn.conn.execute(sa.insert(outbox), batch.alerts)
        if batch.regroup:
            group_ids = txn.conn.execute(_GROUPS_OF, {"ids": sorted(batch.regroup)})
            for group_id in sorted(r.group_id for r in group_ids):
                refresh_group_sync(txn, group_id, policy.group_member_max_age)
        return serials


def _stamped(batch: _Batch, result: HostResult, serials: dict[str, int]) -> HostResult:
    """A good result with the zone and serial of its change."""
    if result.outcome is not Outcome.GOOD:
        return result
    name = batch.names[result.hostname]
    if name is None:
        return result
    zone = batch.hosts[name]["zone_name"]
    serial = serials.get(name)
    moved = batch.moved.get(name)
    if moved:  # its prefix hosts in its zone: the push waits for their change too
        found = [serials.get(n) for n in moved if batch.hosts[n]["zone_name"] == zone]
        serial = max((s for s in (serial, *found) if s is not None), default=None)
    if serial is None:
        return result  # undone by a later request of the same batch: nothing to push
    return HostResult(result.hostname, result.outcome, result.addresses, zone, serial)


_BATCHER = _UpdateBatcher()

# The host columns an update may change, written back once per batch (those that changed).
_HOST_STATE = (
    "status",
    "last_update_at",
    "last_change_at",
    "last_client_ip",
    "last_via",
    "last_agent",
    "last_result",
    "nochg_count",
    "nochg_window_start",
    "badauth_count",
    "badauth_window_start",
)
# What the batch reads of each host: its identity and secret, and the state above.
_HOST_READ = ("id", "name", "zone_id", "owner_id", "secret_hash", "ttl", *_HOST_STATE)


@functools.lru_cache(maxsize=16)
def _hosts_named(count: int) -> sa.Select[Any]:
    """The batch's one read: each host named with what decides its update, and its A and
    AAAA RRsets (in the host's own zone); the names are `count` parameters n0, n1, ...

    Plain parameters rather than one expanding list, so the statement is compiled once
    per count and runs on the driver (store.db.fetch_all); counts are powers of two."""
    address_sets = {rtype: rrsets.alias(f"rrsets_{rtype.lower()}") for rtype in ADDRESS_TYPES}
    joined = (
        hosts.join(zones, zones.c.id == hosts.c.zone_id)
        .join(accounts, accounts.c.id == hosts.c.owner_id)
        .outerjoin(plans, plans.c.id == accounts.c.plan_id)
        .outerjoin(alert_settings, alert_settings.c.account_id == hosts.c.owner_id)
    )
    for rtype, table in address_sets.items():
        joined = joined.outerjoin(
            table,
            sa.and_(
                table.c.zone_id == hosts.c.zone_id,
                table.c.name == hosts.c.name,
                table.c.rtype == rtype,
            ),
        )
    return (
        sa.select(
            *(hosts.c[column] for column in _HOST_READ),
            zones.c.name.label("zone_name"),
            plans.c.min_interval,
            sa.exists().where(group_members.c.host_id == hosts.c.id).label("grouped"),
            *alerts.HOST_COLUMNS,
            *(
                column.label(f"{rtype}_{column.name}")
                for rtype, table in address_sets.items()
                for column in (table.c.ttl, table.c.rdatas)
            ),
        )
        .select_from(joined)
        .where(hosts.c.name.in_([sa.bindparam(f"n{i}") for i in range(count)]))
    )


_GROUPS_OF = (
    sa.select(group_members.c.group_id)
    .where(group_members.c.host_id.in_(sa.bindparam("ids", expanding=True)))
    .distinct()
)


@functools.lru_cache(maxsize=64)
def _host_update(columns: tuple[str, ...]) -> sa.Update:
    """UPDATE hosts SET (these columns) for one host id, as executemany parameters name them."""
    values: dict[str, Any] = {column: sa.bindparam(f"b_{column}") for column in columns}
    return sa.update(hosts).where(hosts.c.id == sa.bindparam("b_id")).values(values)


def _load_hosts(
    txn: SyncTxn, names: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], RRsetValue]]:
    """The rows of the hosts named (by name), and their A and AAAA RRsets (by name, type)."""
    if not names:
        return {}, {}
    wanted = sorted(names)
    count = 1 << (len(wanted) - 1).bit_length()  # a power of two: few statements to compile
    wanted += wanted[-1:] * (count - len(wanted))  # padded with a name asked already
    keys, rows = fetch_all(
        txn.conn, _hosts_named(count), {f"n{i}": name for i, name in enumerate(wanted)}
    )
    found: dict[str, dict[str, Any]] = {}
    stored: dict[tuple[str, str], RRsetValue] = {}
    for values in rows:
        row = dict(zip(keys, values, strict=True))
        name = row["name"]
        found[name] = row
        for rtype in ADDRESS_TYPES:
            rdatas = row.pop(f"{rtype}_rdatas")
            ttl = row.pop(f"{rtype}_ttl")
            if rdatas is not None:
                stored[(name, rtype)] = RRsetValue(
                    name, rtype, ttl, RRsetValue.decode_rdatas(rdatas)
                )
    return found, stored


def _update_host(
    batch: _Batch, hostname: str, grant: _Grant, request: UpdateRequest, policy: UpdatePolicy
) -> HostResult:
    name = batch.names[hostname]
    if name is None:
        return HostResult(hostname, Outcome.NOTFQDN)
    row = batch.hosts.get(name)
    if row is None or row["id"] not in grant.allowed:
        return HostResult(hostname, Outcome.NOHOST)
    if row["status"] == "blocked":
        return _refused(batch, row, request, Outcome.ABUSE, hostname)
    if row["status"] != "active":
        return _refused(batch, row, request, Outcome.DISABLED, hostname)

    wanted: list[RRsetValue] = []
    ttl = row["ttl"]
    # The request's actions (AddressSet.actions), a type with none staying as it is: the
    # addresses it sets (SetIPs of one address, the common update), then the others.
    for rtype, text in request.addresses.by_type:
        current = batch.rrsets.get((name, rtype))
        if current is None or current.ttl != ttl or current.rdatas != (text,):
            wanted.append(RRsetValue(name, rtype, ttl, (text,)))
    for rtype, action in request.addresses.others:
        current = batch.rrsets.get((name, rtype))
        rdatas = action.records(() if current is None else current.rdatas)
        if current is None:
            if rdatas:
                wanted.append(RRsetValue(name, rtype, ttl, rdatas))
        elif rdatas != current.rdatas or (rdatas and current.ttl != ttl):
            wanted.append(RRsetValue(name, rtype, ttl, rdatas))
    prefix = request.addresses.prefix
    moves: list[RRsetValue] = []
    if prefix is not None:  # a router's prefix: its prefix hosts move with its update
        followers = batch.followers.get(row["id"], ())
        moves = prefixes.moves(prefix, followers, row, batch.hosts, batch.rrsets)

    now = batch.txn.now
    seen = {
        "last_update_at": now,
        "last_client_ip": request.client_ip[:45],
        "last_via": request.via,
        "last_agent": request.agent[:255],
    }
    if not wanted and not moves:
        if prefix is not None:
            _remember_prefix(batch, row, prefix)
        return _nochg(batch, row, request, policy, hostname, seen)
    min_interval = row["min_interval"]
    if min_interval:
        last_change = as_utc(row["last_change_at"])
        if last_change is not None and now - last_change < timedelta(seconds=min_interval):
            return _refused(batch, row, request, Outcome.TOO_SOON, hostname)
    actor = _actor(request)
    changes = batch.changes.setdefault(row["zone_id"], [])
    for value in wanted:
        batch.rrsets[(name, value.rtype)] = value
        changes.append((value, actor, request.via))
    if prefix is not None:
        _remember_prefix(batch, row, prefix)
        _move_followers(batch, name, moves, actor, request.via)
    seen.update(_GOOD_STATE, last_change_at=now)
    batch.set_host_values(name, seen)
    if row["grouped"]:
        batch.regroup.add(row["id"])
    return HostResult(hostname, Outcome.GOOD, request.addresses)


# What a change leaves in its host's row besides the times and the client.
_GOOD_STATE = {"last_result": Outcome.GOOD.name, "nochg_count": 0, "nochg_window_start": None}


def _nochg(
    batch: _Batch,
    row: dict[str, Any],
    request: UpdateRequest,
    policy: UpdatePolicy,
    hostname: str,
    seen: dict[str, Any],
) -> HostResult:
    """Unchanged address: answered nochg, counted; past the limit in the window, blocked."""
    count, window_start = _counted(batch, row, "nochg", policy.abuse_window)
    blocked = count > policy.abuse_nochg_limit
    outcome = Outcome.ABUSE if blocked else Outcome.NOCHG
    batch.set_host(
        row["name"],
        **seen,
        status="blocked" if blocked else row["status"],
        nochg_count=count,
        nochg_window_start=window_start,
        last_result=outcome.name,
    )
    if row["grouped"]:
        batch.regroup.add(row["id"])  # a nochg keeps a member alive; a block removes it
    if blocked:
        details = {"client_ip": request.client_ip, "nochg_count": count}
        alerts.queue(batch.alerts, row, HOST_BLOCKED, row["name"], details, batch.txn.now)
        return HostResult(hostname, Outcome.ABUSE)
    return HostResult(hostname, Outcome.NOCHG, request.addresses)


def _load_followers(batch: _Batch) -> None:
    """Read the prefix hosts of the batch's hosts, with their rows and AAAA RRsets."""
    ids = [row["id"] for row in batch.hosts.values()]
    batch.followers, batch.prefixes = prefixes.followers_sync(batch.txn, ids)
    names = {f.name for found in batch.followers.values() for f in found} - batch.hosts.keys()
    found, stored = _load_hosts(batch.txn, names)
    batch.hosts.update(found)
    batch.stored.update(stored)
    batch.rrsets.update(stored)


def _move_followers(
    batch: _Batch, router: str, moves: list[RRsetValue], actor: str, via: str
) -> None:
    """Queue the prefix hosts' new AAAA RRsets with the router's change."""
    for value in moves:
        follower_row = batch.hosts[value.name]
        batch.rrsets[(value.name, "AAAA")] = value
        batch.changes.setdefault(follower_row["zone_id"], []).append((value, actor, via))
        batch.set_host(value.name, last_change_at=batch.txn.now)
        if follower_row["grouped"]:
            batch.regroup.add(follower_row["id"])
    batch.moved.setdefault(router, []).extend(value.name for value in moves)


def _remember_prefix(batch: _Batch, row: dict[str, Any], prefix: IPv6Network) -> None:
    text = str(prefix)
    if batch.prefixes.get(row["id"]) != text:
        batch.prefixes[row["id"]] = batch.new_prefixes[row["id"]] = text


def _counted(batch: _Batch, row: dict[str, Any], counter: str, window: int) -> tuple[int, Any]:
    """The host's `counter` plus one, and its window's start (a new window after `window` s)."""
    now = batch.txn.now
    window_start = as_utc(row[f"{counter}_window_start"])
    count = row[f"{counter}_count"]
    if window_start is None or now - window_start > timedelta(seconds=window):
        window_start, count = now, 0
    return count + 1, window_start


def _bad_secret(
    batch: _Batch, row: dict[str, Any], request: UpdateRequest, policy: UpdatePolicy
) -> None:
    """Count a wrong secret; the count reaching the limit within the window alerts once."""
    count, window_start = _counted(batch, row, "badauth", policy.badauth_window)
    batch.set_host(row["name"], badauth_count=count, badauth_window_start=window_start)
    if count == policy.badauth_limit:
        details = {
            "count": count,
            "window_seconds": policy.badauth_window,
            "client_ip": request.client_ip,
        }
        alerts.queue(batch.alerts, row, AUTH_FAILURES, row["name"], details, batch.txn.now)


def _address_alerts(batch: _Batch, entries: list[JournalEntry]) -> None:
    """One address.changed per host whose A or AAAA the journal shows changed."""
    changed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not alerts.channels_for(batch.hosts[entry.name], ADDRESS_CHANGED):
            continue  # its owner wants no word of it (the common case): nothing to build
        found = changed.setdefault(entry.name, {"old": [], "new": [], "via": entry.via})
        found["old"].extend(entry.old)
        found["new"].extend(entry.new)
    for name, details in changed.items():
        alerts.queue(batch.alerts, batch.hosts[name], ADDRESS_CHANGED, name, details, batch.txn.now)


def _refused(
    batch: _Batch, row: dict[str, Any], request: UpdateRequest, outcome: Outcome, hostname: str
) -> HostResult:
    """Remember a refused request's result for the status screen; nothing else changes."""
    batch.set_host(row["name"], last_result=outcome.name, last_client_ip=request.client_ip[:45])
    return HostResult(hostname, outcome)


def _actor(request: UpdateRequest) -> str:
    return f"{request.username[:64]}@{request.client_ip}"


def source_addresses(client_ip: str, *, allow_local: bool = False) -> AddressSet:
    """The request's own source address, used when no address is given; it meets the same
    rules as a given one (a link-local peer comes with a scope ID, and a loopback peer is
    most often a proxy whose address is not the client's)."""
    return AddressSet.of(parse_address(client_ip, allow_local=allow_local))
