"""The API's answers to a wrong method (405 with every method the path takes in Allow, as
RFC 9110 15.5.6 requires) and to a body that is not JSON (400, as documented)."""

from __future__ import annotations

import pytest

from tests.web.conftest import Site


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/accounts", {"POST"}),
        ("PUT", "/api/v1/hosts", {"GET", "HEAD", "POST"}),
        ("POST", "/api/v1/hosts/cam.dyn.example.net", None),
        ("POST", "/api/v1/openapi.json", {"GET", "HEAD"}),
    ],
)
async def test_405_names_the_methods(
    site: Site, method: str, path: str, allowed: set[str] | None
) -> None:
    response = await site.client.request(method, path)
    assert response.status_code == 405
    methods = {m.strip() for m in response.headers["allow"].split(",") if m.strip()}
    assert methods, "an empty Allow"
    assert method not in methods
    if allowed is not None:
        assert methods == allowed
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("body", [b'{"user_id": ', b"user_id=alice", b"\xff\xfe", b"[1,"])
async def test_a_body_that_is_not_json_is_400(site: Site, body: bytes) -> None:
    response = await site.client.post(
        "/api/v1/accounts", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json() == {
        "code": "BAD_REQUEST",
        "message": "The body is not JSON.",
        "field": None,
    }
