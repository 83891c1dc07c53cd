"""Bulk loading: a standard zone file, or a CSV of hosts from another provider."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.name
import dns.rdatatype
import dns.zone
import sqlalchemy as sa

from homing.domain.addresses import parse_address
from homing.domain.delegations import check_cuts, topmost_cut
from homing.domain.errors import HomingError, InvalidAddress, InvalidName, NotFound
from homing.domain.names import is_fqdn, normalize, zone_for
from homing.domain.records import DEFAULT_HOST_TTL, RRsetValue
from homing.service.accounts import find_account
from homing.service.changes import ZoneRef, apply_changes
from homing.service.secrets import hash_secret, new_secret
from homing.service.zones import zone_refs
from homing.store.db import Database, Txn
from homing.store.schema import hosts, zones

HOST_TYPES = ("A", "AAAA")
SERIAL_SPACE = 2**32  # SOA serials are compared in this space (RFC 1982)
_LARGEST_STEP = 2**31 - 1  # the largest increment RFC 1982 allows in one step


@dataclass
class ImportResult:
    rrsets: int = 0
    hosts: int = 0
    delegations: int = 0  # zone cuts (NS below the apex) in a zone file
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (host, new secret), shown once


def _plain(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def serial_for_import(stored: int | None, file_serial: int) -> int | None:
    """The stored serial a zone takes before a zone file whose SOA serial is `file_serial`
    is imported into it; None: keep `stored`, already after the file's (RFC 1982).

    One past the file's: a zone moved here from another primary keeps its secondaries,
    which hold the file's version and see a newer serial, never an older one. Nothing in
    the journal leads to that serial, so an IXFR from the file's asks for what the journal
    cannot say and gets the whole zone (AXFR): the secondary's copy is replaced, not added
    to. `stored` is the zone's serial (None: a new zone); the store's serial grows without
    bound and is served modulo 2**32.
    """
    if stored is None:
        return file_serial + 1
    step = (file_serial + 1 - stored) % SERIAL_SPACE
    if step == 0 or step > 2**31:  # there already, or after it
        return None
    return stored + min(step, _LARGEST_STEP)


def read_zone_file(zone_name: str, path: Path) -> tuple[dns.zone.Zone, list[RRsetValue]]:
    """Parse a master file; every RRset except the SOA (homing keeps its own)."""
    try:
        zone = dns.zone.from_file(str(path), origin=zone_name, relativize=False, check_origin=False)
    except (OSError, dns.exception.DNSException) as exc:
        raise HomingError(f"cannot read zone file {path}: {exc}") from exc
    values = []
    for name, node in zone.nodes.items():
        for rdataset in node.rdatasets:
            if rdataset.rdtype == dns.rdatatype.SOA:
                continue
            values.append(
                RRsetValue(
                    _plain(name),
                    dns.rdatatype.to_text(rdataset.rdtype),
                    rdataset.ttl,
                    tuple(sorted(rdata.to_text() for rdata in rdataset)),
                )
            )
    return zone, values


async def import_zone(
    db: Database, zone_name: str, path: Path, *, owner: str | None = None
) -> ImportResult:
    """Load a zone file, creating the zone if absent; with `owner`, A/AAAA names become hosts.

    The zone's serial moves past the file's SOA serial (`serial_for_import`)."""
    name = normalize(zone_name)
    parsed, values = read_zone_file(name, path)
    cuts = check_cuts(name, values)  # before anything is stored: a refusal changes nothing
    soa = parsed.get_rdataset(parsed.origin, dns.rdatatype.SOA) if parsed.origin else None

    async def unit(txn: Txn) -> ImportResult:
        conn = txn.conn
        row = (
            await conn.execute(
                sa.select(zones.c.id, zones.c.serial, zones.c.primary_target).where(
                    zones.c.name == name
                )
            )
        ).first()
        zone_id = None if row is None else row.id
        if row is not None and soa and row.primary_target is None:
            serial = serial_for_import(row.serial, soa[0].serial)
            if serial is not None:
                moved = sa.update(zones).where(zones.c.id == row.id).values(serial=serial)
                await conn.execute(moved)
        if zone_id is None:
            timers: dict[str, object] = {"mname": f"ns1.{name}", "rname": f"hostmaster.{name}"}
            if soa:
                rdata = soa[0]
                timers = {
                    "mname": _plain(rdata.mname),
                    "rname": _plain(rdata.rname),
                    "refresh": rdata.refresh,
                    "retry": rdata.retry,
                    "expire": rdata.expire,
                    "minimum": rdata.minimum,
                    "soa_ttl": soa.ttl,
                }
            zone_id = (
                await conn.execute(
                    sa.insert(zones)
                    .values(
                        name=name,
                        serial=0 if not soa else serial_for_import(None, soa[0].serial),
                        public=False,
                        created_at=txn.now,
                        **timers,
                    )
                    .returning(zones.c.id)
                )
            ).scalar_one()
        zone = ZoneRef(zone_id, name)
        result = ImportResult(delegations=len(cuts))
        result.rrsets = len(await apply_changes(txn, zone, values, actor="import", via="import"))
        if owner is not None:
            host_names = sorted(
                {
                    v.name
                    for v in values
                    if v.rtype in HOST_TYPES
                    and v.name != name
                    and topmost_cut(v.name, name, cuts) is None  # glue is no user's host
                }
            )
            ttls = {v.name: v.ttl for v in values if v.rtype in HOST_TYPES}
            await _insert_hosts(txn, owner, zone, host_names, ttls, result)
        return result

    return await db.write(unit)


async def _insert_hosts(
    txn: Txn,
    owner: str,
    zone: ZoneRef,
    names: list[str],
    ttls: dict[str, int],
    result: ImportResult,
    given_secrets: dict[str, str] | None = None,
) -> None:
    account = await find_account(txn.conn, owner)
    if account is None:
        raise NotFound(f"no user {owner}")
    existing = {
        r.name
        for r in await txn.conn.execute(sa.select(hosts.c.name).where(hosts.c.zone_id == zone.id))
    }
    rows = []
    for host in names:
        if host in existing:
            continue
        secret = (given_secrets or {}).get(host) or new_secret()
        if not (given_secrets or {}).get(host):
            result.secrets.append((host, secret))
        rows.append(
            {
                "name": host,
                "zone_id": zone.id,
                "owner_id": account.id,
                "secret_hash": hash_secret(secret),
                "ttl": ttls.get(host, DEFAULT_HOST_TTL),
                "status": "active",
                "nochg_count": 0,
                "created_at": txn.now,
            }
        )
    if rows:
        await txn.conn.execute(sa.insert(hosts), rows)
    result.hosts += len(rows)


async def import_hosts(
    db: Database, text: str, *, default_owner: str | None = None, allow_local: bool = False
) -> ImportResult:
    """CSV with a header: name[,owner][,ipv4][,ipv6][,ttl][,secret]. Missing secrets are made.

    Addresses meet the publishing rules of every update (domain/addresses.py; `allow_local`:
    the operator's setting); one that does not stops the import with its line, nothing stored.
    """
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "name" not in reader.fieldnames:
        raise HomingError("the CSV needs a header line with at least a 'name' column")
    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            name = normalize(row["name"] or "")
            if not is_fqdn(name):
                raise InvalidName(row["name"])
            owner = (row.get("owner") or default_owner or "").strip()
            if not owner:
                raise HomingError("no owner (give an owner column or --owner)")
            ttl = int(row.get("ttl") or DEFAULT_HOST_TTL)
            if not 1 <= ttl <= 86400:
                raise HomingError(f"TTL out of range: {ttl}")
            v4 = parse_address(row["ipv4"], allow_local=allow_local) if row.get("ipv4") else None
            v6 = parse_address(row["ipv6"], allow_local=allow_local) if row.get("ipv6") else None
            if (v4 and v4.version != 4) or (v6 and v6.version != 6):
                raise InvalidAddress("address of the wrong family")
        except (HomingError, ValueError) as exc:
            raise HomingError(f"line {line}: {exc}") from exc
        rows.append((name, owner, ttl, v4, v6, (row.get("secret") or "").strip()))

    async def unit(txn: Txn) -> ImportResult:
        refs = await zone_refs(txn.conn)
        by_zone: dict[tuple[str, str], list[tuple[str, int, object, object, str]]] = defaultdict(
            list
        )
        for name, owner, ttl, v4, v6, secret in rows:
            zone_name = zone_for(name, frozenset(refs))
            if zone_name is None or zone_name == name:
                raise NotFound(f"{name} is not in a zone served here")
            by_zone[(zone_name, owner)].append((name, ttl, v4, v6, secret))
        result = ImportResult()
        for (zone_name, owner), items in by_zone.items():
            zone = refs[zone_name]
            values = [
                RRsetValue(name, rtype, ttl, (str(address),))
                for name, ttl, v4, v6, _ in items
                for rtype, address in (("A", v4), ("AAAA", v6))
                if address is not None
            ]
            result.rrsets += len(
                await apply_changes(txn, zone, values, actor="import", via="import")
            )
            ttls = {name: ttl for name, ttl, *_ in items}
            given = {name: secret for name, _, _, _, secret in items if secret}
            await _insert_hosts(txn, owner, zone, [i[0] for i in items], ttls, result, given)
        return result

    return await db.write(unit)
