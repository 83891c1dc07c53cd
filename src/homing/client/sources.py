"""Address sources: an interface (netlink), check-IP web services, a command.

Each `Watch` holds the usable addresses it saw last (`candidates`, best first) or why it has
none (`problem`); `refresh()` reads again and says whether anything changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from homing.client.checkip import agree, parse_checkip
from homing.client.config import Family
from homing.client.netlink import Filter, Netlink, usable, why_unusable
from homing.client.protocol import USER_AGENT
from homing.domain.addresses import IPAddress, address_problem

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30.0
MAX_BODY = 64 * 1024


def acceptable(address: IPAddress, rules: Filter) -> str | None:
    """Why an address from the web or a command cannot be published (None: it can).

    The server's rules first (domain/addresses.py: a scope ID, broadcast, multicast and
    the like never; loopback and link-local only with allow_private), then the client's
    own: no private address unless allowed."""
    problem = address_problem(address, allow_local=rules.allow_private)
    if problem is not None:
        return problem
    if not address.is_global and not rules.allow_private:
        return "private address (set allow_private = true to publish it)"
    return None


@dataclass
class Watch:
    """The latest view of one source for one address family."""

    family: Family
    rules: Filter
    candidates: tuple[IPAddress, ...] = ()
    problem: str = "not read yet"

    @property
    def describe(self) -> str:
        raise NotImplementedError

    async def read(self) -> tuple[tuple[IPAddress, ...], str]:
        raise NotImplementedError

    async def refresh(self) -> bool:
        """Read the source again; True if the usable addresses changed."""
        try:
            candidates, problem = await self.read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken source must not stop the others
            candidates, problem = (), f"failed: {exc}"
        changed = candidates != self.candidates
        if changed or problem != self.problem:
            if candidates:
                shown = ", ".join(str(c) for c in candidates)
                log.info("IPv%d from %s: %s", self.family, self.describe, shown)
            else:
                log.warning("no usable IPv%d from %s: %s", self.family, self.describe, problem)
        self.candidates, self.problem = candidates, problem
        return changed


@dataclass
class InterfaceWatch(Watch):
    ifname: str = ""
    netlink: Netlink | None = None

    @property
    def describe(self) -> str:
        return f"interface {self.ifname}"

    async def read(self) -> tuple[tuple[IPAddress, ...], str]:
        assert self.netlink is not None
        found = await self.netlink.addresses(self.ifname)
        if found is None:
            return (), "no such interface"
        chosen = tuple(usable(found, self.family, self.rules))
        if chosen:
            return chosen, ""
        reasons = [
            f"{a.address} {why_unusable(a, self.rules)}" for a in found if a.family == self.family
        ]
        return (), "; ".join(reasons) if reasons else f"no IPv{self.family} address"


@dataclass
class WebWatch(Watch):
    """Check-IP URLs asked over this family; `agree_needed` of them must report the same."""

    urls: tuple[str, ...] = ()
    agree_needed: int = 1
    timeout: float = 10.0

    @property
    def describe(self) -> str:
        return "check-IP " + ", ".join(self.urls)

    async def _ask(self, client: httpx.AsyncClient, url: str) -> IPAddress | None:
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            log.info(
                "check-IP %s: %s", url, exc.__class__.__name__ + (f": {exc}" if str(exc) else "")
            )
            return None
        if response.status_code != 200:
            log.info("check-IP %s: HTTP %d", url, response.status_code)
            return None
        return parse_checkip(response.text[:MAX_BODY], self.family)

    async def read(self) -> tuple[tuple[IPAddress, ...], str]:
        # Bind to the family's wildcard address so the service sees that family; never
        # through a proxy (it would report the proxy's address) and never keep a connection
        # (its source address may be the one that just went away).
        transport = httpx.AsyncHTTPTransport(
            local_address="0.0.0.0" if self.family == 4 else "::", retries=0
        )
        async with httpx.AsyncClient(
            transport=transport,
            timeout=self.timeout,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
            follow_redirects=True,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            answers = await asyncio.gather(*(self._ask(client, url) for url in self.urls))
        verdict = agree(answers, self.agree_needed)
        if verdict.address is None:
            return (), verdict.detail
        why = acceptable(verdict.address, self.rules)
        if why is not None:
            return (), f"{verdict.address}: {why}"
        return (verdict.address,), ""


_TOKEN_RE = re.compile(r"[\s,;]+")


def parse_command_output(output: str, family: Family) -> list[IPAddress]:
    """Every address of `family` a command printed, in order (tokens split on space , ;)."""
    found: list[IPAddress] = []
    for token in _TOKEN_RE.split(output):
        token = token.strip("[]")
        if "/" in token:
            token = token.split("/", 1)[0]  # 192.0.2.1/24 as `ip -br addr` prints it
        try:
            address = ipaddress.ip_address(token)
        except ValueError:
            continue
        if (4 if isinstance(address, ipaddress.IPv4Address) else 6) == family:
            found.append(address)
    return found


@dataclass
class CommandWatch(Watch):
    command: str = ""

    @property
    def describe(self) -> str:
        return f"command {self.command!r}"

    async def read(self) -> tuple[tuple[IPAddress, ...], str]:
        process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):  # not wait_for: see homing.domain.waits
                out, err = await process.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return (), f"did not finish within {COMMAND_TIMEOUT:.0f}s"
        if process.returncode != 0:
            first = err.decode(errors="replace").strip().splitlines()[:1]
            return (), f"exited {process.returncode}" + (f": {first[0]}" if first else "")
        addresses = parse_command_output(out.decode(errors="replace"), self.family)
        good = tuple(a for a in addresses if acceptable(a, self.rules) is None)
        if good:
            return good, ""
        if addresses:
            return (), "; ".join(f"{a}: {acceptable(a, self.rules)}" for a in addresses)
        return (), f"printed no IPv{self.family} address"


def describe_all(watches: Sequence[Watch]) -> str:
    return "; ".join(f"IPv{w.family} from {w.describe}: {w.problem}" for w in watches if w.problem)
