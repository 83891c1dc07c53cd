"""The DNS wire path in-process, as the transports drive it, for the fuzzers.

`WirePath` owns a SQLite store holding the test zone (tests/dns/zone.py) with a journal
behind it and a zone key, the zone index the journal follower built from it, and the
Responder (with DNS Cookies) and Dispatcher the server would run. `udp()` takes a
datagram in the order dns/udp.py does (the replies kept for the bytes after the ID, then
the dispatcher for UPDATE, NOTIFY, transfers and signed queries, then the Responder);
`slipped()` is what rate limiting sends one over its rate; `tcp()` splits a
stream with StreamFramer and answers each message as dns/server.py does. Neither
catches anything: an exception escaping is a crash, and so is a message our own code
logged as its bug (the Responder and the Dispatcher answer SERVFAIL for those).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import dns.name
import dns.rdatatype
import dns.tsigkeyring
import sqlalchemy as sa

from homing.dns.access import AccessLoader
from homing.dns.answer import Responder
from homing.dns.cookies import ServerCookies
from homing.dns.dispatch import Dispatcher, needs_dispatch
from homing.dns.framing import CLOSED, NEED_DATA, FramingError, StreamFramer, frame
from homing.dns.index import ZoneIndex
from homing.dns.replies import kept_reply
from homing.service import zones
from homing.service.dnsupdate import Operation, UpdateScope, apply_update
from homing.service.journal import Follower
from homing.service.keys import add_key
from homing.store.db import Database
from homing.store.schema import journal, rrsets
from homing.store.schema import zones as zones_table
from tests.dns.zone import ZONE, build_index, name
from tests.fuzz.properties import check_tcp, check_udp, same_replies

__all__ = ["ALLOWED_PEER", "OTHER_PEER", "BugLogged", "WirePath", "ZONE"]

ALLOWED_PEER = "127.0.0.1"  # on the zone's allow-transfer list
OTHER_PEER = "2001:db8::77"  # on no list: transfers refused
COOKIE_SECRET = bytes(range(16))
KEY_NAME = "fuzz-key"
MOVES = ("192.0.2.2", "192.0.2.3", "192.0.2.1")  # journal entries for IXFR to walk
TCP_REPLY_LIMIT = 64  # answers per TCP stream before the harness stops reading (an AXFR loop)


class BugLogged(AssertionError):
    """homing logged one of its own errors (answered SERVFAIL instead of crashing)."""


class _Errors(logging.Handler):
    """Keeps the ERROR records homing logs while a message is answered."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def raise_any(self, wire: bytes) -> None:
        if not self.records:
            return
        record = self.records[0]
        self.records.clear()
        text = logging.Formatter().format(record)
        raise BugLogged(f"homing logged an error for message {wire.hex()}:\n{text}")


@dataclass(frozen=True)
class ZoneState:
    """Everything the index serves, in comparable form."""

    generation: int
    zones: tuple[tuple[Any, ...], ...]


def zone_state(index: ZoneIndex) -> ZoneState:
    """A copy of the index's contents (nodes are tuples, so copying the dicts suffices)."""
    zones_now = []
    for origin, zone in sorted(index.zones.items()):
        zones_now.append(
            (
                origin.to_text(),
                zone.serial,
                zone.meta,
                tuple(sorted(zone.owners.items())),
                tuple(sorted(zone.below.items())),
                tuple(sorted(zone.outside.items())),
            )
        )
    return ZoneState(index.generation, tuple(zones_now))


async def _fill(db: Database) -> str:
    """The test zone in the store, a journal of a few moves, and a zone key's secret."""
    await zones.add_zone(
        db,
        ZONE,
        ns=["ns1.example.net", "ns2.example.net"],
        rname="hostmaster.example.net",
        allow_transfer=[f"{ALLOWED_PEER}/32"],
    )
    reference = build_index().zones[dns.name.from_text(ZONE)]
    operations = []
    for rrset in reference.rrsets():
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        if rtype in ("SOA", "NS") and rrset.name == reference.origin:
            continue  # the zone's own, made by add_zone
        owner = rrset.name.to_text(omit_final_dot=True)
        operations += [Operation("add", owner, rtype, rrset.ttl, r.to_text()) for r in rrset]
    scope = UpdateScope(ZONE)
    await apply_update(db, ZONE, [], operations, scope, actor="fuzz")
    host = name("host")
    for address in MOVES:
        await apply_update(db, ZONE, [], [Operation("delete_rrset", host, "A")], scope, actor="f")
        await apply_update(
            db, ZONE, [], [Operation("add", host, "A", 60, address)], scope, actor="f"
        )
    key = await add_key(db, KEY_NAME, zone=ZONE)
    return f"{key.algorithm}:{key.secret}"


