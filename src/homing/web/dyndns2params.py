"""The dyndns2 request's parameters as routers and clients send them, read into named actions.

Routers are set up from other providers' help pages, so the address parameters of the
common ones are all read, with deSEC's meaning where providers disagree. Each record
type takes its action from the first of its parameters that speaks for it:

| record | parameters, in order           |
|--------|--------------------------------|
| A      | myip, myipv4, ip               |
| AAAA   | myipv6, ipv6, myip, ip         |

A parameter speaks for a type when its value (a comma list) is:

| value                             | action for the type                             |
|-----------------------------------|-------------------------------------------------|
| empty (`myipv4=`)                 | SetIPs(): the RRset is deleted                  |
| `preserve`                        | PreserveIPs: the RRset stays as it is           |
| an address of the type's family   | SetIPs(address)                                 |
| a network of the family (`P/LEN`) | SetSubnet: stored addresses take its network bits |

An IPv6 network so given is also the prefix for the host's prefix hosts.

A value with nothing of the type's family (`myip=192.0.2.1` for AAAA) does not speak for
it, and the next parameter is read. A type no parameter speaks for stays as it is: an
update that names any address parameter never falls back to the request's source
address (deSEC would use it, or delete the type). Only a request that names none of them
publishes the source address, in its own family.

`ip6lanprefix` (the FRITZ!Box's LAN prefix placeholder) is the prefix for the prefix
hosts, ahead of a network in the AAAA parameters; it changes nothing of the host's own.

Dyn's `wildcard`, `mx` and `backmx` options are not offered: a request asking for one
(`wildcard=ON`, `mx=NAME`, `backmx=YES`) is refused as a bad request and changes nothing;
the values that ask for nothing (`NOCHG`, `OFF`, `NO`, empty) are accepted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from homing.domain.actions import (
    FamilyAction,
    Network,
    PreserveIPs,
    SetIPs,
    SetSubnet,
    parse_prefix,
)
from homing.domain.addresses import AddressSet, IPAddress, address_problem, parse_address
from homing.domain.errors import InvalidAddress

# Which parameters speak for each record type, in the order they are read (deSEC's).
FAMILY_PARAMS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("A", 4, ("myip", "myipv4", "ip")),
    ("AAAA", 6, ("myipv6", "ipv6", "myip", "ip")),
)
PREFIX_PARAM = "ip6lanprefix"
# Naming any of these turns off the source address.
ADDRESS_PARAMS = frozenset({"myip", "myipv4", "myipv6", "ip", "ipv6", PREFIX_PARAM})
PRESERVE = "preserve"

# Dyn's options homing does not offer, and the values that would ask for them (upper
# case); None: any value but those that ask for nothing.
NOT_OFFERED: dict[str, frozenset[str] | None] = {
    "wildcard": frozenset({"ON", "YES"}),
    "backmx": frozenset({"YES", "ON"}),
    "mx": None,
}
_ASK_NOTHING = frozenset({"", "NOCHG", "NO", "OFF"})


class _Value:
    """One address parameter's value, read once: empty, `preserve`, or addresses and
    networks by IP version."""

    __slots__ = ("addresses", "empty", "networks", "preserve")

    def __init__(self, raw: str, allow_local: bool) -> None:
        items = [item.strip() for item in raw.split(",")]
        items = [item for item in items if item]
        self.empty = not items
        self.preserve = False
        self.addresses: dict[int, list[IPAddress]] = {}
        self.networks: dict[int, list[Network]] = {}
        for item in items:
            if item.lower() == PRESERVE:
                self.preserve = True
            elif "/" in item:
                network = _network(item, allow_local)
                self.networks.setdefault(network.version, []).append(network)
            else:
                address = parse_address(item, allow_local=allow_local)
                self.addresses.setdefault(address.version, []).append(address)
        if self.preserve and len(items) > 1:
            raise InvalidAddress(f"{PRESERVE!r} cannot come with addresses in one parameter")

    def action(self, version: int) -> tuple[FamilyAction | None, Network | None]:
        """The action this value gives the family (None: it does not speak for it), and
        the family's network when it carries one."""
        if self.empty:
            return SetIPs(), None
        if self.preserve:
            return PreserveIPs(), None
        addresses = set(self.addresses.get(version, ()))
        networks = set(self.networks.get(version, ()))
        if len(addresses) > 1:
            raise InvalidAddress(f"more than one IPv{version} address")
        if len(networks) > 1:
            raise InvalidAddress(f"more than one IPv{version} network")
        network = next(iter(networks), None)
        if addresses:
            if network is not None and version == 4:
                raise InvalidAddress("an IPv4 address and an IPv4 network in one parameter")
            return SetIPs((str(addresses.pop()),)), network
        if network is not None:
            return SetSubnet(network), network
        return None, None


