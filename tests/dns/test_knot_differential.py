"""homing answers as Knot answers: one zone file (tests/dns/knot_corpus.py) served by a
real Knot and imported into a real `homing serve`, the same few thousand questions asked
of both, and the replies compared whole: rcode, header flags, EDNS (version, DO, size,
options), and the answer, authority and additional sections as RRsets with their TTLs.

Differences are allowed only where ALLOWED names them with the reason, each also listed
in docs/dns.md; anything else fails, with every differing question shown."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import pytest

from tests.dns.knot_corpus import ZONE, ZONE_FILE, Question, absolute, questions
from tests.e2e.conftest import LOOPBACK, Server, module_server
from tests.e2e.test_delegation_knot import KnotPrimary

TIMEOUT = 5.0
SERIAL = 2026120501
# What both servers say about themselves: CHAOS TXT id.server and hostname.bind,
# version.bind and version.server (RFC 4892), and the NSID option (RFC 5001).
IDENTITY = "ns-a.diff.example"
VERSION = "differential 1"
NSID = "ns-a"


def ask(port: int, q: Question) -> dns.message.Message:
    query = dns.message.make_query(
        q.qname,
        q.rdtype,
        q.rdclass,
        use_edns=0 if q.edns else False,
        payload=q.payload,
        want_dnssec=q.do,
        options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")] if q.nsid else None,
    )
    query.flags = dns.flags.Flag(0)
    query.set_opcode(dns.opcode.Opcode.make(q.opcode))
    for flag, on in ((dns.flags.Flag.RD, q.rd), (dns.flags.Flag.CD, q.cd)):
        if on:
            query.flags |= flag
    if q.tcp:
        return dns.query.tcp(query, LOOPBACK, port=port, timeout=TIMEOUT)
    return dns.query.udp(query, LOOPBACK, port=port, timeout=TIMEOUT, ignore_trailing=True)


def _records(
    section: list[dns.rrset.RRset], qname: dns.name.Name, *, keep_case: bool = True
) -> list[str]:
    """A section as sorted record lines: RRsets compare as sets. Letter case counts only
    where Knot echoes the client's: an owner in the answer or authority section that is
    the question's name or one of its parents (the apex); names inside records and the
    owners of additional records are compared case-insensitively, as DNS compares them."""
    out = []
    for rrset in section:
        owner = rrset.name
        if not (keep_case and qname.is_subdomain(owner)):
            owner = owner.canonicalize()
        for rdata in rrset:
            text = rdata.to_text().lower()
            out.append(f"{owner} {rrset.ttl} {rrset.rdclass!r} {rrset.rdtype!r} {text}")
    return sorted(out)


@dataclass(frozen=True)
class Shape:
    """What is compared of one reply."""

    rcode: str
    flags: str
    edns: str
    answer: tuple[str, ...]
    authority: tuple[str, ...]
    additional: tuple[str, ...]

    @classmethod
    def of(cls, m: dns.message.Message) -> Shape:
        edns = "none"
        if m.edns >= 0:
            options = sorted(f"{o.otype!r}={o.to_text()}" for o in m.options)
            edns = f"v{m.edns} {dns.flags.edns_to_text(m.ednsflags) or '-'} {m.payload} {options}"
        qname = m.question[0].name if m.question else dns.name.root
        return cls(
            dns.rcode.to_text(m.rcode()),
            dns.flags.to_text(m.flags),
            edns,
            tuple(_records(m.answer, qname)),
            tuple(_records(m.authority, qname)),
            tuple(_records(m.additional, qname, keep_case=False)),
        )


# --- the differences homing keeps, each with its reason (mirrored in docs/dns.md) ---------

_SOA_SERIAL = re.compile(r"(<RdataType.SOA: 6> \S+ \S+ )\d+ ")


def _no_serials(q: Question, shape: Shape) -> Shape:
    def strip(section: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_SOA_SERIAL.sub(r"\1SERIAL ", line) for line in section)

    return replace(
        shape,
        answer=strip(shape.answer),
        authority=strip(shape.authority),
        additional=strip(shape.additional),
    )


def _no_cd(q: Question, shape: Shape) -> Shape:
    return replace(shape, flags=" ".join(f for f in shape.flags.split() if f != "CD"))


def _no_rcode_of(opcode: str, *rdtypes: str) -> Callable[[Question, Shape], Shape]:
    def aside(q: Question, shape: Shape) -> Shape:
        if q.opcode == opcode and (not rdtypes or q.rdtype in rdtypes):
            return replace(shape, rcode="-")
        return shape

    return aside


# (reason, what of a reply it sets aside): a difference is allowed when the replies are
# equal once these are set aside in both.
ALLOWED: list[tuple[str, Callable[[Question, Shape], Shape]]] = [
    (
        "The SOA serial: homing serves an imported zone past the file's serial (the import "
        "goes through the journal, every change moves the serial); Knot serves the file's.",
        _no_serials,
    ),
    (
        "The CD flag: homing copies it from the query into the answer, as RFC 4035 3.1.6 "
        "asks; Knot 3.2 leaves it clear.",
        _no_cd,
    ),
    (
        "A zone transfer asked over UDP by an address not allowed one: homing answers "
        "REFUSED, as to any transfer it will not give; Knot NOTIMP (AXFR) or NOTAUTH (IXFR).",
        _no_rcode_of("QUERY", "AXFR", "IXFR"),
    ),
    (
        "An unsigned UPDATE: homing answers REFUSED, its policy refusing it (RFC 2136 3.3); "
        "Knot NOTAUTH, as it answers an UPDATE no ACL allows.",
        _no_rcode_of("UPDATE"),
    ),
]


def allowed(q: Question, ours: Shape, theirs: Shape) -> list[str] | None:
    """The reasons homing may answer `q` differently, None when it may not."""
    reasons = []
    for reason, aside in ALLOWED:
        a, b = aside(q, ours), aside(q, theirs)
        if (a, b) != (ours, theirs):
            reasons.append(reason)
        ours, theirs = a, b
    return reasons if ours == theirs else None


# --- the servers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnotPrimary]:
    primary = KnotPrimary(tmp_path_factory.mktemp("knot"))
    primary.configure_file(ZONE, ZONE_FILE)
    conf = primary.directory / "knot.conf"
    ours = f'server:\n    identity: "{IDENTITY}"\n    version: "{VERSION}"\n    nsid: "{NSID}"\n'
    conf.write_text(conf.read_text().replace("server:\n", ours, 1))
    primary.start()
    try:
        primary.wait_for("the zone loaded", lambda: primary.serial(ZONE) == SERIAL, timeout=30.0)
        yield primary
    finally:
        primary.stop()


@pytest.fixture(scope="module")
def homing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("homing")
    settings = {
        "HOMING_DNS_IDENTITY": IDENTITY,
        "HOMING_DNS_VERSION": VERSION,
        "HOMING_DNS_NSID": NSID,
    }
    with module_server(base, **settings) as server:
        path = base / "zone"
        path.write_text(ZONE_FILE)
        server.cli("zone", "import", ZONE, str(path))
        server.wait_dns(absolute("www"), "A", lambda a: a.values("A") == ["192.0.2.80"])
        yield server


def features(shape: Shape) -> set[str]:
    """The kinds of answer a reply is, so the test can tell its corpus still asks them all."""
    kinds = {shape.rcode}
    if "TC" in shape.flags:
        kinds.add("truncated")
    if "AA" not in shape.flags and any("<RdataType.NS: 2>" in r for r in shape.authority):
        kinds.add("referral")
    if "AA" in shape.flags and shape.answer and shape.additional:
        kinds.add("additional data")
    if any("RdataClass.CH" in r for r in shape.answer):
        kinds.add("chaos")
    kinds.update(o for o in ("EDE", "NSID", "DO") if o in shape.edns)
    return kinds


EVERY_KIND = {"NOERROR", "NXDOMAIN", "REFUSED", "truncated", "referral", "additional data"}
EVERY_KIND |= {"chaos", "EDE", "NSID", "DO", "NOTAUTH"}


def test_every_answer_equals_knots_but_the_listed(knot: KnotPrimary, homing: Server) -> None:
    corpus = questions()
    assert len(corpus) > 2000
    differences = []
    reasons: dict[str, int] = {}
    seen: set[str] = set()
    for q in corpus:
        ours, theirs = Shape.of(ask(homing.dns_port, q)), Shape.of(ask(knot.port, q))
        seen |= features(theirs)
        if ours == theirs:
            continue
        why = allowed(q, ours, theirs)
        if why is not None:
            for reason in why:
                reasons[reason] = reasons.get(reason, 0) + 1
            continue
        lines = [f"{q}:"]
        for field in Shape.__dataclass_fields__:
            a, b = getattr(ours, field), getattr(theirs, field)
            if a != b:
                lines.append(f"  {field}:\n    homing {a}\n    knot   {b}")
        differences.append("\n".join(lines))
    assert not differences, (
        f"{knot.version()}: {len(differences)} of {len(corpus)} answers differ\n"
        + "\n".join(differences)
    )
    assert not EVERY_KIND - seen, f"the corpus no longer asks for {EVERY_KIND - seen}"