class WirePath:
    """The wire path over a store of its own; use as a context manager."""

    def __init__(self, directory: Path | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory()
            directory = Path(self._tmp.name)
        self.directory = directory
        self.loop = asyncio.new_event_loop()
        self.errors = _Errors()
        self._homing_log = logging.getLogger("homing")

    def __enter__(self) -> WirePath:
        try:
            self.loop.run_until_complete(self._open())
        except BaseException:
            self.close()
            raise
        self._homing_log.addHandler(self.errors)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def _open(self) -> None:
        self.db = Database(f"sqlite+aiosqlite:///{self.directory / 'homing.db'}")
        await self.db.migrate()
        algorithm, secret = (await _fill(self.db)).split(":", 1)
        self.keyring = dns.tsigkeyring.from_text({KEY_NAME: (algorithm, secret)})
        self.key_name = dns.name.from_text(KEY_NAME)
        self.index = ZoneIndex()
        self._follower = Follower(self.db, self.index)
        await self._follower.sync()
        self.db.on_commit.remove(self._follower.committed)  # nothing may change from here on
        # min_reload_gap=0: a fuzzed unknown key name rereads keys without the rate limit's wait.
        self.access = AccessLoader(self.db, min_reload_gap=0)
        await self.access.reload()
        self.cookies = ServerCookies(COOKIE_SECRET)
        self.responder = Responder(self.index, cookies=self.cookies)
        self.dispatcher = Dispatcher(self.index, self.db, self.access, self.responder)
        self.store_before = await self.store_state()
        self.state = zone_state(self.index)

    def close(self) -> None:
        self._homing_log.removeHandler(self.errors)
        db = getattr(self, "db", None)
        if db is not None:
            self.loop.run_until_complete(db.close())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def store_state(self) -> tuple[Any, ...]:
        """The zones' serials and the number of journal and record rows."""

        async def read(conn: Any) -> tuple[Any, ...]:
            serials = (
                await conn.execute(sa.select(zones_table.c.name, zones_table.c.serial))
            ).all()
            entries = await conn.scalar(sa.select(sa.func.count()).select_from(journal))
            rows = await conn.scalar(sa.select(sa.func.count()).select_from(rrsets))
            return (tuple(sorted(map(tuple, serials))), entries, rows)

        return await self.db.read(read)  # type: ignore[no-any-return]

    def store_unchanged(self) -> bool:
        return self.loop.run_until_complete(self.store_state()) == self.store_before

    # --- the paths ---------------------------------------------------------------------------

    def udp(self, wire: bytes, peer: str = ALLOWED_PEER) -> list[bytes]:
        """The datagrams answering one datagram, as dns/udp.py would send them."""
        client = client_bytes(peer)
        kept = kept_reply(self.responder.udp_replies(), wire)
        if kept is not None:
            replies = [kept]
        elif needs_dispatch(wire):
            replies = list(
                self.loop.run_until_complete(self.dispatcher.handle(wire, peer, tcp=False))
            )
        else:
            reply = self.responder.compute(wire, tcp=False, client=client)
            replies = [] if reply is None else [reply]
        self.errors.raise_any(wire)
        return replies

    def tcp_message(self, wire: bytes, peer: str = ALLOWED_PEER) -> list[bytes]:
        """The messages answering one message read off a TCP stream, as dns/server.py does."""
        if needs_dispatch(wire):
            replies = list(self.loop.run_until_complete(self._collect(wire, peer)))
        else:
            reply = self.responder.answer(wire, tcp=True, client=client_bytes(peer))
            replies = [] if reply is None else [reply]
        for reply in replies:
            frame(reply)  # raises ValueError for a message a 2-byte length cannot carry
        self.errors.raise_any(wire)
        return replies

    async def _collect(self, wire: bytes, peer: str) -> list[bytes]:
        out = []
        for reply in await self.dispatcher.handle(wire, peer, tcp=True):
            out.append(reply)
            if len(out) >= TCP_REPLY_LIMIT:
                break
        return out

    def tcp(
        self, chunks: Iterator[bytes] | list[bytes], peer: str = ALLOWED_PEER
    ) -> tuple[list[tuple[bytes, list[bytes]]], str]:
        """A stream read in `chunks`: each message with its answers, and how it ended
        ("closed", "need data" or the framing error's words)."""
        framer = StreamFramer()
        exchanges: list[tuple[bytes, list[bytes]]] = []
        for chunk in [*chunks, b""]:
            framer.receive_data(chunk)
            while True:
                try:
                    message = framer.next_message()
                except FramingError as exc:
                    return exchanges, str(exc)
                if message is NEED_DATA:
                    break
                if message is CLOSED:
                    return exchanges, "closed"
                assert isinstance(message, bytes)
                exchanges.append((message, self.tcp_message(message, peer)))
        return exchanges, "need data"

    def slipped(self, wire: bytes, peer: str = ALLOWED_PEER) -> list[bytes]:
        """What a datagram over its source's rate gets, as dns/udp.py decides it: answered
        as usual when it shows a server cookie we gave its address, else the truncated
        answer rate limiting's slip sends (or nothing)."""
        client = client_bytes(peer)
        if self.responder.proven(wire, client):
            return self.udp(wire, peer)
        reply = self.responder.truncated(wire, client)
        self.errors.raise_any(wire)
        return [] if reply is None else [reply]

    def reference(self, wire: bytes, peer: str, *, tcp: bool) -> bytes | None:
        """The answer of a Responder that has seen nothing before (no kept replies)."""
        fresh = Responder(self.index, cookies=self.cookies)
        reply = fresh.compute(wire, tcp=tcp, client=client_bytes(peer))
        self.errors.raise_any(wire)
        return reply

    def exercise(self, query: bytes, peer: str = ALLOWED_PEER, *, reference: bool = True) -> None:
        """`query` over UDP (answered, and held back by rate limiting) and over TCP, every
        property checked (AssertionError if one fails): the replies' form, ID and size,
        TSIG only after a verified MAC, TC on a slipped answer, the zone index untouched,
        and (`reference`) a plain query's reply the same when asked again and from a
        Responder that has seen nothing before (DNS Cookies with the same secret)."""
        udp = self.udp(query, peer)
        check_udp(query, udp, self.keyring)
        slipped = self.slipped(query, peer)
        check_udp(query, slipped, self.keyring)
        if slipped and not self.responder.proven(query, client_bytes(peer)):
            assert slipped[0][2] & 0x02, f"rate limiting's slip without TC: {query.hex()}"
        tcp = self.tcp_message(query, peer)
        check_tcp(query, tcp, self.keyring)
        assert zone_state(self.index) == self.state, f"the zone index changed: {query.hex()}"
        if not reference or needs_dispatch(query):
            return  # the dispatcher's answers carry TSIG times; they are not compared
        again = self.udp(query, peer)
        assert same_replies(again, udp), f"UDP reply changed when asked again: {query.hex()}"
        fresh = self.reference(query, peer, tcp=False)
        assert same_replies(udp, [] if fresh is None else [fresh]), (
            f"UDP reply differs from a fresh Responder's: {query.hex()} {udp} {fresh!r}"
        )
        fresh = self.reference(query, peer, tcp=True)
        assert same_replies(tcp, [] if fresh is None else [fresh]), (
            f"TCP reply differs from a fresh Responder's: {query.hex()} {tcp} {fresh!r}"
        )


def client_bytes(peer: str) -> bytes:
    """The peer's address as the 4 or 16 bytes the transports hand DNS Cookies."""
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    return socket.inet_pton(family, peer)
