"""Updates of one host from many clients through two store handles (two nodes) at once.

On PostgreSQL each handle keeps two write transactions in flight, so batches of one
host's updates overlap; the journal must still chain (each change replaces what the one
before it wrote), and each handle's commit hooks must see the zone's serials in order.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.dnssec.keys import ACTIVE, DEFAULT_ALGORITHM, add_key_sync, algorithm_number
from homing.domain.outcomes import Outcome
from homing.domain.records import JournalEntry
from homing.service import updates
from homing.store.db import Database, now
from homing.store.schema import hosts, journal, rrsets, zones
from tests.service.test_updates import POLICY, records, request, setup_host

CLIENTS = 8
ROUNDS = 6


def _second_handle(db: Database) -> Database:
    return Database(db.url.render_as_string(hide_password=False), schema=db.schema)


async def test_one_host_from_two_nodes_chains_in_the_journal(db: Database) -> None:
    name = "cam.dyn.example.net"
    secret = await setup_host(db, name)
    other = _second_handle(db)
    seen: dict[int, list[int]] = {0: [], 1: []}
    for number, handle in enumerate((db, other)):
        handle.on_commit.append(
            lambda emitted, number=number: seen[number].extend(
                e.serial for e in emitted if isinstance(e, JournalEntry)
            )
        )

    async def client(index: int) -> list[Outcome]:
        handle = (db, other)[index % 2]
        outcomes = []
        for round_ in range(ROUNDS):
            address = f"10.{index}.{round_}.1"  # every request a new address: each a change
            [result] = await updates.update(handle, request(name, secret, [name], address), POLICY)
            outcomes.append(result.outcome)
        return outcomes

    try:
        results = await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    finally:
        await other.close()
    assert all(outcome is Outcome.GOOD for outcomes in results for outcome in outcomes)

    async def entries(conn: sa.ext.asyncio.AsyncConnection) -> list[sa.Row[tuple[str, str]]]:
        rows = await conn.execute(
            sa.select(journal.c.old, journal.c.new)
            .where(journal.c.name == name, journal.c.rtype == "A")
            .order_by(journal.c.serial)
        )
        return list(rows.all())

    chain = await db.read(entries)
    # Requests of one batch for one host leave one change (the last wins); each client's
    # rounds are in batches of their own.
    assert ROUNDS <= len(chain) <= CLIENTS * ROUNDS
    for before, after in zip(chain, chain[1:], strict=False):
        assert after.old == before.new  # what each change replaced is what was there
    assert chain[-1].new.split("\n") == list(await records(db, name, "A"))
    for serials in seen.values():
        assert serials == sorted(serials)  # each node's index hears its commits in order
    assert len(seen[0]) + len(seen[1]) == len(chain)


async def test_batches_in_flight_each_answer_their_own_callers(db: Database) -> None:
    names = [f"h{i}.dyn.example.net" for i in range(5)]  # the default plan's hosts
    secrets = [await setup_host(db, name) for name in names]

    async def client(index: int) -> list[str]:
        lines = []
        for round_ in range(ROUNDS):
            address = f"10.{index}.{round_}.1"
            [result] = await updates.update(
                db, request(names[index], secrets[index], [names[index]], address), POLICY
            )
            lines.append(result.dyndns2_line())
        return lines

    answers = await asyncio.gather(*(client(i) for i in range(len(names))))
    for index, lines in enumerate(answers):
        assert lines == [f"good 10.{index}.{round_}.1" for round_ in range(ROUNDS)]
        assert await records(db, names[index], "A") == (f"10.{index}.{ROUNDS - 1}.1",)


async def _host_at(db: Database, name: str, address: str) -> str:
    """A host whose address is `address`; its secret."""
    secret = await setup_host(db, name)
    [first] = await updates.update(db, request(name, secret, [name], address), POLICY)
    assert first.outcome is Outcome.GOOD
    return secret


async def test_a_batch_that_waits_for_a_hosts_lock_reads_what_the_holder_committed(
    pg_db: Database,
) -> None:
    # PostgreSQL: the batch locks and reads its hosts in one statement, whose snapshot is
    # older than a row it had to wait for; what the holder committed is read again.
    name = "cam.dyn.example.net"
    secret = await _host_at(pg_db, name, "10.0.0.1")
    host = sa.select(hosts.c.id).where(hosts.c.name == name)
    async with pg_db.engine.connect() as holder:
        await holder.execute(host.with_for_update())  # another node's batch, say
        await holder.execute(
            sa.update(rrsets)
            .where(rrsets.c.name == name, rrsets.c.rtype == "A")
            .values(rdatas="10.0.0.2")
        )
        await holder.execute(
            sa.update(hosts).where(hosts.c.name == name).values(last_change_at=sa.func.now())
        )
        asked = request(name, secret, [name], "10.0.0.3")
        await _good_once_committed(pg_db, holder, asked, "FOR UPDATE")
    last = (
        sa.select(journal.c.old, journal.c.new)
        .where(journal.c.name == name, journal.c.rtype == "A")
        .order_by(journal.c.serial.desc())
        .limit(1)
    )
    row = (await pg_db.read(lambda conn: conn.execute(last))).one()
    assert (row.old, row.new) == ("10.0.0.2", "10.0.0.3")  # it replaced what the holder wrote


async def _good_once_committed(
    db: Database, holder: AsyncConnection, asked: updates.UpdateRequest, statement: str
) -> None:
    """Sends the update, sees its statement containing `statement` wait for a lock,
    commits `holder`'s transaction, and sees the update answered good."""
    update = asyncio.ensure_future(updates.update(db, asked, POLICY))
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND strpos(query, :statement) > 0"
    ).bindparams(statement=statement)
    deadline = asyncio.get_running_loop().time() + 10
    while not await db.read(lambda conn: conn.scalar(waiting)):
        assert not update.done() and asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    await holder.commit()
    [result] = await update
    assert result.outcome is Outcome.GOOD


async def test_a_change_read_unsigned_in_a_zone_signed_meanwhile_is_signed(
    pg_db: Database,
) -> None:
    # PostgreSQL: the batch read the zone unsigned; a transaction giving it keys commits
    # while the batch waits for the zone's row, so the batch runs again, signed.
    name = "cam.dyn.example.net"
    secret = await _host_at(pg_db, name, "10.0.0.1")
    zone = sa.select(zones.c.id).where(zones.c.name == "dyn.example.net")
    async with pg_db.engine.connect() as holder:
        zone_id = await holder.scalar(zone.with_for_update())
        await holder.run_sync(
            lambda conn: add_key_sync(
                conn, zone_id, "csk", algorithm_number(DEFAULT_ALGORITHM), ACTIVE, now()
            )
        )
        asked = request(name, secret, [name], "10.0.0.3")
        await _good_once_committed(pg_db, holder, asked, "UPDATE zones SET serial")
    assert await records(pg_db, name, "A") == ("10.0.0.3",)
    signatures = await records(pg_db, name, "RRSIG")
    assert [s.split()[0] for s in signatures] == ["A"]  # the change went signed
