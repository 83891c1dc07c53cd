"""Host and zone names: normalisation (IDNA) and zone membership."""

from __future__ import annotations

import functools
import re

import dns.exception
import dns.name

from homing.domain.errors import InvalidName

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_NAME = 253


_PLAIN = re.compile(r"^(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)*(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize(text: str) -> str:
    """Lower-case, IDNA-encoded, dot-free-at-the-end form of a host or zone name.

    Raises InvalidName for anything that is not a syntactically valid DNS host name.
    """
    candidate = text.strip().rstrip(".").lower()
    if len(candidate) <= _MAX_NAME and _PLAIN.match(candidate):
        return candidate  # already plain ASCII host-name syntax: nothing for IDNA to do
    return _normalize_idna(candidate, text)


@functools.lru_cache(maxsize=4096)
def _normalize_idna(candidate: str, text: str) -> str:
    if not candidate or len(candidate) > _MAX_NAME * 2:
        raise InvalidName(text)
    try:
        ascii_name = dns.name.from_unicode(candidate).to_text(omit_final_dot=True).lower()
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise InvalidName(text) from exc
    labels = ascii_name.split(".")
    if len(ascii_name) > _MAX_NAME or any(not _LABEL.match(label) for label in labels):
        # Host names follow the LDH rule; underscores and wildcards are not host names.
        raise InvalidName(text)
    return ascii_name


def is_fqdn(name: str) -> bool:
    """A host name with at least one dot (what dyndns2 calls a fully qualified name)."""
    return "." in name


def in_zone(name: str, zone: str) -> bool:
    """True when normalised `name` is `zone` itself or below it."""
    return name == zone or name.endswith("." + zone)


def zone_for(name: str, zones: set[str] | frozenset[str]) -> str | None:
    """The longest zone in `zones` that contains `name`, or None."""
    labels = name.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in zones:
            return candidate
    return None


def relative_label(name: str, zone: str) -> str:
    """The part of `name` in front of `zone` ('' for the apex)."""
    if name == zone:
        return ""
    return name[: -(len(zone) + 1)]
