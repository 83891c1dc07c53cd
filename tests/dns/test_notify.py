"""NOTIFY out: one per change burst, retried when unanswered, to every target of the zone."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import dns.flags
import dns.message
import dns.opcode
import dns.rdtypes.ANY.SOA
import pytest

from homing.dns.access import Access, AccessLoader, ZoneAccess
from homing.dns.notify import ChangeWatch, Notifier
from homing.domain.records import JournalEntry
from tests.dns.zone import SERIAL, ZONE, build_index


class Secondary(asyncio.DatagramProtocol):
    """Receives NOTIFYs; ignores the first `deaf` of them, answers the rest."""

    def __init__(self, deaf: int = 0) -> None:
        self.deaf = deaf
        self.serials: list[int] = []
        self.answered = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        message = dns.message.from_wire(data)
        assert message.opcode() == dns.opcode.Opcode.NOTIFY
        assert message.flags & dns.flags.AA and not message.flags & dns.flags.RD
        soa = message.answer[0][0]
        assert isinstance(soa, dns.rdtypes.ANY.SOA.SOA)
        self.serials.append(soa.serial)
        if self.deaf > 0:
            self.deaf -= 1
            return
        assert self.transport is not None
        self.transport.sendto(dns.message.make_response(message).to_wire(), addr)
        self.answered.set()


async def secondary(deaf: int = 0) -> tuple[Secondary, asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Secondary(deaf), local_addr=("127.0.0.1", 0)
    )
    return (
        protocol,
        cast(asyncio.DatagramTransport, transport),
        transport.get_extra_info("sockname")[1],
    )


def entry(serial: int) -> JournalEntry:
    return JournalEntry(
        0, ZONE, serial, f"h.{ZONE}", "A", 60, (), (f"192.0.2.{serial % 250}",), "t", "test"
    )


def notifier_for(ports: list[int], **kw: float) -> tuple[Notifier, ChangeWatch]:
    index = build_index()
    access = AccessLoader(cast(Any, None))
    access.current = Access(zones={ZONE: ZoneAccess(notify=tuple(("127.0.0.1", p) for p in ports))})
    notifier = Notifier(index, access, **kw)  # type: ignore[arg-type]
    return notifier, ChangeWatch(index, notifier.changed)


async def test_a_burst_becomes_few_notifies_with_the_latest_serial() -> None:
    one, t1, p1 = await secondary()
    two, t2, p2 = await secondary()
    notifier, watch = notifier_for([p1, p2])
    try:
        for serial in range(SERIAL + 1, SERIAL + 51):
            assert watch.apply(entry(serial))
        async with asyncio.timeout(5):
            while SERIAL + 50 not in one.serials or SERIAL + 50 not in two.serials:
                await asyncio.wait_for(one.answered.wait(), 5)
                one.answered.clear()
                await asyncio.wait_for(two.answered.wait(), 5)
                two.answered.clear()
        # 50 changes in one burst: far fewer NOTIFYs, the last with the final serial.
        assert len(one.serials) <= 3 and one.serials[-1] == SERIAL + 50
        assert len(two.serials) <= 3 and two.serials[-1] == SERIAL + 50
    finally:
        await notifier.close()
        t1.close()
        t2.close()


async def test_unanswered_notify_is_retried() -> None:
    deaf, transport, port = await secondary(deaf=2)
    notifier, watch = notifier_for([port], timeout=0.1, backoff=1.0)
    try:
        assert watch.apply(entry(SERIAL + 1))
        await asyncio.wait_for(deaf.answered.wait(), 5)
        assert deaf.serials == [SERIAL + 1] * 3
        for _ in range(100):  # the answer is in flight back to the notifier: no event to await
            if notifier.delivered:
                break
            await asyncio.sleep(0.01)
        assert notifier.delivered[-1].attempts == 3
    finally:
        await notifier.close()
        transport.close()


async def test_no_notify_when_nothing_moved() -> None:
    silent, transport, port = await secondary()
    notifier, watch = notifier_for([port])
    try:
        assert watch.apply(entry(SERIAL))  # already in: no serial move
        await asyncio.sleep(0.2)  # proving an absence: there is no event to wait for
        assert silent.serials == []
    finally:
        await notifier.close()
        transport.close()


async def test_a_held_notifier_sends_only_once_released() -> None:
    # At start the changes are known before our DNS listens: nothing may go out yet.
    listener, transport, port = await secondary()
    notifier, watch = notifier_for([port], held=True)
    try:
        assert watch.apply(entry(SERIAL + 1))
        assert watch.apply(entry(SERIAL + 2))
        with pytest.raises(TimeoutError):  # bounded: waiting for what must not happen
            await asyncio.wait_for(listener.answered.wait(), 0.5)
        assert listener.serials == []
        notifier.release()
        await asyncio.wait_for(listener.answered.wait(), 5)
        assert listener.serials == [SERIAL + 2]
    finally:
        await notifier.close()
        transport.close()
