"""What Kea's D2 sends, parsed (RFC 4703's add, replace and remove with DHCID prerequisites),
and a policy key's reach through the keyring: no sockets."""

from __future__ import annotations

import dns.message
import dns.rdata
import dns.tsigkeyring
import dns.update

from homing.dns.tsig import Keyring, check
from homing.dns.update import parse_update
from homing.service.dnsupdate import Operation, Prerequisite
from homing.service.keypolicy import Grant
from homing.service.keys import TsigKey

ZONE = "lan.example.net"
REV = "77.99.10.in-addr.arpa"
SECRET = "L+ZBF39M36X744cbFmRi/HNC766UtmbCvUVb305/4mI="
DHCID = "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="
NAME = f"pc1.{ZONE}"
# The rdata text as stored and compared (dnspython's rendering, base64 in chunks).
STORED = dns.rdata.from_text("IN", "DHCID", DHCID).to_text()


def wire(update: dns.update.UpdateMessage) -> dns.message.Message:
    """The message as the server reads it off the wire."""
    return dns.message.from_wire(update.to_wire())


def test_d2_add_then_replace_then_remove() -> None:
    # The add: the name must not exist (RFC 4703 5.3.1).
    add = dns.update.UpdateMessage(ZONE)
    add.absent(f"{NAME}.")
    add.add(f"{NAME}.", 0, "A", "10.99.77.100")
    add.add(f"{NAME}.", 0, "DHCID", DHCID)
    parsed = parse_update(wire(add))
    assert parsed.zone == ZONE
    assert parsed.prerequisites == [Prerequisite("name_absent", NAME)]
    assert [op.kind for op in parsed.operations] == ["add", "add"]
    assert parsed.operations[1] == Operation("add", NAME, "DHCID", 0, STORED)

    # The replace: the DHCID there must be the client's own (5.3.2).
    replace = dns.update.UpdateMessage(ZONE)
    replace.present(f"{NAME}.", "DHCID", DHCID)
    replace.delete(f"{NAME}.", "A")
    replace.add(f"{NAME}.", 0, "A", "10.99.77.101")
    parsed = parse_update(wire(replace))
    assert parsed.prerequisites == [Prerequisite("rrset_equals", NAME, "DHCID", (STORED,))]
    assert parsed.operations[0] == Operation("delete_rrset", NAME, "A")

    # The remove's second step: the DHCID is ours and no address is left (5.5).
    remove = dns.update.UpdateMessage(ZONE)
    remove.present(f"{NAME}.", "DHCID", DHCID)
    remove.absent(f"{NAME}.", "A")
    remove.absent(f"{NAME}.", "AAAA")
    remove.delete(f"{NAME}.", "DHCID", DHCID)
    parsed = parse_update(wire(remove))
    assert Prerequisite("rrset_absent", NAME, "A") in parsed.prerequisites
    assert Prerequisite("rrset_absent", NAME, "AAAA") in parsed.prerequisites
    assert parsed.operations == [Operation("delete_rr", NAME, "DHCID", 0, STORED)]


def test_policy_key_in_the_keyring() -> None:
    grants = (Grant("subdomain", ZONE, frozenset({"A", "DHCID"})),)
    ring = Keyring([TsigKey("d2", "hmac-sha256", SECRET, ZONE, None, (REV,), grants)])
    update = dns.update.UpdateMessage(REV)
    update.add(f"100.{REV}.", 0, "PTR", f"{NAME}.")
    update.use_tsig(dns.tsigkeyring.from_text({"d2": ("hmac-sha256", SECRET)}), "d2")
    _, signer = check(update.to_wire(), ring)
    assert signer is not None
    assert signer.zones == (ZONE, REV) and signer.grants == grants and signer.host is None
