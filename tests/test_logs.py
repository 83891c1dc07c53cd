"""`homing serve`'s log handler and text format (homing/logs.py)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from homing.logs import TEXT_FORMAT, TextFormatter, TurnBuffered


class Writes:
    """A stream that keeps each write() apart."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def logged() -> tuple[logging.Logger, Writes]:
    writes = Writes()
    handler = TurnBuffered()
    handler.setStream(writes)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("homing.test-logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, writes


def test_the_lines_of_one_loop_turn_go_out_in_one_write(
    logged: tuple[logging.Logger, Writes],
) -> None:
    logger, writes = logged

    async def turn() -> list[str]:
        for n in range(3):
            logger.info("update h%d: good", n)
        during = list(writes.writes)
        await asyncio.sleep(0)  # the turn ends: the flush queued behind it runs
        return during

    assert asyncio.run(turn()) == []
    assert writes.writes == ["update h0: good\nupdate h1: good\nupdate h2: good\n"]


def test_a_line_outside_a_loop_goes_out_at_once_after_those_waiting(
    logged: tuple[logging.Logger, Writes],
) -> None:
    logger, writes = logged
    logger.info("starting")
    assert writes.writes == ["starting\n"]

    async def turn() -> list[str]:
        logger.info("in the loop")
        thread = threading.Thread(target=logger.warning, args=("from a thread",))
        thread.start()  # no loop there: written at once, with the line waiting first
        thread.join()
        return list(writes.writes)

    assert asyncio.run(turn()) == ["starting\n", "in the loop\nfrom a thread\n"]


def test_a_loop_closed_with_lines_waiting_does_not_hold_the_next_loops(
    logged: tuple[logging.Logger, Writes],
) -> None:
    logger, writes = logged
    first = asyncio.new_event_loop()
    first.call_soon(logger.info, "first")
    first.call_soon(first.stop)  # before the flush the line queued behind it
    first.run_forever()
    first.close()
    assert writes.writes == []

    async def turn() -> None:
        logger.info("second")
        await asyncio.sleep(0)

    asyncio.run(turn())
    assert writes.writes == ["first\nsecond\n"]


def test_a_turn_holds_at_most_max_lines(logged: tuple[logging.Logger, Writes]) -> None:
    logger, writes = logged

    async def turn() -> int:
        for n in range(TurnBuffered.MAX_LINES + 1):
            logger.info("line %d", n)
        return len(writes.writes)

    assert asyncio.run(turn()) == 1  # the first MAX_LINES, without waiting for the turn
    assert writes.writes[0].count("\n") == TurnBuffered.MAX_LINES
    assert writes.writes[1:] == [f"line {TurnBuffered.MAX_LINES}\n"]


@pytest.mark.parametrize("created", [1_780_000_000.0, 1_780_000_000.999, 1_780_000_001.5])
def test_the_text_format_is_the_logging_modules_own(created: float) -> None:
    ours, reference = TextFormatter(), logging.Formatter(TEXT_FORMAT)
    for at in (created - 1.25, created, created + 0.0005):  # a cached second, and a new one
        record = logging.makeLogRecord(
            {"name": "homing.x", "levelno": logging.INFO, "levelname": "INFO", "msg": "m %s"}
        )
        record.args = ("a",)
        record.created = at
        record.msecs = (at - int(at)) * 1000
        assert ours.format(record) == reference.format(record)
