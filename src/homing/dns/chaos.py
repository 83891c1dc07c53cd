"""What the server says about itself, when its operator lets it: CHAOS TXT `id.server`
and `hostname.bind` (the identity), `version.bind` and `version.server` (the version),
as RFC 4892 describes, and the NSID option (RFC 5001) to a query that asks for it.

Unset, nothing is said: every CHAOS query is REFUSED and no NSID is sent. Knot answers
the host name and its version by default; a careful operator tells neither, so homing
waits to be told what to say (HOMING_DNS_IDENTITY, HOMING_DNS_VERSION, HOMING_DNS_NSID).
The answers are as Knot's: NOERROR without AA, TTL 0, the name as the client wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from homing.dns.ednsopt import NSID, option
from homing.dns.resolution import Resolution

__all__ = ["ServerIdentity"]

_IDENTITY_NAMES = frozenset(dns.name.from_text(n) for n in ("id.server", "hostname.bind"))
_VERSION_NAMES = frozenset(dns.name.from_text(n) for n in ("version.bind", "version.server"))


@dataclass(frozen=True)
class ServerIdentity:
    """The operator's words for the server; None: say nothing."""

    identity: str | None = None
    version: str | None = None
    nsid: str | None = None
    nsid_option: bytes = field(init=False, default=b"")  # the option, b"" when unset

    def __post_init__(self) -> None:
        for what, text in (("identity", self.identity), ("version", self.version)):
            if text is not None and not 0 < len(text.encode()) < 256:
                raise ValueError(f"the DNS {what} must be 1 to 255 bytes, not {len(text)}")
        if self.nsid is not None:
            object.__setattr__(self, "nsid_option", option(NSID, self.nsid.encode()))

    def chaos(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType) -> Resolution:
        """The answer to a CHAOS-class question: the TXT the operator set, or REFUSED."""
        text = None
        if qtype == dns.rdatatype.RdataType.TXT:
            if qname in _IDENTITY_NAMES:
                text = self.identity
            elif qname in _VERSION_NAMES:
                text = self.version
        if text is None:
            return Resolution(dns.rcode.Rcode.REFUSED)
        rrset = dns.rrset.RRset(qname, dns.rdataclass.RdataClass.CH, dns.rdatatype.RdataType.TXT)
        rdata = dns.rdtypes.ANY.TXT.TXT(
            dns.rdataclass.RdataClass.CH, dns.rdatatype.RdataType.TXT, [text.encode()]
        )
        rrset.add(rdata, 0)
        return Resolution(dns.rcode.Rcode.NOERROR, answer=[rrset])
