"""The zone and the query corpus of the differential test against Knot
(tests/dns/test_knot_differential.py): one zone file both servers load, and a
deterministic list of questions covering every owner and type in it, names below its
cuts, beside it and outside it, in random letter case, with and without EDNS and DO."""

from __future__ import annotations

import random
from dataclasses import dataclass

ZONE = "diff.example"
SEED = 16  # the corpus is the same on every run: a failure can be asked again by hand
DIGEST = "5f" * 32

BIG_TXT = 12  # TXT strings of 60 bytes at big: ~900 bytes, over 512, under 1232
HUGE_A = 100  # A records at huge: ~1,600 bytes, over 1232
MANY_MX = 10  # MX targets at mxmany, each with A and AAAA: the additional section over 512

ZONE_FILE = (
    f"""\
$ORIGIN {ZONE}.
$TTL 300
@          IN SOA  ns1 hostmaster 2026120501 7200 900 604800 120
@          IN NS   ns1
@          IN NS   ns2
@          IN NS   ns.example.org.
@          IN MX   10 mail
@          IN MX   20 mx.example.org.
@          IN TXT  "v=spf1 mx -all"
@          IN CAA  0 issue "letsencrypt.org"
@          IN CAA  0 iodef "mailto:hostmaster@{ZONE}"
ns1        IN A    192.0.2.53
ns1        IN AAAA 2001:db8::53
ns2        IN A    192.0.2.54
mail       IN A    192.0.2.25
mail       IN AAAA 2001:db8::25
mail       IN TXT  "mail server"
www   600  IN A    192.0.2.80
www   600  IN AAAA 2001:db8::80
sip        IN A    192.0.2.60
v6only     IN AAAA 2001:db8::66
_sip._tcp  IN SRV  10 60 5060 sip
_sip._tcp  IN SRV  20 0 5060 v6only
_xmpp._tcp IN SRV  0 5 5269 xmpp.example.org.
_null._tcp IN SRV  0 0 0 .
mx2        IN MX   10 www
mx2        IN MX   20 v6only
mx3        IN MX   10 nowhere
mx4        IN MX   10 chain1
mx5        IN MX   10 host.wild
mx6        IN MX   10 ns1.child
*.wild     IN A    192.0.2.99
*.wild     IN MX   10 mail
*.wild     IN TXT  "wildcard"
a.x.wild   IN TXT  "below an empty non-terminal"
*.cw       IN CNAME www
*.cwout    IN CNAME www.example.org.
deep.b.c   IN TXT  "deep"
chain1     IN CNAME chain2
chain2     IN CNAME chain3
chain3     IN CNAME www
out        IN CNAME www.example.org.
loop1      IN CNAME loop2
loop2      IN CNAME loop1
self       IN CNAME self
dangling   IN CNAME gone
towild     IN CNAME x.wild
tocw       IN CNAME y.cw
tochild    IN CNAME www.child
child      IN NS   ns1.child
child      IN NS   ns2.sib
child      IN NS   ns.example.org.
child      IN DS   12345 13 2 {DIGEST}
ns1.child  IN A    192.0.2.10
ns1.child  IN AAAA 2001:db8::10
sib        IN NS   ns2.sib
ns2.sib    IN A    192.0.2.20
inzone     IN NS   ns1
outside    IN NS   ns.example.org.
outside    IN NS   ns.example.com.
*.dlg      IN A    192.0.2.98
x.dlg      IN NS   ns1
"""
    + "".join(f'big        IN TXT  "{i:02d}{"t" * 58}"\n' for i in range(BIG_TXT))
    + "".join(f"huge       IN A    198.51.100.{i}\n" for i in range(1, HUGE_A + 1))
    + "".join(
        f"mxmany     IN MX   {i} m{i}\nm{i}         IN A    203.0.113.{i}\n"
        f"m{i}         IN AAAA 2001:db8::{i:x}:1\n"
        for i in range(MANY_MX)
    )
)

# (owner label, types it has); "" is the apex
OWNERS: dict[str, tuple[str, ...]] = {
    "": ("SOA", "NS", "MX", "TXT", "CAA"),
    "ns1": ("A", "AAAA"),
    "ns2": ("A",),
    "mail": ("A", "AAAA", "TXT"),
    "www": ("A", "AAAA"),
    "sip": ("A",),
    "v6only": ("AAAA",),
    "_sip._tcp": ("SRV",),
    "_xmpp._tcp": ("SRV",),
    "_null._tcp": ("SRV",),
    "mx2": ("MX",),
    "mx3": ("MX",),
    "mx4": ("MX",),
    "mx5": ("MX",),
    "mx6": ("MX",),
    "*.wild": ("A", "MX", "TXT"),
    "a.x.wild": ("TXT",),
    "*.cw": ("CNAME",),
    "*.cwout": ("CNAME",),
    "deep.b.c": ("TXT",),
    "chain1": ("CNAME",),
    "chain2": ("CNAME",),
    "chain3": ("CNAME",),
    "out": ("CNAME",),
    "loop1": ("CNAME",),
    "loop2": ("CNAME",),
    "self": ("CNAME",),
    "dangling": ("CNAME",),
    "towild": ("CNAME",),
    "tocw": ("CNAME",),
    "tochild": ("CNAME",),
    "child": ("NS", "DS"),
    "ns1.child": ("A", "AAAA"),
    "sib": ("NS",),
    "ns2.sib": ("A",),
    "inzone": ("NS",),
    "outside": ("NS",),
    "*.dlg": ("A",),
    "x.dlg": ("NS",),
    "big": ("TXT",),
    "huge": ("A",),
    "mxmany": ("MX",),
    "m1": ("A", "AAAA"),
}

