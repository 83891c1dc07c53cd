"""`homing backup FILE` / `homing restore FILE`: the whole store as JSON lines.

A backup is read in one transaction (REPEATABLE READ on PostgreSQL, one read
transaction on SQLite's WAL), so it is consistent while the service keeps writing. The
format is the same from either database, so a backup of one restores into the other:

    {"format": "homing-backup", "version": 1, "revision": "0018", "dialect": "sqlite", ...}
    {"table": "plans", "columns": ["id", "name", ...]}
    [1, "free", ...]                         one JSON array per row, in the columns' order
    ...                                      every table, parents before children
    {"end": {"plans": 1, ...}}               row counts: a cut-off file is refused

Datetimes are ISO 8601 strings in UTC. Restore checks the schema revision, refuses a
store that holds anything but the default plan unless forced, and writes everything in
one transaction: on any error nothing changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from homing.domain.errors import HomingError
from homing.store.db import Database, as_utc
from homing.store.schema import backed_up_tables, plans

FORMAT = "homing-backup"
VERSION = 1
INSERT_BATCH = 1000


class BackupError(HomingError):
    """A backup that cannot be taken or restored; the message says why."""


@dataclass(frozen=True)
class Summary:
    revision: str
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _revision(conn: sa.Connection) -> str:
    return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one())


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()  # type: ignore[union-attr]
    return value


def _dump(conn: sa.Connection, out: IO[str]) -> Summary:
    revision = _revision(conn)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "revision": revision,
        "dialect": conn.dialect.name,
        "created": datetime.now().astimezone().isoformat(),
    }
    out.write(json.dumps(header) + "\n")
    counts: dict[str, int] = {}
    for table in backed_up_tables():
        columns = [c.name for c in table.columns]
        out.write(json.dumps({"table": table.name, "columns": columns}) + "\n")
        count = 0
        order = list(table.primary_key.columns) or list(table.columns)
        result = conn.execution_options(yield_per=INSERT_BATCH).execute(
            sa.select(*table.columns).order_by(*order)
        )
        for row in result:
            out.write(json.dumps([_encode(v) for v in row]) + "\n")
            count += 1
        counts[table.name] = count
    out.write(json.dumps({"end": counts}) + "\n")
    return Summary(revision, counts)


def _private(path: Path) -> IO[str]:
    """A new file only its owner may read: a backup holds TSIG secrets and password hashes."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return open(descriptor, "w", encoding="utf-8")


async def backup(db: Database, path: Path) -> Summary:
    """Write the whole store to `path` (replaced only once complete)."""
    temporary = path.with_name(path.name + ".partial")

    async def read(conn: Any) -> Summary:
        if not db.is_sqlite:
            await conn.execution_options(isolation_level="REPEATABLE READ")
        with _private(temporary) as out:
            summary: Summary = await conn.run_sync(lambda sync: _dump(sync, out))
            out.flush()
            os.fsync(out.fileno())
        return summary

    try:
        summary = await db.read(read)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    temporary.replace(path)
    return summary


def _lines(source: IO[str]) -> Iterator[Any]:
    for number, line in enumerate(source, 1):
        try:
            yield json.loads(line)
        except ValueError as exc:
            raise BackupError(f"line {number} is not JSON: {exc}") from exc


def _decoder(column: sa.Column[Any]) -> Any:
    if isinstance(column.type, sa.DateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    return None


def _is_empty(conn: sa.Connection) -> bool:
    for table in backed_up_tables():
        limit = 1 if table is plans else 0  # the default plan every new store starts with
        count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        if count > limit:
            return False
    return True


def _restore(conn: sa.Connection, source: IO[str], force: bool) -> Summary:
    lines = _lines(source)
    header = next(lines, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError("not a homing backup (no homing-backup header line)")
    if header.get("version") != VERSION:
        raise BackupError(f"backup format version {header.get('version')!r} is not {VERSION}")
    revision = _revision(conn)
    if header.get("revision") != revision:
        raise BackupError(
            f"backup of schema revision {header.get('revision')}, this store is at {revision}: "
            "restore it with the homing version that took it"
        )
    if not _is_empty(conn) and not force:
        raise BackupError("the store is not empty: restore into a new one, or use --force")
    for emptied in reversed(backed_up_tables()):
        conn.execute(emptied.delete())
    tables = {t.name: t for t in backed_up_tables()}
    counts: dict[str, int] = {}
    table: sa.Table | None = None
    columns: list[str] = []
    decoders: list[tuple[int, Any]] = []
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch and table is not None:
            conn.execute(table.insert(), batch)
            batch.clear()

    for item in lines:
        if isinstance(item, list):
            if table is None or len(item) != len(columns):
                raise BackupError("a row outside a table, or with the wrong number of values")
            for position, decode in decoders:
                item[position] = decode(item[position])
            batch.append(dict(zip(columns, item, strict=True)))
            counts[table.name] += 1
            if len(batch) >= INSERT_BATCH:
                flush()
        elif isinstance(item, dict) and "table" in item:
            flush()
            table = tables.get(item["table"])
            if table is None or item["table"] in counts:
                raise BackupError(f"unknown or repeated table {item['table']!r}")
            columns = list(item.get("columns", []))
            unknown = set(columns) - set(table.columns.keys())
            if unknown:
                raise BackupError(f"table {table.name}: unknown columns {sorted(unknown)}")
            decoders = [(i, d) for i, name in enumerate(columns) if (d := _decoder(table.c[name]))]
            counts[table.name] = 0
        elif isinstance(item, dict) and "end" in item:
            flush()
            if item["end"] != counts:
                raise BackupError("the row counts at the end do not match: a damaged file")
            _reset_sequences(conn)
            return Summary(revision, counts)
        else:
            raise BackupError("an unexpected line in the backup")
    raise BackupError("the backup ends early (no end line): a cut-off file")


def _reset_sequences(conn: sa.Connection) -> None:
    """PostgreSQL hands out ids from sequences that the explicit ids did not move."""
    if conn.dialect.name != "postgresql":
        return
    for table in backed_up_tables():
        key = list(table.primary_key.columns)
        if len(key) != 1 or not isinstance(key[0].type, sa.Integer) or key[0].foreign_keys:
            continue
        sequence = conn.execute(
            sa.select(sa.func.pg_get_serial_sequence(table.name, key[0].name))
        ).scalar()
        if sequence is None:
            continue
        conn.execute(
            sa.select(
                sa.func.setval(
                    sequence,
                    sa.select(sa.func.coalesce(sa.func.max(key[0]), 0) + 1).scalar_subquery(),
                    False,
                )
            )
        )


async def restore(db: Database, path: Path, *, force: bool = False) -> Summary:
    """Load a backup into the (migrated) store, in one transaction."""
    await db.migrate()
    try:
        source = path.open(encoding="utf-8")
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from exc
    with source:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(homing_write=True)
            async with conn.begin():
                summary: Summary = await conn.run_sync(lambda sync: _restore(sync, source, force))
    return summary
