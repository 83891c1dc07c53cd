"""RRSIG and NSEC3 records from their zone-file text to wire without dnspython's parser:
a signed zone holds one of each per name, and loading a large zone parses them all.

Only the forms the signer writes are read here (a lower-case signer name without
escapes, 14-digit times, SHA-1 hashes); for anything else `None` sends the text to
dnspython, which gives an error its usual words.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import functools
import struct

import dns.rdatatype

__all__ = ["nsec3_wire", "rrsig_wire"]

_RRSIG_FIXED = struct.Struct("!HBBLLLH")  # covered type, algorithm, labels, TTL, times, tag
_NSEC3_FIXED = struct.Struct("!BBH")  # hash algorithm, flags, iterations
_TYPES: dict[str, int] = {}


def _type(text: str) -> int:
    number = _TYPES.get(text)
    if number is None:
        number = _TYPES[text] = int(dns.rdatatype.from_text(text))
    return number


def _time(text: str) -> int:
    if len(text) == 14 and text.isdigit():
        fields = (
            int(text[0:4]), int(text[4:6]), int(text[6:8]),
            int(text[8:10]), int(text[10:12]), int(text[12:14]),
        )  # fmt: skip
        return calendar.timegm(fields)
    raise ValueError(text)


@functools.lru_cache(maxsize=1024)  # the signer: the zone, the same in every record
def _name(text: str) -> bytes:
    if not text.endswith(".") or "\\" in text or not text.isascii():
        raise ValueError(text)
    wire = b""
    for label in text[:-1].encode().split(b".") if text != "." else ():
        if not 0 < len(label) < 64:
            raise ValueError(text)
        wire += bytes((len(label),)) + label.lower()
    return wire + b"\x00"


def rrsig_wire(text: str) -> bytes | None:
    """The wire of an RRSIG record's text; None for a form left to dnspython."""
    try:
        covered, algorithm, labels, ttl, expiration, inception, tag, signer, *signature = (
            text.split()
        )
        fixed = _RRSIG_FIXED.pack(
            _type(covered.upper()),
            int(algorithm),
            int(labels),
            int(ttl),
            _time(expiration),
            _time(inception),
            int(tag),
        )
        return fixed + _name(signer) + base64.b64decode("".join(signature), validate=True)
    except (ValueError, struct.error, binascii.Error, dns.rdatatype.UnknownRdatatype):
        return None


def nsec3_wire(text: str) -> bytes | None:
    """The wire of an NSEC3 record's text; None for a form left to dnspython."""
    try:
        algorithm, flags, iterations, salt, following, *types = text.split()
        salt_wire = b"" if salt == "-" else bytes.fromhex(salt)
        digest = base64.b32hexdecode(following.upper())
        windows: dict[int, bytearray] = {}
        for name in types:
            number = _type(name.upper())
            bits = windows.setdefault(number >> 8, bytearray(32))
            bits[(number & 0xFF) >> 3] |= 0x80 >> (number & 7)
        bitmap = b""
        for window, filled in sorted(windows.items()):
            used = filled.rstrip(b"\x00")
            bitmap += bytes((window, len(used))) + bytes(used)
        return (
            _NSEC3_FIXED.pack(int(algorithm), int(flags), int(iterations))
            + bytes((len(salt_wire),))
            + salt_wire
            + bytes((len(digest),))
            + digest
            + bitmap
        )
    except (ValueError, struct.error, binascii.Error, dns.rdatatype.UnknownRdatatype):
        return None
