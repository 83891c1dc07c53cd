"""homing as a secondary: zones pulled from a primary by SOA check and AXFR/IXFR (RFC 1034
4.3.5, 1995, 1996, 5936), kept in the store, answered from the zone index.

`Secondaries` runs one task per secondary zone around the sans-I/O `Refresh` timers:
at start, when the refresh (or retry) time comes, and at once on a NOTIFY from the
zone's primary, it asks the primary's SOA and, when the primary's serial is newer
(RFC 1982), transfers: IXFR from our serial, AXFR when we have none (or when the
primary answers an IXFR with the whole zone). dnspython's `inbound_xfr` does the
transfer into a `dns.zone.Zone` copy; what the transfer changed is then written to the
store in one transaction and only then to the zone index, so what is answered is
always durable. After each transfer the zone's own `--notify` list is notified.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.tsig
import dns.xfr

from homing.dns.access import Access, AccessLoader, ZoneAccess
from homing.dns.index import ZoneIndex
from homing.dns.notifyjudge import ForwardedNotify, judge_notify
from homing.dns.refresh import Action, Event, Refresh, State, Timers
from homing.dns.tsig import ScopedKey
from homing.dns.xfr import newer
from homing.dns.zonecopy import ZoneCopy
from homing.domain.records import ZoneMeta
from homing.domain.waits import woken
from homing.service.secondary import SecondaryCopy, load_secondaries, mark_refreshed, save_transfer
from homing.store.db import Database

__all__ = ["ForwardedNotify", "LastTransfer", "Secondaries", "TransferFailed", "judge_notify"]

log = logging.getLogger(__name__)

_SOA = dns.rdatatype.RdataType.SOA
SOA_ATTEMPTS = 3  # UDP tries of one SOA check, `soa_timeout` each


class TransferFailed(Exception):
    """The primary could not be asked, or its answer was refused; the copy is unchanged."""


def _timers(meta: ZoneMeta) -> Timers:
    # A zero (or absurd) interval from a primary must not make us spin.
    return Timers(
        refresh=max(float(meta.refresh), 1.0),
        retry=max(float(meta.retry), 1.0),
        expire=max(float(meta.expire), 1.0),
    )


@dataclass
class LastTransfer:
    """The most recent transfer of a zone: for logs, tests and operators."""

    kind: str  # "AXFR" or "IXFR"
    serial: int
    rrsets: int  # RRsets written
    seconds: float


class _Zone:
    """One secondary zone's state in this process."""

    def __init__(self, copy: SecondaryCopy, settings: ZoneAccess, now: float) -> None:
        self.name = copy.zone
        self.origin = dns.name.from_text(copy.zone)
        self.settings = settings
        self.has_copy = copy.has_copy
        self.copy = ZoneCopy.build(copy.meta, copy.serial, copy.rrsets) if copy.has_copy else None
        timers = _timers(copy.meta) if copy.has_copy else None
        self.refresh = Refresh(now, timers=timers, refreshed_at=copy.refreshed_at)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last: LastTransfer | None = None
        if copy.last_transfer is not None:
            self.last = LastTransfer(copy.last_transfer, copy.serial, len(copy.rrsets), 0.0)

    @property
    def serial(self) -> int | None:
        if self.copy is None:
            return None
        found = self.copy.soa()
        return None if found is None else int(found[0].serial)


