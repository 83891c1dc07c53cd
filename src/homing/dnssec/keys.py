"""A signed zone's keys: made with `cryptography`, kept in the store, read as DNSKEY/DS records."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dns.dnssec
import dns.dnssectypes
import dns.name
import dns.rdtypes.ANY.DNSKEY
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from homing.domain.errors import HomingError
from homing.domain.records import RRsetValue
from homing.store.schema import dnssec_keys, rrsets, zones
from homing.store.statements import fetch_all

# The algorithms offered, by the names the CLI takes (RFC 8624: both MUST be validated).
ALGORITHMS = {"ecdsap256sha256": 13, "ed25519": 15}
DEFAULT_ALGORITHM = "ecdsap256sha256"
ROLES = ("csk", "ksk", "zsk")
# The states a key goes through: in the DNSKEY RRset before it signs, and after it stopped.
PUBLISHED, ACTIVE, RETIRED = "published", "active", "retired"
# The DNSKEY, CDS and CDNSKEY RRsets have the zone's SOA TTL (as Knot's dnskey-ttl), at
# most this: how long resolvers may keep a key decides how soon a key may stop signing.
DNSKEY_TTL = 3600
# RFC 8078 section 4: the CDS and CDNSKEY records that ask the parent to remove its DS.
CDS_DELETE = "0 0 0 00"
CDNSKEY_DELETE = "0 3 0 AA=="
_SEP = 257  # the Secure Entry Point flag set: a key the parent's DS points at
_ZONE = 256


class DnssecError(HomingError):
    """A DNSSEC request that cannot be done as asked (an unknown algorithm, an unsigned zone)."""


@dataclass(frozen=True)
class ZoneKey:
    """One key of a zone, parsed: its role, state and the DNSKEY record it publishes."""

    id: int
    role: str
    algorithm: int
    state: str
    private: Any  # a cryptography private key
    dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY
    changed_at: datetime

    @property
    def entry(self) -> bool:
        """Whether the parent's DS points at this key (a CSK or KSK)."""
        return self.role != "zsk"

    @property
    def signs_keys(self) -> bool:
        """Whether it signs the DNSKEY, CDS and CDNSKEY RRsets."""
        return self.entry and self.state == ACTIVE

    @property
    def signs_zone(self) -> bool:
        """Whether it signs every other RRset."""
        return self.role != "ksk" and self.state == ACTIVE

    @property
    def tag(self) -> int:
        return int(dns.dnssec.key_id(self.dnskey))


def algorithm_number(name: str) -> int:
    """The algorithm number of a CLI name; an unknown name is refused with the known ones."""
    number = ALGORITHMS.get(name.lower())
    if number is None:
        raise DnssecError(f"unknown DNSSEC algorithm {name!r}: one of {', '.join(ALGORITHMS)}")
    return number


def generate(algorithm: int) -> str:
    """A new private key of `algorithm`, as PKCS#8 PEM text."""
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == 13:
        key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == 15:
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise DnssecError(f"DNSSEC algorithm {algorithm} is not offered")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


@functools.lru_cache(maxsize=256)
def _parsed(pem: str, algorithm: int, flags: int) -> tuple[Any, dns.rdtypes.ANY.DNSKEY.DNSKEY]:
    """The private key and its DNSKEY; parsing PEM costs more than a signature, so once."""
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    dnskey = dns.dnssec.make_dnskey(private.public_key(), algorithm, flags)  # type: ignore[arg-type]
    return private, dnskey


_ZONE_KEYS = (
    sa.select(dnssec_keys)
    .where(dnssec_keys.c.zone_id == sa.bindparam("zone_id"))
    .order_by(dnssec_keys.c.id)
)


def zone_keys_sync(conn: sa.Connection, zone_id: int) -> list[ZoneKey]:
    """The zone's keys, oldest first; none: the zone is not signed. Every change asks
    (homing.dnssec.changes), so the statement goes the driver's path (fetch_all)."""
    columns, rows = fetch_all(conn, _ZONE_KEYS, {"zone_id": zone_id})
    return [_key(dict(zip(columns, row, strict=True))) for row in rows]


