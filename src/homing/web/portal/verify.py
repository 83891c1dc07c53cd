"""/verify/TOKEN: the link mailed at sign-up (signup_verify_email) activates the account."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from homing.service import verification
from homing.web.portal.pages import Portal

LINK_INVALID = (
    "This link is not valid any more: it was used already, or it expired. If your account "
    "is active, log in; if it is not, ask the operator to activate it."
)


class VerifyPage:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def verify(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        account = await verification.confirm(self.portal.db, token)
        if account is None:
            context = {"status": 410, "title": "Link not valid", "message": LINK_INVALID}
            return self.portal.render(request, "error.html", context, status_code=410)
        request.session.clear()
        request.session["flash"] = (
            f"Your email address is confirmed, {account.user_id}: log in to start."
        )
        return RedirectResponse("/login", status_code=303)
