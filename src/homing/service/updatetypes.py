"""What an address update is made of: the operator's rules, the request, one host's answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from homing.domain.addresses import AddressSet
from homing.domain.errors import InvalidName
from homing.domain.names import is_fqdn, normalize
from homing.domain.outcomes import Outcome


@dataclass(frozen=True)
class UpdatePolicy:
    """The operator's abuse rules (from Settings)."""

    max_hosts_per_request: int = 20
    abuse_nochg_limit: int = 10
    abuse_window: int = 3600
    group_member_max_age: int = 3600
    badauth_limit: int = 5  # wrong secrets for a host within badauth_window: one alert
    badauth_window: int = 3600
    allow_local_addresses: bool = False  # loopback and link-local may be published


@dataclass(frozen=True)
class UpdateRequest:
    username: str
    password: str
    hostnames: list[str] | None  # None: the hosts the credentials stand for
    addresses: AddressSet
    via: str  # "dyndns2", "dvr", ...
    client_ip: str
    agent: str = ""


class HostResult(NamedTuple):
    """One requested host's answer (a named tuple, as RRsetValue: made per update)."""

    hostname: str
    outcome: Outcome
    addresses: AddressSet = AddressSet()  # frozen: one shared empty set is safe
    # A change's zone and journal serial (its last, when both A and AAAA changed): what a
    # hidden primary must have before the change is confirmed. None when nothing changed.
    zone: str | None = None
    serial: int | None = None

    def dyndns2_line(self) -> str:
        if self.outcome.carries_address and self.addresses.by_type:
            return f"{self.outcome.dyndns2} {self.addresses.to_text()}"
        return self.outcome.dyndns2


@dataclass(frozen=True)
class Grant:
    """Which host ids the credentials may update, and which they stand for by default."""

    allowed: frozenset[int]
    default_names: tuple[str, ...]
    group: str | None = None  # a group's secret: its own name stands for its members


def host_name(text: str) -> str | None:
    """The normalised FQDN in `text`, or None."""
    try:
        name = normalize(text)
    except InvalidName:
        return None
    return name if is_fqdn(name) else None


def answered(request: UpdateRequest, outcome: Outcome) -> list[HostResult]:
    """The same outcome for every host the request names."""
    return [HostResult(n, outcome) for n in request.hostnames or [request.username]]
