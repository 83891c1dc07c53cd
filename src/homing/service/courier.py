"""The courier: delivers the outbox by mail and webhook, with retries; and the test sends.

It runs on the leader worker only (serve.py), so one process claims the due rows. A
crash between a delivery and its mark sends that notification again: at least once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.notifications import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TEST,
    WebhookUrlError,
    check_webhook_url,
    mail_text,
    payload,
    retry_at,
    signature,
)
from homing.domain.waits import woken
from homing.service.accounts import Account
from homing.service.alerts import account_email, settings_row
from homing.service.webhooktarget import Resolver, TargetRefused, system_resolver, webhook_target
from homing.store.db import Database, Txn, as_utc, now
from homing.store.schema import outbox

log = logging.getLogger(__name__)

BATCH = 50  # rows per pass; the next pass follows at once while rows are due
MIN_GAP = 1.0  # seconds between passes
PRUNE_EVERY = 600  # passes (about every 10 min to an hour)


class MailSender(Protocol):
    """What homing.service.mail.Mailer offers: raises when the mail was not accepted."""

    async def send(self, to: str, subject: str, body: str) -> None: ...


# What a user sees of any webhook failure: the exact reason (a status line, "connection
# refused", a timeout) would tell them about hosts and ports they cannot otherwise reach.
WEBHOOK_FAILED = (
    "The webhook was not delivered: the receiver could not be reached or did not answer "
    "with a 2xx status in time. Check the URL and that the receiver is public and running."
)
WEBHOOK_NOT_PUBLIC = (
    "The webhook was not sent: its host name does not resolve to a public address, "
    "and webhooks only go to public servers here."
)
WEBHOOK_REDIRECT = (
    "The receiver answered with a redirect, and redirects are not followed: enter the final URL."
)


class DeliveryError(Exception):
    """A channel refused or failed: str() is the exact reason, for the operator's log;
    `public` is what the user is shown (and what the outbox keeps)."""

    def __init__(self, detail: str, public: str | None = None) -> None:
        super().__init__(detail)
        self.public = detail if public is None else public


@dataclass(frozen=True)
class CourierPolicy:
    webhook_timeout: float = 5.0
    webhook_allow_private: bool = False  # loopback and private addresses (tests, in-house)
    max_attempts: int = 8
    keep_days: int = 30  # sent and failed rows are deleted after this long
    interval: float = 5.0  # how often the outbox is looked at without a wake-up


@dataclass(frozen=True)
class Notification:
    event: str
    host: str
    account: str  # user ID
    at: datetime
    details: dict[str, Any]


class Courier:
    def __init__(
        self,
        db: Database,
        mailer: MailSender,
        policy: CourierPolicy | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolve: Resolver = system_resolver,
    ) -> None:
        self.db = db
        self.mailer = mailer
        self.policy = policy or CourierPolicy()
        self._transport = transport
        self._resolve = resolve
        self._wake = asyncio.Event()

    def wake(self, _items: object = None) -> None:
        """Look at the outbox now (after a local commit), not at the next interval."""
        self._wake.set()

    # -- channels -------------------------------------------------------------------

    async def send_mail(self, to: str, note: Notification) -> None:
        subject, body = mail_text(note.event, note.host, note.account, note.at, note.details)
        try:
            await self.mailer.send(to, subject, body)
        except Exception as exc:  # MailError and the SMTP library's own: the user's answer
            raise DeliveryError(f"mail to {to} failed: {exc}") from exc

    async def send_webhook(self, url: str, secret: str | None, note: Notification) -> int:
        """POST the payload to the address the URL's host was checked at; the HTTP status
        (2xx). Redirects are refused, never followed."""
        try:
            url = check_webhook_url(url)
        except WebhookUrlError as exc:
            raise DeliveryError(str(exc)) from exc
        try:
            target = await webhook_target(
                url, self._resolve, allow_private=self.policy.webhook_allow_private
            )
        except TargetRefused as exc:
            raise DeliveryError(str(exc), WEBHOOK_NOT_PUBLIC) from exc
        body = payload(note.event, note.host, note.account, note.at, note.details)
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": "homing-webhook/1",
            EVENT_HEADER: note.event,
        }
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
        extensions = {} if target.server_name is None else {"sni_hostname": target.server_name}
        timeout = self.policy.webhook_timeout
        origin = f"{_origin(url)} ({target.address})"
        try:
            async with httpx.AsyncClient(
                transport=self._transport, follow_redirects=False, timeout=timeout, trust_env=False
            ) as client:
                # Streamed and never read: the answer's status is all that counts, and a
                # receiver's body (however large) stays on the wire.
                request = client.build_request(
                    "POST", target.url, content=body, headers=headers, extensions=extensions
                )
                response = await client.send(request, stream=True)
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"no answer from {origin} within {timeout:g} s", WEBHOOK_FAILED
            ) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"cannot reach {origin}: {_reason(exc)}", WEBHOOK_FAILED) from exc
        if response.is_redirect:
            where = response.headers.get("location", "")[:200]
            raise DeliveryError(
                f"{origin} answered {response.status_code} redirecting to {where!r}",
                WEBHOOK_REDIRECT,
            )
        if not response.is_success:
            raise DeliveryError(
                f"{origin} answered HTTP {response.status_code} {response.reason_phrase}",
                WEBHOOK_FAILED,
            )
        return response.status_code

    # -- the outbox -----------------------------------------------------------------

    async def run_once(self, at: datetime | None = None) -> int:
        """Deliver what is due at `at` (now); the number of rows handled."""
        at = at or now()

        async def due(conn: AsyncConnection) -> list[Any]:
            rows = await conn.execute(
                sa.select(outbox)
                .where(outbox.c.status == "pending", outbox.c.next_at <= at)
                .order_by(outbox.c.next_at, outbox.c.id)
                .limit(BATCH)
            )
            return list(rows)

        rows = await self.db.read(due)
        for row in rows:
            await self._deliver(row, at)
        return len(rows)

    async def _deliver(self, row: Any, at: datetime) -> None:
        async def target(conn: AsyncConnection) -> tuple[tuple[str, str] | None, Any]:
            return await account_email(conn, row.account_id), await settings_row(
                conn, row.account_id
            )

        who, settings = await self.db.read(target)
        error: str | None = None
        try:
            if who is None:
                raise DeliveryError("the account is gone")
            note = Notification(
                row.event, row.host, who[0], as_utc(row.created_at) or at, json.loads(row.details)
            )
            if row.channel == "email":
                await self.send_mail(who[1], note)
            elif settings is None or not settings.webhook_url:
                raise DeliveryError("no webhook URL is set any more")
            else:
                await self.send_webhook(settings.webhook_url, settings.webhook_secret, note)
        except DeliveryError as exc:
            log.info("notification %s (%s) failed: %s", row.id, row.channel, exc)
            error = exc.public[:300]
        except Exception as exc:  # ours, not the channel's: log it, retry like a failure
            log.exception("notification %s failed", row.id)
            error = f"internal error: {exc.__class__.__name__}"
        attempts = row.attempts + 1
        if error is None:
            values: dict[str, Any] = {"status": "sent", "sent_at": now(), "attempts": attempts}
        else:
            again = retry_at(attempts, at, self.policy.max_attempts)
            values = {"attempts": attempts, "last_error": error}
            values.update({"status": "failed"} if again is None else {"next_at": again})

        async def mark(txn: Txn) -> None:
            await txn.conn.execute(sa.update(outbox).where(outbox.c.id == row.id).values(**values))

        await self.db.write(mark)

    async def prune(self, at: datetime | None = None) -> int:
        """Delete sent and failed notifications older than keep_days; how many went."""
        before = (at or now()) - timedelta(days=self.policy.keep_days)

        async def unit(txn: Txn) -> int:
            result = await txn.conn.execute(
                sa.delete(outbox).where(
                    outbox.c.status.in_(("sent", "failed")), outbox.c.created_at < before
                )
            )
            return max(result.rowcount or 0, 0)

        return await self.db.write(unit)

    async def run(self) -> None:
        """Deliver until cancelled: at each wake-up and every `interval` seconds.

        Wake-ups come with every local commit, so passes are at least MIN_GAP apart: under
        an update storm the outbox costs one read a second, not one per commit.
        """
        passes = 0
        while True:
            try:
                while await self.run_once() == BATCH:
                    pass
                if passes % PRUNE_EVERY == 0:
                    await self.prune()
                passes += 1
            except Exception:
                log.exception("outbox delivery failed; retrying")
            await asyncio.sleep(MIN_GAP)  # a rate limit, not a wait for an event
            await woken(self._wake, self.policy.interval)
            self._wake.clear()

    # -- "Send a test" ----------------------------------------------------------------

    async def send_test(self, account: Account, channel: str) -> str:
        """Send a test through one channel at once; a sentence saying what happened.

        DeliveryError says what failed (`public` for the page, the exact reason for the
        log). The page limits how often an account may ask.
        """
        row = await self.db.read(lambda conn: settings_row(conn, account.id))
        note = Notification(TEST.name, "", account.user_id, now(), {"channel": channel})
        if channel == "email":
            await self.send_mail(account.email, note)
            if getattr(self.mailer, "server", True) is None:  # the Mailer of no smtp_host
                return (
                    f"This service has no mail server set up: the test mail to {account.email}"
                    " went to the service's log, not to you. Ask the operator to set one up."
                )
            return f"A test mail to {account.email} was accepted by the mail server."
        if channel == "webhook":
            if row is None or not row.webhook_url:
                raise DeliveryError("Save a webhook URL first.")
            try:
                status = await self.send_webhook(row.webhook_url, row.webhook_secret, note)
            except DeliveryError as exc:
                log.info("test webhook of account %s failed: %s", account.user_id, exc)
                raise
            return f"{_origin(row.webhook_url)} answered HTTP {status} to the test webhook."
        raise DeliveryError(f"unknown channel {channel[:20]!r}")


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(exc: httpx.HTTPError) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause) or str(exc) or exc.__class__.__name__
    return text[:200]
