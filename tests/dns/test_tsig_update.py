"""TSIG checking and error answers, UPDATE section parsing, the dispatch pre-check: no sockets."""

from __future__ import annotations

import time

import dns.exception
import dns.flags
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
from homing.dns.responses import response_to
from homing.dns.tsig import Keyring, TsigRejected, check, rejection_wire
from homing.dns.update import parse_update
from homing.service.dnsupdate import Operation, Prerequisite, UpdateRefused
from homing.service.keys import TsigKey
from tests.dns.tsigwire import (
    digest_input,
    forgery,
    hmac_of,
    prefixed,
    signing_oracle,
    with_mac,
)

ZONE = "dyn.example.net"
SECRET = "L+ZBF39M36X744cbFmRi/HNC766UtmbCvUVb305/4mI="
MD5 = "HMAC-MD5.SIG-ALG.REG.INT"  # the wire name nsupdate sends for hmac-md5
OTHER = "AAAAF39M36X744cbFmRi/HNC766UtmbCvUVb305/4mI="
KEY = dns.tsig.Key("zk", SECRET, dns.tsig.HMAC_SHA256)


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
    message, signer = check(signed_update(), keyring())
    assert message.had_tsig and message.keyname == dns.name.from_text("zk")
    assert signer is not None and signer.name == "zk" and signer.host is None
    # The answer to a verified request is signed, over the request's MAC.
    response = dns.message.make_response(message)
    dns.message.from_wire(
        response.to_wire(),
        keyring=dns.tsigkeyring.from_text({"zk": SECRET}),
        request_mac=message.mac,
    )


def test_unsigned_passes_without_a_signer() -> None:
    update = dns.update.UpdateMessage(ZONE)
    message, signer = check(update.to_wire(), keyring())
    assert signer is None and not message.had_tsig


def unsigned_answer(rejected: TsigRejected) -> dns.message.Message:
    """The error answer, read as a client does; it must carry no MAC."""
    response = dns.message.from_wire(rejection_wire(rejected), keyring=False)
    assert response.rcode() == dns.rcode.Rcode.NOTAUTH
    assert response.tsig_error == rejected.error
    assert response.mac == b""
    return response


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
    with pytest.raises(TsigRejected) as caught:
        check(wire, keyring())
    assert caught.value.error == error
    assert caught.value.key is None
    response = unsigned_answer(caught.value)
    assert response.opcode() == dns.opcode.Opcode.UPDATE


def test_md5_when_enabled() -> None:
    message, _ = check(signed_update(name="old", algorithm=MD5), keyring(allow_md5=True))
    assert message.keyname == dns.name.from_text("old")


def test_badtime_answer_is_signed_with_our_clock() -> None:
    wire = signed_update()
    request = dns.message.from_wire(wire, keyring=False)
    later = time.time() + 3600  # our clock an hour ahead of the client's
    with pytest.raises(TsigRejected) as caught:
        check(wire, keyring(), now=later)
    assert caught.value.error == dns.rcode.Rcode.BADTIME
    assert caught.value.key is not None  # the MAC verified: the answer may be signed
    reply = rejection_wire(caught.value, now=later)
    with pytest.raises(dns.tsig.PeerBadTime):
        dns.message.from_wire(
            reply, keyring=dns.tsigkeyring.from_text({"zk": SECRET}), request_mac=request.mac
        )
    response = dns.message.from_wire(reply, keyring=False)
    tsig = response.tsig[0]
    # Signed over the request's MAC with the request's time; our clock in the other data.
    assert tsig.time_signed == request.tsig[0].time_signed
    assert int.from_bytes(tsig.other, "big") == int(later)
    assert tsig.mac == hmac_of(KEY, prefixed(request.mac) + digest_input(reply))


def test_badtime_with_a_wrong_mac_is_badsig_unsigned() -> None:
    """A bad time is only reported, and signed, for a request whose MAC verified."""
    wire = signed_update(OTHER)
    with pytest.raises(TsigRejected) as caught:
        check(wire, keyring(), now=time.time() - 3600)
    assert caught.value.error == dns.rcode.Rcode.BADSIG
    unsigned_answer(caught.value)


