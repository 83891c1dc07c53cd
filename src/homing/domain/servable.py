"""Whether an RRset can be served: checked before a commit, and by `homing check`.

A value is servable when the DNS index can render it the way it renders every record:
owner name to wire, type known, TTL within RFC 2181's range, each rdata parsed from its
text and turned into wire under 64 KiB, and an A or AAAA address that may be published
(homing.domain.addresses; loopback and link-local are the operator's choice at the doors
that take addresses, so they pass here). Nothing here imports the DNS layer; the index
makes the same dnspython calls.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from socket import inet_pton

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from homing.domain.addresses import record_address_problem
from homing.domain.errors import InvalidAddress, UnservableRecord
from homing.domain.records import RRsetValue

MAX_TTL = 2**31 - 1  # RFC 2181 8
_MAX_RDATA = 65535
_ADDRESS_TYPES = frozenset(("A", "AAAA"))
# (family, first byte from which the special ranges start) of the address types.
_FAST_ADDRESS = {"A": (socket.AF_INET, 224), "AAAA": (socket.AF_INET6, 0xFE)}
# Labels of 1 to 63 characters that need no escaping: a store-form host name.
_plain_name = re.compile(r"[a-z0-9_*-]{1,63}(?:\.[a-z0-9_*-]{1,63})*").fullmatch


def _words(exc: Exception) -> str:
    """An exception's message on one line (dnspython wraps some of its own)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _name_problem(name: str) -> str | None:
    if len(name) < 254 and _plain_name(name) is not None:
        return None  # lower-case host-name labels: what nearly every owner is
    try:
        dns.name.from_text(name)
    except Exception as exc:  # every way a name fails to parse is the value's fault
        return f"owner name {name[:80]!r} is not a valid DNS name ({_words(exc)})"
    return None


def _rdata_problem(rtype: str, text: str) -> str | None:
    try:
        rdtype = dns.rdatatype.from_text(rtype)
        wire = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text).to_wire()
    except Exception as exc:  # dnspython's parse and render errors are of many kinds
        return f"{rtype} value {text[:80]!r} cannot be served ({_words(exc)})"
    if wire is None or len(wire) > _MAX_RDATA:
        return f"{rtype} value {text[:40]!r}... is longer than a record can be"
    return None


def _shape_problem(value: RRsetValue) -> str | None:
    """The owner name and the TTL."""
    problem = _name_problem(value.name)
    if problem is None and not 0 <= value.ttl <= MAX_TTL:
        problem = f"{value.name} {value.rtype}: TTL {value.ttl} is out of range"
    return problem


def _values_problem(value: RRsetValue) -> str | None:
    """The rdatas: A and AAAA take the cheap address check; other types are parsed and
    rendered by dnspython, as the index will."""
    fast = _FAST_ADDRESS.get(value.rtype)
    if fast is not None:
        family, below = fast
        for text in value.rdatas:
            try:
                if 0 < inet_pton(family, text)[0] < below:
                    continue  # unicast, and no special range starts below that first byte
            except (OSError, ValueError, TypeError):
                pass  # worded below
            problem = record_address_problem(value.rtype, text)
            if problem is not None:
                return f"{value.name} {value.rtype} {text[:64]!r}: {problem}"
        return None
    for text in value.rdatas:
        problem = _rdata_problem(value.rtype, text)
        if problem is not None:
            return f"{value.name}: {problem}"
    return None


def rrset_problem(value: RRsetValue) -> str | None:
    """Why this RRset could not be served (naming name, type and value), or None.
    A deletion (no rdatas) is always servable."""
    if not value.rdatas:
        return None
    return _shape_problem(value) or _values_problem(value)


def check_servable(values: Iterable[RRsetValue]) -> None:
    """Raise on the first RRset that could not be served: InvalidAddress for an A or AAAA
    value, UnservableRecord for anything else."""
    for value in values:
        if not value.rdatas:
            continue
        problem = _shape_problem(value)
        if problem is not None:
            raise UnservableRecord(problem)
        problem = _values_problem(value)
        if problem is not None:
            if value.rtype in _ADDRESS_TYPES:
                raise InvalidAddress(problem)
            raise UnservableRecord(problem)
