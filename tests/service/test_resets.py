"""Password reset in the service: tokens stored hashed, single use, expiring, throttled."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from homing.domain.errors import AccountError
from homing.service import accounts, resets
from homing.service.portal import account_by_id
from homing.store.db import Database, Txn
from homing.store.schema import accounts as accounts_table
from homing.store.schema import password_resets, reset_requests

PASSWORD = "correct horse battery"
NEW = "a brand new passphrase"
POLICY = resets.ResetPolicy(ttl=3600, per_account=3, per_address=10, window=3600)


class Clock:
    """Time the test moves by hand (expiry and throttle windows without waiting)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _rows(db: Database, table: sa.Table) -> list[sa.Row[tuple[object, ...]]]:
    async def query(conn: sa.ext.asyncio.AsyncConnection) -> list[sa.Row[tuple[object, ...]]]:
        return list((await conn.execute(sa.select(table))).all())

    return await db.read(query)


@pytest.fixture
async def ann(db: Database) -> accounts.Account:
    return await accounts.create_account(db, "Ann", "Ann@Example.org", PASSWORD)


async def test_a_link_by_user_id_or_email_and_only_its_hash_stored(
    db: Database, ann: accounts.Account
) -> None:
    clock = Clock()
    by_id = await resets.request_reset(db, " ann ", "192.0.2.1", policy=POLICY, clock=clock)
    assert by_id is not None and (by_id.to, by_id.user_id) == ("Ann@Example.org", "Ann")
    stored = await _rows(db, password_resets)
    assert len(stored) == 1 and stored[0].token_hash != by_id.token
    assert by_id.token not in str(stored[0]) and len(by_id.token) >= 40
    assert stored[0].expires_at == clock.now + 3600
    by_email = await resets.request_reset(
        db, "ANN@example.ORG", "192.0.2.1", policy=POLICY, clock=clock
    )
    assert by_email is not None and by_email.token != by_id.token
    # The newer link replaces the older one.
    assert await resets.account_for_token(db, by_id.token, clock=clock) is None
    found = await resets.account_for_token(db, by_email.token, clock=clock)
    assert found is not None and found.id == ann.id
    assert len(await _rows(db, password_resets)) == 1


async def test_unknown_and_disabled_accounts_get_nothing_and_no_error(
    db: Database, ann: accounts.Account
) -> None:
    assert await resets.request_reset(db, "nobody", "192.0.2.1", policy=POLICY) is None
    assert await resets.request_reset(db, "no@example.org", "192.0.2.1", policy=POLICY) is None

    async def disable(txn: Txn) -> None:
        await txn.conn.execute(
            sa.update(accounts_table).where(accounts_table.c.id == ann.id).values(status="disabled")
        )

    await db.write(disable)
    assert await resets.request_reset(db, "ann", "192.0.2.1", policy=POLICY) is None
    assert await _rows(db, password_resets) == []


async def test_reset_sets_the_password_once_and_ends_sessions(
    db: Database, ann: accounts.Account
) -> None:
    clock = Clock()
    mail = await resets.request_reset(db, "ann", "192.0.2.1", policy=POLICY, clock=clock)
    assert mail is not None
    done = await resets.reset_password(db, mail.token, NEW, NEW, clock=clock)
    assert done.id == ann.id
    assert await accounts.authenticate(db, "ann", NEW) is not None
    assert await accounts.authenticate(db, "ann", PASSWORD) is None
    after = await account_by_id(db, ann.id)
    assert after is not None and after.session_epoch == ann.session_epoch + 1
    assert await _rows(db, password_resets) == []
    with pytest.raises(AccountError) as twice:
        await resets.reset_password(
            db, mail.token, "yet another passphrase", "yet another passphrase", clock=clock
        )
    assert twice.value.code == "RESET_LINK_INVALID"
    assert await accounts.authenticate(db, "ann", NEW) is not None


async def test_an_expired_link_is_refused_and_changes_nothing(
    db: Database, ann: accounts.Account
) -> None:
    clock = Clock()
    mail = await resets.request_reset(db, "ann", "192.0.2.1", policy=POLICY, clock=clock)
    assert mail is not None
    clock.now += 3599
    assert await resets.account_for_token(db, mail.token, clock=clock) is not None
    clock.now += 1
    assert await resets.account_for_token(db, mail.token, clock=clock) is None
    with pytest.raises(AccountError, match="not valid any more"):
        await resets.reset_password(db, mail.token, NEW, NEW, clock=clock)
    assert await accounts.authenticate(db, "ann", PASSWORD) is not None


@pytest.mark.parametrize(
    ("password", "confirmation", "code"),
    [(NEW, "something else entirely", "PASSWORD_MISMATCH"), ("short", "short", "PASSWORD_WEAK")],
)
async def test_a_bad_new_password_keeps_the_old_one_and_the_link(
    db: Database, ann: accounts.Account, password: str, confirmation: str, code: str
) -> None:
    mail = await resets.request_reset(db, "ann", "192.0.2.1", policy=POLICY)
    assert mail is not None
    with pytest.raises(AccountError) as refused:
        await resets.reset_password(db, mail.token, password, confirmation)
    assert refused.value.code == code
    assert await accounts.authenticate(db, "ann", PASSWORD) is not None
    assert await resets.account_for_token(db, mail.token) is not None


async def test_garbage_tokens_are_invalid(db: Database, ann: accounts.Account) -> None:
    for token in ("", "x", "A" * 5000, "../../etc"):
        assert await resets.account_for_token(db, token) is None
        with pytest.raises(AccountError):
            await resets.reset_password(db, token, NEW, NEW)


async def test_requests_per_account_are_capped_silently(
    db: Database, ann: accounts.Account
) -> None:
    clock = Clock()
    mails = [
        await resets.request_reset(db, "ann", f"192.0.2.{n}", policy=POLICY, clock=clock)
        for n in range(1, 5)
    ]
    assert all(m is not None for m in mails[:3]) and mails[3] is None
    last = mails[2]
    assert last is not None  # the capped request did not replace the live link
    assert await resets.account_for_token(db, last.token, clock=clock) is not None
    clock.now += 3601
    assert (
        await resets.request_reset(db, "ann", "192.0.2.9", policy=POLICY, clock=clock) is not None
    )


async def test_requests_per_address_are_throttled(db: Database, ann: accounts.Account) -> None:
    clock = Clock()
    for n in range(10):
        await resets.request_reset(db, f"user{n}", "198.51.100.7", policy=POLICY, clock=clock)
        clock.now += 1
    with pytest.raises(resets.ResetThrottled) as caught:
        await resets.request_reset(db, "ann", "198.51.100.7", policy=POLICY, clock=clock)
    assert caught.value.retry_after == pytest.approx(3600 - 10)
    assert await _rows(db, password_resets) == []
    # Another address is not held up; and the window passes.
    assert await resets.request_reset(db, "ann", "198.51.100.8", policy=POLICY, clock=clock)
    clock.now += 3600
    assert await resets.request_reset(db, "ann", "198.51.100.7", policy=POLICY, clock=clock)
    # Old rows leave the table as they leave the window.
    assert len(await _rows(db, reset_requests)) <= 4
