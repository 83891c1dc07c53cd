"""A loop that waits for an event with a time limit stops when cancelled, even when the
event is set in the same loop turn as the cancellation (which `asyncio.wait_for` on
Python 3.11 loses, so a server's shutdown would wait for that loop forever)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from homing.domain.waits import woken

ROUNDS = 60


async def _loops_forever(
    wait: Callable[[asyncio.Event], Awaitable[object]], *, first: bool = False
) -> int:
    """How many of ROUNDS loops went on after being cancelled as their event was set
    (`first`: stop counting at the first)."""
    went_on = 0
    for i in range(ROUNDS):
        event = asyncio.Event()

        async def loop(event: asyncio.Event = event) -> None:
            while True:
                await wait(event)
                event.clear()
                await asyncio.sleep(0)  # the loop's work

        task = asyncio.create_task(loop())
        for _ in range(i % 5):  # each round meets the loop at another point of its turn
            await asyncio.sleep(0)
        event.set()
        for _ in range(i % 3):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)  # ended at once, or never
        if not done:
            went_on += 1
            while not task.done():  # stop it for good: cancel until it takes
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            if first:
                break
    return went_on


async def test_a_cancelled_wait_is_never_lost() -> None:
    assert await _loops_forever(lambda event: woken(event, 0.2)) == 0


async def test_wait_for_loses_some_here() -> None:
    """The check above can fail: with `asyncio.wait_for`, some loops run on."""

    async def wait_for(event: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 0.2)

    if sys.version_info >= (3, 12):
        pytest.skip("asyncio.wait_for keeps the cancellation from Python 3.12 on")
    assert await _loops_forever(wait_for, first=True) == 1


async def test_woken_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await woken(event, 0.01) is False
    event.set()
    assert await woken(event, 10) is True


def test_no_wait_for_in_the_code() -> None:
    """Every wait with a time limit in homing is one that keeps a cancellation."""
    import homing

    src = Path(homing.__file__).parent
    found = [str(p) for p in src.rglob("*.py") if "asyncio.wait_for(" in p.read_text()]
    assert found == []