@pytest.mark.parametrize("size", [0, 1, 9, 15, 33, 200])
def test_macs_of_a_size_rfc_8945_forbids_are_formerr(size: int) -> None:
    """RFC 8945 5.2.2.1: below max(10, half the hash) or above the hash: FORMERR."""
    wire = with_mac(signed_update(), b"\x5a" * size)
    with pytest.raises(dns.exception.FormError):
        check(wire, keyring())


def test_a_truncated_mac_that_verifies_is_badtrunc_signed() -> None:
    """Truncation RFC 8945 allows (16 of 32 bytes) but our policy does not: BADTRUNC."""
    wire = signed_update()
    mac = dns.message.from_wire(wire, keyring=False).mac
    truncated = with_mac(wire, mac[:16])
    with pytest.raises(TsigRejected) as caught:
        check(truncated, keyring())
    assert caught.value.error == dns.rcode.Rcode.BADTRUNC
    reply = rejection_wire(caught.value)
    response = dns.message.from_wire(reply, keyring=False)
    assert response.tsig_error == dns.rcode.Rcode.BADTRUNC
    assert response.mac == hmac_of(KEY, prefixed(mac[:16]) + digest_input(reply))
    # The same truncation of a wrong MAC proves nothing: BADSIG, unsigned.
    with pytest.raises(TsigRejected) as caught:
        check(with_mac(wire, bytes(16)), keyring())
    assert caught.value.error == dns.rcode.Rcode.BADSIG
    unsigned_answer(caught.value)


def test_forged_update_from_a_signed_error_answer_is_impossible() -> None:
    """The CVE-2017-3143 construction (see tests/dns/tsigwire.py): first shown to work
    against a server that signs its BADTIME answer before checking the MAC (what homing
    did with dnspython < 2.9), then against homing, whose answers give nothing to build on.
    """
    ring = keyring()
    forge = forgery("zk", dns.tsig.HMAC_SHA256, ZONE, f"evil.{ZONE}", "203.0.113.66")

    message, _ = check(forge.finish(signing_oracle(forge.request, KEY)), ring)
    assert message.update[0].to_text() == f"evil.{ZONE}. 60 IN A 203.0.113.66"

    # homing: the oversized MAC is malformed, and whatever the MAC, no answer is signed.
    with pytest.raises(dns.exception.FormError):
        check(forge.request, ring)
    for mac in (b"\x00" * 32, b"\x00" * 16):
        with pytest.raises(TsigRejected) as caught:
            check(with_mac(forge.request, mac), ring)
        assert caught.value.error == dns.rcode.Rcode.BADSIG
        assert unsigned_answer(caught.value).mac == b""
    # The forged UPDATE with the (empty) MAC homing's answers carry is malformed.
    answer = rejection_answer_of(with_mac(forge.request, bytes(32)), ring)
    with pytest.raises(dns.exception.FormError):
        check(forge.finish(answer), ring)


def rejection_answer_of(request: bytes, ring: Keyring) -> bytes:
    with pytest.raises(TsigRejected) as caught:
        check(request, ring)
    return rejection_wire(caught.value)


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


def test_answers_echo_the_do_bit() -> None:
    """RFC 3225 3: the verified answer and the TSIG error answer both copy DO."""
    update = dns.update.UpdateMessage(ZONE)
    update.use_edns(0, dns.flags.DO, 1232)
    update.use_tsig(dns.tsigkeyring.from_text({"zk": SECRET}), "zk")
    wire = update.to_wire()
    message, _ = check(wire, keyring())
    assert response_to(message).ednsflags & dns.flags.DO
    with pytest.raises(TsigRejected) as caught:
        check(with_mac(wire, bytes(32)), keyring())
    answer = dns.message.from_wire(rejection_wire(caught.value), keyring=False)
    assert answer.ednsflags & dns.flags.DO
