"""A secondary zone's copy as dnspython holds it (ZoneCopy): built from the store, moved
by AXFR and IXFR transactions, and able to tell what its last transaction changed, so
only that is written to the store and the zone index."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dns.name
import dns.node
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.zone

from homing.domain.records import RRsetValue, ZoneMeta

__all__ = ["ZoneCopy"]

_SOA = dns.rdatatype.RdataType.SOA


@dataclass
class _Commit:
    """What one transfer changed in a ZoneCopy."""

    full: bool  # the whole zone came (AXFR, or an IXFR answered with the whole zone)
    changed: set[dns.name.Name]
    before: dict[dns.name.Name, dns.node.Node | None]


class ZoneCopy(dns.zone.Zone):
    """A dnspython zone that remembers what its last committed transaction changed.

    dnspython copies a node on its first write in a transaction, so the names written
    and their nodes from before are known at commit: the difference to store and serve.
    """

    def __init__(self, origin: dns.name.Name) -> None:
        super().__init__(origin, dns.rdataclass.IN, relativize=False)
        self.last: _Commit | None = None

    def _commit_version(self, txn: Any, version: Any, origin: Any) -> None:
        changed = set(version.changed)
        before = {} if txn.replacement else {name: self.nodes.get(name) for name in changed}
        self.last = _Commit(bool(txn.replacement), changed, before)
        super()._commit_version(txn, version, origin)  # type: ignore[no-untyped-call]

    @classmethod
    def build(cls, meta: ZoneMeta, serial: int, values: Iterable[RRsetValue]) -> ZoneCopy:
        """The copy as the store has it."""
        origin = dns.name.from_text(meta.name)
        copy = cls(origin)
        with copy.writer() as txn:
            txn.add(origin, meta.soa_ttl, _soa_rdata(meta, serial))
            for value in values:
                for texts in _by_covered_type(value):
                    rdataset = dns.rdataset.from_text_list(
                        dns.rdataclass.IN, value.rtype, value.ttl, texts
                    )
                    txn.add(dns.name.from_text(value.name), rdataset)
        copy.last = None
        return copy

    def soa(self) -> tuple[dns.rdtypes.ANY.SOA.SOA, int] | None:
        """The SOA rdata and its TTL, or None in a copy that has none."""
        assert self.origin is not None
        rdataset = self.get_rdataset(self.origin, _SOA)
        if not rdataset:
            return None
        rdata = rdataset[0]
        assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
        return rdata, rdataset.ttl

    def meta(self, name: str) -> ZoneMeta:
        """The SOA parameters, as the zone index and the store keep them."""
        found = self.soa()
        assert found is not None
        soa, ttl = found
        return ZoneMeta(
            name=name,
            mname=soa.mname.to_text(),
            rname=soa.rname.to_text(),
            refresh=soa.refresh,
            retry=soa.retry,
            expire=soa.expire,
            minimum=soa.minimum,
            soa_ttl=ttl,
        )

    def values(self) -> list[RRsetValue]:
        """Every RRset but the apex SOA."""
        out = []
        for name, node in self.nodes.items():
            out.extend(_node_values(name, node, skip_soa=name == self.origin))
        return out

    def changes(self) -> list[RRsetValue]:
        """The RRsets the last incremental transaction set or deleted (empty rdatas)."""
        assert self.last is not None and not self.last.full
        out: list[RRsetValue] = []
        for name in self.last.changed:
            old = self.last.before.get(name)
            new = self.nodes.get(name)
            apex = name == self.origin
            old_values = {(v.rtype): v for v in _node_values(name, old, skip_soa=apex)}
            new_values = {(v.rtype): v for v in _node_values(name, new, skip_soa=apex)}
            for rtype, value in new_values.items():
                if old_values.get(rtype) != value:
                    out.append(value)
            for rtype, value in old_values.items():
                if rtype not in new_values:
                    out.append(RRsetValue(value.name, rtype, value.ttl, ()))
        return out


def _node_values(
    name: dns.name.Name, node: dns.node.Node | None, *, skip_soa: bool
) -> list[RRsetValue]:
    if node is None:
        return []
    owner = str(name.to_text(omit_final_dot=True)).lower()
    out = []
    signatures: list[dns.rdataset.Rdataset] = []
    for rdataset in node.rdatasets:
        if skip_soa and rdataset.rdtype == _SOA:
            continue
        if rdataset.rdtype == dns.rdatatype.RdataType.RRSIG:
            signatures.append(rdataset)  # one RRset per covered type here, one in the store
            continue
        texts = tuple(sorted(rdata.to_text() for rdata in rdataset))
        out.append(RRsetValue(owner, dns.rdatatype.to_text(rdataset.rdtype), rdataset.ttl, texts))
    if signatures:
        texts = tuple(sorted(rdata.to_text() for rdataset in signatures for rdata in rdataset))
        ttl = min(rdataset.ttl for rdataset in signatures)
        out.append(RRsetValue(owner, "RRSIG", ttl, texts))
    return out


def _by_covered_type(value: RRsetValue) -> list[list[str]]:
    """The record texts of an RRset, those of an RRSIG RRset apart by covered type: the
    store keeps all of an owner's signatures as one RRset, dnspython one per type."""
    if value.rtype != "RRSIG":
        return [list(value.rdatas)]
    parts: dict[str, list[str]] = {}
    for text in value.rdatas:
        parts.setdefault(text.split(" ", 1)[0].upper(), []).append(text)
    return list(parts.values())


def _soa_rdata(meta: ZoneMeta, serial: int) -> dns.rdtypes.ANY.SOA.SOA:
    return dns.rdtypes.ANY.SOA.SOA(  # type: ignore[no-untyped-call]  # untyped in dnspython
        dns.rdataclass.IN,
        _SOA,
        dns.name.from_text(meta.mname),
        dns.name.from_text(meta.rname),
        serial,
        meta.refresh,
        meta.retry,
        meta.expire,
        meta.minimum,
    )
