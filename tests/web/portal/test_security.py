"""Portal security: headers, session cookie flags, the session key file, CSRF, login lockout."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from homing.service import secrets
from homing.service.context import Homing
from homing.store.db import Database
from homing.web.portal.sessionkey import load_or_create
from tests.web.portal.conftest import PASSWORD, Portal, browser, csrf_of, settings_for

PAGES = ["/", "/pricing", "/signup", "/login"]


@pytest.mark.parametrize("path", PAGES)
async def test_security_headers(portal: Portal, path: str) -> None:
    response = await portal.client.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    # The CSP forbids inline script, so there must be none: only the static file.
    assert "<script>" not in response.text and "onclick" not in response.text
    assert 'src="/static/portal.js"' in response.text


async def test_static_files_are_cacheable_and_protected(portal: Portal) -> None:
    css = await portal.client.get("/static/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "cache-control" not in css.headers
    assert css.headers["x-content-type-options"] == "nosniff"
    js = await portal.client.get("/static/portal.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    missing = await portal.client.get("/static/../config.py")
    assert missing.status_code == 404


async def test_update_protocols_and_api_keep_their_own_shape(portal: Portal) -> None:
    """The portal's middleware stays off the update endpoints: no cookie, no CSP."""
    checkip = await portal.client.get("/checkip")
    assert "set-cookie" not in checkip.headers
    assert "content-security-policy" not in checkip.headers
    unknown = await portal.client.get("/no/such/page")
    assert unknown.status_code == 404
    wrong_method = await portal.client.post("/nic/update")
    assert wrong_method.status_code == 405


