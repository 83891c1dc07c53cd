"""Notifications without I/O: the events, the webhook payload and signature, URL rules, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Event:
    name: str  # the `event` field of a webhook payload; stable
    label: str  # how the settings page and the mail subject name it
    choice: str | None  # the alert_settings column that switches it on; None: always sent


ADDRESS_CHANGED = Event("address.changed", "address changed", "on_address")
AUTH_FAILURES = Event("auth.failures", "repeated authentication failures", "on_auth")
HOST_BLOCKED = Event("host.blocked", "host blocked for abuse", "on_abuse")
HOST_STALE = Event("host.stale", "host going stale", "on_stale")
# The inactivity policy's warnings and steps: a user is always told before anything goes.
HOST_DISABLING = Event("host.disabling", "host will be disabled", None)
HOST_DISABLED = Event("host.disabled", "host disabled for inactivity", None)
HOST_DELETING = Event("host.deleting", "host will be deleted", None)
HOST_DELETED = Event("host.deleted", "host deleted for inactivity", None)
TEST = Event("test", "test notification", None)

EVENTS = {
    e.name: e
    for e in (
        ADDRESS_CHANGED,
        AUTH_FAILURES,
        HOST_BLOCKED,
        HOST_STALE,
        HOST_DISABLING,
        HOST_DISABLED,
        HOST_DELETING,
        HOST_DELETED,
        TEST,
    )
}
CHOICES = (ADDRESS_CHANGED, AUTH_FAILURES, HOST_BLOCKED, HOST_STALE)  # what a user may pick

SIGNATURE_HEADER = "X-Homing-Signature"
EVENT_HEADER = "X-Homing-Event"
MAX_URL = 2000


class WebhookUrlError(ValueError):
    """The webhook URL is not one homing posts to; the message says why."""


def check_webhook_url(text: str) -> str:
    """The URL as it will be used: http or https, a host, no credentials, no fragment."""
    url = text.strip()
    if not url:
        raise WebhookUrlError("Enter a URL starting with https:// or http://.")
    if len(url) > MAX_URL:
        raise WebhookUrlError(f"The URL is longer than {MAX_URL} characters.")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise WebhookUrlError("The URL may not contain spaces or control characters.")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookUrlError("Only http:// and https:// URLs can receive webhooks.")
    try:
        host = parts.hostname
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError as exc:
        raise WebhookUrlError("The URL's port is not a number from 1 to 65535.") from exc
    if not host:
        raise WebhookUrlError("The URL needs a host name.")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("Put no user name or password in the URL; use the signature.")
    if parts.fragment:
        raise WebhookUrlError("The URL may not have a #fragment.")
    return url


def payload(event: str, host: str, account: str, at: datetime, details: dict[str, Any]) -> bytes:
    """The webhook body: one JSON object, keys sorted so a signature is reproducible."""
    body = {
        "event": event,
        "host": host,
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "details": details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of the exact body, hex."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def retry_at(attempts: int, at: datetime, max_attempts: int) -> datetime | None:
    """After `attempts` failed tries, when to try again (1 min, 2, 4, ... 6 h); None: give up."""
    if attempts >= max_attempts:
        return None
    delay = min(60 * 2 ** (attempts - 1), 6 * 3600)
    return at + timedelta(seconds=delay)


def mail_text(
    event: str, host: str, account: str, at: datetime, details: dict[str, Any]
) -> tuple[str, str]:
    """The subject and body of a notification mail."""
    known = EVENTS.get(event)
    label = known.label if known else event
    subject = f"[homing] {host}: {label}" if host else f"[homing] {label}"
    lines = [
        f"Hello {account},",
        "",
        _sentence(event, host, details),
        "",
        f"Time: {at.strftime('%Y-%m-%d %H:%M:%S UTC')}",
    ]
    lines += [f"{key}: {_text(value)}" for key, value in sorted(details.items())]
    lines += [
        "",
        "You get this mail because of your notification settings (Dashboard, Notifications).",
    ]
    return subject, "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def _sentence(event: str, host: str, details: dict[str, Any]) -> str:
    match event:
        case "address.changed":
            return f"{host} now points to {_text(details.get('new', []))}."
        case "auth.failures":
            return (
                f"{details.get('count')} updates of {host} had a wrong secret or password "
                f"within {details.get('window_seconds')} seconds."
            )
        case "host.blocked":
            return f"{host} is blocked for abuse: it sent too many updates that changed nothing."
        case "host.stale":
            return f"{host} has not been updated for {details.get('idle_days')} days."
        case "host.disabling":
            return (
                f"{host} has not been updated for {details.get('idle_days')} days and will be "
                f"disabled on {details.get('on')} unless it is updated before."
            )
        case "host.disabled":
            return f"{host} is disabled after {details.get('idle_days')} days without an update."
        case "host.deleting":
            return (
                f"{host} has not been updated for {details.get('idle_days')} days and will be "
                f"deleted on {details.get('on')}."
            )
        case "host.deleted":
            return f"{host} is deleted after {details.get('idle_days')} days without an update."
        case "test":
            return "This is a test of your notification settings. It works."
    return f"{event} for {host}."
