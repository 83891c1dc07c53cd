"""Fuzzing the dyndns2 and DVR request parsing: query strings, credentials, addresses.

Whatever a client sends, the parsers raise nothing but homing's own errors (which the
endpoints answer with their protocol words), and the endpoints ask the service to
publish only addresses the domain parser takes, never the request's source address
when an address parameter was given.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from homing.domain.addresses import parse_address
from homing.domain.errors import HomingError
from homing.web.dyndns2params import address_set, hostnames_of, names_addresses, not_offered
from homing.web.updates import credentials_of, query_of
from tests.fuzz.conftest import FUZZ_REQUESTS as FUZZ
from tests.fuzz.update_requests import (
    ADDRESS_PARAMS,
    ADDRESS_VALUES,
    SOURCE_V4,
    SOURCE_V6,
    Endpoints,
    check_addresses,
    per_family_params,
    query_strings,
)

QUERIES = st.one_of(query_strings(), st.binary(max_size=200))
SOURCES = st.sampled_from((SOURCE_V4, SOURCE_V6))
USERS = st.text(max_size=40).filter(lambda u: ":" not in u)
ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


# Authorization values in ASCII: what a header of printable characters can say.
AUTHORIZATIONS = st.one_of(
    st.builds(basic, USERS, st.text(max_size=40)),
    st.builds(lambda t: b"Basic " + base64.b64encode(t), st.binary(max_size=40)),
    st.sampled_from(
        (b"Basic", b"Basic ", b"basic Zm9vOmJhcg==", b"BASIC  Zm9vOmJhcg== ", b"Bearer x")
        + (b"Basic ===", b"Basic Zm9v", b"Basic Zm9vOmJhcg", b"Basic Og==", b"Basic \x00")
    ),
    ASCII.map(str.encode),
)
HEADERS = st.lists(
    st.one_of(
        st.tuples(st.just(b"authorization"), AUTHORIZATIONS),
        st.tuples(st.sampled_from((b"user-agent", b"x-forwarded-for")), ASCII.map(str.encode)),
    ),
    max_size=3,
)


@FUZZ
@given(query=QUERIES)
def test_query_of_reads_parameters_as_starlette_does(query: bytes) -> None:
    params = query_of({"query_string": query})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert params == dict(QueryParams(query)), query


@FUZZ
@given(authorization=st.none() | AUTHORIZATIONS, query=QUERIES)
def test_credentials_of_answers_a_pair_or_none(authorization: bytes | None, query: bytes) -> None:
    headers = [] if authorization is None else [(b"authorization", authorization)]
    params = query_of({"query_string": query})
    try:
        credentials = credentials_of({"headers": headers}, params)
    except HomingError:
        return
    if credentials is not None:
        user, password = credentials
        assert isinstance(user, str) and isinstance(password, str)


@FUZZ
@given(user=USERS, password=st.text(max_size=40))
def test_credentials_of_reads_back_what_basic_carries(user: str, password: str) -> None:
    assert credentials_of({"headers": [(b"authorization", basic(user, password))]}, {}) == (
        user,
        password,
    )


PARAMS = st.dictionaries(
    st.sampled_from(ADDRESS_PARAMS + ("hostname", "host_id", "wildcard", "mx", "backmx")),
    st.one_of(
        ADDRESS_VALUES,
        st.sampled_from(("preserve", "PRESERVE", "", "2001:db8::/56", "192.0.2.0/24", "ON")),
        st.sampled_from(("YES", "NOCHG", "::/0", "fe80::/10", "2001:db8::1/64,preserve")),
    ),
    max_size=5,
)


@FUZZ
@given(params=PARAMS, allow_local=st.booleans())
def test_address_parameters_yield_only_publishable_addresses(
    params: dict[str, str], allow_local: bool
) -> None:
    hostnames = hostnames_of(params)
    assert hostnames is None or all(isinstance(h, str) and h for h in hostnames)
    assert not_offered(params) in (None, "wildcard", "mx", "backmx")
    if not names_addresses(params):
        return
    try:
        addresses = address_set(params, allow_local=allow_local)
    except HomingError:
        return
    for rtype, text in addresses.by_type:
        version = parse_address(text, allow_local=allow_local).version
        assert version == (4 if rtype == "A" else 6), (rtype, text)
    assert addresses.prefix is None or addresses.prefix.version == 6


@FUZZ
@given(query=QUERIES, headers=HEADERS, source=SOURCES)
def test_dyndns2_request(
    endpoints: Endpoints, query: bytes, headers: list[tuple[bytes, bytes]], source: str
) -> None:
    try:
        status, body, request, params = endpoints.dyndns2(query, headers, source)
    except HomingError:
        return
    assert status in (200, 401) and body.endswith("\n"), (status, body)
    check_addresses(request, params, source, endpoints.settings.allow_local_addresses)


@FUZZ
@given(query=QUERIES, headers=HEADERS, source=SOURCES)
def test_dvr_request(
    endpoints: Endpoints, query: bytes, headers: list[tuple[bytes, bytes]], source: str
) -> None:
    try:
        status, body, request, params = endpoints.dvr(query, headers, source)
    except HomingError:
        return
    assert status == 200 and body.endswith("\n"), (status, body)
    check_addresses(request, params, source, endpoints.settings.allow_local_addresses)


def test_per_family_parameters_never_take_the_source(endpoints: Endpoints) -> None:
    """A request naming one family's address by its own parameter (myipv6=, ipv4=, ...)
    publishes that address, never the source's."""
    names = per_family_params()
    if not names:
        pytest.skip(
            "COORDINATOR: homing.web.updates reads no per-family address parameter "
            "(myipv4/myipv6/ipv4/ipv6) yet; only myip and ip are fuzzed for the source"
        )

    @FUZZ
    @given(
        name=st.sampled_from(names),
        v4=st.ip_addresses(v=4).map(str),
        v6=st.ip_addresses(v=6).map(str),
        source=SOURCES,
    )
    def run(name: str, v4: str, v6: str, source: str) -> None:
        value = v6 if "6" in name else v4
        query = f"hostname=host.dyn.example.net&{name}={value}".encode()
        try:
            _, _, request, params = endpoints.dyndns2(
                query, [(b"authorization", basic("u", "p"))], source
            )
        except HomingError:
            return
        check_addresses(request, params, source, endpoints.settings.allow_local_addresses)

    run()