async def test_session_cookie_flags_over_http(portal: Portal) -> None:
    response = await portal.client.get("/login")
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("homing_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie


async def test_session_cookie_secure_over_https(portal: Portal) -> None:
    async with browser(portal.homing, base="https://homing.test") as client:
        cookie = (await client.get("/login")).headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie


async def test_secure_cookie_behind_trusted_proxy_only(portal: Portal) -> None:
    forwarded = {"X-Forwarded-Proto": "https"}
    async with browser(portal.homing, source="10.1.2.3") as proxied:
        cookie = (await proxied.get("/login", headers=forwarded)).headers["set-cookie"].lower()
        assert "; secure" in cookie
    async with browser(portal.homing, source="203.0.113.9") as direct:
        cookie = (await direct.get("/login", headers=forwarded)).headers["set-cookie"].lower()
        assert "secure" not in cookie


async def test_session_key_file(portal: Portal, tmp_path: Path) -> None:
    await portal.client.get("/")
    key_file = portal.homing.settings.data_dir / "session.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert load_or_create(key_file) == key  # kept across restarts
    # A second app (a restart, another worker) accepts the first one's session.
    await portal.sign_up("carol")
    async with browser(portal.homing) as other:
        other.cookies = portal.client.cookies
        assert (await other.get("/dashboard")).status_code == 200


async def test_session_key_with_open_permissions_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "session.key"
    path.write_text("k" * 40 + "\n")
    path.chmod(0o644)
    assert load_or_create(path) == "k" * 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_forged_session_cookie_is_ignored(portal: Portal) -> None:
    await portal.sign_up("dave")
    portal.client.cookies.set("homing_session", "eyJ1aWQiOiAxfQ==.forged.signature")
    response = await portal.client.get("/dashboard")
    assert response.status_code == 303 and response.headers["location"] == "/login"


async def test_csrf_token_required_on_every_form(portal: Portal) -> None:
    await portal.client.get("/signup")  # a session exists, but the form lacks the token
    for path, data in [
        ("/signup", {"user_id": "eve", "email": "eve@example.org", "password": PASSWORD}),
        ("/login", {"user_id": "eve", "password": PASSWORD}),
        ("/logout", {}),
        ("/hosts/new", {"label": "x", "zone": "dyn.example.net"}),
        ("/hosts/1/delete", {}),
    ]:
        response = await portal.client.post(path, data=data)
        assert response.status_code == 403, path
        assert "This form has expired" in response.text
    # Nothing was written: the sign-up without a token created no account.
    check = await portal.client.get("/api/v1/accounts/availability", params={"user_id": "eve"})
    assert check.json()["available"] is True


async def test_csrf_wrong_token_and_cross_site_origin(portal: Portal) -> None:
    page = await portal.client.get("/login")
    token = csrf_of(page)
    wrong = await portal.client.post(
        "/login", data={"csrf_token": token[:-2] + "xx", "user_id": "a", "password": "b"}
    )
    assert wrong.status_code == 403
    cross = await portal.client.post(
        "/login",
        data={"csrf_token": token, "user_id": "a", "password": "b"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    same = await portal.client.post(
        "/login",
        data={"csrf_token": token, "user_id": "a", "password": "b"},
        headers={"Origin": "http://homing.test"},
    )
    assert same.status_code == 401  # past the CSRF check, a wrong password
    # A token from another session is worth nothing.
    async with browser(portal.homing) as other:
        foreign = await other.post(
            "/login", data={"csrf_token": token, "user_id": "a", "password": "b"}
        )
        assert foreign.status_code == 403


async def test_csrf_header_for_scripts(portal: Portal) -> None:
    token = csrf_of(await portal.client.get("/login"))
    response = await portal.client.post(
        "/login", data={"user_id": "a", "password": "b"}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 401


async def test_login_lockout_after_repeated_failures(portal: Portal) -> None:
    await portal.sign_up("frank")
    await portal.log_out()
    for _ in range(5):
        failed = await portal.log_in("frank", "wrong password!")
        assert failed.status_code == 401
        assert "Wrong user ID or password." in failed.text
    locked = await portal.log_in("frank", PASSWORD)  # even the right password now
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 900
    assert (await portal.client.get("/dashboard")).status_code == 303
    # The lock is for this user from this address: the owner elsewhere still logs in.
    async with browser(portal.homing, source="192.0.2.200") as elsewhere:
        form = await elsewhere.get("/login")
        ok = await elsewhere.post(
            "/login", data={"csrf_token": csrf_of(form), "user_id": "FRANK", "password": PASSWORD}
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/dashboard"


async def test_login_sets_a_fresh_session(portal: Portal) -> None:
    await portal.sign_up("gina")
    await portal.log_out()
    before = csrf_of(await portal.client.get("/login"))
    response = await portal.log_in("gina")
    assert response.status_code == 303
    after = csrf_of(await portal.client.get("/dashboard"))
    assert before != after


async def test_parallel_wrong_logins_hash_at_most_the_limit(portal: Portal) -> None:
    """20 wrong passwords at once against a limit of 5: at most 5 reach argon2."""
    await portal.sign_up("hilda")
    await portal.log_out()
    token = csrf_of(await portal.client.get("/login"))
    before = secrets.argon2_runs["verify"]
    answers = await asyncio.gather(
        *(
            portal.client.post(
                "/login",
                data={"csrf_token": token, "user_id": "hilda", "password": f"guess number {n}"},
            )
            for n in range(20)
        )
    )
    assert secrets.argon2_runs["verify"] - before <= 5
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(401) <= 5 and statuses.count(429) >= 15
    assert all(int(a.headers["retry-after"]) > 0 for a in answers if a.status_code == 429)
    assert (await portal.client.get("/dashboard")).status_code == 303  # nobody logged in


async def test_sign_ups_per_source_prefix_are_limited(portal: Portal) -> None:
    """Sign-ups pay argon2 and make accounts: five an hour from one /24, then 429."""
    for n in range(5):
        assert (await portal.sign_up(f"maker{n}")).status_code == 303
        await portal.log_out()
    refused = await portal.sign_up("maker5")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    async with browser(portal.homing, source="198.51.100.99") as neighbour:  # same /24
        again = Portal(portal.homing, neighbour)
        assert (await again.sign_up("maker6")).status_code == 429
    async with browser(portal.homing, source="192.0.2.50") as elsewhere:
        other = Portal(portal.homing, elsewhere)
        assert (await other.sign_up("maker7")).status_code == 303
    refused_form = await portal.sign_up("mk")  # the rules refuse it first: no count, 422
    assert refused_form.status_code == 422


async def test_guessed_reset_links_lock_the_source(db: Database, tmp_path: Path) -> None:
    """A reset link is a secret too: wrong ones count for the source, which is then refused
    before any look-up, while another source is not."""
    settings = settings_for(tmp_path).model_copy(update={"throttle_source": "5/3600"})
    homing = Homing(settings, db)
    async with browser(homing, source="192.0.2.60") as guesser:
        for n in range(5):
            assert (await guesser.get(f"/reset/guessed-token-{n}")).status_code == 410
        locked = await guesser.get("/reset/guessed-token-5")
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        login = await Portal(homing, guesser).log_in("nobody", "some password")
        assert login.status_code == 429  # the same source, another door: refused unhashed
    async with browser(homing, source="198.51.100.60") as other:
        assert (await other.get("/reset/guessed-token-6")).status_code == 410
