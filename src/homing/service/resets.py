"""Password reset by mail: a single-use, time-limited link; only its token's SHA-256 is stored.

A request answers the same whether or not the account exists (the caller shows one message
and sends the mail, when there is one, out of band). Each account holds at most one live
link: a new request replaces it, a successful reset deletes it. The reset itself raises the
account's session epoch, which ends every portal session made before it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import AccountError, HomingError
from homing.service.accounts import Account, account_of, check_password, user_key
from homing.service.mail import Mailer, MailError
from homing.service.secrets import hash_password, hash_secret
from homing.service.throttle import Throttle, Throttled
from homing.service.tokens import revoke_all
from homing.store.db import Database, Txn
from homing.store.schema import accounts, password_resets, reset_requests

log = logging.getLogger(__name__)

Clock = Callable[[], float]
LINK_INVALID = (
    "This reset link is not valid any more: it was used already, a newer one was sent, "
    "or it expired. Ask for a new one below."
)


@dataclass(frozen=True)
class ResetPolicy:
    ttl: float = 3600.0  # seconds a link stays valid
    per_account: int = 3  # mails per account within `window` (more are dropped silently)
    per_address: int = 10  # requests per client address within `window` (more answer 429)
    window: float = 3600.0


@dataclass(frozen=True)
class ResetMail:
    """What the caller mails: the token appears here and in that mail only."""

    to: str
    user_id: str
    token: str


class ResetThrottled(HomingError):
    """Too many reset requests from one client address; says nothing about any account."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("Too many password reset requests from your address.")
        self.retry_after = retry_after


def _find(login: str) -> sa.ColumnElement[bool]:
    login = login.strip()
    if "@" in login:
        return accounts.c.email_key == login.casefold()
    return accounts.c.user_key == user_key(login)


async def _count_recent(conn: AsyncConnection, key: str) -> tuple[int, float | None]:
    row = (
        await conn.execute(
            sa.select(sa.func.count(), sa.func.min(reset_requests.c.at)).where(
                reset_requests.c.key == key
            )
        )
    ).one()
    return int(row[0] or 0), None if row[1] is None else float(row[1])


async def request_reset(
    db: Database,
    login: str,
    address: str,
    *,
    policy: ResetPolicy | None = None,
    clock: Clock = time.time,
    throttle: Throttle | None = None,
) -> ResetMail | None:
    """A fresh link for the active account named by user ID or email, else None.

    Raises ResetThrottled when this address (with a throttle: its source prefix) asked
    too often or is locked; an account asked for too often gets no further mail, and the
    caller cannot tell (nor can the asker).
    """
    policy = policy or ResetPolicy()
    if throttle is not None:
        try:
            await throttle.check_source(address)
        except Throttled as exc:
            raise ResetThrottled(exc.retry_after) from exc
        address = throttle.prefix(address)
    now = clock()
    login = login[:254]

    async def unit(txn: Txn) -> ResetMail | None:
        conn = txn.conn
        # Forget what has left the window, so the table stays as small as the traffic.
        await conn.execute(
            sa.delete(reset_requests).where(reset_requests.c.at <= now - policy.window)
        )
        address_key = f"addr:{address}"
        count, oldest = await _count_recent(conn, address_key)
        if count >= policy.per_address:
            raise ResetThrottled((oldest or now) + policy.window - now)
        await conn.execute(sa.insert(reset_requests).values(key=address_key, at=now))
        row = (await conn.execute(sa.select(accounts).where(_find(login)))).first()
        if row is None or row.status != "active":
            return None
        account_key = f"account:{row.id}"
        count, _ = await _count_recent(conn, account_key)
        if count >= policy.per_account:
            return None
        await conn.execute(sa.insert(reset_requests).values(key=account_key, at=now))
        token = secrets.token_urlsafe(32)
        # One live link per account: the new one replaces any older one.
        await conn.execute(sa.delete(password_resets).where(password_resets.c.account_id == row.id))
        await conn.execute(
            sa.insert(password_resets).values(
                account_id=row.id,
                token_hash=hash_secret(token),
                created_at=now,
                expires_at=now + policy.ttl,
            )
        )
        return ResetMail(row.email, row.user_id, token)

    return await db.write(unit)


