"""Rendering a Resolution once into a prepared answer the slow path keeps (see
homing.dns.replies): the header's flags, the counts and the bytes after the question.

Optional additional records (homing.dns.additional) are rendered last, and where each
begins is noted: a client whose UDP size the whole answer exceeds gets it without as
many of them as must go, from the last, and without TC (RFC 2181 9), as Knot sends it.
Anything else too large is truncated whole (the question alone with TC)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import dns.edns
import dns.exception
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.renderer

from homing.dns.replies import Prepared
from homing.dns.resolution import Resolution
from homing.dns.wire import (
    AA,
    COPIED_FLAGS,
    DO,
    ID_FLAGS,
    MAX_TCP_MESSAGE,
    OUR_OPT_DO,
    OUR_UDP_PAYLOAD,
    QR,
    Question,
)

__all__ = ["Trimmable", "prepare"]

_COUNT = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class Trimmable(Prepared):
    """A prepared answer whose last additional RRsets may be left out to fit."""

    # (where in `tail` an optional RRset starts, ARCOUNT before it), in the answer's order
    cuts: tuple[tuple[int, int], ...] = ()
    opt_length: int = 0  # our OPT record ends `tail`: its length (0: no EDNS)

    def render(self, q: Question, limit: int) -> bytes:
        fixed = 12 + len(q.question)
        if fixed + len(self.tail) > limit:
            for at, arcount in reversed(self.cuts):
                if fixed + at + self.opt_length <= limit:
                    tail = self.tail[:at] + self.tail[len(self.tail) - self.opt_length :]
                    arcount += 1 if self.opt_length else 0
                    counts = self.counts[:6] + _COUNT.pack(arcount)
                    flags = self.flags | (q.flags & COPIED_FLAGS)
                    return ID_FLAGS.pack(q.ident, flags) + counts + q.question + tail
        return Prepared.render(self, q, limit)


def prepare(
    resolution: Resolution,
    qname: dns.name.Name,
    qtype: int,
    qclass: int,
    opt: bytes,
) -> Prepared:
    """The answer `resolution` rendered for the lower-cased question, with our OPT record
    `opt` (b"": the query had no EDNS) and the resolution's EDNS options."""
    flags = QR | (AA if resolution.authoritative else 0) | dns.rcode.to_flags(resolution.rcode)[0]
    # Any: dnspython's renderer is untyped
    renderer: Any = dns.renderer.Renderer(0, flags, MAX_TCP_MESSAGE)  # type: ignore[no-untyped-call]
    optional = resolution.optional
    required = resolution.additional[: len(resolution.additional) - optional]
    cuts: list[tuple[int, int]] = []
    try:
        renderer.add_question(qname, qtype, qclass)
        question_end = renderer.output.tell()
        for section, rrsets in (
            (dns.renderer.ANSWER, resolution.answer),
            (dns.renderer.AUTHORITY, resolution.authority),
            (dns.renderer.ADDITIONAL, required),
        ):
            for rrset in rrsets:
                renderer.add_rrset(section, rrset)
        for rrset in resolution.additional[len(required) :]:
            cut = (renderer.output.tell() - question_end, renderer.counts[dns.renderer.ADDITIONAL])
            try:
                renderer.add_rrset(dns.renderer.ADDITIONAL, rrset)
            except dns.exception.TooBig:
                break  # optional: what does not fit even over TCP is left out
            cuts.append(cut)
        opt_start = renderer.output.tell()
        if opt:
            options = (
                []
                if resolution.ede is None
                else [dns.edns.EDEOption(dns.edns.EDECode(resolution.ede))]
            )
            ednsflags = DO if opt is OUR_OPT_DO else 0
            renderer.add_edns(0, ednsflags, OUR_UDP_PAYLOAD, options)
    except dns.exception.TooBig:
        return Prepared(flags, b"", b"", fits_tcp=False)
    renderer.write_header()
    wire = renderer.get_wire()
    flags = ID_FLAGS.unpack_from(wire)[1]
    tail = wire[question_end:]
    if not cuts:
        return Prepared(flags, wire[4:12], tail)
    return Trimmable(flags, wire[4:12], tail, cuts=tuple(cuts), opt_length=len(wire) - opt_start)