FORM_TYPES = st.sampled_from(
    (
        b"application/x-www-form-urlencoded",
        b"application/x-www-form-urlencoded; charset=latin-1",
        b"multipart/form-data; boundary=xyz",
        b"multipart/form-data",
        b"multipart/form-data; boundary=",
        b"text/plain",
    )
)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> bytes:
    """A multipart body with boundary xyz, its parts and framing sometimes broken."""
    parts = []
    for name, value in draw(
        st.lists(st.tuples(st.text(max_size=10), st.text(max_size=30)), max_size=3)
    ):
        # No filename=: a file part is test_fuzz_findings.py's.
        disposition = draw(
            st.sampled_from(('form-data; name="{}"', "form-data; name={}", "form-data"))
        )
        head = f"Content-Disposition: {disposition.format(name)}\r\n\r\n"
        parts.append(
            b"--xyz\r\n"
            + head.encode("utf-8", "replace")
            + value.encode("utf-8", "replace")
            + b"\r\n"
        )
    tail = draw(st.sampled_from((b"--xyz--\r\n", b"--xyz", b"", b"--xy")))
    return b"".join(parts) + tail + draw(st.binary(max_size=10))


@FUZZ
@given(
    query=QUERIES,
    content_type=FORM_TYPES,
    body=st.one_of(query_strings(), multipart_bodies(), st.binary(max_size=200)),
    source=SOURCES,
)
def test_dvr_post(
    endpoints: Endpoints, query: bytes, content_type: bytes, body: bytes, source: str
) -> None:
    """The DVR door's POST form: a malformed body is the client's bad request, nothing else."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    try:
        status, answer, request, params = endpoints.dvr(query, headers, source, body)
    except HomingError:
        return
    assert status == 200 and answer.endswith("\n"), (status, answer)
    check_addresses(request, None, source, endpoints.settings.allow_local_addresses)
