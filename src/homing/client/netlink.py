"""Interface addresses from the kernel (rtnetlink via pyroute2), and change events.

`usable()` is the pure filter (which of an interface's addresses may be published);
`Netlink` owns two sockets: one subscribed to address, link and route events, one for
dumps. Events are not parsed for addresses: any event makes the watchers re-read the
interface, so a lost or coalesced event cannot leave a stale address behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from homing.client.config import Family
from homing.domain.addresses import IPAddress, address_problem

log = logging.getLogger(__name__)

# linux/if_addr.h
IFA_F_SECONDARY = IFA_F_TEMPORARY = 0x01
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
RT_SCOPE_UNIVERSE = 0
# linux/rtnetlink.h multicast groups
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
GROUPS = (
    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
)


@dataclass(frozen=True)
class InterfaceAddress:
    """One address as the kernel reports it."""

    address: IPAddress
    prefixlen: int
    scope: int
    flags: int

    @property
    def family(self) -> Family:
        return 4 if isinstance(self.address, ipaddress.IPv4Address) else 6


@dataclass(frozen=True)
class Filter:
    allow_private: bool = False
    allow_temporary: bool = False
    allow_deprecated: bool = False


def why_unusable(a: InterfaceAddress, rules: Filter) -> str | None:
    """None if `a` may be published; otherwise the reason, for the log."""
    address = a.address
    if address.is_link_local or a.scope != RT_SCOPE_UNIVERSE:
        return "not global scope"
    if address_problem(address) is not None:  # the server's rules (domain/addresses.py)
        return "not publishable"
    if a.family == 6:
        if a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
            return "duplicate address detection not done"
        if a.flags & IFA_F_TEMPORARY and not rules.allow_temporary:
            return "temporary (privacy) address"
        if a.flags & IFA_F_DEPRECATED and not rules.allow_deprecated:
            return "deprecated"
    if not address.is_global and not rules.allow_private:
        return "private address (set allow_private = true to publish it)"
    return None


def usable(addresses: Sequence[InterfaceAddress], family: Family, rules: Filter) -> list[IPAddress]:
    """The publishable addresses of `family`, best first (IPv4 primaries before secondaries)."""
    chosen = [a for a in addresses if a.family == family and why_unusable(a, rules) is None]
    if family == 4:
        chosen.sort(key=lambda a: bool(a.flags & IFA_F_SECONDARY))  # stable: kernel order kept
    return [a.address for a in chosen]


def _from_message(msg: Any) -> InterfaceAddress | None:
    text = msg.get_attr("IFA_ADDRESS")
    if msg["family"] == socket.AF_INET:
        text = msg.get_attr("IFA_LOCAL") or text  # point-to-point: IFA_ADDRESS is the peer
    if not text:
        return None
    flags = msg.get_attr("IFA_FLAGS")
    return InterfaceAddress(
        address=ipaddress.ip_address(text),
        prefixlen=int(msg["prefixlen"]),
        scope=int(msg["scope"]),
        flags=int(flags if flags is not None else msg["flags"]),
    )


def _iproute() -> Any:
    # Imported on first use: `once` with web or command sources never loads pyroute2.
    from pyroute2 import AsyncIPRoute  # type: ignore[import-untyped]

    return AsyncIPRoute()


class Netlink:
    """Reads interface addresses and reports kernel changes to `on_change`, promptly."""

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self.on_change = on_change
        self._query: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._query = _iproute()
        events = await self._subscribe()
        self._task = asyncio.create_task(self._listen(events), name="netlink-events")

    async def _subscribe(self) -> Any:
        events = _iproute()
        await events.bind(groups=GROUPS)
        return events

    async def _listen(self, events: Any) -> None:
        failures = 0
        while True:
            try:
                while True:
                    async for msg in events.get():
                        failures = 0
                        self.on_change(str(msg.get("event", "")))
            except asyncio.CancelledError:
                events.close()
                raise
            except Exception as exc:  # e.g. ENOBUFS after an event storm: resubscribe
                failures += 1
                log.warning("netlink events failed (%s); resubscribing", exc)
                events.close()
                await asyncio.sleep(min(30.0, 0.1 * 2**failures))
                events = await self._subscribe()
                self.on_change("resync")  # events may have been lost

    async def addresses(self, ifname: str) -> list[InterfaceAddress] | None:
        """The interface's addresses, or None if there is no such interface."""
        assert self._query is not None, "start() first"
        async with self._lock:  # one dump at a time on the query socket
            indices = await self._query.link_lookup(ifname=ifname)
            if not indices:
                return None
            found: list[InterfaceAddress] = []
            async for msg in await self._query.addr("dump", index=indices[0]):
                if msg.get("index") != indices[0]:
                    continue
                a = _from_message(msg)
                if a is not None:
                    found.append(a)
            return found

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._query is not None:
            self._query.close()
            self._query = None
