"""The dyndns2 parameter table as a pure function: each row of its docstring, and any
mix of parameters read without surprises."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from homing.domain.actions import SetIPs, SetSubnet
from homing.domain.errors import InvalidAddress
from homing.web.dyndns2params import (
    ADDRESS_PARAMS,
    address_set,
    hostnames_of,
    names_addresses,
    not_offered,
)


def summary(params: dict[str, str]) -> tuple[dict[str, object], str | None]:
    found = address_set(params)
    return dict(found.actions), None if found.prefix is None else str(found.prefix)


@pytest.mark.parametrize(
    ("params", "actions", "prefix"),
    [
        ({"myip": "192.0.2.1"}, {"A": SetIPs(("192.0.2.1",))}, None),
        ({"myipv6": "2001:db8::1"}, {"AAAA": SetIPs(("2001:db8::1",))}, None),
        ({"myip": ""}, {"A": SetIPs(), "AAAA": SetIPs()}, None),
        (
            {"myipv4": "", "myipv6": "2001:db8::1"},
            {"A": SetIPs(), "AAAA": SetIPs(("2001:db8::1",))},
            None,
        ),
        ({"myipv4": "preserve", "myipv6": ""}, {"AAAA": SetIPs()}, None),
        ({"myip": "PRESERVE"}, {}, None),
        ({"myip": "192.0.2.1,"}, {"A": SetIPs(("192.0.2.1",))}, None),  # FRITZ!Box, no IPv6
        ({"myip": "192.0.2.1", "myipv4": "192.0.2.2"}, {"A": SetIPs(("192.0.2.1",))}, None),
        (
            {"myipv6": "2001:db8::1", "myip": "2001:db8::2"},
            {"AAAA": SetIPs(("2001:db8::1",))},
            None,
        ),
        ({"ip": "192.0.2.3", "ipv6": ""}, {"A": SetIPs(("192.0.2.3",)), "AAAA": SetIPs()}, None),
        (
            {"myip": "192.0.2.1,2001:db8:4::/64"},
            {
                "A": SetIPs(("192.0.2.1",)),
                "AAAA": SetSubnet(ipaddress.ip_network("2001:db8:4::/64")),
            },
            "2001:db8:4::/64",
        ),
        (
            {"myipv6": "2001:db8::9,2001:db8:4::/64"},
            {"AAAA": SetIPs(("2001:db8::9",))},
            "2001:db8:4::/64",
        ),
        ({"ip6lanprefix": "2001:db8:5::/56"}, {}, "2001:db8:5::/56"),
        ({"ip6lanprefix": ""}, {}, None),
        (
            {"myipv6": "2001:db8:4::/64", "ip6lanprefix": "2001:db8:6::/64"},
            {"AAAA": SetSubnet(ipaddress.ip_network("2001:db8:4::/64"))},
            "2001:db8:6::/64",  # the dedicated parameter wins
        ),
    ],
)
def test_table_rows(params: dict[str, str], actions: dict[str, object], prefix: str | None) -> None:
    assert summary(params) == (actions, prefix)


def test_names_addresses_and_hostnames() -> None:
    assert not names_addresses({"hostname": "h", "system": "dyndns"})
    assert all(names_addresses({name: ""}) for name in ADDRESS_PARAMS)
    assert hostnames_of({"hostname": "a.example, b.example"}) == ["a.example", "b.example"]
    assert hostnames_of({"hostname": "YES", "host_id": "c.example"}) == ["c.example"]
    assert hostnames_of({}) is None


@pytest.mark.parametrize(
    ("params", "refused"),
    [
        ({"wildcard": "ON"}, "wildcard"),
        ({"wildcard": "on"}, "wildcard"),
        ({"wildcard": "OFF", "mx": "NOCHG", "backmx": "NOCHG"}, None),
        ({"mx": ""}, None),
        ({"mx": "mail.example.org"}, "mx"),
        ({"backmx": "YES"}, "backmx"),
        ({"backmx": "NO"}, None),
    ],
)
def test_options_not_offered(params: dict[str, str], refused: str | None) -> None:
    assert not_offered(params) == refused


_VALUE = st.sampled_from(
    ["", "preserve", "192.0.2.1", "2001:db8::1", "2001:db8:1::/64", "192.0.2.0/24", "x", ",", "::"]
)


@given(
    st.dictionaries(
        st.sampled_from(sorted(ADDRESS_PARAMS)), st.lists(_VALUE, max_size=3).map(",".join)
    )
)
def test_any_mix_is_actions_or_invalid_address(params: dict[str, str]) -> None:
    try:
        found = address_set(params)
    except InvalidAddress:
        return
    types = [rtype for rtype, _ in found.actions]
    assert len(types) == len(set(types)) and set(types) <= {"A", "AAAA"}
    for rtype, action in found.actions:
        if isinstance(action, SetIPs):
            assert all(
                ipaddress.ip_address(t).version == (4 if rtype == "A" else 6) for t in action.texts
            )
