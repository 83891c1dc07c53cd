"""ACME challenge values by dyndns2 (txt=, clear=true) and the API's acme action: each
credential sets its own host's _acme-challenge TXT and nothing else."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from homing.service import accounts, challenges, hosts, tokens
from homing.service.accounts import Account
from homing.store.db import Database, now
from homing.store.schema import journal, plans, rrsets
from tests.web.conftest import HOST, PASSWORD, Site

OTHER = "other.dyn.example.net"
VALUE = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
VALUE2 = "Gk3nb7PWl0cHs6xkO1XxmR0PpQeMqFgTzV2dYq8lZ1c"


async def records(db: Database) -> dict[tuple[str, str], str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas))
        return {(r.name, r.rtype): r.rdatas for r in rows}


async def journal_rows(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(journal)) or 0)


async def account(site: Site, user: str = "alice") -> Account:
    found = await accounts.authenticate(site.homing.db, user, PASSWORD)
    assert found is not None
    return found


async def bearer(
    site: Site, actions: tuple[str, ...], host_ids: list[int] | None
) -> dict[str, str]:
    made = await tokens.create_token(site.homing.db, await account(site), "acme", actions, host_ids)
    return {"Authorization": f"Bearer {made.secret}"}


async def ids(site: Site) -> dict[str, int]:
    async with site.homing.db.engine.connect() as conn:
        from homing.store.schema import hosts as host_table

        rows = await conn.execute(sa.select(host_table.c.name, host_table.c.id))
        return {r.name: r.id for r in rows}


# -- dyndns2 ------------------------------------------------------------------------------


async def test_dyndns2_txt_sets_and_clear_removes_the_challenge(site: Site) -> None:
    before = await records(site.homing.db)
    answer = await site.client.get("/nic/update", params={"txt": VALUE}, auth=site.auth())
    assert answer.text == "good\n"
    again = await site.client.get(
        "/nic/update", params={"hostname": HOST, "txt": VALUE2}, auth=site.auth()
    )
    assert again.text == "good\n"
    stored = await records(site.homing.db)
    assert stored[(f"_acme-challenge.{HOST}", "TXT")] == f'"{VALUE2}"\n"{VALUE}"'
    # the host's addresses are not touched by a challenge request
    assert {k: v for k, v in stored.items() if k[0] != f"_acme-challenge.{HOST}"} == before
    same = await site.client.get("/nic/update", params={"txt": VALUE}, auth=site.auth())
    assert same.text == "nochg\n"
    one = await site.client.get(
        "/nic/update", params={"txt": VALUE, "clear": "true"}, auth=site.auth()
    )
    assert one.text == "good\n"
    assert (await records(site.homing.db))[(f"_acme-challenge.{HOST}", "TXT")] == f'"{VALUE2}"'
    gone = await site.client.get("/nic/update", params={"clear": "true"}, auth=site.auth())
    assert gone.text == "good\n"
    assert (f"_acme-challenge.{HOST}", "TXT") not in await records(site.homing.db)


async def test_dyndns2_txt_refused_for_another_host_or_broader_credentials(site: Site) -> None:
    other = await hosts.add_host(site.homing.db, OTHER, "alice")
    await hosts.add_group(site.homing.db, "grp.dyn.example.net", "alice", [HOST, OTHER])
    before, entries = await records(site.homing.db), await journal_rows(site.homing.db)
    # the host's secret, another host's name
    answer = await site.client.get(
        "/nic/update", params={"hostname": OTHER, "txt": VALUE}, auth=site.auth()
    )
    assert answer.text.startswith("nohost")
    # the account password opens the address update, not the challenge
    answer = await site.client.get(
        "/nic/update", params={"hostname": HOST, "txt": VALUE}, auth=site.auth("alice", PASSWORD)
    )
    assert answer.text.startswith("nohost")
    answer = await site.client.get(
        "/nic/update", params={"txt": VALUE}, auth=site.auth(HOST, other.secret)
    )
    assert answer.text == "badauth\n"
    # a value that is not one TXT string of printable characters
    for bad in ('a"b', "a b", "x" * 256, ""):
        answer = await site.client.get("/nic/update", params={"txt": bad}, auth=site.auth())
        assert answer.text.startswith("badagent"), bad
    assert await records(site.homing.db) == before
    assert await journal_rows(site.homing.db) == entries


# -- the API ------------------------------------------------------------------------------


async def test_api_acme_token_sets_and_deletes_its_hosts_challenge(site: Site) -> None:
    hid = (await ids(site))[HOST]
    headers = await bearer(site, ("acme",), [hid])
    added = await site.client.post(f"/api/v1/acme/{HOST}", json={"value": VALUE}, headers=headers)
    assert added.status_code == 200, added.text
    assert added.json() == {
        "host": HOST,
        "name": f"_acme-challenge.{HOST}",
        "values": [VALUE],
        "changed": True,
    }
    by_record_name = await site.client.post(
        f"/api/v1/acme/_acme-challenge.{HOST}", json={"value": VALUE2}, headers=headers
    )
    assert by_record_name.json()["values"] == sorted([VALUE, VALUE2])
    listed = await site.client.get(f"/api/v1/acme/{HOST}", headers=headers)
    assert listed.json()["values"] == sorted([VALUE, VALUE2])
    one = await site.client.delete(f"/api/v1/acme/{HOST}", params={"value": VALUE}, headers=headers)
    assert one.json()["values"] == [VALUE2]
    rest = await site.client.delete(f"/api/v1/acme/{HOST}", headers=headers)
    assert rest.json()["values"] == [] and rest.json()["changed"] is True
    # the acme action is all this token has
    hosts_list = await site.client.get("/api/v1/hosts", headers=headers)
    assert hosts_list.status_code == 403
    put = await site.client.put(
        f"/api/v1/hosts/{hid}/addresses", json={"ipv4": "192.0.2.1"}, headers=headers
    )
    assert put.status_code == 403


async def test_api_challenge_refused_outside_the_tokens_scope(site: Site) -> None:
    await hosts.add_host(site.homing.db, OTHER, "alice")
    await accounts.create_account(site.homing.db, "bob", "bob@example.org", PASSWORD)
    await hosts.add_host(site.homing.db, "bob.dyn.example.net", "bob")
    hid = (await ids(site))[HOST]
    acme_here = await bearer(site, ("acme",), [hid])
    update_only = await bearer(site, ("read", "update", "manage"), None)
    before, entries = await records(site.homing.db), await journal_rows(site.homing.db)
    other_host = await site.client.post(
        f"/api/v1/acme/{OTHER}", json={"value": VALUE}, headers=acme_here
    )
    assert other_host.status_code == 403 and other_host.json()["code"] == "TOKEN_SCOPE"
    other_account = await site.client.post(
        "/api/v1/acme/bob.dyn.example.net", json={"value": VALUE}, headers=acme_here
    )
    assert other_account.status_code == 404 and other_account.json()["code"] == "HOST_NOT_FOUND"
    # a name under the host that is not its challenge name is no host of the account
    below = await site.client.post(
        f"/api/v1/acme/www.{HOST}", json={"value": VALUE}, headers=acme_here
    )
    assert below.status_code == 404
    without_acme = await site.client.post(
        f"/api/v1/acme/{HOST}", json={"value": VALUE}, headers=update_only
    )
    assert without_acme.status_code == 403
    no_token = await site.client.post(f"/api/v1/acme/{HOST}", json={"value": VALUE})
    assert no_token.status_code == 401
    bad_value = await site.client.post(
        f"/api/v1/acme/{HOST}", json={"value": 'x"y'}, headers=acme_here
    )
    assert bad_value.status_code == 422 and bad_value.json()["code"] == "ACME_VALUE_INVALID"
    assert await records(site.homing.db) == before
    assert await journal_rows(site.homing.db) == entries


async def test_plan_limits_values_and_changes_an_hour(site: Site) -> None:
    db = site.homing.db
    async with db.engine.begin() as conn:
        plan = (
            await conn.execute(
                sa.insert(plans)
                .values(name="small", acme_values=2, acme_changes_per_hour=3)
                .returning(plans.c.id)
            )
        ).scalar_one()
        from homing.store.schema import accounts as account_table

        await conn.execute(sa.update(account_table).values(plan_id=plan))
    hid = (await ids(site))[HOST]
    headers = await bearer(site, ("acme",), [hid])
    for value in (VALUE, VALUE2):
        answer = await site.client.post(
            f"/api/v1/acme/{HOST}", json={"value": value}, headers=headers
        )
        assert answer.status_code == 200
    full = await site.client.post(
        f"/api/v1/acme/{HOST}", json={"value": "third" + "x" * 38}, headers=headers
    )
    assert full.status_code == 409 and full.json()["code"] == "ACME_VALUES_FULL"
    assert "2" in full.json()["message"]
    third = await site.client.delete(f"/api/v1/acme/{HOST}", headers=headers)
    assert third.status_code == 200
    often = await site.client.post(f"/api/v1/acme/{HOST}", json={"value": VALUE}, headers=headers)
    assert often.status_code == 429 and often.json()["code"] == "ACME_TOO_OFTEN"
    dyndns2 = await site.client.get("/nic/update", params={"txt": VALUE}, auth=site.auth())
    assert dyndns2.text.startswith("911 ")
    assert (f"_acme-challenge.{HOST}", "TXT") not in await records(db)


async def test_challenges_expire_through_the_journal(site: Site) -> None:
    db = site.homing.db
    answer = await site.client.get("/nic/update", params={"txt": VALUE}, auth=site.auth())
    assert answer.text == "good\n"
    assert await challenges.expire(db, 3600) == 0  # still young
    assert (f"_acme-challenge.{HOST}", "TXT") in await records(db)
    later = now() + timedelta(seconds=3601)
    assert await challenges.expire(db, 3600, now=later) == 1
    assert (f"_acme-challenge.{HOST}", "TXT") not in await records(db)
    async with db.engine.connect() as conn:
        last = (await conn.execute(sa.select(journal).order_by(journal.c.id.desc()).limit(1))).one()
    assert (last.name, last.rtype, last.new, last.actor) == (
        f"_acme-challenge.{HOST}",
        "TXT",
        "",
        "expiry",
    )
    # the host's own TXT (not a challenge) never expires
    await site.client.get("/nic/update", auth=site.auth())
    assert await challenges.expire(db, 3600, now=later + timedelta(days=1)) == 0


async def test_the_hosts_history_shows_its_challenge_changes(site: Site) -> None:
    from homing.service import hostcare

    await site.client.get("/nic/update", params={"txt": VALUE}, auth=site.auth())
    await site.client.get("/nic/update", params={"clear": "true"}, auth=site.auth())
    hid = (await ids(site))[HOST]
    found = await hostcare.history(site.homing.db, await account(site), hid)
    challenge = [(e.rtype, e.old, e.new) for e in found.entries if e.challenge]
    assert challenge == [("TXT", (f'"{VALUE}"',), ()), ("TXT", (), (f'"{VALUE}"',))]


async def test_wrong_secrets_for_txt_lock_the_source_out(db: Database) -> None:
    from homing.config import Settings
    from homing.service import zones
    from homing.service.context import Homing
    from tests.web.conftest import client_for

    await zones.add_zone(db, "dyn.example.net")
    await accounts.create_account(db, "alice", "alice@example.org", PASSWORD)
    created = await hosts.add_host(db, HOST, "alice")
    homing = Homing(Settings(throttle_source="3/3600"), db)
    async with client_for(homing) as client:
        for _ in range(3):
            answer = await client.get("/nic/update", params={"txt": VALUE}, auth=(HOST, "guess"))
            assert answer.text == "badauth\n"
        answer = await client.get("/nic/update", params={"txt": VALUE}, auth=(HOST, created.secret))
        assert answer.text == "badauth\n"
    assert (f"_acme-challenge.{HOST}", "TXT") not in await records(db)


async def test_the_apis_history_marks_challenge_changes(site: Site) -> None:
    await site.client.get("/nic/update", params={"txt": VALUE}, auth=site.auth())
    hid = (await ids(site))[HOST]
    headers = await bearer(site, ("read",), [hid])
    found = (await site.client.get(f"/api/v1/hosts/{hid}/history", headers=headers)).json()
    assert [(e["rtype"], e["new"], e["challenge"]) for e in found["entries"]][0] == (
        "TXT",
        [f'"{VALUE}"'],
        True,
    )
