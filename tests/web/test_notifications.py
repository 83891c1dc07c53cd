"""Notifications end to end: dyndns2 through the real app queues them, the courier delivers
them to a real HTTP server on loopback (signature checked), with retries and exact failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from homing.domain.notifications import SIGNATURE_HEADER
from homing.service import accounts, alerts
from homing.service.accounts import Account
from homing.service.courier import (
    WEBHOOK_FAILED,
    WEBHOOK_NOT_PUBLIC,
    WEBHOOK_REDIRECT,
    Courier,
    CourierPolicy,
    DeliveryError,
)
from homing.service.mail import Mailer
from homing.service.portal import PortalError
from homing.store.db import Database, Txn, as_utc, now
from homing.store.schema import outbox
from tests.mailserver import MailServer, smtp_server
from tests.web.conftest import HOST, PASSWORD, Site
from tests.webhooks import Receiver, webhook_receiver

ALL = ["address.changed", "auth.failures", "host.blocked", "host.stale"]


class NoMail:
    """These tests use the webhook channel only; a mail would be a bug."""

    async def send(self, to: str, subject: str, body: str) -> None:
        raise AssertionError(f"unexpected mail to {to}: {subject}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


def courier(db: Database, **policy: Any) -> Courier:
    return Courier(db, NoMail(), CourierPolicy(webhook_allow_private=True, **policy))


async def alice(db: Database) -> Account:
    found = await accounts.authenticate(db, "alice", PASSWORD)
    assert found is not None
    return found


async def outbox_rows(db: Database) -> list[Any]:
    async def query(conn: Any) -> list[Any]:
        return list(await conn.execute(sa.select(outbox).order_by(outbox.c.id)))

    return await db.read(query)


async def nic(site: Site, query: str, password: str | None = None) -> str:
    response = await site.client.get(f"/nic/update?{query}", auth=site.auth(password=password))
    return response.text.strip()


def verified(received: Any, secret: str) -> dict[str, Any]:
    """The payload, after checking its HMAC-SHA256 signature the way a receiver should."""
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(received.headers[SIGNATURE_HEADER.lower()], expected)
    assert received.headers["content-type"] == "application/json"
    body: dict[str, Any] = json.loads(received.body)
    return body


async def test_address_change_is_queued_with_the_update_and_delivered_signed(
    site: Site, receiver: Receiver
) -> None:
    db = site.homing.db
    saved = await alerts.save_settings(
        db, await alice(db), email_on=False, webhook=receiver.url, events=["address.changed"]
    )
    assert saved.secret and saved.settings.has_secret
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.10") == "good 192.0.2.10"
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.10") == "nochg 192.0.2.10"
    [row] = await outbox_rows(db)  # the nochg queued nothing
    assert (row.channel, row.event, row.host, row.status) == (
        "webhook",
        "address.changed",
        HOST,
        "pending",
    )
    assert await courier(db).run_once() == 1
    received = await receiver.next()
    assert received.method == "POST" and received.path == "/hook"
    body = verified(received, saved.secret)
    assert body["event"] == "address.changed"
    assert body["host"] == HOST and body["account"] == "alice"
    assert body["details"] == {"old": [], "new": ["192.0.2.10"], "via": "dyndns2"}
    assert body["time"].endswith("Z")
    [row] = await outbox_rows(db)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None
    assert await courier(db).run_once() == 0  # nothing is sent twice


async def test_dual_stack_change_is_one_notification(site: Site, receiver: Receiver) -> None:
    db = site.homing.db
    await alerts.save_settings(
        db, await alice(db), email_on=False, webhook=receiver.url, events=["address.changed"]
    )
    await nic(site, f"hostname={HOST}&myip=192.0.2.1")
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.2,2001:db8::2") == (
        "good 192.0.2.2,2001:db8::2"
    )
    rows = await outbox_rows(db)
    assert len(rows) == 2
    assert json.loads(rows[1].details) == {
        "old": ["192.0.2.1"],
        "new": ["192.0.2.2", "2001:db8::2"],
        "via": "dyndns2",
    }


async def test_nothing_is_queued_without_settings_or_with_the_event_off(site: Site) -> None:
    db = site.homing.db
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.3") == "good 192.0.2.3"
    await alerts.save_settings(
        db, await alice(db), email_on=True, webhook="", events=["host.blocked"]
    )
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.4") == "good 192.0.2.4"
    assert await outbox_rows(db) == []


async def test_a_rolled_back_change_leaves_no_notification(site: Site) -> None:
    db = site.homing.db
    account = await alice(db)
    await alerts.save_settings(db, account, email_on=True, webhook="", events=ALL)

    async def unit(txn: Txn) -> None:
        from homing.domain.notifications import ADDRESS_CHANGED

        assert await alerts.notify(txn, account.id, ADDRESS_CHANGED, HOST, {"new": []}) == 1
        raise PortalError("TEST", "the change fails after queueing")

    with pytest.raises(PortalError):
        await db.write(unit)
    assert await outbox_rows(db) == []


async def test_repeated_wrong_secrets_alert_once_per_window(site: Site, receiver: Receiver) -> None:
    db = site.homing.db
    saved = await alerts.save_settings(
        db, await alice(db), email_on=False, webhook=receiver.url, events=["auth.failures"]
    )
    limit = site.homing.settings.alert_badauth_limit
    for _ in range(limit - 1):
        assert await nic(site, f"hostname={HOST}&myip=192.0.2.9", password="wrong") == "badauth"
    assert await outbox_rows(db) == []
    for _ in range(3):  # the limit, then more in the same window: still one alert
        assert await nic(site, f"hostname={HOST}&myip=192.0.2.9", password="wrong") == "badauth"
    [row] = await outbox_rows(db)
    assert row.event == "auth.failures"
    await courier(db).run_once()
    body = verified(await receiver.next(), saved.secret or "")
    assert body["details"] == {
        "count": limit,
        "window_seconds": site.homing.settings.alert_badauth_window,
        "client_ip": "203.0.113.5",
    }


async def test_abuse_block_alerts(site: Site, receiver: Receiver) -> None:
    db = site.homing.db
    saved = await alerts.save_settings(
        db, await alice(db), email_on=False, webhook=receiver.url, events=["host.blocked"]
    )
    answers = [await nic(site, f"hostname={HOST}&myip=192.0.2.5") for _ in range(6)]
    assert answers[0] == "good 192.0.2.5" and "abuse" in answers
    [row] = await outbox_rows(db)  # blocked once; refused updates after it add nothing
    assert row.event == "host.blocked"
    await courier(db).run_once()
    body = verified(await receiver.next(), saved.secret or "")
    assert body["event"] == "host.blocked" and body["details"]["nochg_count"] == 4


async def test_failures_are_retried_with_backoff_then_given_up(
    site: Site, receiver: Receiver
) -> None:
    db = site.homing.db
    await alerts.save_settings(
        db, await alice(db), email_on=False, webhook=receiver.url, events=["address.changed"]
    )
    await nic(site, f"hostname={HOST}&myip=192.0.2.6")
    receiver.status = 500
    deliver = courier(db, max_attempts=3)
    start = now()
    assert await deliver.run_once(start) == 1
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == WEBHOOK_FAILED  # shown to the user: no status line, no address
    retry = as_utc(row.next_at)
    assert retry is not None and retry - start == timedelta(seconds=60)
    assert await deliver.run_once(start + timedelta(seconds=30)) == 0  # not due yet
    assert await deliver.run_once(retry) == 1
    [row] = await outbox_rows(db)
    second = as_utc(row.next_at)
    assert (row.attempts, second) == (2, retry + timedelta(seconds=120))
    assert second is not None
    assert await deliver.run_once(second) == 1
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == ("failed", 3)
    assert len(receiver.requests) == 3
    assert await deliver.run_once(second + timedelta(days=1)) == 0


async def test_a_failure_then_success_is_sent(site: Site, receiver: Receiver) -> None:
    db = site.homing.db
    await alerts.save_settings(
        db, await alice(db), email_on=False, webhook=receiver.url, events=["address.changed"]
    )
    await nic(site, f"hostname={HOST}&myip=192.0.2.7")
    receiver.status = 503
    deliver = courier(db)
    start = now()
    await deliver.run_once(start)
    receiver.status = 200
    await deliver.run_once(start + timedelta(seconds=61))
    [row] = await outbox_rows(db)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_redirects_are_not_followed(site: Site, receiver: Receiver) -> None:
    db = site.homing.db
    with webhook_receiver() as elsewhere:
        receiver.status = 302
        receiver.headers = {"Location": elsewhere.url}
        await alerts.save_settings(
            db, await alice(db), email_on=False, webhook=receiver.url, events=[]
        )
        with pytest.raises(DeliveryError) as failure:
            await courier(db).send_test(await alice(db), "webhook")
        assert str(failure.value) == (
            f"{receiver.url[:-5]} (127.0.0.1) answered 302 redirecting to {elsewhere.url!r}"
        )
        assert failure.value.public == WEBHOOK_REDIRECT
        assert elsewhere.requests == []
    assert len(receiver.requests) == 1


async def test_test_send_reports_success_and_exact_failures(site: Site, receiver: Receiver) -> None:
    db = site.homing.db
    account = await alice(db)
    with pytest.raises(DeliveryError, match="Save a webhook URL first"):
        await courier(db).send_test(account, "webhook")
    saved = await alerts.save_settings(db, account, email_on=False, webhook=receiver.url, events=[])
    message = await courier(db).send_test(account, "webhook")
    assert message == f"{receiver.url[:-5]} answered HTTP 204 to the test webhook."
    body = verified(await receiver.next(), saved.secret or "")
    assert (body["event"], body["account"], body["details"]) == (
        "test",
        "alice",
        {"channel": "webhook"},
    )
    # The operator's default: no webhooks into loopback or private networks.
    strict = Courier(db, NoMail(), CourierPolicy())
    with pytest.raises(DeliveryError) as refused:
        await strict.send_test(account, "webhook")
    assert str(refused.value) == "127.0.0.1 resolves to 127.0.0.1: loopback"
    assert refused.value.public == WEBHOOK_NOT_PUBLIC
    # A server that does not answer in time.
    receiver.hold = threading.Event()
    with pytest.raises(DeliveryError) as slow:
        await courier(db, webhook_timeout=0.5).send_test(account, "webhook")
    assert str(slow.value) == f"no answer from {receiver.url[:-5]} (127.0.0.1) within 0.5 s"
    assert slow.value.public == WEBHOOK_FAILED
    receiver.hold.set()
    assert await outbox_rows(db) == []  # tests go straight out, never through the outbox


async def test_old_sent_and_failed_notifications_are_pruned(site: Site) -> None:
    db = site.homing.db
    account = await alice(db)
    at = now()

    async def seed(txn: Txn) -> None:
        rows = [
            {"status": status, "created_at": at - timedelta(days=age)}
            for status, age in [("sent", 31), ("failed", 31), ("pending", 31), ("sent", 29)]
        ]
        await txn.conn.execute(
            sa.insert(outbox),
            [
                {"account_id": account.id, "channel": "email", "event": "test", "host": "",
                 "details": "{}", "attempts": 1, "next_at": at, **row}
                for row in rows
            ],
        )  # fmt: skip

    await db.write(seed)
    assert await courier(db).prune(at) == 2
    assert [r.status for r in await outbox_rows(db)] == ["pending", "sent"]  # the 29-day one


async def test_connection_refused_is_reported(site: Site) -> None:
    db = site.homing.db
    with webhook_receiver() as gone:
        url = gone.url
    account = await alice(db)
    await alerts.save_settings(db, account, email_on=False, webhook=url, events=[])
    with pytest.raises(DeliveryError) as failure:
        await courier(db).send_test(account, "webhook")
    assert str(failure.value).startswith(f"cannot reach {url[:-5]} (127.0.0.1): ")
    assert failure.value.public == WEBHOOK_FAILED


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.net/x", "Only http:// and https:// URLs can receive webhooks."),
        ("https://", "The URL needs a host name."),
        ("https://u:p@example.net/", "Put no user name or password in the URL; use the signature."),
        ("https://example.net:99999/", "The URL's port is not a number from 1 to 65535."),
        ("https://example.net/a b", "The URL may not contain spaces or control characters."),
        ("https://example.net/#x", "The URL may not have a #fragment."),
    ],
)
async def test_bad_webhook_urls_are_refused_and_change_nothing(
    site: Site, url: str, message: str
) -> None:
    db = site.homing.db
    account = await alice(db)
    await alerts.save_settings(db, account, email_on=True, webhook="", events=["host.blocked"])
    with pytest.raises(PortalError) as refused:
        await alerts.save_settings(db, account, email_on=False, webhook=url, events=[])
    assert (refused.value.code, str(refused.value), refused.value.field) == (
        "WEBHOOK_URL_INVALID",
        message,
        "webhook_url",
    )
    kept = await alerts.get_settings(db, account)
    assert kept.email_on and kept.webhook_url is None and kept.events == {"host.blocked"}


async def test_the_signing_secret_is_new_only_when_asked_or_first(
    site: Site, receiver: Receiver
) -> None:
    db = site.homing.db
    account = await alice(db)
    first = await alerts.save_settings(db, account, email_on=False, webhook=receiver.url, events=[])
    again = await alerts.save_settings(db, account, email_on=True, webhook=receiver.url, events=[])
    assert first.secret and again.secret is None and again.settings.has_secret
    renewed = await alerts.save_settings(
        db, account, email_on=True, webhook=receiver.url, events=[], new_signing_secret=True
    )
    assert renewed.secret and renewed.secret != first.secret
    await courier(db).send_test(account, "webhook")
    verified(await receiver.next(), renewed.secret)


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    with smtp_server() as server:
        yield server


def mailing_courier(site: Site, smtp: MailServer) -> Courier:
    """The courier `serve` builds, with the mailer pointed at the loopback SMTP server."""
    settings = site.homing.settings.model_copy(
        update={"smtp_host": smtp.host, "smtp_port": smtp.port, "mail_from": "ddns@example.net"}
    )
    site.homing.mailer = Mailer.from_settings(settings)
    return site.homing.courier()


async def test_address_change_by_email_through_a_real_smtp_server(
    site: Site, smtp: MailServer
) -> None:
    db = site.homing.db
    await alerts.save_settings(
        db, await alice(db), email_on=True, webhook="", events=["address.changed"]
    )
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.80") == "good 192.0.2.80"
    assert await mailing_courier(site, smtp).run_once() == 1
    mail = await smtp.inbox.next()
    assert mail["To"] == "alice@example.org" and mail["From"] == "ddns@example.net"
    assert mail["Subject"] == f"[homing] {HOST}: address changed"
    body = mail.get_content()
    assert f"{HOST} now points to 192.0.2.80." in body and "via: dyndns2" in body
    [row] = await outbox_rows(db)
    assert (row.channel, row.status) == ("email", "sent")


async def test_email_test_send_and_a_refused_recipient(site: Site, smtp: MailServer) -> None:
    db = site.homing.db
    account = await alice(db)
    deliver = mailing_courier(site, smtp)
    assert await deliver.send_test(account, "email") == (
        "A test mail to alice@example.org was accepted by the mail server."
    )
    mail = await smtp.inbox.next()
    assert mail["Subject"] == "[homing] test notification"
    smtp.inbox.refuse.add("alice@example.org")
    with pytest.raises(DeliveryError) as refused:
        await deliver.send_test(account, "email")
    assert str(refused.value).startswith("mail to alice@example.org failed: ")
    assert "550" in str(refused.value)