class Secondaries:
    """Keeps every secondary zone of the store at its primary's serial."""

    def __init__(
        self,
        index: ZoneIndex,
        db: Database,
        access: AccessLoader,
        *,
        on_transfer: Callable[[str], None] = lambda _zone: None,
        on_settled: Callable[[str, State], None] = lambda _zone, _state: None,
        timeout: float = 5.0,
        soa_timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index = index
        self.db = db
        self.access = access
        self.on_transfer = on_transfer
        # Each time a zone's timers are idle again, with their state: for tests and logs.
        self.on_settled = on_settled
        self.timeout = timeout
        self.soa_timeout = soa_timeout
        self.clock = clock
        self.zones: dict[str, _Zone] = {}
        self._syncing: asyncio.Task[None] | None = None
        self._closed = False
        access.listeners.append(self._access_changed)

    async def load(self) -> None:
        """Read the secondary zones and their copies from the store and serve them."""
        copies = await self.db.read(load_secondaries)
        now = self.clock()
        for copy in copies:
            if copy.zone in self.zones:
                continue
            settings = self.access.current.zones.get(copy.zone, ZoneAccess())
            zone = _Zone(copy, settings, now)
            self.zones[copy.zone] = zone
            self._serve(zone, zone.refresh.serving)
            log.info(
                "secondary zone %s loaded at serial %s from the store (%s), primary %s",
                copy.zone, zone.serial, zone.refresh.state.value, copy.primary,
            )  # fmt: skip
            if not self._closed:
                zone.task = asyncio.create_task(self._run(zone), name=f"secondary-{copy.zone}")

    def notified(self, zone_name: str, peer: str, signer: ScopedKey | None) -> dns.rcode.Rcode:
        """A NOTIFY for `zone_name` from `peer` (see `judge_notify`); accepted, the zone is
        checked at once."""
        zone = self.zones.get(zone_name)
        if zone is None:
            return dns.rcode.Rcode.NOTAUTH  # not a secondary zone here
        rcode = judge_notify(zone_name, zone.settings, peer, signer)
        if rcode == dns.rcode.Rcode.NOERROR:
            zone.wake.set()
        return rcode

    def wake(self, zone_name: str) -> None:
        """Check a zone now: another worker accepted a NOTIFY for it."""
        zone = self.zones.get(zone_name)
        if zone is not None:
            zone.wake.set()

    def last_transfer(self, zone_name: str) -> LastTransfer | None:
        zone = self.zones.get(zone_name)
        return None if zone is None else zone.last

    async def close(self) -> None:
        self._closed = True
        tasks = [z.task for z in self.zones.values() if z.task is not None]
        if self._syncing is not None:
            tasks.append(self._syncing)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _access_changed(self, access: Access) -> None:
        """Keys and zone settings were reloaded: pick up new zones and changed primaries,
        stop following zones deleted from the store."""
        for name in [name for name in self.zones if name not in access.zones]:
            gone = self.zones.pop(name)
            if gone.task is not None:
                gone.task.cancel()
            self.index.drop_zone(name)
            log.info("secondary zone %s deleted from the store: no longer transferred", name)
        for name, zone in self.zones.items():
            settings = access.zones.get(name)
            if settings is not None and settings != zone.settings:
                zone.settings = settings
                zone.wake.set()  # a new primary or key: ask it now
        new = [
            name
            for name, settings in access.zones.items()
            if settings.primary is not None and name not in self.zones
        ]
        if new and not self._closed and (self._syncing is None or self._syncing.done()):
            self._syncing = asyncio.create_task(self._load_logged(), name="secondary-load")

    async def _load_logged(self) -> None:
        try:
            await self.load()
        except Exception:
            log.exception("loading new secondary zones failed; the next reload retries")

    def _serve(self, zone: _Zone, serving: bool) -> None:
        """Answer from the copy, or (no copy, or expired) SERVFAIL every question."""
        if serving and zone.copy is not None:
            self.index.put_zone(zone.copy.meta(zone.name), zone.serial or 0, zone.copy.values())
            return
        placeholder = ZoneMeta(zone.name, f"{zone.name}.", f"hostmaster.{zone.name}.")
        meta = zone.copy.meta(zone.name) if zone.copy is not None else placeholder
        self.index.put_zone(replace(meta, expired=True), zone.serial or 0, ())

    async def _run(self, zone: _Zone) -> None:
        while True:
            actions = zone.refresh.due(self.clock())
            while actions:
                actions = await self._act(zone, actions)
            self.on_settled(zone.name, zone.refresh.state)
            wait = max(0.0, zone.refresh.deadline() - self.clock())
            await woken(zone.wake, min(wait, 86400.0))
            if zone.wake.is_set():
                zone.wake.clear()
                actions = zone.refresh.step(Event.NOTIFY, self.clock())
                while actions:
                    actions = await self._act(zone, actions)

    async def _act(self, zone: _Zone, actions: list[Action]) -> list[Action]:
        """Carry out actions; returns the ones that follow from them."""
        following: list[Action] = []
        for action in actions:
            if action is Action.SERVE:
                self._serve(zone, True)
                log.info("secondary zone %s answered at serial %s", zone.name, zone.serial)
            elif action is Action.SERVFAIL:
                self._serve(zone, False)
                log.warning(
                    "secondary zone %s expired: no contact with its primary for %d s; SERVFAIL",
                    zone.name, zone.refresh.timers.expire,
                )  # fmt: skip
            else:
                following += await self._check(zone)
        return following

    async def _check(self, zone: _Zone) -> list[Action]:
        try:
            transferred = await self._pull(zone)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = str(exc)
            if not isinstance(exc, TransferFailed):
                reason = f"{exc.__class__.__name__}: {exc}"
            log.warning(
                "secondary zone %s: check of primary %s failed, kept serial %s; retry in %d s: %s",
                zone.name, _where(zone.settings), zone.serial, zone.refresh.timers.retry, reason,
            )  # fmt: skip
            return zone.refresh.step(Event.FAILURE, self.clock())
        now = self.clock()
        timers = None if zone.copy is None else _timers(zone.copy.meta(zone.name))
        if not transferred:
            with contextlib.suppress(Exception):  # the expire clock only; retried next time
                await mark_refreshed(self.db, zone.name, now)
        return zone.refresh.step(Event.SUCCESS, now, timers=timers)

    async def _pull(self, zone: _Zone) -> bool:
        """Ask the SOA; transfer if the primary is newer. True when a transfer was applied."""
        settings = zone.settings
        if settings.primary is None:
            raise TransferFailed("no primary configured")
        key = self._key(settings)
        asked_at = time.monotonic()
        theirs = await self._soa_serial(zone, settings.primary, key)
        ours = zone.serial
        if ours is not None and not newer(theirs, ours):
            if theirs != ours:
                log.warning(
                    "secondary zone %s: primary's serial %d is not newer than ours %d; kept",
                    zone.name, theirs, ours,
                )  # fmt: skip
            return False
        started = time.monotonic()
        copy = zone.copy if zone.copy is not None else ZoneCopy(zone.origin)
        query, _ = dns.xfr.make_query(
            copy,
            serial=ours if ours else None,  # None: AXFR
            keyring=None if key is None else {key.name: key},
            keyname=None if key is None else key.name,
            keyalgorithm=dns.tsig.default_algorithm if key is None else key.algorithm,
        )
        asked = "IXFR" if ours else "AXFR"
        copy.last = None
        try:
            # A failed transfer rolls its transaction back: the copy stays as it was.
            await dns.asyncquery.inbound_xfr(
                settings.primary[0], copy, query, port=settings.primary[1],
                timeout=self.timeout, lifetime=self.timeout * 12,
            )  # fmt: skip
        except dns.tsig.PeerError as exc:
            raise TransferFailed(f"{asked}: {_key_refused(key, exc)}") from exc
        except (dns.exception.DNSException, OSError) as exc:
            raise TransferFailed(
                f"{asked} refused or broken: {exc.__class__.__name__}: {exc}"
            ) from exc
        commit = copy.last
        transferred_at = time.monotonic()
        if commit is None:
            return False  # the primary had nothing newer after all
        found = copy.soa()
        if found is None:
            raise TransferFailed(f"{asked} brought no SOA")
        serial = int(found[0].serial)
        meta = copy.meta(zone.name)
        values = copy.values() if commit.full else copy.changes()
        record = "AXFR" if commit.full else "IXFR"  # an IXFR may come back as the whole zone
        now = self.clock()
        try:
            await save_transfer(
                self.db, meta, serial, values, full=commit.full, kind=record, at=now
            )
        except Exception:
            # The copy moved but the store did not: start over from the store's copy.
            await self._reload_copy(zone)
            raise
        zone.copy = copy
        zone.has_copy = True
        if zone.refresh.serving:
            if commit.full:
                self.index.put_zone(meta, serial, values)
            else:
                self.index.replace(zone.name, serial, values, meta)
        done = time.monotonic()
        zone.last = LastTransfer(record, serial, len(values), done - asked_at)
        log.info(
            "secondary zone %s: %s from %s (asked %s), serial %s -> %d, %d RRsets in %.3f s"
            " (SOA check %.3f, transfer %.3f, store %.3f)",
            zone.name, record, _where(settings), asked, ours, serial, len(values),
            zone.last.seconds, started - asked_at, transferred_at - started, done - transferred_at,
        )  # fmt: skip
        self.on_transfer(zone.name)
        return True

    async def _reload_copy(self, zone: _Zone) -> None:
        copies = await self.db.read(load_secondaries)
        for copy in copies:
            if copy.zone == zone.name:
                zone.copy = (
                    ZoneCopy.build(copy.meta, copy.serial, copy.rrsets) if copy.has_copy else None
                )

    def _key(self, settings: ZoneAccess) -> dns.tsig.Key | None:
        if settings.primary_key is None:
            return None
        scoped = self.access.current.keyring.get(dns.name.from_text(settings.primary_key))
        if scoped is None:
            raise TransferFailed(
                f"key {settings.primary_key} is not known here (homing key add --secret)"
            )
        return scoped.key

    async def _soa_serial(
        self, zone: _Zone, primary: tuple[str, int], key: dns.tsig.Key | None
    ) -> int:
        query = dns.message.make_query(zone.origin, _SOA)
        query.flags &= ~dns.flags.Flag.RD  # ask the primary itself, not a resolver
        if key is not None:
            query.use_tsig({key.name: key}, keyname=key.name, algorithm=key.algorithm)
        response = None
        for attempt in range(1, SOA_ATTEMPTS + 1):
            try:
                response, _ = await dns.asyncquery.udp_with_fallback(
                    query, primary[0], timeout=self.soa_timeout, port=primary[1]
                )
                break
            except dns.tsig.PeerError as exc:
                raise TransferFailed(_key_refused(key, exc)) from exc
            except dns.exception.Timeout as exc:
                # A lost datagram, or a primary that sent its NOTIFY while still starting.
                if attempt == SOA_ATTEMPTS:
                    raise TransferFailed(
                        f"SOA query: no answer in {SOA_ATTEMPTS} tries of {self.soa_timeout} s"
                    ) from exc
            except (dns.exception.DNSException, OSError) as exc:
                raise TransferFailed(f"SOA query: {exc.__class__.__name__}: {exc}") from exc
        assert response is not None
        rcode = response.rcode()
        if rcode != dns.rcode.Rcode.NOERROR:
            raise TransferFailed(f"SOA query answered {dns.rcode.to_text(rcode)}")
        if not response.flags & dns.flags.Flag.AA:
            raise TransferFailed("SOA answer is not authoritative")
        for rrset in response.answer:
            if rrset.rdtype == _SOA and rrset.name == zone.origin and len(rrset):
                rdata = rrset[0]
                assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
                return int(rdata.serial)
        raise TransferFailed("SOA answer without the zone's SOA")


def _key_refused(key: dns.tsig.Key | None, exc: dns.tsig.PeerError) -> str:
    """The primary's TSIG error (BADKEY, BADSIG, BADTIME), worded for the operator."""
    name = "(none)" if key is None else key.name.to_text(omit_final_dot=True)
    error = exc.__class__.__name__.removeprefix("Peer").upper()
    return f"the primary refused our TSIG key {name}: {error} ({exc})"


def _where(settings: ZoneAccess) -> str:
    if settings.primary is None:
        return "(none)"
    host, port = settings.primary
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
