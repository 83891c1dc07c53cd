"""The update batch: every waiting update request in one transaction.

One read of every host the requests name (`_hosts_named`), the rules of each request
applied in order to that copy (service/updaterules.py), then set-based writes: the
RRset changes and their journal rows through `apply_changes_sync`, the host rows,
alerts and groups. The commit's journal entries then reach the zone index through the
store's commit hook (`Database.on_commit`, where `service.journal.Follower.committed`
applies them), before any caller hears `good`.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from homing.domain.outcomes import Outcome
from homing.domain.records import RRsetValue
from homing.service import alerts, prefixes
from homing.service.changes import ZoneRef, apply_changes_sync
from homing.service.hosts import ADDRESS_TYPES, refresh_group_sync
from homing.service.updaterules import Batch, Item, Names, address_alerts, decide
from homing.service.updatetypes import HostResult, UpdatePolicy
from homing.store.db import SyncTxn
from homing.store.schema import (
    accounts,
    alert_settings,
    group_members,
    hosts,
    outbox,
    plans,
    rrsets,
    zones,
)
from homing.store.statements import execute_many, fetch_all


class UpdateBatcher:
    """Every waiting update request in one pass: one read, then set-based writes.

    Synchronous, so on SQLite the writer thread runs it and its commit in one call.
    """

    def run_sync(self, txn: SyncTxn, items: list[Item]) -> list[list[HostResult] | None]:
        names = Names()
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
        batch = Batch(txn, names, found, stored, dict(stored))
        if any(item.request.addresses.prefix is not None for item in items):
            _load_followers(batch)
        results = [decide(batch, item) for item in items]
        serials = _write(batch, items[0].policy)
        return [None if r is None else [_stamped(batch, x, serials) for x in r] for r in results]


BATCHER = UpdateBatcher()


def _write(batch: Batch, policy: UpdatePolicy) -> dict[str, int]:
    """Write the batch; the last journal serial of each host name that changed."""
    txn = batch.txn
    # The host rows first (locked by the read on PostgreSQL already): a zone's serial,
    # which every writer of the zone waits for, is taken as late as possible.
    _write_hosts(batch)
    zone_names = {row["zone_id"]: row["zone_name"] for row in batch.hosts.values()}
    signed = {row["zone_id"] for row in batch.hosts.values() if row["zone_signed"]}
    serials: dict[str, int] = {}
    # Zones in id order and RRsets in name order (a name's later values after its earlier
    # ones): concurrent writers, here and on other nodes, lock rows in one order.
    for zone_id in sorted(batch.changes):
        changes = sorted(batch.changes[zone_id], key=_rrset_key)
        entries = apply_changes_sync(
            txn,
            ZoneRef(zone_id, zone_names[zone_id]),
            [value for value, _, _ in changes],
            actor=[actor for _, actor, _ in changes],
            via=[via for _, _, via in changes],
            stored=batch.stored,
            unsigned=zone_id not in signed,
        )
        serials.update((e.name, e.serial) for e in entries)  # in serial order: the last
        address_alerts(batch, entries)
    prefixes.remember_sync(txn, batch.new_prefixes)
    if batch.alerts:
        txn.conn.execute(sa.insert(outbox), batch.alerts)
    if batch.regroup:
        group_ids = txn.conn.execute(_GROUPS_OF, {"ids": sorted(batch.regroup)})
        for group_id in sorted(r.group_id for r in group_ids):
            refresh_group_sync(txn, group_id, policy.group_member_max_age)
    return serials


def _write_hosts(batch: Batch) -> None:
    """The host columns the batch changed: one UPDATE per set of changed columns (mostly
    one, of the two update times)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for name in sorted(batch.dirty):
        row = batch.hosts[name]
        columns = tuple(sorted(batch.dirty[name]))
        values = {f"b_{column}": row[column] for column in columns}
        by_columns.setdefault(columns, []).append({"b_id": row["id"], **values})
    for columns, params in by_columns.items():
        execute_many(batch.txn.conn, _host_update(columns), params)


def _rrset_key(change: tuple[RRsetValue, str, str]) -> tuple[str, str]:
    return change[0].name, change[0].rtype


def _stamped(batch: Batch, result: HostResult, serials: dict[str, int]) -> HostResult:
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


@functools.lru_cache(maxsize=32)
def _hosts_named(count: int, locking: bool = False) -> sa.Select[Any]:
    """The batch's one read: each host named with what decides its update, and its A and
    AAAA RRsets (in the host's own zone); the names are `count` parameters n0, n1, ...

    `locking` (PostgreSQL): the read also locks the named hosts' rows, in name order, and
    says of each row whether it is the version locked (`fresh`). Another transaction
    writing one of them (a batch in flight beside this one, or another node's) commits
    first; the lock then holds its version of the row, newer than the one this
    statement's snapshot read, and the read is made again (`_load_hosts`). Every
    transaction that takes these locks and changes a host's addresses writes its row
    too (an update batch sets its last change), so a row the read saw as locked shows
    every change it waited for.

    Plain parameters rather than one expanding list, so the statement is compiled once
    per count and runs on the driver (store.statements.fetch_all); counts are powers of two."""
    named = hosts.c.name.in_([sa.bindparam(f"n{i}") for i in range(count)])
    address_sets = {rtype: rrsets.alias(f"rrsets_{rtype.lower()}") for rtype in ADDRESS_TYPES}
    joined: sa.FromClause = hosts
    columns: list[Any] = []
    if locking:
        # The transaction that wrote the row version.
        version = sa.literal_column("hosts.xmin::text", sa.Text)
        locked = (
            sa.select(hosts.c.id, version.label("version"))
            .where(named)
            .order_by(hosts.c.name)
            .with_for_update()
            .cte("locked")
            .prefix_with("MATERIALIZED")
        )
        joined = locked.join(hosts, hosts.c.id == locked.c.id)
        columns.append((version == locked.c.version).label("fresh"))
    joined = (
        joined.join(zones, zones.c.id == hosts.c.zone_id)
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
            # Whether the host's zone is signed: an unsigned zone's change then needs no
            # read of its keys, which would be a round trip of its own on PostgreSQL.
            zones.c.signed.label("zone_signed"),
            *alerts.HOST_COLUMNS,
            *(
                column.label(f"{rtype}_{column.name}")
                for rtype, table in address_sets.items()
                for column in (table.c.ttl, table.c.rdatas)
            ),
            *columns,
        )
        .select_from(joined)
        .where(named)
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
    parameters = {f"n{i}": name for i, name in enumerate(wanted)}
    locking = txn.conn.dialect.name == "postgresql"
    keys, rows = fetch_all(txn.conn, _hosts_named(count, locking), parameters)
    if locking and not all(values[-1] for values in rows):  # it waited for another's commit
        keys, rows = fetch_all(txn.conn, _hosts_named(count), parameters)
    found: dict[str, dict[str, Any]] = {}
    stored: dict[tuple[str, str], RRsetValue] = {}
    for values in rows:
        row = dict(zip(keys, values, strict=True))
        row.pop("fresh", None)
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


def _load_followers(batch: Batch) -> None:
    """Read the prefix hosts of the batch's hosts, with their rows and AAAA RRsets."""
    ids = [row["id"] for row in batch.hosts.values()]
    batch.followers, batch.prefixes = prefixes.followers_sync(batch.txn, ids)
    names = {f.name for found in batch.followers.values() for f in found} - batch.hosts.keys()
    found, stored = _load_hosts(batch.txn, names)
    batch.hosts.update(found)
    batch.stored.update(stored)
    batch.rrsets.update(stored)
