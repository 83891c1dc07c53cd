"""The one throttle over a real store (SQLite and PostgreSQL): windows, atomicity, keys."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.windows import Window, parse_windows
from homing.service.accounts import authenticate, create_account
from homing.service.remembered import RememberedCredentials
from homing.service.secrets import argon2_runs
from homing.service.throttle import PRUNE_EVERY, Throttle, Throttled, ThrottlePolicy
from homing.store import schema
from homing.store.db import Database

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def tight(**overrides: object) -> ThrottlePolicy:
    values: dict[str, object] = {
        "source": (Window(20, 60),),
        "account_source": (Window(5, 900),),
        "account": (Window(8, 3600),),
    }
    values.update(overrides)
    return ThrottlePolicy(**values)  # type: ignore[arg-type]


def test_windows_parse_and_refuse_nonsense() -> None:
    assert parse_windows("5/900, 20/86400") == (Window(5, 900), Window(20, 86400))
    for bad in ("", "5", "0/60", "5/0", "x/60", "5/60,6/60", "5/60;6/70"):
        with pytest.raises(ValueError):
            parse_windows(bad)


def test_source_prefixes() -> None:
    throttle = Throttle(Database("sqlite+aiosqlite:///:memory:"))
    assert throttle.prefix("203.0.113.77") == "203.0.113.0/24"
    assert throttle.prefix("::ffff:203.0.113.9") == "203.0.113.0/24"
    assert throttle.prefix("2001:db8:0:ff:1::1") == "2001:db8::/56"
    assert throttle.prefix("2001:db8:0:100::1") == "2001:db8:0:100::/56"


async def test_parallel_reservations_never_pass_the_limit(db: Database) -> None:
    """20 reservations at once against 5 per window: exactly 5 pass, on either store."""
    clock = Clock()
    throttle = Throttle(db, tight(), clock)
    charges = throttle.account("victim", "192.0.2.1")
    outcomes = await asyncio.gather(
        *(throttle.reserve(charges) for _ in range(20)), return_exceptions=True
    )
    assert sum(o is None for o in outcomes) == 5
    assert all(isinstance(o, Throttled) for o in outcomes if o is not None)
    refused = [o for o in outcomes if isinstance(o, Throttled)]
    assert all(0 < o.retry_after <= 900 for o in refused)


async def test_two_workers_on_one_store_share_the_count(db: Database) -> None:
    clock = Clock()
    first, second = Throttle(db, tight(), clock), Throttle(db, tight(), clock)
    for throttle in (first, second, first, second, first):
        await throttle.reserve(throttle.account("carol", "192.0.2.3"))
    with pytest.raises(Throttled):
        await second.reserve(second.account("carol", "192.0.2.3"))
    # Another source may still try the account (its own 5, under the account's 8).
    await second.reserve(second.account("carol", "198.51.100.3"))


async def test_the_window_drains_and_a_refund_gives_back(db: Database) -> None:
    clock = Clock()
    throttle = Throttle(db, tight(), clock)
    charges = throttle.account("dora", "192.0.2.4")
    for _ in range(4):
        await throttle.reserve(charges)
    await throttle.reserve(charges)
    await throttle.refund(charges)  # that one was the right password
    await throttle.reserve(charges)
    with pytest.raises(Throttled) as refused:
        await throttle.reserve(charges)
    assert refused.value.retry_after == pytest.approx(180)  # one attempt per 900/5 s
    clock.now += 180
    await throttle.reserve(charges)
    with pytest.raises(Throttled):
        await throttle.reserve(charges)


async def test_the_account_key_holds_across_sources(db: Database) -> None:
    clock = Clock()
    throttle = Throttle(db, tight(), clock)
    for n in range(8):
        await throttle.reserve(throttle.account("erin", f"192.0.{n}.1"))
    with pytest.raises(Throttled):
        await throttle.reserve(throttle.account("erin", "203.0.113.1"))
    await throttle.reserve(throttle.account("someone", "203.0.113.1"))
    await throttle.forget_account("erin")  # a new password: a fresh start everywhere
    await throttle.reserve(throttle.account("erin", "203.0.113.1"))


async def test_a_locked_source_is_refused_from_memory_and_other_workers_learn_it(
    db: Database,
) -> None:
    clock = Clock()
    attacked = Throttle(db, tight(), clock)
    other = Throttle(db, tight(), clock, refresh=0.0)
    assert await other.source_wait("198.51.100.200") == 0
    for _ in range(20):
        await attacked.failed(attacked.source("198.51.100.9"))
    assert await attacked.source_wait("198.51.100.77") > 0  # the same /24
    assert await attacked.source_wait("198.51.101.1") == 0
    assert await other.source_wait("198.51.100.200") > 0  # read from the store
    with pytest.raises(Throttled):
        await other.check_source("198.51.100.1")
    clock.now += 60
    assert await attacked.source_wait("198.51.100.77") == 0


async def test_cheap_failures_keep_the_lock_at_most_one_window_ahead(db: Database) -> None:
    clock = Clock()
    throttle = Throttle(db, tight(), clock)
    for _ in range(500):
        await throttle.failed(throttle.source("192.0.2.8"))
    wait = await throttle.source_wait("192.0.2.8")
    assert 0 < wait <= 3  # the row is full, not 500 attempts deep: one more per 60/20 s
    clock.now += 61
    assert await throttle.prune() == 1
    for n in range(3):
        await throttle.failed(throttle.source(f"192.0.{n}.1"))
    clock.now += PRUNE_EVERY
    await throttle.failed(throttle.source("203.0.113.1"))  # a failure now and then prunes

    async def keys(conn: AsyncConnection) -> list[str]:
        return list((await conn.scalars(sa.select(schema.throttle.c.key))).all())

    assert await db.read(keys) == ["src:203.0.113.0/24"]


async def test_ipv6_sources_in_one_56_share_a_budget(db: Database) -> None:
    clock = Clock()
    throttle = Throttle(db, tight(), clock)
    for n in range(5):
        await throttle.reserve(throttle.account("fay", f"2001:db8:0:{n:x}::{n + 1}"))
    with pytest.raises(Throttled):
        await throttle.reserve(throttle.account("fay", "2001:db8:0:ff::abcd"))
    await throttle.reserve(throttle.account("fay", "2001:db8:0:100::1"))  # the next /56


async def test_authenticate_reserves_before_argon2_and_remembers(db: Database) -> None:
    clock = Clock()
    throttle = Throttle(db, tight(), clock)
    await create_account(db, "gwen", "gwen@example.org", PASSWORD)
    before = argon2_runs["verify"]
    for _ in range(5):
        wrong = await authenticate(db, "gwen", "wrong!", throttle=throttle, address="192.0.2.9")
        assert wrong is None
    assert argon2_runs["verify"] - before == 5
    with pytest.raises(Throttled):
        await authenticate(db, "gwen", PASSWORD, throttle=throttle, address="192.0.2.9")
    assert argon2_runs["verify"] - before == 5
    account = await authenticate(db, "GWEN", PASSWORD, throttle=throttle, address="192.0.3.9")
    assert account is not None and account.user_id == "gwen"
    assert argon2_runs["verify"] - before == 6
    again = await authenticate(db, "gwen", PASSWORD, throttle=throttle, address="192.0.3.9")
    assert again == account and argon2_runs["verify"] - before == 6  # remembered
    # A user ID no account can have costs no argon2, but counts for the source.
    assert await authenticate(db, "x" * 80, "pw", throttle=throttle, address="192.0.4.1") is None
    assert argon2_runs["verify"] - before == 6


def test_remembered_credentials_expire_are_bounded_and_follow_the_hash() -> None:
    clock = Clock()
    remembered = RememberedCredentials(ttl=60, size=2, clock=clock)
    remembered.remember("a", "pw", "$hash1")
    assert remembered.known("a", "pw", "$hash1")
    assert not remembered.known("a", "pw", "$hash2")  # the password changed
    assert not remembered.known("a", "other", "$hash1")
    remembered.remember("b", "pw", "$h")
    remembered.remember("c", "pw", "$h")
    assert not remembered.known("a", "pw", "$hash1")  # the oldest made room
    clock.now += 61
    assert not remembered.known("c", "pw", "$h")
    off = RememberedCredentials(ttl=0, size=10)
    off.remember("a", "pw", "$h")
    assert not off.known("a", "pw", "$h")


async def test_parallel_reservations_from_two_processes(db: Database) -> None:
    """Two handles on one store (two workers, each with its own connections and writer)
    reserving at once: still exactly the limit, on SQLite's file lock and PostgreSQL's rows."""
    other_db = Database(db.url.render_as_string(hide_password=False), schema=db.schema)
    try:
        clock = Clock()
        first, second = Throttle(db, tight(), clock), Throttle(other_db, tight(), clock)
        charges = first.account("hana", "192.0.2.30")
        outcomes = await asyncio.gather(
            *(t.reserve(charges) for _ in range(10) for t in (first, second)),
            return_exceptions=True,
        )
        assert sum(o is None for o in outcomes) == 5
        assert all(isinstance(o, Throttled) for o in outcomes if o is not None)
    finally:
        await other_db.close()


async def test_a_remembered_password_passes_no_lock(db: Database) -> None:
    """Guesses against a remembered password are still counted and locked out: the lock is
    read before the memory is asked, so a locked guesser cannot test guesses for free."""
    clock = Clock()
    throttle = Throttle(db, tight(), clock)
    await create_account(db, "ines", "ines@example.org", PASSWORD)
    assert await authenticate(db, "ines", PASSWORD, throttle=throttle, address="192.0.2.40")
    for _ in range(5):
        wrong = await authenticate(db, "ines", "guess", throttle=throttle, address="192.0.2.41")
        assert wrong is None
    before = argon2_runs["verify"]
    with pytest.raises(Throttled):
        await authenticate(db, "ines", PASSWORD, throttle=throttle, address="192.0.2.41")
    assert argon2_runs["verify"] == before
    assert await authenticate(db, "ines", PASSWORD, throttle=throttle, address="198.51.100.4")
    assert argon2_runs["verify"] == before  # remembered, and that source is not locked
