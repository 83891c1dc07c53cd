"""The benchmark zone (N hosts: A for all, AAAA for every tenth) and a dnsperf query file.

The query mix is fixed: 80% existing A, 10% existing AAAA, 5% NXDOMAIN, 5% NODATA
(AAAA asked of a host that only has an A record). Seeded, so every run asks the same.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ZONE = "bench.example.net"
TTL = 60


def host_name(i: int) -> str:
    return f"h{i}"


def ipv4(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def ipv6(i: int) -> str:
    return f"2001:db8::{i >> 16:x}:{i & 0xFFFF:x}"


def has_aaaa(i: int) -> bool:
    return i % 10 == 0


def write_zone(path: Path, hosts: int, zone: str = ZONE) -> Path:
    """A standard zone file with SOA, NS (and its glue) and `hosts` host names."""
    with path.open("w") as out:
        out.write(f"$ORIGIN {zone}.\n$TTL {TTL}\n")
        out.write(
            f"@ 3600 IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 604800 60\n"
            f"@ 3600 IN NS ns1.{zone}.\n"
            "ns1 3600 IN A 127.0.0.1\n"
        )
        for i in range(hosts):
            name = host_name(i)
            out.write(f"{name} IN A {ipv4(i)}\n")
            if has_aaaa(i):
                out.write(f"{name} IN AAAA {ipv6(i)}\n")
    return path


def write_queries(
    path: Path, hosts: int, count: int, zone: str = ZONE, seed: int = 6, *, mixed_case: bool = False
) -> dict[str, int]:
    """A dnsperf data file of `count` queries in the fixed mix; returns the counts per kind.
    With `mixed_case` every letter of every name is upper or lower case at random, as a
    resolver using 0x20 (draft-vixie-dnsext-dns0x20) asks: the same names, other spellings."""
    rng = random.Random(seed)
    spell = random.Random(seed + 1)
    kinds: Counter[str] = Counter()
    dual = max(1, (hosts + 9) // 10)  # hosts 0, 10, 20, ... have AAAA
    with path.open("w") as out:
        for _ in range(count):
            roll = rng.random()
            if roll < 0.80:
                kind, line = "a", f"{host_name(rng.randrange(hosts))}.{zone} A"
            elif roll < 0.90:
                kind, line = "aaaa", f"{host_name(10 * rng.randrange(dual))}.{zone} AAAA"
            elif roll < 0.95:
                kind, line = "nxdomain", f"nx{rng.randrange(10 * hosts)}.{zone} A"
            else:
                i = rng.randrange(hosts)
                if has_aaaa(i):
                    i = (i + 1) % hosts
                kind, line = "nodata", f"{host_name(i)}.{zone} AAAA"
            kinds[kind] += 1
            if mixed_case:
                name, rtype = line.split(" ")
                name = "".join(c.upper() if spell.random() < 0.5 else c for c in name)
                line = f"{name} {rtype}"
            out.write(line + "\n")
    return dict(kinds)


def host_secret(i: int) -> str:
    """Host i's update secret in a generated store: derived, so no list of 10M is kept."""
    digest = hashlib.blake2b(str(i).encode(), key=b"homing-bench", digest_size=18).digest()
    return base64.urlsafe_b64encode(digest).decode()


def _batches(rows: Iterator[tuple[object, ...]], size: int) -> Iterator[list[tuple[object, ...]]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


def fill_store(
    db: Path, zone_id: int, owner_id: int, hosts: int, zone: str = ZONE, batch: int = 50_000
) -> None:
    """Add `hosts` hosts (A for all, AAAA for every tenth) to an SQLite store's zone by
    streaming rows in batches: memory stays bounded whatever the count. The zone file
    path (`homing zone import`) holds the whole zone in memory and writes a journal row
    per record; a generated store has no journal for these names (the zone's serial
    moves once, so `homing serve` loads it whole from its record sets)."""
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB of page cache for the indexes

        def records() -> Iterator[tuple[object, ...]]:
            for i in range(hosts):
                name = f"{host_name(i)}.{zone}"
                yield (zone_id, name, "A", TTL, ipv4(i))
                if has_aaaa(i):
                    yield (zone_id, name, "AAAA", TTL, ipv6(i))

        def host_rows() -> Iterator[tuple[object, ...]]:
            for i in range(hosts):
                secret_hash = hashlib.sha256(host_secret(i).encode()).hexdigest()
                yield (f"{host_name(i)}.{zone}", zone_id, owner_id, secret_hash, TTL, created)

        for rows in _batches(records(), batch):
            conn.executemany(
                "INSERT INTO rrsets (zone_id, name, rtype, ttl, rdatas) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            conn.commit()
        for rows in _batches(host_rows(), batch):
            conn.executemany(
                "INSERT INTO hosts (name, zone_id, owner_id, secret_hash, ttl, status,"
                " nochg_count, badauth_count, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'active', 0, 0, ?)",
                rows,
            )
            conn.commit()
        conn.execute("UPDATE zones SET serial = serial + 1 WHERE id = ?", (zone_id,))
        conn.commit()
    finally:
        conn.close()
