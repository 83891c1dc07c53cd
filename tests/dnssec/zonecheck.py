"""Checks of a signed zone as the store holds it: every signature valid, the NSEC3 chain
complete and in order, and the verdict of ldns-verify-zone on the same zone file."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset
import dns.zone
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.service.journal import load_zone
from homing.store.db import Database
from homing.store.schema import zones
from tests import peers


async def zone_text(db: Database, name: str) -> str:
    """The zone as a zone file: the SOA homing serves, then every stored RRset."""

    async def read(conn: AsyncConnection) -> str:
        zone_id = await conn.scalar(sa.select(zones.c.id).where(zones.c.name == name))
        meta, serial, values = await load_zone(conn, zone_id)
        lines = [
            f"{name}. {meta.soa_ttl} IN SOA {meta.mname.rstrip('.')}. {meta.rname.rstrip('.')}."
            f" {serial}"
            f" {meta.refresh} {meta.retry} {meta.expire} {meta.minimum}"
        ]
        for value in values:
            lines += [f"{value.name}. {value.ttl} IN {value.rtype} {r}" for r in value.rdatas]
        return "\n".join(lines) + "\n"

    return await db.read(read)


def check_signed(text: str, origin: str) -> dns.zone.Zone:
    """Every RRset signed and valid, no signature for data below a cut, the NSEC3 chain
    covering exactly the zone's names (empty non-terminals included), in hash order."""
    zone = dns.zone.from_text(text, origin, relativize=False, check_origin=True)
    apex = zone.origin
    assert apex is not None
    keys = {apex: zone.find_rdataset(apex, "DNSKEY")}
    cuts = {
        n for n, node in zone.nodes.items() if n != apex and node.get_rdataset(1, dns.rdatatype.NS)
    }
    names: set[dns.name.Name] = set()
    for name, node in zone.nodes.items():
        below = any(name != c and name.is_subdomain(c) for c in cuts)
        types = {r.rdtype for r in node}
        hashed = types <= {dns.rdatatype.NSEC3, dns.rdatatype.RRSIG}
        if hashed and dns.rdatatype.NSEC3 in types and len(name) == len(apex) + 1:
            continue  # a hashed owner
        if not below:
            names.add(name)
            parent = name.parent()
            while parent != apex and parent.is_subdomain(apex):
                names.add(parent)
                parent = parent.parent()
        for rdataset in node:
            if rdataset.rdtype == dns.rdatatype.RRSIG:
                continue
            unsigned = below or (name in cuts and rdataset.rdtype != dns.rdatatype.DS)
            sigs = node.get_rdataset(1, dns.rdatatype.RRSIG, rdataset.rdtype)
            mine = list(sigs) if sigs is not None else []
            if unsigned:
                assert not mine, f"{name} {rdataset.rdtype!r} is signed below or at a cut"
                continue
            assert mine, f"{name} {rdataset.rdtype!r} unsigned"
            rrsigs = dns.rrset.from_rdata_list(name, rdataset.ttl, mine)
            rrset = dns.rrset.from_rdata_list(name, rdataset.ttl, rdataset)
            dns.dnssec.validate(rrset, rrsigs, keys)
    hashes = sorted(dns.dnssec.nsec3_hash(n, None, 0, 1).lower() for n in names)
    chain = {}
    for name, node in zone.nodes.items():
        nsec3 = node.get_rdataset(1, dns.rdatatype.NSEC3)
        if nsec3 is not None:
            (record,) = list(nsec3)
            chain[name.labels[0].decode()] = record
    assert sorted(chain) == hashes, "the NSEC3 chain names the zone's names, no more, no fewer"
    for i, h in enumerate(hashes):
        following = hashes[(i + 1) % len(hashes)]
        assert _b32hex(chain[h].next) == following, f"{h} points elsewhere than {following}"
    return zone


def _b32hex(raw: bytes) -> str:
    table = bytes.maketrans(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHIJKLMNOPQRSTUV"
    )
    return base64.b32encode(raw).translate(table).decode().lower()


def ldns_verify(text: str, tmp: Path) -> None:
    """ldns-verify-zone accepts the zone file (a skip without it, unless peers are required)."""
    program = peers.program("ldns-verify-zone")
    path = tmp / "signed.zone"
    path.write_text(text)
    command = [program, "-V", "2", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
