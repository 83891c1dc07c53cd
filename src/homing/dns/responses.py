"""The start of an answer to a parsed request, for the paths that build answers as messages
(UPDATE, NOTIFY, transfers, signed queries, TSIG errors)."""

from __future__ import annotations

import dns.flags
import dns.message

from homing.dns.wire import OUR_UDP_PAYLOAD

__all__ = ["response_to"]

_DO = int(dns.flags.EDNSFlag.DO)


def response_to(
    query: dns.message.Message, *, our_payload: int = OUR_UDP_PAYLOAD
) -> dns.message.Message:
    """dns.message.make_response(), with the query's DO bit echoed (RFC 3225 3: it MUST be
    copied into the answer's OPT record). Signed like the query when check() verified it."""
    response = dns.message.make_response(query, our_payload=our_payload)
    if query.edns >= 0:
        response.ednsflags |= query.ednsflags & _DO
    return response