def _key(row: dict[str, Any]) -> ZoneKey:
    return parsed_key(
        row["id"],
        row["role"],
        row["algorithm"],
        row["state"],
        row["private_key"],
        row["changed_at"],
    )


def parsed_key(
    key_id: int, role: str, algorithm: int, state: str, pem: str, changed_at: datetime
) -> ZoneKey:
    """A key from its stored form."""
    private, dnskey = _parsed(pem, algorithm, _ZONE if role == "zsk" else _SEP)
    return ZoneKey(key_id, role, algorithm, state, private, dnskey, changed_at)


def add_key_sync(
    conn: sa.Connection,
    zone_id: int,
    role: str,
    algorithm: int,
    state: str,
    now: datetime,
    pem: str | None = None,
) -> None:
    """Store a new key for the zone: `pem`, or one made now."""
    conn.execute(
        sa.insert(dnssec_keys).values(
            zone_id=zone_id,
            role=role,
            algorithm=algorithm,
            private_key=generate(algorithm) if pem is None else pem,
            state=state,
            created_at=now,
            changed_at=now,
        )
    )
    signed = sa.update(zones).where(zones.c.id == zone_id, zones.c.signed.is_(False))
    conn.execute(signed.values(signed=True))


def dnskey_texts(keys: list[ZoneKey]) -> tuple[str, ...]:
    """The zone's DNSKEY RRset: every key, whatever its state."""
    return tuple(sorted({k.dnskey.to_text() for k in keys}))


def ds_texts(
    zone: str, keys: list[ZoneKey], *, states: tuple[str, ...] = (ACTIVE, PUBLISHED)
) -> list[str]:
    """The DS records (SHA-256) for the parent: the zone's entry keys in `states` (the
    one signing, and during a roll the one that will)."""
    origin = dns.name.from_text(zone)
    return [
        dns.dnssec.make_ds(origin, k.dnskey, dns.dnssectypes.DSDigest.SHA256).to_text()
        for k in keys
        if k.entry and k.state in states
    ]


def cds_texts(zone: str, keys: list[ZoneKey]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """CDS and CDNSKEY RRsets (RFC 7344) naming the entry keys the parent should hold:
    the active ones and one published for a roll."""
    origin = dns.name.from_text(zone)
    wanted = [k for k in keys if k.entry and k.state in (ACTIVE, PUBLISHED)]
    cds = {
        dns.dnssec.make_cds(origin, k.dnskey, dns.dnssectypes.DSDigest.SHA256).to_text()
        for k in wanted
    }
    cdnskey = {k.dnskey.to_text() for k in wanted}
    return tuple(sorted(cds)), tuple(sorted(cdnskey))


def unsigning_sync(conn: sa.Connection, zone_id: int, zone: str) -> bool:
    """Whether the zone is in its unsigning phase: its apex asks the parent, with CDS and
    CDNSKEY DELETE, to remove the DS."""
    rdatas = conn.scalar(
        sa.select(rrsets.c.rdatas).where(
            rrsets.c.zone_id == zone_id, rrsets.c.name == zone, rrsets.c.rtype == "CDS"
        )
    )
    return rdatas is not None and RRsetValue.decode_rdatas(rdatas) == (CDS_DELETE,)


def key_ttl_sync(conn: sa.Connection, zone_id: int) -> int:
    """The TTL of the zone's DNSKEY, CDS and CDNSKEY RRsets: its SOA TTL, at most DNSKEY_TTL."""
    soa_ttl = conn.scalar(sa.select(zones.c.soa_ttl).where(zones.c.id == zone_id))
    return min(DNSKEY_TTL, int(soa_ttl if soa_ttl is not None else DNSKEY_TTL))
