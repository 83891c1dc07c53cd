"""store.statements.execute_many and fetch_all: the update path's statements, on both stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from homing.domain.errors import HomingError, StoreUnavailable
from homing.service import changes
from homing.service.zones import add_zone
from homing.store.db import Database, SyncTxn, as_utc
from homing.store.schema import journal, plans, rrsets, zones
from homing.store.statements import execute_many, fetch_all


async def _zone(db: Database) -> int:
    await add_zone(db, "bulk.example")

    async def zone_id(conn: object) -> int:
        return int(await conn.scalar(sa.select(zones.c.id).where(zones.c.name == "bulk.example")))  # type: ignore[attr-defined]

    return await db.read(zone_id)


async def test_rows_with_times_written_as_sqlalchemy_would(db: Database) -> None:
    zone_id = await _zone(db)
    at = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
    later = at + timedelta(seconds=7)
    # One time object bound in several rows (as a batch binds txn.now), then another,
    # then the first again: the remembered last value must never leak into the next row.
    times = [at, at, later, at, later]
    rows = [
        {
            "zone_id": zone_id,
            "serial": serial,
            "name": f"h{serial}.bulk.example",
            "rtype": "A",
            "ttl": 60,
            "old": "",
            "new": f"192.0.2.{serial}",
            "actor": "test",
            "via": "dyndns2",
            "old_ttl": None,
            "at": times[serial - 2],
        }
        for serial in range(2, 7)
    ]

    def write(txn: SyncTxn) -> None:
        execute_many(txn.conn, sa.insert(journal), rows)

    await db.write(lambda txn: txn.run_sync(write))

    async def read(conn: object) -> list[sa.Row[tuple[object, ...]]]:
        result = await conn.execute(  # type: ignore[attr-defined]
            sa.select(journal.c.serial, journal.c.new, journal.c.at, journal.c.old_ttl)
            .where(journal.c.actor == "test")  # not the zone's own first rows
            .order_by(journal.c.serial)
        )
        return list(result)

    back = await db.read(read)
    assert [(r.serial, r.new, as_utc(r.at), r.old_ttl) for r in back] == [
        (row["serial"], row["new"], row["at"], None) for row in rows
    ]


async def test_a_statement_with_python_defaults_still_gets_them(db: Database) -> None:
    # plans' columns have Python-side defaults: the driver path cannot fill them in.
    def write(txn: SyncTxn) -> None:
        execute_many(txn.conn, sa.insert(plans), [{"name": "bulk-a"}, {"name": "bulk-b"}])

    await db.write(lambda txn: txn.run_sync(write))

    async def read(conn: object) -> list[tuple[str, int, str]]:
        result = await conn.execute(  # type: ignore[attr-defined]
            sa.select(plans.c.name, plans.c.max_hosts, plans.c.currency)
            .where(plans.c.name.like("bulk-%"))
            .order_by(plans.c.name)
        )
        return [tuple(r) for r in result]

    assert await db.read(read) == [("bulk-a", 5, "EUR"), ("bulk-b", 5, "EUR")]


async def test_no_rows_writes_nothing(db: Database) -> None:
    async def count(conn: object) -> int:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(plans)))  # type: ignore[attr-defined]

    before = await db.read(count)

    def write(txn: SyncTxn) -> None:
        execute_many(txn.conn, sa.insert(plans), [])

    await db.write(lambda txn: txn.run_sync(write))
    assert await db.read(count) == before


class _Run:
    """A SyncBatcher running one function per item: on SQLite files, on the writer thread's
    own pysqlite connection, where execute_many and fetch_all go straight to the driver."""

    def run_sync(self, txn: SyncTxn, items: list[Callable[[SyncTxn], object]]) -> list[object]:
        return [item(txn) for item in items]


_RUN = _Run()


async def test_fetch_all_gives_what_sqlalchemy_gives(db: Database) -> None:
    zone_id = await _zone(db)
    query = sa.select(zones.c.name, zones.c.serial, zones.c.created_at).where(
        zones.c.id == sa.bindparam("zone")
    )

    def both(txn: SyncTxn) -> tuple[object, object]:
        fetched = fetch_all(txn.conn, query, {"zone": zone_id})
        result = txn.conn.execute(query, {"zone": zone_id})
        return fetched, (tuple(result.keys()), [tuple(row) for row in result])

    fetched, expected = await db.write_batched_sync(_RUN, both)
    assert fetched == expected
    columns, rows = fetched  # type: ignore[misc]
    assert columns == ("name", "serial", "created_at")
    assert isinstance(rows[0][2], datetime)  # the driver's text, turned into a time


async def test_fetch_all_returning_moves_the_value(db: Database) -> None:
    zone_id = await _zone(db)
    move = (
        sa.update(zones)
        .where(zones.c.id == sa.bindparam("zone"))
        .values(serial=zones.c.serial + sa.bindparam("by", type_=sa.BigInteger))
        .returning(zones.c.serial)
    )

    def twice(txn: SyncTxn) -> list[object]:
        return [fetch_all(txn.conn, move, {"zone": zone_id, "by": by})[1] for by in (5, 2)]

    first, second = await db.write_batched_sync(_RUN, twice)  # type: ignore[misc]
    assert second[0][0] == first[0][0] + 2


async def test_a_driver_error_is_sqlalchemys_and_the_writer_goes_on(db: Database) -> None:
    zone_id = await _zone(db)
    row = {"zone_id": zone_id, "name": "dup.bulk.example", "rtype": "A", "ttl": 60}
    row["rdatas"] = "192.0.2.1"

    def duplicate(txn: SyncTxn) -> None:
        execute_many(txn.conn, sa.insert(rrsets), [row, row])  # (zone, name, type) is unique

    # Taken by the writer for a store error (not "internal store error": a bug of ours).
    with pytest.raises(StoreUnavailable, match="IntegrityError|UniqueViolation"):
        await db.write_batched_sync(_RUN, duplicate)

    def once(txn: SyncTxn) -> int:
        execute_many(txn.conn, sa.insert(rrsets), [row])
        count = sa.select(sa.func.count()).select_from(rrsets).where(rrsets.c.name == row["name"])
        return int(fetch_all(txn.conn, count, {})[1][0][0])

    assert await db.write_batched_sync(_RUN, once) == 1  # the failed batch left nothing


def test_the_update_read_goes_to_the_driver() -> None:
    # A speed guard: the batch's read compares with literal record types, which the plan
    # carries as constants; were it refused, the read would quietly take SQLAlchemy's path.
    from sqlalchemy.dialects import sqlite

    from homing.service.updatebatch import _hosts_named
    from homing.store.statements import _plan

    names = tuple(f"n{i}" for i in range(4))
    plan = _plan(_hosts_named(4), names, sqlite.dialect())
    assert plan is not None
    parameters = plan.parameters({name: f"{name}.example" for name in names})
    assert [p for p in parameters if str(p).endswith(".example")] == [
        f"n{i}.example" for i in range(4)
    ]
    assert {"A", "AAAA"} <= set(parameters)


async def test_updates_and_deletes_of_many_rows_meet_each_row(db: Database) -> None:
    # On PostgreSQL one statement over arrays (unnest) writes them all: each row must still
    # meet its own table row, and a key given twice take its values in row order.
    zone_id = await _zone(db)
    names = [f"u{i}.bulk.example" for i in range(4)]
    # the update path's own statements (homing.service.changes)
    update, delete = changes._RRSET_UPDATE, changes._RRSET_DELETE

    def key(name: str) -> dict[str, object]:
        return {"b_zone_id": zone_id, "b_name": name, "b_rtype": "A"}

    def write(txn: SyncTxn) -> list[tuple[object, ...]]:
        execute_many(
            txn.conn,
            sa.insert(rrsets),
            [
                {"zone_id": zone_id, "name": n, "rtype": "A", "ttl": 60, "rdatas": "192.0.2.1"}
                for n in names
            ],
        )
        execute_many(
            txn.conn,
            update,
            [
                {**key(n), "b_ttl": 61 + i, "b_rdatas": f"192.0.2.{i + 10}"}
                for i, n in enumerate(names)
            ],
        )
        # The same key twice: the later row's values win, as row by row.
        execute_many(
            txn.conn,
            update,
            [
                {**key(names[0]), "b_ttl": 90, "b_rdatas": "192.0.2.90"},
                {**key(names[0]), "b_ttl": 91, "b_rdatas": "192.0.2.91"},
            ],
        )
        execute_many(txn.conn, delete, [key(names[2]), key(names[3]), key("absent.bulk.example")])
        query = (
            sa.select(rrsets.c.name, rrsets.c.ttl, rrsets.c.rdatas)
            .where(rrsets.c.name.like("u%.bulk.example"))
            .order_by(rrsets.c.name)
        )
        return fetch_all(txn.conn, query, {})[1]

    rows = await db.write_batched_sync(_RUN, write)
    assert rows == [(names[0], 91, "192.0.2.91"), (names[1], 62, "192.0.2.11")]


def test_the_update_writes_are_one_statement_each_on_postgresql() -> None:
    # A speed guard: were a write refused its array form, it would quietly run row by row.
    from sqlalchemy.dialects import postgresql

    from homing.service import changes
    from homing.service.updatebatch import _host_update
    from homing.store.statements import _plan

    dialect = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    statements = {
        changes._JOURNAL_INSERT: tuple(c.name for c in journal.columns if c.name != "id"),
        changes._RRSET_INSERT: ("zone_id", "name", "rtype", "ttl", "rdatas"),
        changes._RRSET_UPDATE: ("b_zone_id", "b_name", "b_rtype", "b_ttl", "b_rdatas"),
        changes._RRSET_DELETE: ("b_zone_id", "b_name", "b_rtype"),
        _host_update(("last_change_at", "last_update_at")): (
            "b_id",
            "b_last_change_at",
            "b_last_update_at",
        ),
    }
    for statement, keys in statements.items():
        plan = _plan(statement, keys, dialect)
        assert plan is not None and plan.arrays is not None, statement
        assert "unnest(" in plan.arrays and "$" not in plan.arrays.split("unnest(")[0]


def sent_to_asyncpg(monkeypatch: pytest.MonkeyPatch, *, control: bool = False) -> list[str]:
    """The SQL of each statement (not BEGIN or COMMIT; with `control`, only those) that
    statements sends to asyncpg from now on, in order."""
    from homing.store import statements

    sent: list[str] = []
    driver_call = statements._asyncpg

    def counted(conn: sa.Connection, sql: str, method: str, parameters: object) -> object:
        if sql.startswith(("BEGIN", "COMMIT")) == control:
            sent.append(sql)
        return driver_call(conn, sql, method, parameters)

    monkeypatch.setattr(statements, "_asyncpg", counted)
    return sent


async def test_postgresql_sends_the_held_writes_of_two_tables_in_one_round_trip(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone_id = await _zone(pg_db)
    sent = sent_to_asyncpg(monkeypatch)
    name = "held.bulk.example"
    entry = {
        "zone_id": zone_id,
        "serial": 900,
        "name": name,
        "rtype": "A",
        "ttl": 60,
        "old": "",
        "new": "192.0.2.7",
        "actor": "held",
        "via": "test",
        "old_ttl": None,
        "at": datetime(2026, 12, 6, 3, 0, tzinfo=UTC),
    }

    def write(txn: SyncTxn) -> tuple[int, list[object], list[object]]:
        execute_many(
            txn.conn,
            sa.insert(rrsets),
            [{"zone_id": zone_id, "name": name, "rtype": "A", "ttl": 60, "rdatas": "192.0.2.7"}],
        )
        execute_many(txn.conn, sa.insert(journal), [entry])
        held = len(sent)
        # SQLAlchemy's own execute sees them: they go first, both in one statement.
        seen = txn.conn.execute(sa.select(rrsets.c.rdatas).where(rrsets.c.name == name))
        journaled = txn.conn.execute(sa.select(journal.c.serial).where(journal.c.name == name))
        return held, [tuple(r) for r in seen], list(journaled.scalars())

    held, seen, serials = await pg_db.write_batched_sync(_RUN, write)  # type: ignore[misc]
    assert held == 0  # nothing went while nobody needed an answer
    assert len(sent) == 1 and sent[0].startswith("WITH _held0 AS (INSERT INTO rrsets")
    assert seen == [("192.0.2.7",)] and serials == [900]


@pytest.mark.parametrize("touches", [frozenset({"zones"}), frozenset({"zones", "rrsets"})])
async def test_postgresql_a_read_of_other_tables_carries_the_held_writes(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch, touches: frozenset[str]
) -> None:
    zone_id = await _zone(pg_db)
    sent = sent_to_asyncpg(monkeypatch)
    name = "carried.bulk.example"
    move = (
        sa.update(zones)
        .where(zones.c.id == sa.bindparam("zone"))
        .values(serial=zones.c.serial + sa.bindparam("by", type_=sa.BigInteger))
        .returning(zones.c.serial)
    )
    serial = sa.select(zones.c.serial).where(zones.c.id == zone_id)
    before = await pg_db.read(lambda conn: conn.scalar(serial))

    def write(txn: SyncTxn) -> list[tuple[object, ...]]:
        row = {"zone_id": zone_id, "name": name, "rtype": "A", "ttl": 60, "rdatas": "192.0.2.9"}
        execute_many(txn.conn, sa.insert(rrsets), [row])
        return fetch_all(txn.conn, move, {"zone": zone_id, "by": 3}, touches=touches)[1]

    moved = await pg_db.write_batched_sync(_RUN, write)  # type: ignore[misc]
    assert moved == [(before + 3,)]
    if "rrsets" in touches:  # the read might meet the held rows: they went first
        assert len(sent) == 2 and sent[0].startswith("INSERT INTO rrsets")
    else:  # one statement: the held write, then the read's own
        assert len(sent) == 1 and sent[0].startswith("WITH _held0 AS (INSERT INTO rrsets")
    stored = sa.select(rrsets.c.rdatas).where(rrsets.c.name == name)
    assert await pg_db.read(lambda conn: conn.scalar(stored)) == "192.0.2.9"


async def test_postgresql_drops_what_a_failed_transaction_held(pg_db: Database) -> None:
    from homing.store import statements

    zone_id = await _zone(pg_db)
    row = {"zone_id": zone_id, "name": "dropped.bulk.example", "rtype": "A", "ttl": 60}
    row["rdatas"] = "192.0.2.1"

    def fails_after_holding(txn: SyncTxn) -> None:
        execute_many(txn.conn, sa.insert(rrsets), [row])
        raise HomingError("the caller's own error, before anything was sent")

    with pytest.raises(HomingError, match="own error"):
        await pg_db.write(lambda txn: txn.run_sync(fails_after_holding))

    def holds(txn: SyncTxn) -> object:
        return txn.conn.info.get(statements._HELD)

    # Whichever pooled connection the next transactions get, none carries the row.
    for _ in range(3):
        assert await pg_db.write(lambda txn: txn.run_sync(holds)) is None
    count = sa.select(sa.func.count()).select_from(rrsets).where(rrsets.c.name == row["name"])
    assert await pg_db.read(lambda conn: conn.scalar(count)) == 0
