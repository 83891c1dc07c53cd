"""UpdateFront: GET on the dyndns2 paths skips the app's layers; everything else reaches them."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from homing.web.app import DYNDNS2_PATHS
from homing.web.updatefront import UpdateFront
from tests.web.conftest import HOST, Site


async def test_every_dyndns2_path_updates_through_the_front(site: Site) -> None:
    for number, path in enumerate(DYNDNS2_PATHS, start=1):
        response = await site.client.get(
            f"{path}?hostname={HOST}&myip=192.0.2.{number}", auth=site.auth()
        )
        assert (response.status_code, response.text) == (200, f"good 192.0.2.{number}\n")


async def test_no_credentials_is_badauth_with_a_challenge(site: Site) -> None:
    response = await site.client.get(f"/nic/update?hostname={HOST}")
    assert response.status_code == 401
    assert response.text == "badauth\n"
    assert response.headers["www-authenticate"] == 'Basic realm="homing"'


async def test_other_methods_reach_the_app_and_its_routes(site: Site) -> None:
    response = await site.client.post(f"/nic/update?hostname={HOST}", auth=site.auth())
    assert response.status_code == 405  # the app's router, not the front
    response = await site.client.head(
        f"/nic/update?hostname={HOST}&myip=192.0.2.9", auth=site.auth()
    )
    assert response.status_code == 405  # a HEAD must not update (tests/web/test_head.py)
    assert (await site.client.get("/nic/updates")).status_code == 404


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("from the app\n")(scope, receive, send)


async def _broken(_request: Request) -> Response:
    raise RuntimeError("a bug")


async def test_an_endpoint_that_raises_answers_500_and_the_app_still_serves() -> None:
    front = UpdateFront(_app, _broken, ("/nic/update",))
    transport = httpx.ASGITransport(app=front)
    async with httpx.AsyncClient(transport=transport, base_url="http://homing.test") as client:
        failed = await client.get("/nic/update")
        assert (failed.status_code, failed.text) == (500, "Internal Server Error")
        other = await client.get("/checkip")
        assert (other.status_code, other.text) == (200, "from the app\n")
