"""E-mail verification at sign-up (signup_verify_email): a new account stays `unverified`,
unable to log in, until the single-use link mailed to its address is followed.

A link's token is kept as a reset link's is, only its SHA-256 in password_resets: an
unverified account gets no reset link, and a reset link never activates an account.
Links are built from public_url alone, never from a request's Host header.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import sqlalchemy as sa

from homing.service.accounts import UNVERIFIED, Account, account_of
from homing.service.mail import Mailer, MailError
from homing.service.secrets import hash_secret
from homing.store.db import Database, Txn
from homing.store.schema import accounts, password_resets

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TTL = 3 * 86400.0  # seconds a link stays valid


async def new_link(db: Database, account: Account, *, clock: Clock = time.time) -> str:
    """A fresh token for an unverified account, replacing any older one."""
    token = secrets.token_urlsafe(32)
    now = clock()

    async def unit(txn: Txn) -> None:
        await txn.conn.execute(
            sa.delete(password_resets).where(password_resets.c.account_id == account.id)
        )
        await txn.conn.execute(
            sa.insert(password_resets).values(
                account_id=account.id,
                token_hash=hash_secret(token),
                created_at=now,
                expires_at=now + TTL,
            )
        )

    await db.write(unit)
    return token


async def confirm(db: Database, token: str, *, clock: Clock = time.time) -> Account | None:
    """Activate the unverified account a live link belongs to, using the link up; None for
    an unknown, used or expired link (nothing changes then)."""
    now = clock()
    unverified = sa.select(accounts.c.id).where(accounts.c.status == UNVERIFIED)

    async def unit(txn: Txn) -> Account | None:
        used = (
            await txn.conn.execute(
                sa.delete(password_resets)
                .where(
                    password_resets.c.token_hash == hash_secret(token[:128]),
                    password_resets.c.expires_at > now,
                    password_resets.c.account_id.in_(unverified.scalar_subquery()),
                )
                .returning(password_resets.c.account_id)
            )
        ).scalar_one_or_none()
        if used is None:
            return None
        await txn.conn.execute(
            sa.update(accounts)
            .where(accounts.c.id == used, accounts.c.status == UNVERIFIED)
            .values(status="active")
        )
        row = (await txn.conn.execute(sa.select(accounts).where(accounts.c.id == used))).one()
        return account_of(row)

    return await db.write(unit)


def mail_text(user_id: str, link: str, site: str) -> tuple[str, str]:
    """Subject and body of the mail; the link is the only secret in it."""
    subject = f"Confirm your email address for {site}"
    body = (
        f"Hello {user_id},\n\n"
        f"someone (we hope you) signed up at {site} with this address.\n"
        f"To activate the account, open this link within {round(TTL / 86400)} days:\n\n"
        f"  {link}\n\n"
        "If you did not sign up, ignore this mail: the account stays inactive.\n"
    )
    return subject, body


class SignupMails:
    """Makes an unverified account's link and mails it in the background; a failure, or a
    missing public_url, is logged (never the link)."""

    def __init__(
        self, db: Database, mailer: Callable[[], Mailer], public_url: Callable[[], str | None]
    ) -> None:
        self.db = db
        self.mailer = mailer  # looked up per mail: the context's Mailer may be replaced
        self.public_url = public_url
        self._sending: set[asyncio.Task[None]] = set()

    async def begin(self, account: Account) -> None:
        """Store a link for the new account and mail it."""
        base = self.public_url()
        if not base:
            log.warning(
                "sign-up of %s: no verification mail sent: set public_url (HOMING_PUBLIC_URL), "
                "the site's address as users reach it; the account stays unverified",
                account.user_id,
            )
            return
        token = await new_link(self.db, account)
        base = base.rstrip("/")
        subject, body = mail_text(account.user_id, f"{base}/verify/{token}", urlsplit(base).netloc)
        task = asyncio.create_task(self._deliver(account.email, subject, body))
        self._sending.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, to: str, subject: str, body: str) -> None:
        try:
            await self.mailer().send(to, subject, body)
        except MailError as exc:
            log.warning("verification mail to %s not sent: %s", to, exc)
