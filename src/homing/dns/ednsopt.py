"""EDNS options of our answers, as wire bytes: Extended DNS Errors (RFC 8914) and the
name server identifier (RFC 5001), and adding options to an answer already made."""

from __future__ import annotations

import struct

__all__ = [
    "EDE_NOT_AUTHORITATIVE",
    "NSID",
    "add_options",
    "find_option",
    "option",
    "with_ede",
]

NSID = 3  # RFC 5001
EDE = 15  # RFC 8914
EDE_NOT_AUTHORITATIVE_CODE = 20  # RFC 8914 4.21: a name outside the zones served here

_OPTION_HEAD = struct.Struct("!HH")
_LENGTH = struct.Struct("!H")
_OPT_TYPE = b"\x00\x29"  # after the root owner, the OPT record's type
_OPT_FIXED = 11  # root owner, type, payload, extended rcode, version, flags, rdlength


def option(code: int, data: bytes) -> bytes:
    """One EDNS option: code, length, data."""
    if len(data) > 0xFFFF:
        raise ValueError(f"EDNS option {code} of {len(data)} bytes: at most 65535")
    return _OPTION_HEAD.pack(code, len(data)) + data


EDE_NOT_AUTHORITATIVE = option(EDE, _LENGTH.pack(EDE_NOT_AUTHORITATIVE_CODE))


def with_ede(opt: bytes, ede: bytes) -> bytes:
    """One of our OPT records (b"": none, no options yet) carrying the EDE option `ede`."""
    if not opt:
        return b""
    return opt[:-2] + _LENGTH.pack(len(ede)) + ede


def find_option(wire: bytes, start: int, code: int) -> bytes | None:
    """The data of the first option `code` among the EDNS options from `start` to the end
    of `wire` (a query whose OPT record is its last, its options well-formed)."""
    end = len(wire)
    while start + 4 <= end:
        found, length = _OPTION_HEAD.unpack_from(wire, start)
        if found == code:
            return wire[start + 4 : start + 4 + length]
        start += 4 + length
    return None


def add_options(reply: bytes, options: bytes, question: bytes, limit: int) -> bytes:
    """`reply` (one of ours, its OPT record last) with `options` added to that OPT record.

    Over `limit` bytes, the answer becomes the question alone with TC, its OPT record
    (and the options) kept. A reply without an OPT record is returned as it is.
    """
    at = _opt_at(reply, len(question))
    if at is None:
        return reply
    (rdlength,) = _LENGTH.unpack_from(reply, at + _OPT_FIXED - 2)
    opt = reply[at : at + _OPT_FIXED - 2] + _LENGTH.pack(rdlength + len(options))
    opt += reply[at + _OPT_FIXED :] + options
    out = reply[:at] + opt
    if len(out) <= limit:
        return out
    flags = reply[2:4]
    return (
        reply[:2]
        + bytes((flags[0] | 0x02, flags[1]))  # TC
        + b"\x00\x01\x00\x00\x00\x00\x00\x01"
        + question
        + opt
    )


def _opt_at(reply: bytes, question_length: int) -> int | None:
    """Where the OPT record ending `reply` starts, None when it has none. Our replies
    carry no options or a few: the records are walked only when the OPT has some."""
    plain = len(reply) - _OPT_FIXED
    if plain >= 12 and reply[plain : plain + 3] == b"\x00" + _OPT_TYPE and reply[-2:] == b"\0\0":
        return plain
    if len(reply) < 12:
        return None
    records = sum(_LENGTH.unpack_from(reply, offset)[0] for offset in (6, 8, 10))
    pos = 12 + question_length
    for _ in range(records):
        start = pos
        while pos < len(reply):  # the owner: labels, ending in the root or a pointer
            length = reply[pos]
            if length == 0:
                pos += 1
                break
            if length & 0xC0 == 0xC0:
                pos += 2
                break
            pos += length + 1
        if pos + 10 > len(reply):
            return None
        (rdlength,) = _LENGTH.unpack_from(reply, pos + 8)
        if reply[start : start + 3] == b"\x00" + _OPT_TYPE:
            end = pos + 10 + rdlength
            return start if end == len(reply) else None
        pos += 10 + rdlength
    return None
