"""Result codes of the update protocols: one outcome, its dyndns2 word and DVR answer."""

from __future__ import annotations

import enum


class Outcome(enum.Enum):
    """What happened to one host's update; `.dyndns2` and `.dvr` are the wire answers."""

    # value: (dyndns2 word, DVR answer, description for docs and status screens)
    GOOD = ("good", "ACT", "updated")
    NOCHG = ("nochg", "ACT", "address unchanged")
    BADAUTH = ("badauth", "ERR 0x80008002", "wrong user name or password")
    NOTFQDN = ("notfqdn", "ERR 0x80008001", "not a fully qualified host name")
    NOHOST = ("nohost", "ERR 0x80008001", "no such host, or not yours")
    NUMHOST = ("numhost", "ERR 0x80008006", "too many host names in one request")
    ABUSE = ("abuse", "ERR 0x80008004", "host blocked for abuse")
    BADAGENT = ("badagent", "ERR 0x80008006", "bad request or client")
    BAD_ADDRESS = ("badagent", "ERR 0x80008003", "invalid IP address")
    TOO_SOON = ("911", "ERR 0x80008007", "update sooner than the plan's minimum interval")
    DISABLED = ("nohost", "ERR 0x80008008", "host disabled by the operator")
    DNSERR = ("dnserr", "ERR 0x80008005", "DNS error on the server")
    INTERNAL = ("911", "ERR 0x80008005", "internal server error")
    BAD_REQUEST = ("badagent", "ERR 0x80008006", "bad request")

    @property
    def dyndns2(self) -> str:
        return self.value[0]

    @property
    def dvr(self) -> str:
        return self.value[1]

    @property
    def description(self) -> str:
        return self.value[2]

    @property
    def succeeded(self) -> bool:
        return self in (Outcome.GOOD, Outcome.NOCHG)

    @property
    def carries_address(self) -> bool:
        """good and nochg answers echo the address used."""
        return self.succeeded
