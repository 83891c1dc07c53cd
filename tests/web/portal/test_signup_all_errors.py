"""The sign-up form shows every mistake at once, each beside its field, in words."""

from __future__ import annotations

from homing.service.accounts import find_account
from tests.web.portal.conftest import Portal, field_error


async def test_every_field_error_at_once(portal: Portal) -> None:
    page = await portal.post_form(
        "/signup",
        {
            "user_id": "a b",
            "email": "not-an-email",
            "password": "short",
            "password_confirm": "something else",
            "action": "create",
        },
    )
    assert page.status_code == 422
    shown = {
        field: field_error(page, field) or ""
        for field in ("user_id", "email", "password", "password_confirm")
    }
    assert shown["user_id"].startswith("User ID not allowed"), shown
    assert shown["email"].startswith("Not an email address"), shown
    assert shown["password"].startswith("Password too weak"), shown
    assert shown["password_confirm"].startswith("Passwords differ"), shown
    assert await portal.homing.db.read(lambda conn: find_account(conn, "a b")) is None
