"""Requests to the dyndns2 and DVR endpoints for the fuzzers, and the endpoints run without
a store: the service's `update` is replaced by one that keeps the request it was given,
so what the endpoint parsed (credentials, host names, addresses) can be checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import strategies as st
from starlette.requests import Request

from homing.config import Settings
from homing.domain.addresses import parse_address
from homing.service.context import Homing
from homing.web import dyndns2params, updates
from homing.web.clientip import ClientAddress

__all__ = [
    "ADDRESS_PARAMS",
    "SOURCE_V4",
    "SOURCE_V6",
    "Endpoints",
    "check_addresses",
    "per_family_params",
    "query_strings",
]

# Request sources no generated value is: one seen in an answer came from the source.
SOURCE_V4 = "203.0.113.254"
SOURCE_V6 = "2001:db8:5ce::254"
# Every name an address parameter has in the clients homing serves (dyndns2, DVR, deSEC's
# and others' per-family forms); the endpoints read some of them.
ADDRESS_PARAMS = ("myip", "myipv4", "myipv6", "ipv4", "ipv6", "ip", "myip6", "ip6", "ip6lanprefix")
OTHER_PARAMS = (
    "hostname",
    "username",
    "password",
    "user",
    "pass",
    "host",
    "wildcard",
    "mx",
    "offline",
    "system",
    "",
)

_ADDRESS_LIKE = st.sampled_from(
    (
        "fe80::1%25eth0",
        "fe80::1%eth0",
        "[2001:db8::1]",
        "%5B2001%3Adb8%3A%3A1%5D",
        "2001%3Adb8%3A%3A1",
        "::ffff:192.0.2.1",
        "::ffff:127.0.0.1",
        "::192.0.2.1",
        "0.0.0.0",
        "::",
        "255.255.255.255",
        "240.0.0.1",
        "224.0.0.1",
        "127.0.0.1",
        "169.254.1.1",
        "fec0::1",
        "ff02::1",
        "192.168.1.1",
        "100.64.0.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        " 192.0.2.1 ",
        "192.0.2.1,2001:db8::1",
        "192.0.2.1,192.0.2.2",
        ",,",
        "\x00",
        "2001:db8::/64",
        "2001:db8::1/128",
        "2001:db8:0:0:0:0:0:1:1",
        "1" * 200,
        "١٢٣.١.١.١",  # Arabic-Indic digits
    )
)
_ADDRESSES = st.ip_addresses().map(str).filter(lambda a: a not in (SOURCE_V4, SOURCE_V6))
ADDRESS_VALUES = st.one_of(
    _ADDRESSES,
    _ADDRESS_LIKE,
    st.lists(st.one_of(_ADDRESSES, _ADDRESS_LIKE), min_size=1, max_size=3).map(",".join),
    st.text(max_size=40),
)
VALUES = st.one_of(ADDRESS_VALUES, st.text(max_size=30), st.just(""))
NAMES = st.one_of(st.sampled_from(ADDRESS_PARAMS + OTHER_PARAMS), st.text(max_size=10))


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    """A query string as a client (or an attacker) writes it: pairs, some percent- or
    plus-encoded, some without '=', repeated names, stray '&', arbitrary bytes."""
    parts = []
    for name, value in draw(st.lists(st.tuples(NAMES, VALUES), max_size=6)):
        how = draw(st.sampled_from(("raw", "quoted", "plus", "bare")))
        if how == "quoted":
            parts.append(f"{quote(name, safe='')}={quote(value, safe='')}")
        elif how == "plus":
            parts.append(f"{quote(name)}={quote(value).replace('%20', '+')}")
        elif how == "bare":
            parts.append(name)
        else:
            parts.append(f"{name}={value}")
    text = "&".join(parts)
    encoding = draw(st.sampled_from(("utf-8", "latin-1")))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        return data
    return data + draw(st.binary(max_size=20))


def per_family_params() -> tuple[str, ...]:
    """The per-family address parameters (a 4 or a 6 in the name) the endpoints' modules
    name; () when they have none."""
    source = inspect.getsource(updates) + inspect.getsource(dyndns2params)
    return tuple(
        name
        for name in ADDRESS_PARAMS
        if name[-1] in "46" and (f'"{name}"' in source or f"'{name}'" in source)
    )


class _Read(dict[str, str]):
    """The parameters, remembering which names the endpoint looked at."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.read.add(key)
        return super().pop(key, *default)


