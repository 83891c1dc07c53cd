"""TSIG checking and error answers, UPDATE section parsing, the dispatch pre-check: no sockets."""

from __future__ import annotations

import time

import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from homing.dns.dispatch import needs_dispatch
from homing.dns.tsig import Keyring, TsigRejected, check, rejection_wire
from homing.dns.update import parse_update
from homing.service.dnsupdate import Operation, Prerequisite, UpdateRefused
from homing.service.keys import TsigKey

ZONE = "dyn.example.net"
SECRET = "L+ZBF39M36X744cbFmRi/HNC766UtmbCvUVb305/4mI="
MD5 = "HMAC-MD5.SIG-ALG.REG.INT"  # the wire name nsupdate sends for hmac-md5
OTHER = "AAAAF39M36X744cbFmRi/HNC766UtmbCvUVb305/4mI="


def keyring(**kw: bool) -> Keyring:
    return Keyring(
        [
            TsigKey("zk", "hmac-sha256", SECRET, ZONE, None),
            TsigKey("old", "hmac-md5", SECRET, ZONE, None),
        ],
        **kw,
    )


def signed_update(secret: str = SECRET, name: str = "zk", algorithm: str = "hmac-sha256") -> bytes:
    update = dns.update.UpdateMessage(ZONE)
    update.add(f"www.{ZONE}.", 60, "A", "192.0.2.1")
    update.use_tsig(dns.tsigkeyring.from_text({name: (algorithm, secret)}), name)
    return update.to_wire()


def test_good_signature_verifies() -> None:
    message = check(signed_update(), keyring())
    assert message.had_tsig and message.keyname == dns.name.from_text("zk")


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (signed_update(OTHER), dns.rcode.Rcode.BADSIG),
        (signed_update(name="stranger"), dns.rcode.Rcode.BADKEY),
        (signed_update(algorithm="hmac-sha512"), dns.rcode.Rcode.BADKEY),
        (signed_update(name="old", algorithm=MD5), dns.rcode.Rcode.BADKEY),  # not enabled
    ],
    ids=["bad-secret", "unknown-key", "wrong-algorithm", "md5-disabled"],
)
def test_failures_carry_their_tsig_error(wire: bytes, error: dns.rcode.Rcode) -> None:
    ring = keyring()
    with pytest.raises(TsigRejected) as caught:
        check(wire, ring)
    assert caught.value.error == error
    reply = rejection_wire(wire, caught.value, ring)
    assert reply is not None
    # Read as the client does: the unsigned TSIG with the error is the peer's verdict.
    response = dns.message.from_wire(reply, keyring=False)
    assert response.rcode() == dns.rcode.Rcode.NOTAUTH
    assert response.opcode() == dns.opcode.Opcode.UPDATE
    assert response.tsig_error == error
    assert response.mac == b""


def test_md5_when_enabled() -> None:
    message = check(signed_update(name="old", algorithm=MD5), keyring(allow_md5=True))
    assert message.keyname == dns.name.from_text("old")


def test_badtime_answer_is_signed_with_our_clock() -> None:
    update = dns.update.UpdateMessage(ZONE)
    update.use_tsig(dns.tsigkeyring.from_text({"zk": SECRET}), "zk", fudge=10)
    # A client clock an hour behind: render with that time by hand.
    real_time = time.time
    try:
        time.time = lambda: real_time() - 3600  # type: ignore[assignment]
        wire = update.to_wire()
    finally:
        time.time = real_time  # type: ignore[assignment]
    ring = keyring()
    with pytest.raises(TsigRejected) as caught:
        check(wire, ring)
    assert caught.value.error == dns.rcode.Rcode.BADTIME
    reply = rejection_wire(wire, caught.value, ring)
    assert reply is not None
    with pytest.raises(dns.tsig.PeerBadTime):
        dns.message.from_wire(
            reply, keyring=dns.tsigkeyring.from_text({"zk": SECRET}), request_mac=update.mac
        )


def parsed(*commands: tuple[str, ...]) -> tuple[list[Prerequisite], list[Operation]]:
    update = dns.update.UpdateMessage(ZONE)
    for command, *args in commands:
        getattr(update, command)(*args)
    message = dns.message.from_wire(update.to_wire(), one_rr_per_rrset=True)
    result = parse_update(message)
    assert result.zone == ZONE
    return result.prerequisites, result.operations


def test_every_prerequisite_form() -> None:
    name = f"www.{ZONE}."
    prerequisites, _ = parsed(
        ("present", name),
        ("absent", f"new.{ZONE}."),
        ("present", name, "A"),
        ("absent", name, "AAAA"),
        ("present", name, "A", "192.0.2.1"),
    )
    short = f"www.{ZONE}"
    assert prerequisites == [
        Prerequisite("name_in_use", short),
        Prerequisite("name_absent", f"new.{ZONE}"),
        Prerequisite("rrset_exists", short, "A"),
        Prerequisite("rrset_absent", short, "AAAA"),
        Prerequisite("rrset_equals", short, "A", ("192.0.2.1",)),
    ]


def test_operations_keep_their_order() -> None:
    name = f"www.{ZONE}."
    _, operations = parsed(
        ("add", name, 60, "A", "192.0.2.1"),
        ("delete", name, "A"),
        ("add", name, 300, "A", "192.0.2.2"),
        ("delete", name, "A", "192.0.2.2"),
        ("delete", name),
    )
    short = f"www.{ZONE}"
    assert operations == [
        Operation("add", short, "A", 60, "192.0.2.1"),
        Operation("delete_rrset", short, "A"),
        Operation("add", short, "A", 300, "192.0.2.2"),
        Operation("delete_rr", short, "A", 0, "192.0.2.2"),
        Operation("delete_name", short),
    ]


def test_malformed_sections_are_formerr() -> None:
    update = dns.update.UpdateMessage(ZONE)
    update.add(f"www.{ZONE}.", 60, "A", "192.0.2.1")
    message = dns.message.from_wire(update.to_wire(), one_rr_per_rrset=True)
    message.question.append(message.question[0])  # two zones
    with pytest.raises(UpdateRefused) as caught:
        parse_update(message)
    assert caught.value.rcode == dns.rcode.Rcode.FORMERR

    message = dns.message.from_wire(update.to_wire(), one_rr_per_rrset=True)
    message.answer.append(dns.rrset.from_text(f"www.{ZONE}.", 300, "IN", "A", "192.0.2.9"))
    with pytest.raises(UpdateRefused) as caught:
        parse_update(message)  # a prerequisite with a TTL
    assert caught.value.rcode == dns.rcode.Rcode.FORMERR


def test_needs_dispatch() -> None:
    assert needs_dispatch(signed_update())
    assert needs_dispatch(dns.message.make_query(ZONE, "AXFR").to_wire())
    assert needs_dispatch(dns.message.make_query(ZONE, "IXFR", use_edns=0).to_wire())
    signed = dns.message.make_query(ZONE, "SOA")
    signed.use_tsig(dns.tsigkeyring.from_text({"zk": SECRET}), "zk")
    assert needs_dispatch(signed.to_wire())
    assert not needs_dispatch(dns.message.make_query(ZONE, "A").to_wire())
    assert not needs_dispatch(dns.message.make_query(ZONE, "A", use_edns=0).to_wire())
    notify = dns.message.make_query(ZONE, "SOA")
    notify.set_opcode(dns.opcode.Opcode.NOTIFY)
    assert needs_dispatch(notify.to_wire())  # for a secondary zone, from its primary
    assert not needs_dispatch(b"\x00" * 11)
