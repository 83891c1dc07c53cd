"""Shared fixtures: a fresh store on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from homing.store.db import Database
from tests import peers
from tests.mailserver import MailServer, smtp_server

POSTGRES_URL = os.environ.get(
    "HOMING_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


async def _postgres_database() -> Database:
    schema = f"homing_test_{os.getpid()}_{secrets.token_hex(4)}"
    db = Database(POSTGRES_URL, schema=schema)
    try:
        await db.migrate()
    except Exception as exc:
        await db.engine.dispose()
        peers.missing(f"PostgreSQL at {POSTGRES_URL} ({exc.__class__.__name__})")
    return db


async def _drop_schema(db: Database) -> None:
    import sqlalchemy as sa

    async with db.engine.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty store; each PostgreSQL test gets a schema of its own."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'homing.db'}")
        await database.migrate()
    else:
        database = await _postgres_database()
    try:
        yield database
    finally:
        if not database.is_sqlite:
            await _drop_schema(database)
        await database.close()


@pytest.fixture
async def pg_db() -> AsyncIterator[Database]:
    """A migrated, empty PostgreSQL store in a schema of its own, for what only
    PostgreSQL does (its notifications)."""
    database = await _postgres_database()
    try:
        yield database
    finally:
        await _drop_schema(database)
        await database.close()


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    """A real SMTP server on loopback (aiosmtpd); the test reads what it accepted."""
    with smtp_server() as server:
        yield server
