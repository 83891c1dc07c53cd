"""Pure domain values: host names, addresses, outcomes."""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote

import pytest

from homing.domain.addresses import AddressSet, parse_address
from homing.domain.errors import InvalidAddress, InvalidName
from homing.domain.names import in_zone, normalize, relative_label, zone_for
from homing.domain.outcomes import Outcome


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Cam.Dyn.Example.NET.", "cam.dyn.example.net"),
        ("  host.example  ", "host.example"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c1.example", "a-b.c1.example"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", ".", "-a.example", "a-.example", "a..example", "a_b.example", "*.example", "a b.example",
     "x" * 64 + ".example", ".".join(["a" * 60] * 5), "exa%mple.com", "\x00.example"],
)  # fmt: skip
def test_normalize_refuses(text: str) -> None:
    with pytest.raises(InvalidName):
        normalize(text)


def test_zone_membership() -> None:
    zones = frozenset({"example.net", "dyn.example.net"})
    assert zone_for("cam.dyn.example.net", zones) == "dyn.example.net"
    assert zone_for("www.example.net", zones) == "example.net"
    assert zone_for("example.org", zones) is None
    assert in_zone("dyn.example.net", "dyn.example.net")
    assert not in_zone("xdyn.example.net", "dyn.example.net")
    assert relative_label("cam.dyn.example.net", "dyn.example.net") == "cam"


def test_addresses() -> None:
    assert str(parse_address("2001%3adb8%3a%3a1")) == "2001:db8::1"
    assert str(parse_address("::ffff:192.0.2.1")) == "192.0.2.1"
    assert str(parse_address("[2001:db8::2]")) == "2001:db8::2"
    pair = AddressSet.parse(["192.0.2.1", "2001:db8::1"])
    assert pair.to_text() == "192.0.2.1,2001:db8::1"
    for bad in (["192.0.2.1", "192.0.2.2"], ["0.0.0.0"], ["ff02::1"], ["1.2.3"], ["x" * 100]):
        with pytest.raises(InvalidAddress):
            AddressSet.parse(bad)


def test_every_outcome_has_wire_words() -> None:
    for outcome in Outcome:
        assert outcome.dyndns2 and outcome.description
        assert outcome.dvr == "ACT" or outcome.dvr.startswith("ERR 0x8000800")
    assert {o.dvr for o in Outcome if o.succeeded} == {"ACT"}


@pytest.mark.parametrize(
    "text",
    ["1.2.3.4", " 1.2.3.4\t", "255.255.255.255", "0.0.0.0", "01.2.3.4", "1.2.3.04", "1.2.3",
     "1.2.3.4.5", "256.1.1.1", "1.2.3.-1", "1.2.3.+1", "0x1.2.3.4", "1..3.4", "１.2.3.4",
     "1.2.3.4\x00", "1.2.3.4%00", "\ud800", "", "::ffff:1.2.3.4", "%5B::1%5D"],
)  # fmt: skip
def test_the_quick_ipv4_parse_agrees_with_ipaddress(text: str) -> None:
    # parse_address tries the C parser for a dotted quad first; ipaddress is the reference.
    candidate = unquote(text.strip()).removeprefix("[").removesuffix("]")
    try:
        expected = ipaddress.ip_address(candidate)
    except ValueError:
        with pytest.raises(InvalidAddress):
            parse_address(text)
        return
    if isinstance(expected, ipaddress.IPv6Address) and expected.ipv4_mapped is not None:
        expected = expected.ipv4_mapped
    if expected.is_unspecified or expected.is_reserved or expected.is_loopback:
        with pytest.raises(InvalidAddress):  # parsed, then refused by a publishing rule
            parse_address(text)
        return
    assert parse_address(text) == expected
