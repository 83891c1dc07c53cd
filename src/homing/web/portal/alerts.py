"""The Notifications page under the dashboard: channels, events, signing secret, test sends."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from homing.domain.notifications import CHOICES, SIGNATURE_HEADER
from homing.domain.windows import Window
from homing.service import alerts
from homing.service import portal as service
from homing.service.accounts import Account
from homing.service.courier import DeliveryError
from homing.service.throttle import Charge, Throttled
from homing.web.portal.pages import FieldError, Portal, form_text

# "Send a test" per account: 5 within 10 minutes (then one every 2), so the page cannot
# be a tool for flooding a receiver or a mailbox.
TEST_SENDS = (Window(5, 600),)
ALERT_LABELS = {
    "WEBHOOK_URL_INVALID": "Webhook URL not accepted",
    "EVENT_INVALID": "Event not known",
}


class AlertPages:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.db = portal.db
        self.courier = portal.homing.courier()

    async def page(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        if request.method == "GET":
            return await self._render(request, account)
        form = await request.form()
        email_on = form_text(form, "email_on") == "on"
        raw = form.get("webhook_url", "")  # not form_text: a URL may be longer than its cap
        url = raw[:4096].strip() if isinstance(raw, str) else ""
        events = [e[:64] for e in form.getlist("events") if isinstance(e, str)][:16]
        values = {"email_on": email_on, "webhook_url": url, "events": events}
        try:
            saved = await alerts.save_settings(
                self.db,
                account,
                email_on=email_on,
                webhook=url,
                events=events,
                new_signing_secret=form_text(form, "new_secret") == "on",
            )
        except service.PortalError as exc:
            error = FieldError(exc.code, str(exc))
            error.label = ALERT_LABELS.get(exc.code, error.label)
            return await self._render(
                request, account, values=values, errors={exc.field or "form": error}, status=422
            )
        if saved.secret is not None:
            # Shown once, on this response only; the page after a reload says "set".
            return await self._render(request, account, secret=saved.secret)
        request.session["flash"] = "Your notification settings are saved."
        return RedirectResponse("/notifications", status_code=303)

    async def test(self, request: Request) -> Response:
        """Send a test through one channel now; the page shows the result next to its button."""
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        form = await request.form()
        channel = form_text(form, "channel")
        if channel not in alerts.CHANNELS:
            channel = "email"
        try:
            # Counted in the store, so the limit holds across workers and nodes.
            await self.portal.throttle.reserve([Charge(f"notify-test:{account.id}", TEST_SENDS)])
        except Throttled as exc:
            minutes = max(1, math.ceil(exc.retry_after / 60))
            message = f"Too many tests; try again in {minutes} minute{'s' if minutes != 1 else ''}."
            result = {"channel": channel, "ok": False, "message": message}
            retry = {"Retry-After": str(math.ceil(exc.retry_after))}
            return await self._render(request, account, test=result, status=429, headers=retry)
        try:
            message = await self.courier.send_test(account, channel)
        except DeliveryError as exc:  # the exact reason is the operator's: the courier logs it
            result = {"channel": channel, "ok": False, "message": exc.public}
            return await self._render(request, account, test=result, status=502)
        return await self._render(
            request, account, test={"channel": channel, "ok": True, "message": message}
        )

    async def _render(
        self,
        request: Request,
        account: Account,
        *,
        values: dict[str, Any] | None = None,
        errors: dict[str, FieldError] | None = None,
        secret: str | None = None,
        test: dict[str, Any] | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        current = await alerts.get_settings(self.db, account)
        if values is None:
            values = {
                "email_on": current.email_on,
                "webhook_url": current.webhook_url or "",
                "events": sorted(current.events),
            }
        context = {
            "settings": current,
            "values": values,
            "errors": errors or {},
            "choices": CHOICES,
            "secret": secret,
            "test": test,
            "signature_header": SIGNATURE_HEADER,
            "recent": await alerts.recent(self.db, account),
        }
        return self.portal.render(
            request, "notifications.html", context, status_code=status, headers=headers
        )