# Names that exist without data, or not at all, or lie below cuts or wildcards.
OTHER_NAMES = (
    "x.wild",  # empty non-terminal below a wildcard's parent
    "b.c",
    "c",
    "nothing",
    "a.nothing",
    "host.wild",  # wildcard matches
    "a.b.wild",
    "q.a.x.wild",  # below an existing name: no wildcard (NXDOMAIN)
    "y.cw",
    "z.cwout",
    "www.child",  # below cuts
    "a.b.www.child",
    "nothing.child",
    "x.sib",
    "x.inzone",
    "deep.x.outside",
    "y.x.dlg",
    "other.dlg",  # the wildcard beside a cut
    "gone",
    "_tcp",
    "x._tcp",
)
OUT_OF_ZONE = ("example.org", "www.example.com", "example", "", "xdiff.example", "diff.example.org")
# CHAOS class names servers answer about themselves (RFC 4892), and some they do not.
CHAOS_NAMES = ("id.server", "hostname.bind", "version.bind", "version.server", "authors.bind", ZONE)
CHAOS_TYPES = ("TXT", "A", "ANY")
TYPES = ("A", "AAAA", "NS", "SOA", "MX", "TXT", "SRV", "CAA", "CNAME", "DS", "PTR", "DNSKEY")


@dataclass(frozen=True)
class Question:
    """One query of the corpus, as both servers are asked it."""

    qname: str  # absolute, in the letter case to send
    rdtype: str
    edns: bool = True
    do: bool = False
    payload: int = 1232  # the EDNS UDP size advertised
    tcp: bool = False
    rd: bool = False  # recursion desired: both servers copy it and still do not recurse
    nsid: bool = False  # asks for the server's NSID (RFC 5001)
    rdclass: str = "IN"
    cd: bool = False  # checking disabled (RFC 4035 3.2.2)
    opcode: str = "QUERY"

    def __str__(self) -> str:
        how = "tcp" if self.tcp else "udp"
        edns = "no edns"
        if self.edns:
            edns = f"edns {self.payload}{' do' if self.do else ''}{' nsid' if self.nsid else ''}"
        flags = "".join(f", {f}" for f, on in (("rd", self.rd), ("cd", self.cd)) if on)
        return f"{self.opcode} {self.qname} {self.rdclass} {self.rdtype} ({how}, {edns}{flags})"


def absolute(label: str) -> str:
    return f"{label}.{ZONE}." if label else f"{ZONE}."


def _cased(rng: random.Random, name: str) -> str:
    """`name` in random letter case, as a resolver using 0x20 would ask it."""
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def questions(seed: int = SEED, rounds: int = 3) -> list[Question]:
    """The corpus: every owner (wildcards by a name they match) and every other name with
    every type, ANY and DS included, and the CHAOS names; `rounds` times over in fresh
    random case and EDNS choices (DO, NSID), plus the large answers at every size a
    client can advertise."""
    rng = random.Random(seed)
    names = [label.replace("*", "match") for label in OWNERS] + list(OTHER_NAMES)
    names = [absolute(label) for label in names] + [f"{n}." if n else "." for n in OUT_OF_ZONE]
    asked = [(name, rdtype, "IN") for name in names for rdtype in (*TYPES, "ANY")]
    asked += [(f"{name}.", rdtype, "CH") for name in CHAOS_NAMES for rdtype in CHAOS_TYPES]
    out: list[Question] = []
    for _ in range(rounds):
        for name, rdtype, rdclass in asked:
            edns = rng.random() < 0.8
            out.append(
                Question(
                    _cased(rng, name),
                    rdtype,
                    edns=edns,
                    do=edns and rng.random() < 0.3,
                    payload=rng.choice((512, 1232, 1232, 4096)),
                    rd=rng.random() < 0.2,
                    cd=rng.random() < 0.1,
                    nsid=edns and rng.random() < 0.1,
                    rdclass=rdclass,
                )
            )
    # NOTIFY of a zone we serve as its primary: nobody may tell us it changed (NOTAUTH);
    # an unsigned UPDATE, STATUS, and zone transfers asked over UDP by a stranger.
    apex = absolute("")
    for _ in range(3):
        out += [Question(_cased(rng, apex), "SOA", opcode=op) for op in ("NOTIFY", "UPDATE")]
        out += [Question(_cased(rng, apex), "SOA", opcode="STATUS")]
        out += [Question(_cased(rng, apex), rdtype) for rdtype in ("AXFR", "IXFR")]
    large = (("big", "TXT"), ("huge", "A"), ("", "NS"), ("child", "NS"), ("mxmany", "MX"))
    for label, rdtype in large:
        for edns, payload, tcp in (
            (False, 512, False),
            (True, 512, False),
            (True, 1232, False),
            (True, 4096, False),
            (False, 512, True),
        ):
            out.append(Question(absolute(label), rdtype, edns=edns, payload=payload, tcp=tcp))
    # Type 0, reserved: NOTIMP for any name and class (Knot's answer).
    for label, rdclass in (("www", "IN"), ("nothing", "IN"), ("", "IN"), ("id.server.", "CH")):
        for edns in (False, True):
            qname = label if rdclass == "CH" else absolute(label)
            out.append(Question(qname, "TYPE0", edns=edns, do=edns, rdclass=rdclass))
    out.append(Question("elsewhere.example.", "TYPE0"))
    return out
