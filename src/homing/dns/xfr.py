"""Zone transfers, sans-I/O: AXFR from the zone index, IXFR from journal entries (RFC 5936, 1995).

The record sequences are built here; `render()` packs them (with dnspython's Renderer,
which is untyped) into as many messages as needed, each signed with TSIG when the
request was (RFC 8945 5.3.1: one running MAC over the whole answer).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG
import dns.rdtypes.ANY.SOA
import dns.renderer
import dns.rrset
import dns.serial
import dns.tsig

from homing.dns.index import ZoneData
from homing.dns.rrwire import RR_HEAD
from homing.domain.records import JournalEntry

__all__ = [
    "MESSAGE_SIZE",
    "axfr_records",
    "client_serial",
    "ixfr_records",
    "newer",
    "render",
    "soa_at",
]

# Room for records per message: well under 65535, so the TSIG always fits after them,
# and small enough that a slow secondary gets the first bytes early.
MESSAGE_SIZE = 16384
# A TSIG record: key and algorithm names (255 bytes each at most), a 64-byte MAC, fixed fields.
_TSIG_RESERVE = 640
_OPT_SIZE = 11  # an OPT record without options
_DO = int(dns.flags.EDNSFlag.DO)
_FLAGS = int(dns.flags.Flag.QR | dns.flags.Flag.AA)


def soa_at(zone: ZoneData, serial: int) -> dns.rrset.RRset:
    """The zone's SOA RRset as it was (or will be) at `serial`."""
    soa = zone.soa()
    rdata = soa[0]
    assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
    return dns.rrset.from_rdata(zone.origin, soa.ttl, rdata.replace(serial=serial % 2**32))


def newer(a: int, b: int) -> bool:
    """RFC 1982: serial `a` is after `b`."""
    return bool(dns.serial.Serial(a) > dns.serial.Serial(b))


def client_serial(query: dns.message.Message) -> int | None:
    """The serial an IXFR client has (its authority section's SOA), or None if absent."""
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.RdataType.SOA and len(rrset):
            rdata = rrset[0]
            assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
            return int(rdata.serial)
    return None


def axfr_records(zone: ZoneData) -> list[dns.rrset.RRset]:
    """SOA, every other RRset, SOA (RFC 5936 2.2), as the index holds the zone now."""
    soa = zone.soa()
    records = [soa]
    owner: list[dns.rrset.RRset] = []  # the index gives an owner's RRsets one after another
    for rrset in zone.rrsets():
        if owner and rrset.name != owner[0].name:
            records += _signatures_apart(owner)
            owner = []
        owner.append(rrset)
    records += _signatures_apart(owner)
    records.append(soa)
    return records


