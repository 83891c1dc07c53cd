"""The publishing rules against a reference written with ipaddress's own classification,
over the edges of every range and many random addresses."""

from __future__ import annotations

import contextlib
import ipaddress
import random

import pytest

from homing.domain.addresses import (
    IPAddress,
    address_problem,
    check_record_address,
    parse_address,
    record_address_problem,
)
from homing.domain.errors import InvalidAddress

V4_NEVER = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")]
V6_COMPATIBLE = ipaddress.ip_network("::/96")


def reference(address: IPAddress, allow_local: bool) -> bool:
    """True when the address may be published."""
    if isinstance(address, ipaddress.IPv4Address):
        if any(address in net for net in V4_NEVER):
            return False
    elif (
        address.is_unspecified
        or address.is_multicast
        or address.is_site_local
        or address.ipv4_mapped is not None
        or (address in V6_COMPATIBLE and not address.is_loopback)
    ):
        return False
    return allow_local or not (address.is_loopback or address.is_link_local)


def edges() -> list[IPAddress]:
    nets = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/96", "::/128",
        "::1/128", "::ffff:0:0/96", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
        "2001:db8::/32", "64:ff9b::/96",
    ]  # fmt: skip
    found: list[IPAddress] = []
    for text in nets:
        net = ipaddress.ip_network(text)
        for address in (net.network_address, net.broadcast_address):
            for step in (-1, 0, 1):
                with contextlib.suppress(ipaddress.AddressValueError):  # past either end
                    found.append(address + step)
    return found


def randoms(count: int = 20_000) -> list[IPAddress]:
    rng = random.Random(2136)
    found: list[IPAddress] = []
    for _ in range(count):
        if rng.random() < 0.5:
            found.append(ipaddress.IPv4Address(rng.getrandbits(32)))
        else:
            # Bias the first bytes towards the special ranges, all of which start there.
            head = rng.choice([0x00, 0x00, 0xFC, 0xFD, 0xFE, 0xFF, 0x20, rng.getrandbits(8)])
            rest = rng.getrandbits(120) if rng.random() < 0.7 else rng.getrandbits(24)
            found.append(ipaddress.IPv6Address((head << 120) | rest))
    return found


@pytest.mark.parametrize("allow_local", [False, True])
def test_the_rules_agree_with_the_reference(allow_local: bool) -> None:
    for address in edges() + randoms():
        expected = reference(address, allow_local)
        assert (address_problem(address, allow_local=allow_local) is None) == expected, address
        rtype = "A" if address.version == 4 else "AAAA"
        problem = record_address_problem(rtype, str(address), allow_local=allow_local)
        assert (problem is None) == expected, address
        if expected and not (address.version == 6 and address.ipv4_mapped):
            assert parse_address(str(address), allow_local=allow_local) == address
        elif not expected and address.version == 4:
            with pytest.raises(InvalidAddress):
                parse_address(str(address), allow_local=allow_local)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("fe80::1%25eth0", "scope IDs are not allowed"),
        ("fe80::1%eth0", "scope IDs are not allowed"),
        ("2001:db8::1%1", "scope IDs are not allowed"),
        ("[fe80::1%25eth0]", "scope IDs are not allowed"),
        ("::ffff:192.0.2.1%eth0", "scope IDs are not allowed"),
        ("255.255.255.255", "broadcast address"),
        ("240.0.0.1", "reserved addresses (240.0.0.0/4)"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified address"),
        ("0.1.2.3", "'this network'"),
        ("::", "unspecified address"),
        ("::192.0.2.1", "IPv4-compatible"),
        ("fec0::1", "site-local"),
        ("127.0.0.1", "loopback addresses are not allowed"),
        ("::ffff:127.0.0.1", "loopback addresses are not allowed"),
        ("::1", "loopback addresses are not allowed"),
        ("169.254.0.1", "link-local addresses are not allowed"),
        ("fe80::1", "link-local addresses are not allowed"),
        ("x" * 1000, "not an IP address"),
    ],
)
def test_each_refusal_names_its_rule(text: str, rule: str) -> None:
    with pytest.raises(InvalidAddress, match=rule.replace("(", r"\(").replace(")", r"\)")):
        parse_address(text)


@pytest.mark.parametrize(
    "text",
    ["10.1.2.3", "172.31.0.1", "192.168.0.1", "100.64.0.1", "fd00::1", "fc00::1", "192.0.2.1"],
)
def test_private_and_documentation_ranges_are_published(text: str) -> None:
    assert str(parse_address(text)) == text


def test_a_record_value_with_a_scope_is_named_as_such() -> None:
    assert (
        record_address_problem("AAAA", "fe80::1%eth0") == "scope IDs are not allowed in an address"
    )
    assert record_address_problem("A", "1.2.3") == "not an IPv4 address: '1.2.3'"
    assert record_address_problem("A", "127.0.0.1") is None  # the commit check allows local
    with pytest.raises(InvalidAddress, match="loopback"):
        check_record_address("A", "127.0.0.1")
    check_record_address("A", "127.0.0.1", allow_local=True)
