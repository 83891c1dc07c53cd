"""Alert settings and the outbox: what an account wants to hear of, queued with its cause.

A notification is written in the same transaction as the change that causes it (one
row per channel), so nothing is lost and nothing is sent for a change that rolled back;
the courier (service/courier.py) delivers it later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.notifications import CHOICES, Event, WebhookUrlError, check_webhook_url
from homing.service.accounts import Account
from homing.service.portal import PortalError
from homing.service.secrets import new_secret
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import accounts, alert_settings, outbox

CHANNELS = ("email", "webhook")


@dataclass(frozen=True)
class AlertSettings:
    email_on: bool
    email: str  # the account's address, where mails go
    webhook_url: str | None
    has_secret: bool
    events: frozenset[str]  # Event.name of the chosen CHOICES
    updated_at: datetime | None


@dataclass(frozen=True)
class Saved:
    settings: AlertSettings
    secret: str | None  # a new signing secret, shown once; None: unchanged


def _view(row: Any, email: str) -> AlertSettings:
    if row is None:
        return AlertSettings(False, email, None, False, frozenset(), None)
    events = frozenset(e.name for e in CHOICES if e.choice and row._mapping[e.choice])
    return AlertSettings(
        bool(row.email_on),
        email,
        row.webhook_url,
        row.webhook_secret is not None,
        events,
        as_utc(row.updated_at),
    )


async def settings_row(conn: AsyncConnection, account_id: int) -> Any:
    return (
        await conn.execute(
            sa.select(alert_settings).where(alert_settings.c.account_id == account_id)
        )
    ).first()


async def get_settings(db: Database, account: Account) -> AlertSettings:
    async def query(conn: AsyncConnection) -> AlertSettings:
        return _view(await settings_row(conn, account.id), account.email)

    return await db.read(query)


def webhook_url(text: str) -> str | None:
    """The checked URL, or None for an empty field; PortalError names what is wrong."""
    if not text.strip():
        return None
    try:
        return check_webhook_url(text)
    except WebhookUrlError as exc:
        raise PortalError("WEBHOOK_URL_INVALID", str(exc), "webhook_url") from exc


async def save_settings(
    db: Database,
    account: Account,
    *,
    email_on: bool,
    webhook: str,
    events: list[str],
    new_signing_secret: bool = False,
) -> Saved:
    """Store the account's choices. A first webhook URL (or a request) gets a new secret."""
    url = webhook_url(webhook)
    known = {e.name: e for e in CHOICES}
    unknown = [name for name in events if name not in known]
    if unknown:
        raise PortalError("EVENT_INVALID", f"Unknown event: {unknown[0][:40]}.", "events")
    chosen = {known[name].choice: True for name in events}

    async def unit(txn: Txn) -> Saved:
        row = await settings_row(txn.conn, account.id)
        secret = None
        if url is not None and (row is None or row.webhook_secret is None or new_signing_secret):
            secret = new_secret()
        values: dict[str, Any] = {
            "email_on": email_on,
            "webhook_url": url,
            "updated_at": txn.now,
            **{e.choice: chosen.get(e.choice, False) for e in CHOICES if e.choice},
        }
        if secret is not None:
            values["webhook_secret"] = secret
        elif url is None:
            values["webhook_secret"] = None  # a later URL starts with a new secret
        if row is None:
            await txn.conn.execute(
                sa.insert(alert_settings).values(account_id=account.id, **values)
            )
        else:
            await txn.conn.execute(
                sa.update(alert_settings)
                .where(alert_settings.c.account_id == account.id)
                .values(**values)
            )
        return Saved(_view(await settings_row(txn.conn, account.id), account.email), secret)

    return await db.write(unit)


# -- the outbox ------------------------------------------------------------------------


def details_text(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"))


# The alert settings as columns of the update path's host read (outer-joined by owner), so a
# batch decides without a statement of its own whether a host's owner wants an event.
HOST_COLUMNS = (
    alert_settings.c.email_on.label("alert_email"),
    alert_settings.c.webhook_url.is_not(None).label("alert_webhook"),
    *(alert_settings.c[e.choice].label(f"alert_{e.choice}") for e in CHOICES if e.choice),
)


def channels_for(settings: Mapping[str, Any], event: Event) -> list[str]:
    """The channels a chosen `event` goes to, from HOST_COLUMNS values (None: no settings)."""
    if not settings.get(f"alert_{event.choice}"):
        return []
    return [name for name in CHANNELS if settings.get(f"alert_{name}")]


def _settings_columns(row: Any) -> dict[str, Any]:
    """An alert_settings row in HOST_COLUMNS' terms."""
    if row is None:
        return {}
    values = {f"alert_{e.choice}": row._mapping[e.choice] for e in CHOICES if e.choice}
    return {**values, "alert_email": row.email_on, "alert_webhook": row.webhook_url is not None}


def outbox_rows(
    account_id: int,
    event: Event,
    host: str,
    details: dict[str, Any],
    channels: list[str],
    at: datetime,
) -> list[dict[str, Any]]:
    text = details_text(details)
    return [
        {
            "account_id": account_id,
            "channel": channel,
            "event": event.name,
            "host": host,
            "details": text,
            "created_at": at,
            "status": "pending",
            "attempts": 0,
            "next_at": at,
        }
        for channel in channels
    ]


Pending = list[dict[str, Any]]  # outbox rows a batch writes with its changes


def queue(
    pending: Pending,
    settings: Mapping[str, Any],
    event: Event,
    host: str,
    details: dict[str, Any],
    at: datetime,
) -> None:
    """Add `event` for a host row carrying HOST_COLUMNS (and owner_id), if its owner wants it."""
    channels = channels_for(settings, event)
    if channels:
        pending.extend(outbox_rows(settings["owner_id"], event, host, details, channels, at))


async def notify(
    txn: Txn, account_id: int, event: Event, host: str, details: dict[str, Any]
) -> int:
    """Queue `event` inside the caller's write; the number of outbox rows written.

    A chosen event goes to the channels the account switched it on for. An event without
    a choice (the inactivity policy's) goes to the account's channels, and by email when
    it has none, so nobody loses a host unwarned.
    """
    settings = _settings_columns(await settings_row(txn.conn, account_id))
    if event.choice is not None:
        channels = channels_for(settings, event)
    else:
        channels = [name for name in CHANNELS if settings.get(f"alert_{name}")] or ["email"]
    rows = outbox_rows(account_id, event, host, details, channels, txn.now)
    if rows:
        await txn.conn.execute(sa.insert(outbox), rows)
    return len(rows)


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    channel: str
    event: str
    host: str
    details: dict[str, Any]
    status: str
    attempts: int
    created_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        row.id,
        row.channel,
        row.event,
        row.host,
        json.loads(row.details),
        row.status,
        row.attempts,
        as_utc(row.created_at),
        as_utc(row.sent_at),
        row.last_error,
    )


async def recent(db: Database, account: Account, limit: int = 20) -> list[OutboxEntry]:
    """The account's latest notifications, newest first (shown on the settings page)."""

    async def query(conn: AsyncConnection) -> list[OutboxEntry]:
        rows = await conn.execute(
            sa.select(outbox)
            .where(outbox.c.account_id == account.id)
            .order_by(outbox.c.id.desc())
            .limit(limit)
        )
        return [_entry(r) for r in rows]

    return await db.read(query)


async def account_email(conn: AsyncConnection, account_id: int) -> tuple[str, str] | None:
    row = (
        await conn.execute(
            sa.select(accounts.c.user_id, accounts.c.email).where(accounts.c.id == account_id)
        )
    ).first()
    return None if row is None else (str(row.user_id), str(row.email))
