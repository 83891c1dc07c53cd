"""The client's asyncio shell: watches sources, asks `policy.decide`, sends, records.

`Client.run(stop)` is the daemon: kernel events re-read interfaces at once; link and route
events (and a timer) re-ask the check-IP services and commands; each host has a task that
sleeps until a source changes or its next deadline. `Client.once()` does one pass.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.tsig
import httpx

from homing.client import rfc2136
from homing.client.cache import Cache, CacheError
from homing.client.config import ClientConfig, Family, HostConfig, ServerConfig, SourceSpec
from homing.client.netlink import Filter, Netlink
from homing.client.policy import (
    Action,
    Halt,
    HostState,
    Rules,
    Update,
    choose,
    decide,
    observed_set,
    record,
)
from homing.client.protocol import (
    Result,
    Verdict,
    build_request,
    parse_answer,
    transport_failure,
)
from homing.client.sources import CommandWatch, InterfaceWatch, Watch, WebWatch, describe_all
from homing.client.status import when
from homing.domain.addresses import AddressSet
from homing.domain.waits import woken

log = logging.getLogger("homing.client")

DEBOUNCE = 0.3  # quiet time after link/route events before asking check-IP services again
DEBOUNCE_MAX_ROUNDS = 10
MAX_BODY = 4096


class Summary(enum.Enum):
    """How one host ended a `once` pass (or stands in `status`)."""

    OK = 0
    STOPPED = 3
    PENDING = 4


def rules_of(host: HostConfig) -> Rules:
    return Rules(
        config_hash=host.config_hash,
        force_interval=host.force_interval,
        min_interval=host.min_interval,
        retry_initial=host.retry_initial,
        retry_max=host.retry_max,
    )


def _filter(host: HostConfig) -> Filter:
    return Filter(host.allow_private, host.allow_temporary, host.allow_deprecated)


@dataclass
class HostRun:
    config: HostConfig
    rules: Rules
    watches: dict[Family, Watch]
    wake: asyncio.Event
    last_note: str = ""

    def note(self, level: int, text: str) -> None:
        """Log `text` once, not again until something else was said."""
        if text != self.last_note:
            log.log(level, "%s: %s", self.config.name, text)
            self.last_note = text


class Client:
    """One configuration's hosts, sources and cache."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.clock = clock
        self.jitter = jitter
        self.cache = Cache(config.cache_dir)
        self.states: dict[str, HostState] = {}
        self.netlink: Netlink | None = None
        self.watches: dict[tuple[object, ...], Watch] = {}
        self.hosts: list[HostRun] = []
        self._http: dict[str, httpx.AsyncClient] = {}
        self._iface_dirty = asyncio.Event()
        self._web_dirty = asyncio.Event()

    # -- setup ---------------------------------------------------------------

    def _watch(self, spec: SourceSpec, family: Family, rules: Filter) -> Watch:
        key = (spec, family, rules)
        if key in self.watches:
            return self.watches[key]
        watch: Watch
        if spec.kind == "interface":
            watch = InterfaceWatch(family, rules, ifname=spec.argument, netlink=self.netlink)
        elif spec.kind == "web":
            urls = (spec.argument,) if spec.argument else self.config.checkip_urls
            needed = 1 if spec.argument else self.config.checkip_agree
            watch = WebWatch(
                family, rules, urls=urls, agree_needed=needed, timeout=self.config.timeout
            )
        else:
            watch = CommandWatch(family, rules, command=spec.argument)
        self.watches[key] = watch
        return watch

    async def _setup(self, events: bool) -> None:
        self.cache.check_writable()
        loaded = self.cache.load()
        needs_netlink = events or any(
            h.source(f).kind == "interface" for h in self.config.hosts for f in (4, 6)
        )
        if needs_netlink:
            self.netlink = Netlink(self._on_kernel_event)
            await self.netlink.start()
        for host in self.config.hosts:
            self.states[host.name] = loaded.get(host.name, HostState()).for_config(host.config_hash)
            watches: dict[Family, Watch] = {}
            for family in (4, 6):
                spec = host.source(family)
                if spec.kind != "none":
                    watches[family] = self._watch(spec, family, _filter(host))
            self.hosts.append(HostRun(host, rules_of(host), watches, asyncio.Event()))
        await asyncio.gather(*(w.refresh() for w in self.watches.values()))

    async def close(self) -> None:
        for client in self._http.values():
            await client.aclose()
        self._http.clear()
        if self.netlink is not None:
            await self.netlink.close()
            self.netlink = None

    # -- events --------------------------------------------------------------

    def _on_kernel_event(self, kind: str) -> None:
        if "ADDR" in kind or "LINK" in kind or kind == "resync":
            self._iface_dirty.set()
        self._web_dirty.set()

    def _wake_users(self, watch: Watch) -> None:
        for h in self.hosts:
            if watch in h.watches.values():
                h.wake.set()

    async def _interfaces_loop(self) -> None:
        interface_watches = [w for w in self.watches.values() if isinstance(w, InterfaceWatch)]
        while True:
            await self._iface_dirty.wait()
            self._iface_dirty.clear()
            for watch in interface_watches:
                if await watch.refresh():
                    self._wake_users(watch)

    async def _web_loop(self) -> None:
        polled = [w for w in self.watches.values() if not isinstance(w, InterfaceWatch)]
        while True:
            await woken(self._web_dirty, self.config.checkip_interval)
            # Link and route changes come in bursts; ask once the burst is over.
            for _ in range(DEBOUNCE_MAX_ROUNDS):
                if not self._web_dirty.is_set():
                    break
                self._web_dirty.clear()
                await woken(self._web_dirty, DEBOUNCE)
            self._web_dirty.clear()
            changed = await asyncio.gather(*(w.refresh() for w in polled))
            for watch, did in zip(polled, changed, strict=True):
                if did:
                    self._wake_users(watch)

    # -- deciding and updating -----------------------------------------------

    def observe(self, h: HostRun) -> AddressSet:
        state = self.states[h.config.name]
        v4 = h.watches.get(4)
        v6 = h.watches.get(6)
        return observed_set(
            choose(v4.candidates, state.registered.ipv4) if v4 else None,
            choose(v6.candidates, state.registered.ipv6) if v6 else None,
        )

    def decide(self, h: HostRun) -> tuple[Action, AddressSet]:
        observed = self.observe(h)
        return decide(self.states[h.config.name], observed, self.clock(), h.rules), observed

    def _client_for(self, server: ServerConfig) -> httpx.AsyncClient:
        client = self._http.get(server.url)
        if client is None:
            verify: bool | str = server.ca_file if server.ca_file else server.verify
            client = httpx.AsyncClient(
                timeout=self.config.timeout,
                follow_redirects=False,
                # a kept-alive connection may carry a source address that just went away
                limits=httpx.Limits(max_keepalive_connections=0),
                verify=verify,
            )
            self._http[server.url] = client
        return client

    async def _send(self, host: HostConfig, server: ServerConfig, addresses: AddressSet) -> Result:
        if host.protocol == "rfc2136":
            return await self._send_update(host, server, addresses)
        request = build_request(host, server, addresses)
        try:
            response = await self._client_for(server).get(
                request.url, params=request.params, headers=request.headers
            )
        except httpx.TimeoutException:
            return transport_failure("timeout", f"no answer within {self.config.timeout:g}s")
        except httpx.HTTPError as exc:
            return transport_failure("unreachable", _why(exc))
        except OSError as exc:
            return transport_failure("unreachable", str(exc))
        return parse_answer(host.protocol, response.status_code, response.text[:MAX_BODY])

    async def _send_update(
        self, host: HostConfig, server: ServerConfig, addresses: AddressSet
    ) -> Result:
        """RFC 2136 over TCP, signed with the host's TSIG key."""
        key = rfc2136.TsigKey.parse(host.secret)
        message = rfc2136.build_update(host.name, host.zone, key, addresses)
        address, port = rfc2136.server_address(server.url)
        try:
            response = await dns.asyncquery.tcp(
                message, address, port=port, timeout=self.config.timeout
            )
        except dns.exception.Timeout:
            return transport_failure("timeout", f"no answer within {self.config.timeout:g}s")
        except (OSError, EOFError) as exc:
            return transport_failure("unreachable", str(exc) or exc.__class__.__name__)
        except dns.tsig.PeerError as exc:  # the server's TSIG error: BADKEY, BADSIG, BADTIME
            return Result(Verdict.FATAL, exc.__class__.__name__, str(exc), status="ERR")
        except dns.exception.DNSException as exc:
            return transport_failure("bad answer", str(exc))
        return rfc2136.parse_rcode(response.rcode(), addresses)

    async def update(self, h: HostRun, action: Update) -> Result:
        """Try the servers in order; record the result of the last one asked."""
        host = h.config
        servers = self.config.servers_for(host)
        result = transport_failure("unreachable", "no server configured")
        used = ""
        for index, server in enumerate(servers):
            used = server.label
            log.debug("%s: %s; sending to %s", host.name, action.reason, used)
            result = await self._send(host, server, action.addresses)
            if result.verdict is not Verdict.FAILOVER:
                break
            rest = "trying " + servers[index + 1].label if index + 1 < len(servers) else ""
            log.warning(
                "%s: %s from %s: %s%s", host.name, result.code, used, result.meaning,
                f"; {rest}" if rest else "",
            )  # fmt: skip
        now = self.clock()
        state = record(
            self.states[host.name], action.addresses, result, now, h.rules, self.jitter(), used
        )
        self.states[host.name] = state
        try:
            self.cache.save(self.states)
        except CacheError as exc:  # keep going on the state in memory; say so every time
            log.error("%s", exc)
        if result.verdict is Verdict.OK:
            h.note(
                logging.INFO,
                f"{result.code} {result.address or action.addresses.to_text()} "
                f"({action.reason}) via {used}",
            )
        elif result.verdict is Verdict.FATAL:
            h.note(
                logging.ERROR,
                f"{result.code} from {used}: {result.meaning}; "
                "updates stopped until the host's configuration changes",
            )
        else:
            delay = (state.retry_at or now) - now
            h.note(
                logging.WARNING,
                f"{result.code}: {result.meaning}; retry {state.failures} in {delay:.2f}s",
            )
        return result

    # -- the daemon ----------------------------------------------------------

    async def _host_loop(self, h: HostRun) -> None:
        while True:
            h.wake.clear()
            action, _ = self.decide(h)
            if isinstance(action, Update):
                await self.update(h, action)
                continue
            timeout: float | None = None
            if isinstance(action, Halt):
                h.note(logging.ERROR, action.reason)
            elif action.until is None:
                h.note(logging.WARNING, f"waiting: {describe_all(list(h.watches.values()))}")
            else:
                timeout = max(0.0, action.until - self.clock())
                if action.reason == "up to date":
                    state = self.states[h.config.name]
                    h.note(
                        logging.INFO,
                        f"up to date ({state.registered.to_text()}, "
                        f"registered {when(state.registered_at)})",
                    )
                else:
                    h.note(logging.INFO, f"{action.reason}; next try in {timeout:.1f}s")
            await woken(h.wake, timeout)

    async def run(self, stop: asyncio.Event) -> None:
        """Keep every host up to date until `stop` is set."""
        try:
            await self._setup(events=True)
            tasks = [asyncio.create_task(self._host_loop(h)) for h in self.hosts]
            tasks.append(asyncio.create_task(self._interfaces_loop()))
            if any(not isinstance(w, InterfaceWatch) for w in self.watches.values()):
                tasks.append(asyncio.create_task(self._web_loop()))
            log.info(
                "watching %d host(s): %s",
                len(self.hosts),
                ", ".join(h.config.name for h in self.hosts),
            )
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in [stopper, *tasks]:
                task.cancel()
            await asyncio.gather(stopper, *tasks, return_exceptions=True)
            for task in done:  # a loop that ended is a bug: surface it
                if task is not stopper:
                    error = None if task.cancelled() else task.exception()
                    raise RuntimeError(f"client task {task.get_name()} ended") from error
        finally:
            await self.close()

    async def once(self) -> dict[str, tuple[Summary, str]]:
        """One pass over every host; each host's summary and a line to print."""
        out: dict[str, tuple[Summary, str]] = {}
        try:
            await self._setup(events=False)
            for h in self.hosts:
                action, observed = self.decide(h)
                name = h.config.name
                if isinstance(action, Update):
                    result = await self.update(h, action)
                    if result.verdict is Verdict.OK:
                        line = f"{result.code} {result.address or observed.to_text()}"
                        out[name] = (Summary.OK, line)
                    elif result.verdict is Verdict.FATAL:
                        out[name] = (Summary.STOPPED, f"{result.code}: {result.meaning}")
                    else:
                        out[name] = (Summary.PENDING, f"{result.code}: {result.meaning}")
                elif isinstance(action, Halt):
                    out[name] = (Summary.STOPPED, action.reason)
                elif action.until is None:
                    out[name] = (
                        Summary.PENDING,
                        f"no address: {describe_all(list(h.watches.values()))}",
                    )
                elif action.reason == "up to date":
                    out[name] = (Summary.OK, f"up to date ({observed.to_text()})")
                else:
                    wait = max(0.0, action.until - self.clock())
                    out[name] = (Summary.PENDING, f"{action.reason}; try again in {wait:.0f}s")
        finally:
            await self.close()
        return out


def _why(exc: httpx.HTTPError) -> str:
    """A short reason for a transport error (the innermost cause says it best)."""
    inner: BaseException = exc
    for _ in range(5):
        if inner.__cause__ is None and inner.__context__ is None:
            break
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    text = str(inner) or str(exc) or exc.__class__.__name__
    return text.splitlines()[0][:200]
