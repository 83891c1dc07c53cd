"""The named address actions and the prefix arithmetic prefix hosts are built on."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homing.domain.actions import (
    PreserveIPs,
    SetIPs,
    SetSubnet,
    iid_problem,
    parse_iid,
    parse_prefix,
    with_iid,
    with_prefix,
)
from homing.domain.errors import InvalidAddress


def test_actions_read_like_their_names() -> None:
    stored = ("2001:db8:1::1234", "2001:db8:1::5")
    assert SetIPs(("192.0.2.1",)).records(stored) == ("192.0.2.1",)
    assert SetIPs().records(stored) == ()  # deletes
    assert PreserveIPs().records(stored) == stored
    subnet = SetSubnet(ipaddress.ip_network("2001:db8:2::/48"))
    assert subnet.records(stored) == ("2001:db8:2::1234", "2001:db8:2::5")
    assert subnet.records(()) == ()  # nothing stored: nothing made up
    v4 = SetSubnet(ipaddress.ip_network("198.51.100.0/24"))
    assert v4.records(("192.0.2.7",)) == ("198.51.100.7",)


def test_prefix_and_iid_combine_by_the_usual_rule() -> None:
    prefix = parse_prefix("2001:db8:4:5::/64")
    iid = parse_iid("::1234:56ff:fe78:9abc")
    assert str(with_iid(prefix, iid)) == "2001:db8:4:5:1234:56ff:fe78:9abc"
    # Host bits in the prefix are dropped; a bare address is its /64.
    assert parse_prefix("2001:db8:4:5::99/64") == prefix
    assert parse_prefix("2001:db8:4:5::") == prefix
    assert str(with_iid(parse_prefix("2001:db8::/48"), parse_iid("0:0:0:1::2"))) == (
        "2001:db8:0:1::2"
    )


def test_an_iid_longer_than_the_host_part_is_refused() -> None:
    iid = parse_iid("1::1")
    assert iid_problem(iid, 64) is not None
    with pytest.raises(InvalidAddress, match="longer than the host part"):
        with_iid(parse_prefix("2001:db8::/64"), iid)
    assert iid_problem(parse_iid("::ffff:ffff:ffff:ffff"), 64) is None
    assert iid_problem(parse_iid("::1:0:0:0:0"), 64) is not None


@pytest.mark.parametrize("text", ["", "nonsense", "192.0.2.0/24", "2001:db8::/0", "::/128"])
def test_bad_prefixes(text: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_prefix(text)


@pytest.mark.parametrize("text", ["", "::", "1.2.3.4", "::1%eth0x"])
def test_bad_iids(text: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_iid(text)


@given(
    st.integers(min_value=0, max_value=2**128 - 1),
    st.integers(min_value=8, max_value=120),
    st.integers(min_value=1, max_value=2**128 - 1),
)
def test_with_iid_keeps_the_prefix_bits_and_the_iid_bits(
    network: int, length: int, iid_value: int
) -> None:
    prefix = ipaddress.IPv6Network((network, length), strict=False)
    iid = ipaddress.IPv6Address(iid_value)
    if iid_problem(iid, length) is not None:
        with pytest.raises(InvalidAddress):
            with_iid(prefix, iid)
        return
    address = with_iid(prefix, iid)
    assert address in prefix
    assert int(address) & int(prefix.hostmask) == iid_value
    assert with_prefix(prefix, str(address)) == address
