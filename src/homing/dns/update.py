"""RFC 2136 UPDATE messages: sections parsed into the service's Prerequisite/Operation values.

`parse_update()` is pure (message in, values out, `UpdateRefused(FORMERR)` for a
malformed section, RFC 2136 3.1-3.4 prescan); `handle_update()` applies them through
`homing.service.dnsupdate.apply_update`, so every change goes through the journal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset

from homing.dns.responses import response_to
from homing.dns.tsig import ScopedKey
from homing.domain.errors import HomingError, StoreUnavailable
from homing.service.dnsupdate import (
    Operation,
    Prerequisite,
    PrerequisiteKind,
    UpdateRefused,
    UpdateScope,
    apply_update,
)
from homing.service.replays import Repeated, SignedRequest
from homing.store.db import Database

__all__ = ["ParsedUpdate", "handle_update", "parse_update", "signed_request"]

log = logging.getLogger(__name__)

_FORMERR = dns.rcode.Rcode.FORMERR
_ANY = dns.rdataclass.RdataClass.ANY
_NONE = dns.rdataclass.RdataClass.NONE
_IN = dns.rdataclass.RdataClass.IN

# Types that are no RRset one can add (RFC 2136 3.4.1.3): meta and query-only types.
_NOT_ADDABLE = frozenset(
    {
        dns.rdatatype.RdataType.ANY,
        dns.rdatatype.RdataType.AXFR,
        dns.rdatatype.RdataType.IXFR,
        dns.rdatatype.RdataType.MAILA,
        dns.rdatatype.RdataType.MAILB,
        dns.rdatatype.RdataType.OPT,
        dns.rdatatype.RdataType.TSIG,
        dns.rdatatype.RdataType.TKEY,
    }
)


@dataclass(frozen=True)
class ParsedUpdate:
    zone: str
    prerequisites: list[Prerequisite]
    operations: list[Operation]


def _text(name: dns.name.Name) -> str:
    return str(name.to_text(omit_final_dot=True)).lower()


def _formerr(why: str) -> UpdateRefused:
    return UpdateRefused(_FORMERR, why)


def parse_update(message: dns.message.Message) -> ParsedUpdate:
    """The zone, prerequisites and operations of an UPDATE; UpdateRefused(FORMERR) if malformed."""
    if message.opcode() != dns.opcode.Opcode.UPDATE:
        raise _formerr("not an UPDATE")
    if len(message.question) != 1:
        raise _formerr("the zone section must hold exactly one zone")
    zone_rrset = message.question[0]
    if zone_rrset.rdtype != dns.rdatatype.RdataType.SOA:
        raise _formerr("the zone section's type must be SOA")
    if zone_rrset.rdclass != _IN:
        raise UpdateRefused(dns.rcode.Rcode.NOTAUTH, "only class IN zones are served")
    zone = _text(zone_rrset.name)
    return ParsedUpdate(
        zone,
        _prerequisites(message.answer),
        _operations(message.authority),
    )


def _prerequisites(section: list[dns.rrset.RRset]) -> list[Prerequisite]:
    """RFC 2136 2.4 and 3.2: the class says which test; value-dependent ones group by RRset."""
    found: list[Prerequisite] = []
    equals: dict[tuple[str, str], list[str]] = {}
    for rrset in section:
        name = _text(rrset.name)
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        if rrset.ttl != 0:
            raise _formerr("prerequisite TTL must be 0")
        if rrset.deleting in (_ANY, _NONE):
            if len(rrset):
                raise _formerr("class ANY/NONE prerequisites carry no data")
            exists = rrset.deleting == _ANY
            if rrset.rdtype == dns.rdatatype.RdataType.ANY:
                found.append(Prerequisite("name_in_use" if exists else "name_absent", name))
            else:
                kind: PrerequisiteKind = "rrset_exists" if exists else "rrset_absent"
                found.append(Prerequisite(kind, name, rtype))
        elif rrset.rdclass == _IN:
            if rrset.rdtype in _NOT_ADDABLE or not len(rrset):
                raise _formerr(f"no value-dependent prerequisite for type {rtype}")
            equals.setdefault((name, rtype), []).extend(r.to_text() for r in rrset)
        else:
            raise _formerr("prerequisite of a class other than the zone's, ANY or NONE")
    for (name, rtype), rdatas in equals.items():
        found.append(Prerequisite("rrset_equals", name, rtype, tuple(sorted(set(rdatas)))))
    return found


def _operations(section: list[dns.rrset.RRset]) -> list[Operation]:
    """RFC 2136 2.5 and 3.4.1.3: add (zone class), delete RRset/name (ANY), delete RR (NONE)."""
    found: list[Operation] = []
    for rrset in section:
        name = _text(rrset.name)
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        if rrset.deleting == _ANY:
            if rrset.ttl != 0 or len(rrset):
                raise _formerr("a class ANY delete has TTL 0 and no data")
            if rrset.rdtype == dns.rdatatype.RdataType.ANY:
                found.append(Operation("delete_name", name))
            elif rrset.rdtype in _NOT_ADDABLE:
                raise _formerr(f"cannot delete type {rtype}")
            else:
                found.append(Operation("delete_rrset", name, rtype))
        elif rrset.deleting == _NONE:
            if rrset.ttl != 0 or rrset.rdtype in _NOT_ADDABLE or not len(rrset):
                raise _formerr("a class NONE delete has TTL 0, a real type and data")
            found.extend(Operation("delete_rr", name, rtype, 0, r.to_text()) for r in rrset)
        elif rrset.rdclass == _IN:
            if rrset.rdtype in _NOT_ADDABLE or not len(rrset):
                raise _formerr(f"cannot add type {rtype}")
            found.extend(Operation("add", name, rtype, rrset.ttl, r.to_text()) for r in rrset)
        else:
            raise _formerr("update of a class other than the zone's, ANY or NONE")
    return found


def signed_request(query: dns.message.Message, signer: ScopedKey) -> SignedRequest:
    """The identity of a verified message: its key and MAC, valid until its window ends."""
    assert query.tsig is not None
    rdata = query.tsig[0]
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    return SignedRequest(signer.name, rdata.mac, float(rdata.time_signed + rdata.fudge))


async def handle_update(
    query: dns.message.Message, signer: ScopedKey, db: Database, *, allow_local: bool = False
) -> dns.message.Message:
    """Apply a verified, signed UPDATE; the (signed) response with its rcode.

    A copy of a message answered before gets that answer again and changes nothing.
    """
    response = response_to(query)
    try:
        parsed = parse_update(query)
        scope = UpdateScope(signer.zone, signer.host, signer.also, signer.grants)
        changed = await apply_update(
            db,
            parsed.zone,
            parsed.prerequisites,
            parsed.operations,
            scope,
            actor=f"tsig:{signer.name}",
            signed=signed_request(query, signer),
            allow_local=allow_local,
        )
    except Repeated as exc:
        log.info("UPDATE by key %s: a copy answered before (%s)", signer.name, exc.rcode.name)
        response.set_rcode(exc.rcode)
        return response
    except UpdateRefused as exc:
        log.info("UPDATE by key %s refused (%s): %s", signer.name, exc.rcode.name, exc)
        response.set_rcode(exc.rcode)
        return response
    except StoreUnavailable as exc:
        log.warning("UPDATE by key %s failed: %s", signer.name, exc)
        response.set_rcode(dns.rcode.Rcode.SERVFAIL)
        return response
    except HomingError as exc:
        # Data the store's rules reject (a malformed address, a name out of bounds).
        log.info("UPDATE by key %s refused: %s", signer.name, exc)
        response.set_rcode(dns.rcode.Rcode.REFUSED)
        return response
    log.info("UPDATE of %s by key %s: %d RRsets changed", parsed.zone, signer.name, changed)
    return response
