"""TurnWrites (homing/web/connections.py): a response's writes in one turn go out as one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from homing.web.connections import HELD_MAX, TurnWrites


class Recorded:
    """The transport side: what reaches it, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("192.0.2.7", 4321) if name == "peername" else default


def _run(body: Callable[[TurnWrites, Recorded], Awaitable[None]]) -> Recorded:
    recorded = Recorded()

    async def main() -> None:
        writes = TurnWrites(recorded, asyncio.get_running_loop())  # type: ignore[arg-type]
        await body(writes, recorded)

    asyncio.run(main())
    return recorded


def test_the_head_and_body_of_a_response_go_out_in_one_write_after_the_turn() -> None:
    async def body(writes: TurnWrites, recorded: Recorded) -> None:
        writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        writes.write(b"good ")
        assert recorded.calls == []  # held until the turn ends
        await asyncio.sleep(0)
        writes.write(b"next")  # the next turn's answer: a write of its own
        await asyncio.sleep(0)

    assert _run(body).calls == [
        ("write", b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\ngood "),
        ("write", b"next"),
    ]


def test_close_writes_what_is_held_first_and_abort_drops_it() -> None:
    async def closing(writes: TurnWrites, recorded: Recorded) -> None:
        writes.write(b"HTTP/1.1 408 ")
        writes.write(b"Request Timeout\r\n\r\n")
        writes.close()
        await asyncio.sleep(0)

    assert _run(closing).calls == [
        ("write", b"HTTP/1.1 408 Request Timeout\r\n\r\n"),
        ("close", b""),
    ]

    async def aborting(writes: TurnWrites, recorded: Recorded) -> None:
        writes.write(b"HTTP/1.1 200 OK\r\n")
        writes.abort()
        await asyncio.sleep(0)

    assert _run(aborting).calls == [("abort", b"")]


def test_at_most_held_max_bytes_wait_for_the_turn() -> None:
    chunk = b"x" * (HELD_MAX // 4)

    async def body(writes: TurnWrites, recorded: Recorded) -> None:
        for _ in range(5):
            writes.write(chunk)
        assert recorded.calls == [("write", chunk * 4)]  # the fourth reached the bound
        await asyncio.sleep(0)

    assert _run(body).calls == [("write", chunk * 4), ("write", chunk)]


def test_a_connection_closed_before_the_turn_ends_is_written_nothing() -> None:
    async def body(writes: TurnWrites, recorded: Recorded) -> None:
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        recorded.closing = True  # the peer went away meanwhile
        await asyncio.sleep(0)

    assert _run(body).calls == []


def test_everything_else_is_the_transports() -> None:
    async def body(writes: TurnWrites, recorded: Recorded) -> None:
        assert writes.get_extra_info("peername") == ("192.0.2.7", 4321)
        assert writes.is_closing() is False

    _run(body)
