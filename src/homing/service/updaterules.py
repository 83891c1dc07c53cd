"""The dyndns2 rules of one update, as the batch applies them to its hosts.

Per request (`decide`): the host's own secret (when the batch is to check it), then the
names it stands for. Per host name (`update_host`): syntax, ownership, status,
unchanged (nochg, counted toward abuse), minimum interval, change. Every rule reads and
changes the batch's copy of the rows (`Batch`); the batch writes what changed once, at
the end (service/updatebatch.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv6Network
from typing import Any

from homing.domain.notifications import ADDRESS_CHANGED, AUTH_FAILURES, HOST_BLOCKED
from homing.domain.outcomes import Outcome
from homing.domain.records import JournalEntry, RRsetValue
from homing.service import alerts, prefixes
from homing.service.secrets import secret_matches
from homing.service.updatetypes import Grant, HostResult, UpdatePolicy, UpdateRequest, host_name
from homing.store.db import SyncTxn, as_utc

SLOW = None  # the batch could not decide the credentials: resolve them outside


@dataclass
class Item:
    """One update request as the batch sees it; `grant` None: check a host secret in the batch."""

    request: UpdateRequest
    grant: Grant | None
    policy: UpdatePolicy
    username: str | None = None  # the user name as a host name (FQDN), when worked out


class Names(dict[str, str | None]):
    """Host names as requested -> their normalised FQDN (None: not one), each worked out once."""

    def __missing__(self, raw: str) -> str | None:
        name = self[raw] = host_name(raw)
        return name


@dataclass
class Batch:
    """The hosts and address RRsets a batch touches, as they become; written at the end."""

    txn: SyncTxn
    names: Names
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


def decide(batch: Batch, item: Item) -> list[HostResult] | None:
    """One request's results; SLOW when its user name is no host the batch read."""
    request = item.request
    grant = item.grant
    if grant is None:
        row = batch.hosts.get(batch.names[request.username] or "")
        if row is None:
            return SLOW  # perhaps a group or an account: decided outside
        names = request.hostnames if request.hostnames else [request.username]
        if not secret_matches(request.password, row["secret_hash"]):
            _bad_secret(batch, row, request, item.policy)
            return [HostResult(n, Outcome.BADAUTH) for n in names]
        grant = Grant(frozenset({row["id"]}), (row["name"],))
    requested = request.hostnames
    if requested and grant.group is not None:
        requested = _members_for_group(requested, grant)
    if requested is None:
        if not grant.default_names:
            return [HostResult(request.username, Outcome.NOTFQDN)]
        requested = list(grant.default_names)
    if not requested:
        return [HostResult("", Outcome.NOTFQDN)]
    return [update_host(batch, name, grant, request, item.policy) for name in requested]


def _members_for_group(requested: list[str], grant: Grant) -> list[str]:
    """The group's name in `hostname=` (what a client told the group's name sends) as its
    members, in place, each name once."""
    names: dict[str, None] = {}
    for name in requested:
        # A group of no hosts stays its own name, answered nohost.
        group = host_name(name) == grant.group and grant.default_names
        for one in grant.default_names if group else (name,):
            names[one] = None
    return list(names)


def update_host(
    batch: Batch, hostname: str, grant: Grant, request: UpdateRequest, policy: UpdatePolicy
) -> HostResult:
    """One host name of a request: refused, nochg, or its new RRsets queued in the batch."""
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
    batch: Batch,
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


def _move_followers(
    batch: Batch, router: str, moves: list[RRsetValue], actor: str, via: str
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


def _remember_prefix(batch: Batch, row: dict[str, Any], prefix: IPv6Network) -> None:
    text = str(prefix)
    if batch.prefixes.get(row["id"]) != text:
        batch.prefixes[row["id"]] = batch.new_prefixes[row["id"]] = text


def _counted(batch: Batch, row: dict[str, Any], counter: str, window: int) -> tuple[int, Any]:
    """The host's `counter` plus one, and its window's start (a new window after `window` s)."""
    now = batch.txn.now
    window_start = as_utc(row[f"{counter}_window_start"])
    count = row[f"{counter}_count"]
    if window_start is None or now - window_start > timedelta(seconds=window):
        window_start, count = now, 0
    return count + 1, window_start


def _bad_secret(
    batch: Batch, row: dict[str, Any], request: UpdateRequest, policy: UpdatePolicy
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


def address_alerts(batch: Batch, entries: list[JournalEntry]) -> None:
    """One address.changed per host whose A or AAAA the journal shows changed."""
    changed: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.rtype not in ("A", "AAAA"):
            continue  # a signed zone's RRSIG and NSEC3 records, written beside them
        if not alerts.channels_for(batch.hosts[entry.name], ADDRESS_CHANGED):
            continue  # its owner wants no word of it (the common case): nothing to build
        found = changed.setdefault(entry.name, {"old": [], "new": [], "via": entry.via})
        found["old"].extend(entry.old)
        found["new"].extend(entry.new)
    for name, details in changed.items():
        alerts.queue(batch.alerts, batch.hosts[name], ADDRESS_CHANGED, name, details, batch.txn.now)


def _refused(
    batch: Batch, row: dict[str, Any], request: UpdateRequest, outcome: Outcome, hostname: str
) -> HostResult:
    """Remember a refused request's result for the status screen; nothing else changes."""
    batch.set_host(row["name"], last_result=outcome.name, last_client_ip=request.client_ip[:45])
    return HostResult(hostname, outcome)


def _actor(request: UpdateRequest) -> str:
    return f"{request.username[:64]}@{request.client_ip}"
