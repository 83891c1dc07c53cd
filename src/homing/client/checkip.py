"""Check-IP answers: finding the address in a body, and agreeing among several sources."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from homing.client.config import Family
from homing.domain.addresses import IPAddress

_IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6_RE = re.compile(
    r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])"
)


def _family(address: IPAddress) -> Family:
    return 4 if isinstance(address, ipaddress.IPv4Address) else 6


def parse_checkip(body: str, family: Family) -> IPAddress | None:
    """The first address of `family` in a check-IP answer: JSON `{"ip": ...}`, homing's and
    dyndns's `Current IP Address: A.B.C.D` HTML, or a bare address."""
    text = body.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("ip", "address", "ip_addr"):
                value = data.get(key)
                if isinstance(value, str):
                    try:
                        address = ipaddress.ip_address(value.strip())
                    except ValueError:
                        continue
                    if _family(address) == family:
                        return address
    pattern = _IPV4_RE if family == 4 else _IPV6_RE
    for match in pattern.finditer(text):
        try:
            address = ipaddress.ip_address(match.group(0))
        except ValueError:
            continue
        if _family(address) == family:
            return address
    return None


@dataclass(frozen=True)
class Agreement:
    address: IPAddress | None
    detail: str


def agree(answers: Sequence[IPAddress | None], needed: int) -> Agreement:
    """The address at least `needed` sources reported, if no other address did as well."""
    counts = Counter(a for a in answers if a is not None)
    answered = sum(counts.values())
    if not counts:
        return Agreement(None, f"no check-IP source answered (of {len(answers)})")
    ranked = counts.most_common()
    best, votes = ranked[0]
    if len(ranked) > 1 and ranked[1][1] == votes:
        shown = ", ".join(f"{a} ({n})" for a, n in ranked)
        return Agreement(None, f"check-IP sources disagree: {shown}")
    if votes < needed:
        if len(ranked) > 1:
            shown = ", ".join(f"{a} ({n})" for a, n in ranked)
            return Agreement(None, f"check-IP sources disagree: {shown}; {needed} must agree")
        return Agreement(
            None, f"only {answered} of {len(answers)} check-IP sources answered; {needed} needed"
        )
    return Agreement(best, f"{votes} of {len(answers)} check-IP sources report {best}")
