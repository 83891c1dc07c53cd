"""Waits with a time limit that never lose a cancellation.

On Python 3.11, `asyncio.wait_for` returns the awaited result when it is ready in the
same loop turn as the waiting task is cancelled, and the cancellation is lost: a loop
that waits for an event in `wait_for` then runs on after `task.cancel()`, and whatever
awaits that task (a server's shutdown) waits forever. The more often the event is set,
the likelier (a journal follower woken hundreds of times a second). `asyncio.timeout`
keeps the cancellation.
"""

from __future__ import annotations

import asyncio


async def woken(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until `event` is set or `seconds` pass (None: no limit); whether it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
