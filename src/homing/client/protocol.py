"""The update requests and what their answers mean for the client; no I/O here.

`build_request` says what to send, `parse_answer` turns (HTTP status, body) into a `Result`
whose `verdict` drives everything after: record and wait, stop the host, try the next
server, or back off.
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import dataclass, field

from homing import __version__
from homing.client.config import HostConfig, ServerConfig
from homing.domain.addresses import AddressSet
from homing.domain.outcomes import Outcome

USER_AGENT = f"homing-client/{__version__}"


class Verdict(enum.Enum):
    """What the client does after an answer."""

    OK = "ok"  # registered: remember the address, wait for the next change
    FATAL = "fatal"  # stop updating this host until its configuration changes
    FAILOVER = "failover"  # the server's failure: try the next server, then back off
    RETRY = "retry"  # not the server's fault, but retry later (update too soon)


@dataclass(frozen=True)
class Result:
    """One server's answer to one update, classified."""

    verdict: Verdict
    code: str  # the protocol word: good, nochg, badauth, ACT, ERR 0x80008002, timeout, ...
    meaning: str
    address: str = ""  # echoed by good/nochg
    status: str = ""  # DVR-style status word: ACT or ERR 0x8000800N (empty: transport trouble)

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


@dataclass(frozen=True)
class Request:
    """An HTTP GET to send; `headers` carry the authorization (never log them)."""

    url: str
    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


def _myip(addresses: AddressSet) -> str:
    return addresses.to_text()


def build_request(host: HostConfig, server: ServerConfig, addresses: AddressSet) -> Request:
    """The update request for `host` at `server` asking for `addresses`."""
    url = server.update_url(host.protocol)
    headers = {"User-Agent": USER_AGENT, "Accept": "text/plain"}
    if host.protocol == "dvr":
        return Request(
            url, {"host": host.name, "password": host.secret, "ip": _myip(addresses)}, headers
        )
    token = base64.b64encode(f"{host.user}:{host.secret}".encode()).decode("ascii")
    headers["Authorization"] = f"Basic {token}"
    return Request(url, {"hostname": host.name, "myip": _myip(addresses)}, headers)


# dyndns2 words: which outcome (for the DVR-style status) and what the client does.
_DYNDNS2: dict[str, tuple[Outcome | None, Verdict, str]] = {
    "good": (Outcome.GOOD, Verdict.OK, "updated"),
    "nochg": (Outcome.NOCHG, Verdict.OK, "address unchanged"),
    "badauth": (Outcome.BADAUTH, Verdict.FATAL, Outcome.BADAUTH.description),
    "notfqdn": (Outcome.NOTFQDN, Verdict.FATAL, Outcome.NOTFQDN.description),
    "nohost": (Outcome.NOHOST, Verdict.FATAL, Outcome.NOHOST.description),
    "numhost": (Outcome.NUMHOST, Verdict.FATAL, Outcome.NUMHOST.description),
    "abuse": (Outcome.ABUSE, Verdict.FATAL, Outcome.ABUSE.description),
    "badagent": (Outcome.BADAGENT, Verdict.FATAL, "the server rejected the request or address"),
    "!donator": (None, Verdict.FATAL, "the feature needs a paid account"),
    "!yours": (None, Verdict.FATAL, "the host belongs to another account"),
    "badsys": (None, Verdict.FATAL, "bad system parameter"),
    "dnserr": (Outcome.DNSERR, Verdict.FAILOVER, Outcome.DNSERR.description),
    "911": (Outcome.INTERNAL, Verdict.FAILOVER, "server failure or update too soon"),
}

_DVR_ERR_RE = re.compile(r"^ERR\s+(0x[0-9a-fA-F]{8})$")
# DVR error codes: 0x80008005 (internal) is the server's failure, 0x80008007 (too soon) a
# reason to wait; every other code needs the configuration fixed.
_DVR_OUTCOMES: dict[str, Outcome] = {
    "0x80008001": Outcome.NOHOST,
    "0x80008002": Outcome.BADAUTH,
    "0x80008003": Outcome.BAD_ADDRESS,
    "0x80008004": Outcome.ABUSE,
    "0x80008005": Outcome.INTERNAL,
    "0x80008006": Outcome.BAD_REQUEST,
    "0x80008007": Outcome.TOO_SOON,
    "0x80008008": Outcome.DISABLED,
}


def _first_line(body: str) -> str:
    for line in body.splitlines():
        if line.strip():
            return line.strip()
    return ""


def parse_answer(protocol: str, status: int, body: str) -> Result:
    """Classify an HTTP answer (status code and body) to an update request."""
    line = _first_line(body)
    if status >= 500:
        return Result(Verdict.FAILOVER, f"HTTP {status}", f"server error HTTP {status}")
    if 300 <= status < 400:
        return Result(
            Verdict.FATAL, f"HTTP {status}", "the server redirects; configure the final URL"
        )
    if protocol == "dvr":
        return parse_dvr(status, line)
    return parse_dyndns2(status, line)


def parse_dyndns2(status: int, line: str) -> Result:
    """One dyndns2 answer line (`good 192.0.2.1`, `badauth`, `911`, ...)."""
    word, _, rest = line.partition(" ")
    word = word.lower()
    known = _DYNDNS2.get(word)
    if known is None:
        if status == 401:
            word, known = "badauth", _DYNDNS2["badauth"]
        elif status == 404:
            return Result(Verdict.FATAL, "HTTP 404", "no update service at this URL")
        else:
            shown = line[:60] or "(empty)"
            return Result(Verdict.FAILOVER, f"HTTP {status}", f"unexpected answer {shown!r}")
    outcome, verdict, meaning = known
    return Result(
        verdict,
        word,
        meaning,
        address=rest.strip() if verdict is Verdict.OK else "",
        status=outcome.dvr if outcome is not None else f"ERR {word}",
    )


def parse_dvr(status: int, line: str) -> Result:
    """One DVR answer line: `ACT` or `ERR 0x8000800N`."""
    if line.upper() == "ACT":
        return Result(Verdict.OK, "ACT", "active", status="ACT")
    match = _DVR_ERR_RE.match(line)
    if match is None:
        if status == 404:
            return Result(Verdict.FATAL, "HTTP 404", "no update service at this URL")
        shown = line[:60] or "(empty)"
        return Result(Verdict.FAILOVER, f"HTTP {status}", f"unexpected answer {shown!r}")
    code = match.group(1).lower()
    word = f"ERR {code}"
    outcome = _DVR_OUTCOMES.get(code)
    meaning = outcome.description if outcome else "unknown error code"
    if outcome is Outcome.INTERNAL:
        verdict = Verdict.FAILOVER
    elif outcome is Outcome.TOO_SOON:
        verdict = Verdict.RETRY
    else:
        verdict = Verdict.FATAL
    return Result(verdict, word, meaning, status=word)


def transport_failure(kind: str, detail: str) -> Result:
    """No answer at all (timeout, refused, TLS, DNS): the server's failure."""
    return Result(Verdict.FAILOVER, kind, detail)