def _network(text: str, allow_local: bool) -> Network:
    """`ADDRESS/LEN`, whose addresses may be published (checked on its first host)."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidAddress(f"not an IP network: {text[:64]!r}") from exc
    if network.prefixlen == 0:
        raise InvalidAddress(f"a network needs a length above 0: {text[:64]!r}")
    problem = address_problem(network.network_address + 1, allow_local=allow_local)
    if problem is not None:
        raise InvalidAddress(problem)
    return network


def names_addresses(params: Mapping[str, str]) -> bool:
    """True when the request names an address parameter (so never the source address)."""
    return not ADDRESS_PARAMS.isdisjoint(params)


def address_set(params: Mapping[str, str], *, allow_local: bool = False) -> AddressSet:
    """The actions of a request that names an address parameter (see the tables above);
    InvalidAddress when a value is not an address, network or keyword, or contradicts
    itself."""
    raw = params.get("myip")
    if raw is not None and _only_myip(params) and "," not in raw and "/" not in raw:
        # The common update, `myip=ADDRESS` alone: that address's family is set and the
        # other left alone, as the table reads it, without building the table's values.
        text = raw.strip()
        if text and text.lower() != PRESERVE:
            return AddressSet.of(parse_address(text, allow_local=allow_local))
    values: dict[str, _Value] = {}
    chosen: dict[int, IPAddress | None] = {4: None, 6: None}
    others: list[tuple[str, FamilyAction]] = []
    prefix: Network | None = None
    for rtype, version, names in FAMILY_PARAMS:
        for name in names:
            raw = params.get(name)
            if raw is None:
                continue
            value = values.get(name)
            if value is None:
                value = values[name] = _Value(raw, allow_local)
            action, network = value.action(version)
            if action is None:
                continue
            if isinstance(action, SetIPs) and action.texts:
                chosen[version] = value.addresses[version][0]  # the one, as parsed
            elif not isinstance(action, PreserveIPs):
                others.append((rtype, action))
            if version == 6:
                prefix = network
            break
    lan_prefix = params.get(PREFIX_PARAM, "").strip()
    if lan_prefix:
        prefix = parse_prefix(lan_prefix)
        problem = address_problem(prefix.network_address + 1, allow_local=allow_local)
        if problem is not None:
            raise InvalidAddress(problem)
    ipv4, ipv6 = chosen[4], chosen[6]
    assert not isinstance(ipv4, ipaddress.IPv6Address)
    assert not isinstance(ipv6, ipaddress.IPv4Address)
    assert not isinstance(prefix, ipaddress.IPv4Network)
    return AddressSet(ipv4, ipv6, tuple(others), prefix)


def _only_myip(params: Mapping[str, str]) -> bool:
    """True when `myip` is the request's only address parameter."""
    return sum(name in ADDRESS_PARAMS for name in params) == 1


def not_offered(params: Mapping[str, str]) -> str | None:
    """The first of Dyn's options the request asks for that homing does not offer, or None."""
    for name, asking in NOT_OFFERED.items():
        value = params.get(name)
        if value is None:
            continue
        upper = value.strip().upper()
        if upper in _ASK_NOTHING:
            continue
        if asking is None or upper in asking:
            return name
    return None


def hostnames_of(params: Mapping[str, str]) -> list[str] | None:
    """The `hostname` list (None when absent: the hosts the credentials stand for); Dyn's
    first protocol sends `hostname=YES` and the name in `host_id`."""
    raw = params.get("hostname")
    if raw is None:
        return None
    if raw == "YES" and "host_id" in params:
        raw = params["host_id"]
    return [part.strip() for part in raw.split(",") if part.strip()]
