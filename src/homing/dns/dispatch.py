"""The DNS messages that need the store or keys: UPDATE and zone transfers, answered async.

The transports ask `needs_dispatch(wire)` (a few byte compares, no parsing) and send
everything else to the sync `Responder.answer` fast path. `Dispatcher.handle` follows
the error ladder of dnspython's nanonameserver: too short or a response: drop;
unparsable: FORMERR from the question if possible; failing TSIG: NOTAUTH with the
TSIG error; our bug: SERVFAIL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsig
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.dns.access import AccessLoader
from homing.dns.answer import (
    MAX_TCP_MESSAGE,
    MIN_UDP_PAYLOAD,
    OUR_UDP_PAYLOAD,
    Responder,
    resolve,
)
from homing.dns.index import ZoneData, ZoneIndex
from homing.dns.responses import response_to
from homing.dns.tsig import Checked, ScopedKey, TsigRejected, check, rejection_wire
from homing.dns.update import handle_update
from homing.dns.xfr import axfr_records, client_serial, ixfr_records, newer, render, soa_at
from homing.domain.records import JournalEntry
from homing.service.journal import entries_after
from homing.service.meters import METERS
from homing.service.zones import get_zone
from homing.store.db import Database

__all__ = ["Dispatcher", "needs_dispatch"]

log = logging.getLogger(__name__)

_UPDATE_BYTE = int(dns.opcode.Opcode.UPDATE) << 3  # QR=0, opcode UPDATE in the third byte
_NOTIFY_BYTE = int(dns.opcode.Opcode.NOTIFY) << 3
_OPCODE_BITS = 0x78
_XFR_TYPES = (
    int(dns.rdatatype.RdataType.IXFR).to_bytes(2, "big"),
    int(dns.rdatatype.RdataType.AXFR).to_bytes(2, "big"),
)
_OPT_START = b"\x00\x00\x29"  # root owner name, type OPT
_TSIG_RR = b"\x00\xfa\x00\xff\x00\x00\x00\x00"  # type TSIG, class ANY, TTL 0
# Beyond this many journal entries an IXFR costs more than the AXFR it replaces.
MAX_IXFR_ENTRIES = 10_000


def needs_dispatch(wire: bytes) -> bool:
    """True for an UPDATE or NOTIFY, a query whose type is AXFR or IXFR, or one signed with TSIG.

    The question's type is read after the first zero byte past the header: the name's
    end, unless a label holds a zero byte. Such names are never one of our zones, so
    missing them only leaves their REFUSED to the fast path; a false match is
    re-checked by the dispatcher, which hands it back to the fast path.
    """
    if len(wire) < 12:
        return False
    flags = wire[2]
    if flags & _OPCODE_BITS:
        return flags & 0xF8 in (_UPDATE_BYTE, _NOTIFY_BYTE)
    end = wire.find(0, 12)
    if end < 0:
        return False
    if wire[end + 1 : end + 3] in _XFR_TYPES:
        return True
    if not (wire[10] or wire[11]):
        return False  # no additional records: no TSIG
    if wire[10:12] == b"\x00\x01" and wire[end + 5 : end + 8] == _OPT_START:
        return False  # the one additional record is the OPT right after the question
    # Signed queries (a secondary's SOA check): a TSIG record's type, class and TTL are
    # these bytes; a false match costs a parse, and the dispatcher hands it back.
    return _TSIG_RR in wire


# A NOTIFY's judge: (zone, peer address, verified signer) -> rcode (Secondaries.notified).
NotifyJudge = Callable[[str, str, ScopedKey | None], dns.rcode.Rcode]


class Dispatcher:
    """Answers UPDATE, NOTIFY, AXFR and IXFR for one zone index and store."""

    def __init__(
        self,
        index: ZoneIndex,
        db: Database,
        access: AccessLoader,
        responder: Responder,
        notified: NotifyJudge | None = None,
        *,
        allow_local_addresses: bool = False,
    ) -> None:
        self.index = index
        self.db = db
        self.access = access
        self.responder = responder
        self.notified = notified
        self.allow_local_addresses = allow_local_addresses

    async def handle(self, wire: bytes, peer: str, *, tcp: bool) -> Iterable[bytes]:
        """The answer messages (several for a transfer over TCP; none: drop)."""
        try:
            return await self._handle(wire, peer, tcp=tcp)
        except Exception:
            # Our bug, not the client's: say so with SERVFAIL, keep serving.
            log.exception("failed to answer DNS message %s from %s", wire[:512].hex(), peer)
            return _error(wire, dns.rcode.Rcode.SERVFAIL)

    async def _handle(self, wire: bytes, peer: str, *, tcp: bool) -> Iterable[bytes]:
        if len(wire) < 12 or wire[2] & 0x80:
            return ()  # no header, or a response: answering could loop between servers
        opcode = (wire[2] >> 3) & 0xF
        is_update = opcode == dns.opcode.Opcode.UPDATE
        try:
            message, signer = await self._verified(wire, one_rr_per_rrset=is_update)
        except TsigRejected as rejected:
            log.info("TSIG from %s rejected: %s", peer, rejected)
            return (rejection_wire(rejected),)
        except dns.message.ShortHeader:
            return ()
        except dns.exception.DNSException:
            return _error(wire, dns.rcode.Rcode.FORMERR)
        if is_update:
            return (await self._update(message, signer, peer),)
        if opcode == dns.opcode.Opcode.NOTIFY:
            return (self._notify(message, signer, peer),)
        if len(message.question) == 1 and message.question[0].rdtype in (
            dns.rdatatype.RdataType.AXFR,
            dns.rdatatype.RdataType.IXFR,
        ):
            return await self._transfer(message, signer, peer, tcp=tcp)
        if message.had_tsig and len(message.question) == 1 and message.edns <= 0:
            return (self._signed_answer(message, tcp=tcp),)
        # A near miss of needs_dispatch(), or an error the fast path words the same.
        reply = self.responder.answer(wire, tcp=tcp)
        return () if reply is None else (reply,)

    def _signed_answer(self, query: dns.message.Message, *, tcp: bool) -> bytes:
        """A plain question asked with TSIG (secondaries sign their SOA checks): signed back."""
        question = query.question[0]
        resolution = resolve(self.index, question.name, question.rdtype, question.rdclass)
        response = response_to(query, our_payload=OUR_UDP_PAYLOAD)
        if resolution.authoritative:
            response.flags |= dns.flags.Flag.AA
        response.flags |= query.flags & dns.flags.Flag.CD  # as the fast path's answers
        if query.edns == 0:
            response.ednsflags |= query.ednsflags & dns.flags.EDNSFlag.DO  # RFC 3225 3
        response.set_rcode(resolution.rcode)
        response.answer.extend(resolution.answer)
        response.authority.extend(resolution.authority)
        response.additional.extend(resolution.additional)
        if tcp:
            limit = MAX_TCP_MESSAGE
        elif query.edns >= 0:
            limit = min(max(query.payload, MIN_UDP_PAYLOAD), OUR_UDP_PAYLOAD)
        else:
            limit = MIN_UDP_PAYLOAD
        return response.to_wire(max_size=limit, prefer_truncation=True)

    def _notify(self, message: dns.message.Message, signer: ScopedKey | None, peer: str) -> bytes:
        """RFC 1996 3.7: a NOTIFY from a secondary zone's primary is a hint to check it now."""
        response = response_to(message)
        if len(message.question) != 1 or message.question[0].rdtype != dns.rdatatype.SOA:
            response.set_rcode(dns.rcode.Rcode.FORMERR)
            return response.to_wire()
        zone = str(message.question[0].name.to_text(omit_final_dot=True)).lower()
        rcode = dns.rcode.Rcode.NOTAUTH  # no secondary zones here
        if self.notified is not None:
            rcode = self.notified(zone, peer, signer)
        response.set_rcode(rcode)
        if rcode == dns.rcode.Rcode.NOERROR:
            response.flags |= dns.flags.Flag.AA
        return response.to_wire()

    async def _verified(self, wire: bytes, *, one_rr_per_rrset: bool) -> Checked:
        keyring = self.access.current.keyring
        try:
            return check(wire, keyring, one_rr_per_rrset=one_rr_per_rrset)
        except TsigRejected as rejected:
            if rejected.error != dns.rcode.Rcode.BADKEY:
                raise
        # Maybe a key added a moment ago: reload (rate-limited) and try once more.
        await self.access.refresh()
        return check(wire, self.access.current.keyring, one_rr_per_rrset=one_rr_per_rrset)

    async def _update(
        self, message: dns.message.Message, signer: ScopedKey | None, peer: str
    ) -> bytes:
        if signer is None:
            log.info("unsigned UPDATE from %s refused", peer)
            response = response_to(message)
            response.set_rcode(dns.rcode.Rcode.REFUSED)
            return response.to_wire()
        started = time.perf_counter()
        response = await handle_update(
            message, signer, self.db, allow_local=self.allow_local_addresses
        )
        answer = dns.rcode.to_text(response.rcode()).lower()
        METERS.update("rfc2136", [answer], time.perf_counter() - started)
        if response.rcode() != dns.rcode.Rcode.NOERROR:
            zone = message.question[0].name if message.question else "-"
            log.info("UPDATE of %s with key %s from %s: %s", zone, signer.key.name, peer, answer)
        return response.to_wire()

    async def _transfer(
        self, query: dns.message.Message, signer: ScopedKey | None, peer: str, *, tcp: bool
    ) -> Iterable[bytes]:
        question = query.question[0]
        kind = dns.rdatatype.to_text(question.rdtype)
        zone = self.index.zones.get(question.name)
        if zone is None:
            log.info("%s of %s from %s refused: not a zone here", kind, question.name, peer)
            return (_refusal(query, dns.rcode.Rcode.NOTAUTH),)
        if zone.meta.expired:
            return (_refusal(query, dns.rcode.Rcode.SERVFAIL),)  # a secondary without a copy
        zone_name = str(zone.origin.to_text(omit_final_dot=True))
        if not self.access.current.may_transfer(zone_name, signer, peer):
            log.info("%s of %s from %s refused", kind, zone_name, peer)
            return (_refusal(query, dns.rcode.Rcode.REFUSED),)
        key = None if signer is None else signer.key
        if question.rdtype == dns.rdatatype.RdataType.AXFR:
            if not tcp:
                return (_refusal(query, dns.rcode.Rcode.FORMERR),)  # RFC 5936 4.2: TCP only
            return self._axfr(query, zone, key, peer)
        since = client_serial(query)
        if since is None:
            return (_refusal(query, dns.rcode.Rcode.FORMERR),)  # RFC 1995 3: the SOA is required
        target = zone.serial
        if not tcp or since == target or newer(since, target):
            # Up to date (or ahead): the SOA alone says so. Over UDP the SOA alone also
            # tells a client that is behind to come back over TCP (RFC 1995 2).
            METERS.secondary(zone_name, peer, since)
            return render(query, [soa_at(zone, target)], key)
        METERS.secondary(zone_name, peer, target)  # what it has once this transfer is in
        entries = await self._journal(zone_name, since, target)
        records = None if entries is None else ixfr_records(zone, since, target, entries)
        if records is None:
            log.info("IXFR of %s from %d: journal does not reach back; AXFR", zone_name, since)
            return self._axfr(query, zone, key, peer)
        log.info("IXFR of %s from %d to %d to %s", zone_name, since, target, peer)
        return render(query, records, key)

    def _axfr(
        self,
        query: dns.message.Message,
        zone: ZoneData,
        key: dns.tsig.Key | None,
        peer: str,
    ) -> Iterator[bytes]:
        # The records are taken now, in one step: a consistent zone at one serial.
        records = axfr_records(zone)
        METERS.secondary(str(zone.origin.to_text(omit_final_dot=True)), peer, zone.serial)
        log.info("AXFR of %s at %d to %s (%d RRsets)", zone.origin, zone.serial, peer, len(records))
        return render(query, records, key)

    async def _journal(self, zone_name: str, since: int, target: int) -> list[JournalEntry] | None:
        if target - since > MAX_IXFR_ENTRIES or newer(since, target):
            return None

        async def read(conn: AsyncConnection) -> list[JournalEntry]:
            ref = await get_zone(conn, zone_name)
            return await entries_after(conn, ref.id, zone_name, since)

        return await self.db.read(read)


def _refusal(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    """An error answer to a parsed query, signed when the query was."""
    response = response_to(query)
    response.set_rcode(rcode)
    return response.to_wire()


def _error(wire: bytes, rcode: dns.rcode.Rcode) -> tuple[bytes, ...]:
    """An error answer echoing the question when it can be read, else the header alone."""
    try:
        query = dns.message.from_wire(wire, question_only=True)
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        return (response.to_wire(),)
    except Exception:
        if len(wire) < 12:
            return ()
        flags = (int.from_bytes(wire[2:4], "big") & 0x7900) | 0x8000 | (int(rcode) & 0xF)
        return (wire[:2] + flags.to_bytes(2, "big") + b"\x00" * 8,)
