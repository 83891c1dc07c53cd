"""What the parent says about a signed zone's DS: asked of the parent's name servers directly.

A KSK roll's switch waits until the parent publishes the new key's DS, and the end of
signing until it publishes none: homing asks each server the operator named (`zone set
--parent-ns`) for the zone's DS RRset over UDP (TCP when truncated), with a timeout and
an answer at most one DNS message long, and reads only an authoritative answer to the
question asked. Anything else is an error, logged by the caller, and changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.dnssec
import dns.dnssectypes
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS

from homing.domain.errors import HomingError

QUERY_TIMEOUT = 3.0  # seconds, per server and transport
_MAX_RECORDS = 64  # a DS RRset larger than this is not one homing would act on
_MAX_SERVERS = 8
DEFAULT_PORT = 53


class ParentError(HomingError):
    """A parent server that could not be asked, or whose answer is not one to act on."""


@dataclass(frozen=True)
class ParentAnswer:
    """One server's DS RRset for the zone (empty: none) and the TTL resolvers may keep it."""

    server: str
    ds: tuple[dns.rdtypes.ANY.DS.DS, ...]
    ttl: int


def parse_servers(values: Sequence[str]) -> list[str]:
    """ADDRESS[:PORT] values (an IPv6 address as [ADDRESS]:PORT), checked and normalised."""
    if len(values) > _MAX_SERVERS:
        raise HomingError(f"at most {_MAX_SERVERS} parent name servers")
    out = []
    for value in values:
        address, port = split_server(value)
        host = f"[{address}]" if ":" in address else address
        out.append(f"{host}:{port}")
    return out


def split_server(value: str) -> tuple[str, int]:
    """ADDRESS[:PORT] as (address, port); a bad value is refused with the reason."""
    text = value.strip()
    port_text = ""
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise HomingError(f"{value!r} is not ADDRESS[:PORT]")
            port_text = rest[1:]
    elif text.count(":") == 1:
        address, port_text = text.split(":")
    else:
        address = text
    try:
        ipaddress.ip_address(address)
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise HomingError(f"{value!r} is not ADDRESS[:PORT] (an IP address)") from None
    if not 0 < port < 65536:
        raise HomingError(f"{value!r}: the port is out of range")
    return address, port


async def ask(server: str, zone: str, wait: float = QUERY_TIMEOUT) -> ParentAnswer:
    """The DS RRset `server` publishes for `zone`, read from an authoritative answer;
    each transport waits at most `wait` seconds."""
    address, port = split_server(server)
    qname = dns.name.from_text(zone)
    query = dns.message.make_query(qname, dns.rdatatype.DS, use_edns=0, payload=1232)
    query.flags &= ~dns.flags.RD
    try:
        response = await dns.asyncquery.udp(query, address, timeout=wait, port=port)
        if response.flags & dns.flags.TC:
            response = await dns.asyncquery.tcp(query, address, timeout=wait, port=port)
    except (TimeoutError, dns.exception.DNSException, OSError) as exc:
        raise ParentError(f"{server}: {exc.__class__.__name__}: {exc}") from exc
    return judge(server, qname, response)


def judge(server: str, qname: dns.name.Name, response: dns.message.Message) -> ParentAnswer:
    """The DS answer in `response`, or ParentError when it is not one to act on: not
    authoritative, another question, an error rcode, a DS RRset too large, no TTL."""
    if response.rcode() != 0:
        raise ParentError(f"{server}: {rcode_text(response)} for {qname} DS")
    if not response.flags & dns.flags.AA:
        raise ParentError(f"{server}: not authoritative for {qname} DS (a referral?)")
    question = response.question
    if len(question) != 1 or question[0].name != qname or question[0].rdtype != dns.rdatatype.DS:
        raise ParentError(f"{server}: an answer to another question")
    found = next(
        (
            r
            for r in response.answer
            if r.name == qname and r.rdtype == dns.rdatatype.DS and r.rdclass == dns.rdataclass.IN
        ),
        None,
    )
    if found is not None:
        if len(found) > _MAX_RECORDS:
            raise ParentError(f"{server}: {len(found)} DS records for {qname}")
        records = tuple(sorted(found, key=lambda r: r.to_text()))
        return ParentAnswer(server, records, int(found.ttl))
    if response.answer:
        raise ParentError(f"{server}: an answer without {qname} DS (a CNAME?)")
    soa = next((r for r in response.authority if r.rdtype == dns.rdatatype.SOA), None)
    if soa is None:
        raise ParentError(f"{server}: no DS and no SOA for {qname} (a lame server?)")
    negative = min(int(soa.ttl), int(soa[0].minimum))  # RFC 2308 section 5
    return ParentAnswer(server, (), negative)


def names_key(answer: ParentAnswer, zone: str, dnskey: dns.rdtypes.ANY.DNSKEY.DNSKEY) -> bool:
    """Whether one of the parent's DS records points at `dnskey` (whatever its digest)."""
    origin = dns.name.from_text(zone)
    for ds in answer.ds:
        try:
            digest = dns.dnssectypes.DSDigest(ds.digest_type)
            if dns.dnssec.make_ds(origin, dnskey, digest) == ds:
                return True
        except (ValueError, dns.exception.DNSException):
            continue  # a digest type we do not make: it names no key of ours we can tell
    return False


def rcode_text(response: dns.message.Message) -> str:
    """The response's rcode as a word (NXDOMAIN, SERVFAIL...)."""
    return dns.rcode.to_text(response.rcode())
