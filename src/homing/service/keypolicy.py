"""A zone key's update policy, in the manner of BIND's `update-policy`: which names, which types.

A key without a policy may change anything in its zones but the SOA and the apex NS. A
key with one may change only what a grant allows; each grant is one line of text:

    subdomain NAME [TYPE...]   NAME and every name below it
    name NAME [TYPE...]        NAME alone
    self [TYPE...]             the name that equals the key's own name

No type, or ANY, means every type. NAME must lie in one of the key's zones. A key with a
policy updates only: it does not transfer its zones (give a transfer key of its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import dns.rdatatype

from homing.domain.errors import HomingError
from homing.domain.names import in_zone, normalize

GrantKind = Literal["subdomain", "name", "self"]
KINDS: tuple[GrantKind, ...] = ("subdomain", "name", "self")
# Lines and types a policy may hold: enough for any real setup, bounded for the keyring.
MAX_GRANTS = 32
MAX_TYPES = 16
_NOT_GRANTABLE = frozenset({"SOA", "AXFR", "IXFR", "OPT", "TSIG", "TKEY", "MAILA", "MAILB"})


@dataclass(frozen=True)
class Grant:
    kind: GrantKind
    name: str  # the key's own name for `self`
    types: frozenset[str] | None  # None: every type

    def matches(self, name: str) -> bool:
        if self.kind == "subdomain":
            return in_zone(name, self.name)
        return name == self.name

    def to_text(self) -> str:
        types = " ".join(sorted(self.types)) if self.types is not None else "ANY"
        where = "" if self.kind == "self" else f" {self.name}"
        return f"{self.kind}{where} {types}"


def parse_grant(text: str, key_name: str) -> Grant:
    """One grant line; HomingError with the reason when malformed."""
    words = text.split()
    if not words or words[0].lower() not in KINDS:
        raise HomingError(
            f"grant {text!r}: start with one of {', '.join(KINDS)}"
            " (e.g. 'subdomain dhcp.example.net A AAAA DHCID')"
        )
    kind: GrantKind = words[0].lower()  # type: ignore[assignment]
    rest = words[1:]
    if kind == "self":
        name = key_name
    else:
        if not rest:
            raise HomingError(f"grant {text!r}: {kind} needs a name")
        name = normalize(rest[0])
        rest = rest[1:]
    if len(rest) > MAX_TYPES:
        raise HomingError(f"grant {text!r}: at most {MAX_TYPES} types")
    types: set[str] = set()
    for word in rest:
        rtype = word.upper()
        if rtype == "ANY":
            return Grant(kind, name, None)
        try:
            dns.rdatatype.from_text(rtype)
        except dns.rdatatype.UnknownRdatatype:
            raise HomingError(f"grant {text!r}: unknown type {word}") from None
        if rtype in _NOT_GRANTABLE:
            raise HomingError(f"grant {text!r}: {rtype} cannot be updated")
        types.add(rtype)
    return Grant(kind, name, frozenset(types) if types else None)


def parse_policy(lines: Iterable[str], key_name: str, zones: Iterable[str]) -> tuple[Grant, ...]:
    """A policy's grants; each grant's name must be in one of `zones`."""
    grants = tuple(parse_grant(line, key_name) for line in lines if line.strip())
    if len(grants) > MAX_GRANTS:
        raise HomingError(f"at most {MAX_GRANTS} grants per key")
    zone_list = list(zones)
    for grant in grants:
        if not any(in_zone(grant.name, zone) for zone in zone_list):
            raise HomingError(
                f"grant {grant.to_text()!r}: {grant.name} is in none of the key's zones"
                f" ({', '.join(zone_list)})"
            )
    return grants


def load_policy(text: str | None, key_name: str) -> tuple[Grant, ...] | None:
    """The stored policy (checked when it was added); None: no policy."""
    if text is None:
        return None
    return tuple(parse_grant(line, key_name) for line in text.split("\n") if line.strip())


def allowed_types(grants: tuple[Grant, ...], name: str) -> frozenset[str] | None:
    """The types the grants allow at `name`; None: every type; empty: none."""
    types: set[str] = set()
    for grant in grants:
        if grant.matches(name):
            if grant.types is None:
                return None
            types |= grant.types
    return frozenset(types)
