"""What the fuzzers found and what still fails: each a reproduction, then the fuzz target
that finds it, widened to the inputs the other targets leave out while it fails.

- A non-ASCII byte in an `Authorization: Basic` token: base64.b64decode() raises
  ValueError (not binascii.Error) for a str holding non-ASCII characters,
  credentials_of() lets it through, and the update front answers 500 and logs a
  traceback per request, where the answer is `badauth`.
- A DVR POST whose multipart body has a file part (`filename=`): Starlette spools it
  to a SpooledTemporaryFile that the endpoint never closes (request.form() outside
  `async with`; Starlette's route does not close it either), so each such request
  leaves a file open until the garbage collector finds it (a ResourceWarning). The
  DVR door reads only text fields: `request.form(max_files=0)` would refuse file
  parts as a bad request before anything is spooled.
- Transfer answers (dns/xfr.py's render) carry no OPT record when the query had one
  (RFC 6891 7: a responder MUST include one), and so no DO bit either.
"""

from __future__ import annotations

import base64
import gc
import warnings

import dns.flags
import dns.message
import dns.rrset
import pytest
from hypothesis import given
from hypothesis import strategies as st

from homing.domain.errors import HomingError
from homing.web.updates import credentials_of
from tests.fuzz.conftest import FUZZ_REQUESTS
from tests.fuzz.update_requests import SOURCE_V4, Endpoints
from tests.fuzz.wire import ZONE, WirePath

NON_ASCII_TOKEN = b"Basic \xe9"  # as the ASGI server hands the header over: latin-1 bytes


def test_a_non_ascii_basic_token_is_no_credentials() -> None:
    assert credentials_of({"headers": [(b"authorization", NON_ASCII_TOKEN)]}, {}) is None


def test_a_non_ascii_basic_token_is_answered_badauth(endpoints: Endpoints) -> None:
    status, body, request, _ = endpoints.dyndns2(
        b"hostname=host.dyn.example.net", [(b"authorization", NON_ASCII_TOKEN)], SOURCE_V4
    )
    assert (status, body, request) == (401, "badauth\n", None)


@FUZZ_REQUESTS
@given(
    token=st.one_of(
        st.binary(max_size=60),
        st.builds(lambda t: base64.b64encode(t) + b"\x80", st.binary(max_size=30)),
    )
)
def test_any_basic_token_bytes(token: bytes) -> None:
    try:
        credentials = credentials_of({"headers": [(b"authorization", b"Basic " + token)]}, {})
    except HomingError:
        return
    assert credentials is None or all(isinstance(part, str) for part in credentials)


def test_a_dvr_post_with_a_file_part_leaves_no_file_open(endpoints: Endpoints) -> None:
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="host"; filename="a"\r\n\r\n'
        b"host.dyn.example.net\r\n--xyz--\r\n"
    )
    headers = [(b"content-type", b"multipart/form-data; boundary=xyz")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, _, request, _ = endpoints.dvr(b"", headers, SOURCE_V4, body)
        gc.collect()
    assert status == 200 and request is None
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def _ixfr(serial: int) -> dns.message.Message:
    query = dns.message.make_query(ZONE + ".", "IXFR", use_edns=0, want_dnssec=True)
    soa = f"ns1.example.net. hostmaster.example.net. {serial} 1 1 1 1"
    query.authority.append(dns.rrset.from_text(ZONE + ".", 0, "IN", "SOA", soa))
    return query


@pytest.mark.parametrize(
    ("kind", "tcp"),
    [("AXFR", True), ("IXFR from serial 2", True), ("IXFR up to date", False)],
)
def test_transfer_answers_carry_an_opt_record(wire_path: WirePath, kind: str, tcp: bool) -> None:
    if kind == "AXFR":
        query = dns.message.make_query(ZONE + ".", "AXFR", use_edns=0, want_dnssec=True)
    else:
        query = _ixfr(2 if "2" in kind else wire_path.index.by_text[ZONE].serial)
    wire = query.to_wire()
    replies = wire_path.tcp_message(wire) if tcp else wire_path.udp(wire)
    assert replies
    first = dns.message.from_wire(replies[0], keyring=False)
    assert first.edns == 0 and first.ednsflags & dns.flags.DO, first
