"""/nic/update as ddclient, inadyn and routers use it: every answer, families, hostile input."""

from __future__ import annotations

import pytest

from tests.web.conftest import HOST, PASSWORD, Site, client_for


async def nic(site: Site, query: str, **kwargs: object) -> tuple[int, str]:
    kwargs.setdefault("auth", site.auth())
    response = await site.client.get(f"/nic/update?{query}", **kwargs)  # type: ignore[arg-type]
    assert "chunked" not in response.headers.get("transfer-encoding", "")
    assert response.headers["content-length"] == str(len(response.content))
    return response.status_code, response.text


async def test_good_echoes_address_then_nochg(site: Site) -> None:
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.10") == (200, "good 192.0.2.10\n")
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.10") == (200, "nochg 192.0.2.10\n")


async def test_missing_myip_means_source_address_and_empty_deletes(site: Site) -> None:
    assert await nic(site, f"hostname={HOST}") == (200, "good 203.0.113.5\n")
    assert await nic(site, f"hostname={HOST}") == (200, "nochg 203.0.113.5\n")
    # Named but empty: the A record goes (deSEC's meaning), never the source address.
    assert await nic(site, f"hostname={HOST}&myip=") == (200, "good\n")
    assert await nic(site, f"hostname={HOST}&myip=") == (200, "nochg\n")


async def test_percent_encoded_ipv6_and_dual_stack(site: Site) -> None:
    assert await nic(site, f"hostname={HOST}&myip=2001%3adb8%3a%3a1") == (200, "good 2001:db8::1\n")
    status, text = await nic(site, f"hostname={HOST}&myip=192.0.2.7,2001:db8::2")
    assert text == "good 192.0.2.7,2001:db8::2\n"


async def test_ddclient_extra_parameters_are_accepted(site: Site) -> None:
    query = f"system=dyndns&hostname={HOST}&myip=192.0.2.20&wildcard=OFF&mx=&backmx=NO"
    assert await nic(site, query) == (200, "good 192.0.2.20\n")
    query = f"hostname={HOST}&myip=192.0.2.21&wildcard=NOCHG&mx=NOCHG&backmx=NOCHG"
    assert await nic(site, query) == (200, "good 192.0.2.21\n")


@pytest.mark.parametrize("option", ["wildcard=ON", "mx=mail.example.org", "backmx=YES"])
async def test_options_not_offered_are_refused_and_change_nothing(site: Site, option: str) -> None:
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.20") == (200, "good 192.0.2.20\n")
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.22&{option}") == (200, "badagent\n")
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.20") == (200, "nochg 192.0.2.20\n")


async def test_credentials_as_parameters_and_account_password(site: Site) -> None:
    query = f"hostname={HOST}&myip=192.0.2.30&username={HOST}&password={site.secret}"
    assert await nic(site, query, auth=None) == (200, "good 192.0.2.30\n")
    auth = site.auth("alice", PASSWORD)
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.31", auth=auth) == (
        200,
        "good 192.0.2.31\n",
    )


async def test_each_error_word(site: Site) -> None:
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.1", auth=site.auth(password="x")) == (
        200,
        "badauth\n",
    )
    assert await nic(site, "hostname=nope.dyn.example.net&myip=192.0.2.1") == (200, "nohost\n")
    assert await nic(site, "hostname=-bad-.example&myip=192.0.2.1") == (200, "notfqdn\n")
    many = ",".join([HOST] * 6)
    assert await nic(site, f"hostname={many}&myip=192.0.2.1") == (200, "numhost\n")
    assert await nic(site, f"hostname={HOST}&myip=not-an-ip") == (200, "badagent\n")
    assert await nic(site, f"hostname={HOST}&myip=224.0.0.1") == (200, "badagent\n")


async def test_one_line_per_host_in_order(site: Site) -> None:
    query = f"hostname={HOST},nope.dyn.example.net,{HOST}&myip=192.0.2.40"
    assert await nic(site, query) == (200, "good 192.0.2.40\nnohost\nnochg 192.0.2.40\n")


async def test_no_credentials_is_a_basic_challenge(site: Site) -> None:
    status, text = await nic(site, f"hostname={HOST}", auth=None)
    assert (status, text) == (401, "badauth\n")


async def test_garbled_authorization_header_is_badauth(site: Site) -> None:
    response = await site.client.get(
        f"/nic/update?hostname={HOST}", headers={"Authorization": "Basic %%%notbase64"}
    )
    assert response.text == "badauth\n"


async def test_repeated_nochg_blocks_with_abuse(site: Site) -> None:
    await nic(site, f"hostname={HOST}&myip=192.0.2.50")
    answers = [(await nic(site, f"hostname={HOST}&myip=192.0.2.50"))[1] for _ in range(4)]
    assert answers == ["nochg 192.0.2.50\n"] * 3 + ["abuse\n"]
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.51") == (200, "abuse\n")


async def test_forwarded_for_only_from_trusted_proxy(site: Site) -> None:
    headers = {"X-Forwarded-For": "198.51.100.77"}
    # The default test client is not a trusted proxy: the header is ignored.
    assert (await nic(site, f"hostname={HOST}", headers=headers))[1] == "good 203.0.113.5\n"
    async with client_for(site.homing, source="10.1.2.3") as proxied:
        response = await proxied.get(
            f"/nic/update?hostname={HOST}", auth=site.auth(), headers=headers
        )
    assert response.text == "good 198.51.100.77\n"


async def test_oversized_requests_are_refused(site: Site) -> None:
    response = await site.client.get("/nic/update?hostname=" + "a" * 5000, auth=site.auth())
    assert response.status_code == 414
    response = await site.client.post("/dvr/update", content=b"x" * 70000)
    assert response.status_code == 413
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.60") == (200, "good 192.0.2.60\n")


async def test_checkip_forms(site: Site) -> None:
    response = await site.client.get("/checkip")
    assert "Current IP Address: 203.0.113.5" in response.text
    assert (await site.client.get("/checkip.json")).json() == {"ip": "203.0.113.5"}


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ("host={host}&password={secret}&ip=192.0.2.80", "ACT"),
        ("host={host}&password=wrong&ip=192.0.2.80", "ERR 0x80008002"),
        ("host=nope.dyn.example.net&password={secret}&ip=192.0.2.80", "ERR 0x80008001"),
        ("host={host}&password={secret}&ip=999.1.1.1", "ERR 0x80008003"),
        ("password={secret}", "ERR 0x80008006"),
        ("host={host}", "ERR 0x80008002"),
    ],
)
async def test_dvr_answers(site: Site, query: str, answer: str) -> None:
    url = "/dvr/update?" + query.format(host=HOST, secret=site.secret)
    assert (await site.client.get(url)).text == answer + "\n"


async def test_dvr_post_form(site: Site) -> None:
    form = {"host": HOST, "password": site.secret, "ip": "192.0.2.81"}
    assert (await site.client.post("/dvr/update", data=form)).text == "ACT\n"
    assert (await site.client.post("/dvr/update", data=form)).text == "ACT\n"  # nochg is ACT too