def _signatures_apart(rrsets: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """One owner's RRsets, its RRSIGs (kept as one RRset) apart by the type they cover, each
    with that RRset's TTL (RFC 4034 3); an RRSIG without its RRset keeps its original TTL."""
    ttls = {int(r.rdtype): r.ttl for r in rrsets if r.rdtype != dns.rdatatype.RdataType.RRSIG}
    out: list[dns.rrset.RRset] = []
    for rrset in rrsets:
        if rrset.rdtype == dns.rdatatype.RdataType.RRSIG and not _sent_as_is(rrset, ttls):
            out += _by_covered_type(rrset.name, rrset, ttls)
        else:
            out.append(rrset)
    return out


def _sent_as_is(rrsigs: dns.rrset.RRset, ttls: Mapping[int, int]) -> bool:
    """True for signatures all over one type and already with its TTL (most owners' are:
    a host's address, a hashed owner's NSEC3), so the RRset needs no rebuilding."""
    covered = {rdata.type_covered for rdata in rrsigs}
    if len(covered) != 1:
        return False
    first = rrsigs[0]
    assert isinstance(first, dns.rdtypes.ANY.RRSIG.RRSIG)
    return rrsigs.ttl == ttls.get(int(first.type_covered), first.original_ttl)


def _by_covered_type(
    owner: dns.name.Name, rdatas: Iterable[dns.rdata.Rdata], ttls: Mapping[int, int]
) -> list[dns.rrset.RRset]:
    """RRSIG records as one RRset per covered type, each with the covered RRset's TTL from
    `ttls`, else the signature's original TTL (which homing's signer sets to that TTL).

    A secondary keeps a record's TTL as sent: all of an owner's signatures at its
    smallest TTL would have it serve, say, the DNSKEY RRset's for a minute, not an hour."""
    apart: dict[int, dns.rrset.RRset] = {}
    for rdata in rdatas:
        assert isinstance(rdata, dns.rdtypes.ANY.RRSIG.RRSIG)
        covered = int(rdata.type_covered)
        rrset = apart.get(covered)
        if rrset is None:
            rrset = apart[covered] = dns.rrset.RRset(
                owner, dns.rdataclass.IN, dns.rdatatype.RdataType.RRSIG, rdata.type_covered
            )
            rrset.update_ttl(ttls.get(covered, rdata.original_ttl))
        rrset.add(rdata)
    return list(apart.values())


def ixfr_records(
    zone: ZoneData, since: int, target: int, entries: Sequence[JournalEntry]
) -> list[dns.rrset.RRset] | None:
    """One condensed difference from serial `since` to `target` (RFC 1995 4).

    None when `entries` do not cover every serial in between (the journal does not
    reach back that far), or when one of them cannot be rendered (a stored row the index
    skipped): the caller answers with AXFR instead, which carries what is served.
    """
    wanted = [e for e in entries if since < e.serial <= target]
    if [e.serial for e in wanted] != list(range(since + 1, target + 1)):
        return None
    try:
        return _difference(zone, since, target, wanted)
    except (dns.exception.DNSException, ValueError):
        return None


def _difference(
    zone: ZoneData, since: int, target: int, wanted: list[JournalEntry]
) -> list[dns.rrset.RRset]:
    touched: dict[tuple[str, str], list[JournalEntry]] = {}
    for entry in wanted:
        touched.setdefault((entry.name, entry.rtype), []).append(entry)
    deleted: list[dns.rrset.RRset] = []
    added: list[dns.rrset.RRset] = []
    for (name, rtype), history in touched.items():
        if rtype == "SOA":
            continue  # the SOA is ours and carried by the difference's own SOA records
        first = history[0]
        before = set(first.old)
        after = set(history[-1].new)
        ttl = history[-1].ttl
        # Deletions name the records as the secondary holds them, with their old TTL.
        old_ttl = first.old_ttl if first.old_ttl is not None else ttl
        gone = before - after
        new = after - before
        if first.old_ttl is not None:
            ttl_moved = first.old_ttl != ttl
        else:
            # Entries from before old_ttl was kept: a TTL-only change leaves old == new,
            # and a change of both shows as differing TTLs.
            ttl_moved = any(set(e.old) == set(e.new) or e.ttl != ttl for e in history)
        if ttl_moved:
            # The kept records are deleted and added again, so the secondary takes the new TTL.
            gone |= before & after
            new |= before & after
        owner = dns.name.from_text(name)
        if rtype == "RRSIG":
            # Added with the TTLs of the RRsets they cover, as AXFR sends them; a deletion
            # names records by their data, whatever TTL the secondary holds them with.
            deleted += _by_covered_type(owner, _rrsigs(gone), {})
            added += _by_covered_type(owner, _rrsigs(new), _ttls(zone, name))
            continue
        if gone:
            deleted.append(_rrset(owner, rtype, old_ttl, gone))
        if new:
            added.append(_rrset(owner, rtype, ttl, new))
    current = soa_at(zone, target)
    return [current, soa_at(zone, since), *deleted, current, *added, current]


def _rrset(owner: dns.name.Name, rtype: str, ttl: int, rdatas: Iterable[str]) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(owner, ttl, dns.rdataclass.IN, rtype, sorted(rdatas))


def _ttls(zone: ZoneData, name: str) -> dict[int, int]:
    """The TTL of each RRset at `name` in the index now, read from its records' wire."""
    key = zone.key_of_text(name)
    node = () if key is None else zone.owners.get(key, ())
    return {node[i]: RR_HEAD.unpack_from(node[i + 2], 0)[3] for i in range(0, len(node), 3)}


def _rrsigs(texts: Iterable[str]) -> list[dns.rdata.Rdata]:
    rrsig = dns.rdatatype.RdataType.RRSIG
    return [dns.rdata.from_text(dns.rdataclass.IN, rrsig, text) for text in sorted(texts)]


def render(
    query: dns.message.Message,
    records: Iterable[dns.rrset.RRset],
    key: dns.tsig.Key | None,
    *,
    size: int = MESSAGE_SIZE,
) -> Iterator[bytes]:
    """The answer messages carrying `records`, the question in the first, TSIG in each."""
    question = query.question[0]
    ctx = None
    request_mac = query.mac or b""
    renderer = _start(query, question, size)
    count = 0
    for rrset in records:
        try:
            renderer.add_rrset(dns.renderer.ANSWER, rrset)  # type: ignore[no-untyped-call]
        except dns.exception.TooBig:
            if count == 0:
                raise  # one RRset larger than a message: nothing smaller would help
            wire, ctx = _finish(renderer, query, key, ctx, request_mac)
            yield wire
            renderer = _start(query, None, size)
            renderer.add_rrset(dns.renderer.ANSWER, rrset)  # type: ignore[no-untyped-call]
            count = 0
        count += 1
    wire, ctx = _finish(renderer, query, key, ctx, request_mac)
    yield wire


def _start(
    query: dns.message.Message, question: dns.rrset.RRset | None, size: int
) -> dns.renderer.Renderer:
    renderer = dns.renderer.Renderer(query.id, _FLAGS, size)  # type: ignore[no-untyped-call]
    # The records stop short of the size, so the OPT and the TSIG fit after them.
    renderer.reserve(_TSIG_RESERVE + _OPT_SIZE)
    if question is not None:
        renderer.add_question(question.name, question.rdtype, question.rdclass)  # type: ignore[no-untyped-call]
    return renderer


def _finish(
    renderer: dns.renderer.Renderer,
    query: dns.message.Message,
    key: dns.tsig.Key | None,
    ctx: object,
    request_mac: bytes,
) -> tuple[bytes, object]:
    renderer.release_reserved()
    if query.edns >= 0:  # RFC 6891 7: an answer to a query with OPT carries one (DO echoed)
        renderer.add_edns(0, query.ednsflags & _DO, 1232)  # type: ignore[no-untyped-call]
    renderer.write_header()  # type: ignore[no-untyped-call]
    if key is not None:
        ctx = renderer.add_multi_tsig(  # type: ignore[no-untyped-call]
            ctx, key.name, key, 300, query.id, 0, b"", request_mac, key.algorithm
        )
    wire: bytes = renderer.get_wire()  # type: ignore[no-untyped-call]
    return wire, ctx