async def account_for_token(
    db: Database,
    token: str,
    *,
    clock: Clock = time.time,
    throttle: Throttle | None = None,
    address: str = "",
) -> Account | None:
    """The active account a live link belongs to, else None (the page shows LINK_INVALID).

    With a throttle: Throttled before the look-up when the source is locked, and a token
    that names no live link counts as a failure of the source.
    """
    now = clock()
    if throttle is not None:
        await throttle.check_source(address)

    async def query(conn: AsyncConnection) -> Account | None:
        row = (
            await conn.execute(
                sa.select(accounts)
                .join(password_resets, password_resets.c.account_id == accounts.c.id)
                .where(
                    password_resets.c.token_hash == hash_secret(token[:128]),
                    password_resets.c.expires_at > now,
                    accounts.c.status == "active",
                )
            )
        ).first()
        return None if row is None else account_of(row)

    account = await db.read(query)
    if account is None and throttle is not None:
        await throttle.failed(throttle.source(address))
    return account


async def reset_password(
    db: Database,
    token: str,
    password: str,
    confirmation: str,
    *,
    clock: Clock = time.time,
    throttle: Throttle | None = None,
    address: str = "",
    revoke_tokens: bool = True,
) -> Account:
    """Set the new password through a live link, using the link up, ending old sessions
    and (unless the user unticked it) deleting the account's API tokens.

    AccountError RESET_LINK_INVALID (field "form") for a used, replaced or expired link;
    the password rules' own errors otherwise. Nothing changes unless everything holds.
    """
    account = await account_for_token(db, token, clock=clock, throttle=throttle, address=address)
    if account is None:
        raise AccountError("RESET_LINK_INVALID", LINK_INVALID, "form")
    check_password(password, confirmation, account.user_id)
    password_hash = await hash_password(password)
    now = clock()

    async def unit(txn: Txn) -> Account:
        # The DELETE decides: of two requests racing with one link, one finds no row.
        used = (
            await txn.conn.execute(
                sa.delete(password_resets)
                .where(
                    password_resets.c.token_hash == hash_secret(token[:128]),
                    password_resets.c.expires_at > now,
                )
                .returning(password_resets.c.account_id)
            )
        ).scalar_one_or_none()
        if used != account.id:
            raise AccountError("RESET_LINK_INVALID", LINK_INVALID, "form")
        await txn.conn.execute(
            sa.update(accounts)
            .where(accounts.c.id == account.id, accounts.c.status == "active")
            .values(password_hash=password_hash, session_epoch=accounts.c.session_epoch + 1)
        )
        if revoke_tokens:
            await revoke_all(txn.conn, account.id)
        return account

    return await db.write(unit)


def reset_mail_text(mail: ResetMail, link: str, site: str, ttl: float) -> tuple[str, str]:
    """Subject and body of the mail; the link is the only secret in it."""
    minutes = max(1, round(ttl / 60))
    subject = f"Reset your {site} password"
    body = (
        f"Hello {mail.user_id},\n\n"
        f"someone (we hope you) asked to reset the password of your account at {site}.\n"
        f"To choose a new password, open this link within {minutes} minutes:\n\n"
        f"  {link}\n\n"
        "The link works once. After the reset, every device logged in to your account\n"
        "has to log in again.\n\n"
        "If you did not ask for this, ignore this mail: your password stays as it is.\n"
    )
    return subject, body


class ResetSender:
    """Mails reset links in the background, so the answer's timing does not tell whether
    the account exists; a failure is logged (never the link).

    Links are built from the operator's public_url only: the request's Host header is the
    asker's to choose, and a forged one would mail the victim a valid token pointing at
    the forger's site. Without public_url no link is mailed, and the log says why.
    """

    def __init__(self, mailer: Callable[[], Mailer], policy: ResetPolicy) -> None:
        self.mailer = mailer  # looked up per mail: the context's Mailer may be replaced
        self.policy = policy
        self._sending: set[asyncio.Task[None]] = set()

    def send_later(self, mail: ResetMail, public_url: str | None) -> None:
        if not public_url:
            log.warning(
                "password reset mail to %s not sent: set public_url (HOMING_PUBLIC_URL), "
                "the site's address as users reach it, to mail reset links",
                mail.to,
            )
            return
        base = public_url.rstrip("/")
        link = f"{base}/reset/{mail.token}"
        subject, body = reset_mail_text(mail, link, urlsplit(base).netloc, self.policy.ttl)
        task = asyncio.create_task(self._deliver(mail.to, subject, body))
        self._sending.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, to: str, subject: str, body: str) -> None:
        try:
            await self.mailer().send(to, subject, body)
        except MailError as exc:  # the message names the server's answer, never the link
            log.warning("password reset mail to %s not sent: %s", to, exc)
