"""The Notifications page: settings with CSRF, the signing secret shown once, test sends
reporting success inline and any failure generically, bad input refused without a change."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from homing.config import Settings
from homing.service import zones
from homing.service.context import Homing
from homing.service.courier import WEBHOOK_FAILED
from homing.store.db import Database
from tests.web.portal.conftest import ZONE, Portal, browser, csrf_of, field_error
from tests.webhooks import Receiver, webhook_receiver

SECRET_RE = re.compile(r'<code id="secret" class="secret-value">([^<]+)</code>')


@pytest.fixture
async def portal(db: Database, tmp_path: Path) -> AsyncIterator[Portal]:
    # Webhooks to loopback are refused by default; this operator allows them (the receiver).
    settings = Settings(data_dir=tmp_path / "data", webhook_allow_private=True)
    homing = Homing(settings, db)
    await zones.add_zone(db, ZONE)
    async with browser(homing) as client:
        yield Portal(homing, client)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


def result_of(page_text: str, channel: str) -> str | None:
    found = re.search(rf'<p [^>]*id="test-{channel}-result"[^>]*>(.*?)</p>', page_text, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else None


async def test_the_page_needs_a_login(portal: Portal) -> None:
    response = await portal.client.get("/notifications")
    assert response.status_code == 303 and response.headers["location"] == "/login"


async def test_save_shows_the_secret_once_and_a_test_webhook_arrives_signed(
    portal: Portal, receiver: Receiver
) -> None:
    await portal.sign_up("alice")
    board = await portal.client.get("/dashboard")
    assert 'href="/notifications"' in board.text
    saved = await portal.post_form(
        "/notifications",
        {"email_on": "on", "webhook_url": receiver.url, "events": "address.changed"},
    )
    assert saved.status_code == 200
    found = SECRET_RE.search(saved.text)
    assert found and "Shown once" in saved.text
    secret = found.group(1)
    again = await portal.client.get("/notifications")
    assert secret not in again.text and "Signed with your secret (set)" in again.text
    assert 'value="address.changed" checked' in again.text
    tested = await portal.post_form("/notifications/test", {"channel": "webhook"}, "/notifications")
    assert tested.status_code == 200
    assert result_of(tested.text, "webhook") == (
        f"{receiver.url[:-5]} answered HTTP 204 to the test webhook."
    )
    received = await receiver.next()
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["x-homing-signature"] == expected


async def test_a_failing_test_shows_a_generic_failure(portal: Portal, receiver: Receiver) -> None:
    await portal.sign_up("alice")
    await portal.post_form("/notifications", {"webhook_url": receiver.url})
    receiver.status = 500
    tested = await portal.post_form("/notifications/test", {"channel": "webhook"}, "/notifications")
    assert tested.status_code == 502
    # Neither the status line nor the address: the page must not work as a port scanner.
    assert result_of(tested.text, "webhook") == f"TEST failed {WEBHOOK_FAILED}"
    assert "500" not in (result_of(tested.text, "webhook") or "")


async def test_the_sixth_test_within_ten_minutes_is_refused(
    portal: Portal, receiver: Receiver
) -> None:
    await portal.sign_up("alice")
    await portal.post_form("/notifications", {"webhook_url": receiver.url})
    for _ in range(5):
        sent = await portal.post_form(
            "/notifications/test", {"channel": "webhook"}, "/notifications"
        )
        assert sent.status_code == 200
    refused = await portal.post_form(
        "/notifications/test", {"channel": "webhook"}, "/notifications"
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert (
        result_of(refused.text, "webhook") == "TEST failed Too many tests; try again in 2 minutes."
    )
    assert len(receiver.requests) == 5  # the refused one sent nothing
    # The count is in the store: another worker (its own Homing and throttle) refuses too.
    elsewhere = Homing(portal.homing.settings, portal.homing.db)
    async with browser(elsewhere) as client:
        other = Portal(elsewhere, client)
        await other.log_in("alice")
        again = await other.post_form(
            "/notifications/test", {"channel": "webhook"}, "/notifications"
        )
        assert again.status_code == 429
    assert len(receiver.requests) == 5


async def test_a_bad_url_is_refused_next_to_its_field_and_changes_nothing(portal: Portal) -> None:
    await portal.sign_up("alice")
    await portal.post_form("/notifications", {"email_on": "on", "events": "host.blocked"})
    refused = await portal.post_form(
        "/notifications", {"webhook_url": "ftp://example.net/x", "events": "host.stale"}
    )
    assert refused.status_code == 422
    assert field_error(refused, "webhook_url") == (
        "Webhook URL not accepted Only http:// and https:// URLs can receive webhooks."
    )
    assert 'value="ftp://example.net/x"' in refused.text  # what was typed stays
    kept = await portal.client.get("/notifications")
    assert 'id="email_on" name="email_on" checked' in kept.text
    assert 'value="host.blocked" checked' in kept.text
    assert 'value="host.stale" checked' not in kept.text


async def test_forms_without_the_csrf_token_are_refused(portal: Portal) -> None:
    await portal.sign_up("alice")
    page = await portal.client.get("/notifications")
    csrf_of(page)  # the page carries one
    for path in ("/notifications", "/notifications/test"):
        response = await portal.client.post(path, data={"channel": "email", "email_on": "on"})
        assert response.status_code == 403
    kept = await portal.client.get("/notifications")
    assert 'name="email_on" checked' not in kept.text