class Endpoints:
    """The update endpoints over no store; each call returns (status, body, request
    given to the service or None, parameters as the endpoint read them)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.settings = Settings()
        homing = SimpleNamespace(settings=self.settings, db=None, throttle=None, push_waiter=None)
        # The policy as `homing serve` builds it from the settings.
        homing.policy = Homing.__dict__["policy"].func(homing)
        stand_in: Any = homing
        self.endpoints = updates.UpdateEndpoints(stand_in, ClientAddress([]))
        self.given: list[Any] = []
        self.params: list[_Read] = []

    async def _update(self, db: Any, request: Any, *args: Any) -> list[Any]:
        self.given.append(request)
        return []

    def _query_of(self, scope: Any) -> _Read:
        params = _Read(self._original_query_of(scope))
        self.params.append(params)
        return params

    @contextlib.contextmanager
    def patches(self) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            self._original_query_of = updates.query_of
            patch.setattr(updates, "update", self._update)
            patch.setattr(updates, "query_of", self._query_of)
            yield

    def close(self) -> None:
        self.loop.close()

    def _run(self, call: Any) -> tuple[Any, Any, Any]:
        self.given.clear()
        self.params.clear()
        outcome = self.loop.run_until_complete(call)
        return (
            outcome,
            (self.given[0] if self.given else None),
            (self.params[0] if self.params else None),
        )

    def dyndns2(
        self, query: bytes, headers: list[tuple[bytes, bytes]], source: str
    ) -> tuple[int, str, Any, _Read | None]:
        scope = _scope(query, headers, source)
        (status, body), given, params = self._run(self.endpoints.dyndns2_answer(scope))
        return status, body, given, params

    def dvr(
        self,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        source: str,
        body: bytes | None = None,
    ) -> tuple[int, str, Any, _Read | None]:
        """GET, or POST with `body` (its Content-Type among `headers`)."""
        scope = _scope(query, headers, source, "GET" if body is None else "POST")
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body or b"", "more_body": False}

        request = Request(scope, receive)
        response, given, params = self._run(self.endpoints.dvr(request))
        return response.status_code, bytes(response.body).decode(), given, params


def _scope(
    query: bytes, headers: list[tuple[bytes, bytes]], source: str, method: str = "GET"
) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/nic/update",
        "raw_path": b"/nic/update",
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": (source, 40000),
        "server": ("127.0.0.1", 8080),
    }


def check_addresses(given: Any, params: _Read | None, source: str, allow_local: bool) -> None:
    """What the endpoint asked the service to publish: only addresses the domain parser
    takes, each of the family of its record type, and never the request's source when
    an address parameter it read was given."""
    if given is None:
        return
    pairs = given.addresses.by_type
    for rtype, text in pairs:
        try:
            address = parse_address(text, allow_local=allow_local)
        except TypeError:  # a parser without the local-address rule
            address = parse_address(text)
        family = ipaddress.IPv4Address if rtype == "A" else ipaddress.IPv6Address
        assert isinstance(address, family), f"{rtype} record for {text!r}"
    if params is None:
        return
    given_names = [
        name
        for name in sorted(params.read)
        if name in ADDRESS_PARAMS
        and any(part.strip() for part in dict.get(params, name, "").split(","))
    ]
    if given_names:
        assert source not in {text for _, text in pairs}, (
            f"the source address {source} published although {given_names} were given: "
            f"{dict(params)}"
        )
