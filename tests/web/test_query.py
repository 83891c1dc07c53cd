"""The update path's query and header readers agree with the standard library's and
Starlette's, whose semantics they keep without their cost."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from starlette.datastructures import Headers

from homing.web.updates import header, query_of


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"hostname=h1.dyn.example.net&myip=192.0.2.1",
        b"hostname=a&hostname=b",  # the last repeated one wins
        b"myip=&hostname=",  # blank values kept
        b"hostname",  # a name without '='
        b"=x&&&y=",  # an empty name, empty fields
        b"a=b=c",  # only the first '=' splits
        b"myip=2001%3adb8%3a%3a1",  # escaped: parse_qsl itself
        b"agent=a+b&x=%zz",  # '+' is a space; a bad escape stays as it is
        b"h=\xe9\xff&\x00=\x00",  # raw bytes outside ASCII, NUL
        b"a;b=c",  # ';' is no separator
    ],
)
def test_query_of_reads_as_parse_qsl(raw: bytes) -> None:
    expected = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    assert query_of({"query_string": raw}) == expected


def test_header_is_the_first_of_its_name_as_starlette_reads_it() -> None:
    raw = [(b"host", b"x"), (b"user-agent", b"one"), (b"user-agent", b"two"), (b"x-a", b"\xe9")]
    scope = {"type": "http", "headers": raw}
    for name in ("user-agent", "x-a", "host", "authorization"):
        assert header(scope, name.encode()) == Headers(scope=scope).get(name)
