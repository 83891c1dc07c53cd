"""The migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from homing.store.db import Database
from homing.store.schema import metadata


async def test_migrations_match_schema(db: Database) -> None:
    def diff(conn: sa.Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"include_schemas": False})
        return list(compare_metadata(context, metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_migrate_twice_is_harmless(db: Database) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        plans = (await conn.execute(sa.text("SELECT name, is_default FROM plans"))).all()
    assert [tuple(p) for p in plans] == [("free", True)]
