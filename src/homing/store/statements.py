"""Statements compiled once and handed straight to the driver: the update path's writes
(and the journal follower's read of new entries).

SQLAlchemy's own execute does its parameter processing and result wrapping on every
call; for the few statements the update batch runs on each commit, the compiled SQL,
the order of its parameters and the type conversions are worked out once per statement
(a `_Plan`, from the compiler's own description of the statement) and each call is a
tuple per row handed to the driver: pysqlite on SQLite's writer thread, asyncpg on
PostgreSQL (whose statement cache keeps each one prepared on the server, and whose
executemany sends all rows in one round trip). Statements a plan cannot describe
(Python-side defaults, expanding lists) run the usual way.

On asyncpg the rows a batch writes are held back (`execute_many`) and sent as one
statement, each earlier one a data-modifying WITH of the last (the host rows and the
RRsets: one round trip, not two to four), when the batch next needs an answer: before
its next read, any other statement, its commit or the end of its work (`flush`); they
are dropped on rollback (`held_back`). A read that says which tables it touches, none
of them written by what is held, carries the held writes in its own statement (the
zone's serial move and journal rows: the batch's writes are one round trip in all).
Statements held together write different tables, so none can meet another's rows.
"""

from __future__ import annotations

import functools
import operator
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.util import await_only


@dataclass(frozen=True)
class _Plan:
    """A statement compiled for one dialect: its SQL, how a parameter dict becomes the SQL's
    parameters, and how the driver's result values become SQLAlchemy's."""

    sql: str
    take: Callable[[dict[str, Any]], Any]  # the row's values in the SQL's order (itemgetter)
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, bind processor)
    columns: tuple[str, ...] = ()  # result column names
    results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()  # (position, result processor)
    # PostgreSQL: the statement for all rows at once, each parameter an array (unnest),
    # and for an UPDATE the positions of its WHERE's parameters (None: every row its own).
    arrays: str | None = None
    keyed: tuple[int, ...] | None = None
    table: str | None = None  # the table an INSERT, UPDATE or DELETE writes

    def parameters(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return _processed(self.take(row), self.convert)

    def result(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return _processed(row, self.results)


def _processed(
    values: tuple[Any, ...], processors: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    """`values` with each processor applied at its position (the same tuple if none)."""
    if not processors:
        return values
    converted = list(values)
    for position, process in processors:
        converted[position] = process(converted[position])
    return tuple(converted)


# (dialect, statement, parameter names) -> the statement and its plan (None: the usual way).
_PLANS: dict[tuple[str, int, tuple[str, ...]], tuple[sa.Executable, _Plan | None]] = {}
# The drivers a plan's SQL is handed to directly.
_DIRECT = frozenset({"pysqlite", "asyncpg"})
# asyncpg: the writes held back on a connection, (table, SQL, arguments), in their order.
_HELD = "homing_held"
# asyncpg in AUTOCOMMIT mode: a transaction is open on the connection (`begin`, `commit`).
_BEGUN = "homing_begun"


def execute_many(conn: sa.Connection, statement: sa.Executable, rows: list[dict[str, Any]]) -> None:
    """Run `statement` once for each row (all with the same keys), as one executemany.

    The statement is compiled once and the rows go to the driver as tuples, without
    SQLAlchemy's parameter processing for each row (the update batch writes three such
    statements): straight to pysqlite on the writer thread's connection, to asyncpg on
    PostgreSQL (one round trip for all rows). Elsewhere, and for statements with
    Python-side defaults, it is plain conn.execute.
    """
    if not rows:
        return
    plan = _plan_for(conn, statement, tuple(rows[0]))
    if plan is None:
        conn.execute(statement, rows)
        return
    parameters = [plan.parameters(row) for row in rows]
    driver = conn.dialect.driver
    if driver == "asyncpg":
        # One statement over arrays: PostgreSQL runs its executor once, not once a row.
        arrays = plan.arrays if plan.arrays is not None and _disjoint(plan, parameters) else None
        if arrays is not None and plan.table is not None:
            _hold(conn, plan.table, arrays, [list(c) for c in zip(*parameters, strict=True)])
            return
        flush(conn)
        if arrays is not None and len(rows) > 1:
            _asyncpg(conn, arrays, "execute", [list(c) for c in zip(*parameters, strict=True)])
        else:
            _asyncpg(conn, plan.sql, "executemany", parameters)
        return
    if driver != "pysqlite":
        conn.exec_driver_sql(plan.sql, parameters)
        return
    try:
        conn.connection.driver_connection.executemany(plan.sql, parameters)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise _store_error(plan.sql, exc) from exc


def fetch_all(
    conn: sa.Connection,
    statement: sa.Executable,
    parameters: dict[str, Any],
    *,
    touches: frozenset[str] | None = None,
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """Run a statement that returns rows (a SELECT, or DML with RETURNING): its column
    names and all its rows, values as SQLAlchemy would give them.

    On the writer thread's pysqlite connection and on asyncpg the statement, compiled
    once, goes straight to the driver (the update batch's read and serial move). The
    statement's parameters must be plain ones (no expanding IN lists: build one
    statement per count). `touches`: every table the statement reads or writes, where
    the caller knows them; on asyncpg the writes held back for other tables then go in
    the same statement, as data-modifying WITHs before it (a round trip less).
    """
    driver = conn.dialect.driver
    plan = _plan_for(conn, statement, tuple(parameters)) if driver in _DIRECT else None
    carried: list[tuple[str, str, list[Any]]] = []
    if driver == "asyncpg":
        if plan is not None and plan.columns and touches is not None:
            carried = _take_held(conn, touches)
        flush(conn)
    if plan is None or not plan.columns:
        result = conn.execute(statement, parameters)
        return tuple(result.keys()), [tuple(row) for row in result.all()]
    if driver == "asyncpg":
        own = (plan.sql, list(plan.parameters(parameters)))
        sql, arguments = _joined([(sql, values) for _, sql, values in carried] + [own])
        rows = _asyncpg(conn, sql, "fetch", arguments)
        return plan.columns, [plan.result(tuple(row)) for row in rows]
    try:
        cursor = conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            plan.sql, plan.parameters(parameters)
        )
        rows = cursor.fetchall()
    except sqlite3.Error as exc:
        raise _store_error(plan.sql, exc) from exc
    return plan.columns, [plan.result(row) for row in rows]


def flush(conn: sa.Connection) -> None:
    """Send the writes held back on `conn` (asyncpg; nothing elsewhere), as one statement."""
    held: list[tuple[str, str, list[Any]]] | None = conn.info.pop(_HELD, None)
    if held:
        sql, arguments = _joined([(sql, values) for _, sql, values in held])
        _asyncpg(conn, sql, "execute", arguments)


def begin(conn: sa.Connection) -> None:
    """Begin a transaction on `conn` (asyncpg, in AUTOCOMMIT mode: the update batch's
    connections), unless the COMMIT before it began one already (`commit`)."""
    if not conn.info.get(_BEGUN):
        _asyncpg(conn, "BEGIN", "execute", [])
        conn.info[_BEGUN] = True


def commit(conn: sa.Connection, *, begin_next: bool) -> None:
    """Commit the transaction `begin` began on `conn`, its held writes sent first; with
    `begin_next`, the next transaction begins in the same message (PostgreSQL runs a
    simple query's statements in order and stops at the first that fails), so the
    next batch on the connection spends no round trip on its BEGIN. READ COMMITTED
    takes each statement's snapshot as it starts, so an early BEGIN reads nothing
    stale; until its first statement it holds no snapshot, lock or transaction id."""
    flush(conn)
    conn.info.pop(_BEGUN, None)  # failed, the connection is dropped with whatever it holds
    _asyncpg(conn, "COMMIT; BEGIN" if begin_next else "COMMIT", "execute", [])
    if begin_next:
        conn.info[_BEGUN] = True


def _take_held(conn: sa.Connection, touches: frozenset[str]) -> list[tuple[str, str, list[Any]]]:
    """The writes held back on `conn`, taken off it, if none is to a table in `touches`
    (a statement's own reads and writes never see those of its WITHs); else none."""
    held: list[tuple[str, str, list[Any]]] = conn.info.get(_HELD) or []
    if any(table in touches for table, _, _ in held):
        return []
    conn.info.pop(_HELD, None)
    return held


def _joined(statements: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """asyncpg statements as one, each before the last a data-modifying WITH of it, and
    their arguments as one list."""
    if len(statements) == 1:
        return statements[0]
    arguments: list[Any] = []
    for _, values in statements:
        arguments.extend(values)
    return _joined_sql(tuple((sql, len(values)) for sql, values in statements)), arguments


@functools.lru_cache(maxsize=256)
def _joined_sql(statements: tuple[tuple[str, int], ...]) -> str:
    """The SQL of `_joined`, for statements given with their numbers of parameters: a
    batch's writes come in a few shapes, each renumbered and joined once."""
    parts = []
    offset = 0
    for sql, count in statements:
        parts.append(_renumbered(sql, offset))
        offset += count
    *earlier, last = parts
    ctes = ", ".join(f"_held{i} AS ({part})" for i, part in enumerate(earlier))
    if last.startswith("WITH ") and not last.startswith("WITH RECURSIVE "):
        return f"WITH {ctes}, {last[len('WITH ') :]}"
    return f"WITH {ctes} {last}"


def held_back(engine: sa.Engine) -> None:
    """On `engine` (asyncpg), writes held back on a connection go before any statement
    SQLAlchemy runs on it and before its commit, and are dropped on rollback."""

    @sa.event.listens_for(engine, "before_cursor_execute")
    def before_execute(conn: sa.Connection, *_: Any) -> None:
        if _HELD in conn.info:
            flush(conn)

    @sa.event.listens_for(engine, "commit")
    def before_commit(conn: sa.Connection) -> None:
        flush(conn)

    @sa.event.listens_for(engine, "rollback")
    def on_rollback(conn: sa.Connection) -> None:
        conn.info.pop(_HELD, None)

    @sa.event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_HELD, None)  # a connection given back, however, holds nothing


def _hold(conn: sa.Connection, table: str, sql: str, arguments: list[Any]) -> None:
    held = conn.info.get(_HELD)
    if held is not None and any(written == table for written, _, _ in held):
        flush(conn)  # a table is written once in a statement: its rows never meet
        held = None
    if held is None:
        held = conn.info[_HELD] = []
    held.append((table, sql, arguments))


def _renumbered(sql: str, offset: int) -> str:
    """asyncpg's SQL with its parameters $N numbered after `offset` others."""
    if not offset:
        return sql
    return _NUMBERED.sub(lambda found: f"${int(found.group(1)) + offset}", sql)


# A parameter of asyncpg's SQL, to number a statement's parameters after another's.
_NUMBERED = re.compile(r"\$(\d+)")


def _store_error(sql: str, exc: sqlite3.Error) -> Exception:
    """A driver error as SQLAlchemy's (IntegrityError and so on), as callers expect.
    (A plain try at each call: a context manager cost a dozen calls per statement.)"""
    return sa.exc.DBAPIError.instance(sql, None, exc, sqlite3.Error)


def _asyncpg(conn: sa.Connection, sql: str, method: str, parameters: Any) -> Any:
    """`method` ("fetch", "execute", "executemany") of the asyncpg connection under `conn`, in the
    transaction SQLAlchemy began on it (started first if no statement has yet), or in
    AUTOCOMMIT mode in the one `begin` began. Runs in the greenlet of
    `AsyncConnection.run_sync`; errors come out as SQLAlchemy's."""
    adapted: Any = conn.connection.dbapi_connection
    try:
        if adapted._transaction is None:
            await_only(adapted._start_transaction())
        driver = adapted._connection
        if method == "fetch":
            return await_only(driver.fetch(sql, *parameters))
        if method == "execute":
            return await_only(driver.execute(sql, *parameters))
        return await_only(driver.executemany(sql, parameters))
    except sa.exc.DBAPIError:
        raise
    except Exception as exc:
        try:
            adapted._handle_exception(exc)  # raises the driver error as a DB-API one
        except Exception as translated:
            dbapi: Any = conn.dialect.loaded_dbapi
            raise sa.exc.DBAPIError.instance(sql, None, translated, dbapi.Error) from exc
        raise


def _plan_for(conn: sa.Connection, statement: sa.Executable, keys: tuple[str, ...]) -> _Plan | None:
    dialect = conn.dialect
    if dialect.name != "sqlite" and dialect.driver != "asyncpg":
        return None
    cache_key = (dialect.driver, id(statement), keys)
    cached = _PLANS.get(cache_key)
    if cached is None or cached[0] is not statement:
        cached = _PLANS[cache_key] = (statement, _plan(statement, keys, conn.dialect))
    return cached[1]


def _plan(statement: sa.Executable, keys: tuple[str, ...], dialect: sa.Dialect) -> _Plan | None:
    compiled = cast(Any, statement).compile(dialect=dialect, column_keys=list(keys))
    names = compiled.positiontup
    if compiled.insert_prefetch or compiled.update_prefetch or not names:
        return None  # defaults computed in Python, or not a positional paramstyle
    if any(bind.expanding for bind in compiled.binds.values()):
        return None  # a list
    # Values the statement carries itself (a literal compared with, say).
    constants = {}
    for name in names:
        if name not in keys:
            bind = compiled.binds[name]
            if bind.callable is not None or bind.value is None:
                return None  # a parameter the rows do not carry (a default, say)
            constants[name] = bind.value
    convert = []
    for position, name in enumerate(names):
        implementation = dialect.type_descriptor(compiled.binds[name].type)
        process = implementation.bind_processor(dialect)
        if process is not None:
            if isinstance(implementation, sa.DateTime):
                process = _datetime_bind(dialect, implementation, process)
            convert.append((position, process))
    columns = []
    results = []
    for position, entry in enumerate(compiled._result_columns):
        columns.append(entry.keyname)
        process = dialect.type_descriptor(entry.type).result_processor(dialect, None)
        if process is not None:
            results.append((position, process))
    arrays, keyed = _array_form(compiled.string) if dialect.driver == "asyncpg" else (None, None)
    written = _WRITTEN.match(compiled.string)
    return _Plan(
        compiled.string,
        _taker(names, constants),
        tuple(convert),
        tuple(columns),
        tuple(results),
        arrays,
        keyed,
        written.group(1) if written is not None and "'" not in compiled.string else None,
    )


# A parameter as asyncpg's dialect renders it: $N and its cast (types of one word with an
# optional length, or the few of several words).
_CAST_PARAMETER = re.compile(
    r"\$(\d+)::(TIMESTAMP WITH(?:OUT)? TIME ZONE|TIME WITH(?:OUT)? TIME ZONE"
    r"|DOUBLE PRECISION|[A-Z]+(?:\(\d+\))?)(?![\w(\[])"
)
_WRITTEN = re.compile(r"^(?:INSERT INTO|UPDATE|DELETE FROM) (\w+) ")
_INSERT = re.compile(r"^(INSERT INTO \w+ \([\w\", ]+\)) VALUES \((.*)\)(?: RETURNING [\w.]+)?$")
_UPDATE = re.compile(r"^UPDATE (\w+) SET (.*) WHERE (.*)$")
_DELETE = re.compile(r"^DELETE FROM (\w+) WHERE (.*)$")
# A WHERE whose every term is `table.column = $N`: rows with different parameters there
# never meet the same table row.
_KEY_TERM = re.compile(r"^\w+\.\w+ = \$(\d+)::")


def _array_form(sql: str) -> tuple[str | None, tuple[int, ...] | None]:
    """A plain INSERT ... VALUES, UPDATE ... WHERE or DELETE ... WHERE as one statement over
    unnest()ed arrays (column i of the rows in array $i), and for UPDATE and DELETE the
    positions of the WHERE's parameters; (None, None) for any other shape.

    An UPDATE visits its rows in the arrays' order (a nested loop over the few rows of a
    batch, the plan PostgreSQL picks for them) and so takes its row locks in the order
    executemany would; should another plan lock them otherwise, a deadlock with a
    concurrent writer is detected by PostgreSQL and the batch retried one by one."""
    types: dict[int, str] = {}

    def column(match: re.Match[str]) -> str:
        position = int(match.group(1))
        if types.setdefault(position, match.group(2)) != match.group(2):
            raise ValueError
        return f"_rows.p{position}"

    try:
        if (found := _INSERT.match(sql)) is not None:
            values = _CAST_PARAMETER.sub(column, found.group(2))
            head, tail, keys = f"{found.group(1)} SELECT {values} FROM ", "", None
        elif (found := _UPDATE.match(sql)) is not None and " RETURNING " not in sql:
            setting = _CAST_PARAMETER.sub(column, found.group(2))
            keys = _keys(found.group(3))
            where = _CAST_PARAMETER.sub(column, found.group(3))
            head, tail = f"UPDATE {found.group(1)} SET {setting} FROM ", f" WHERE {where}"
        elif (found := _DELETE.match(sql)) is not None and " RETURNING " not in sql:
            keys = _keys(found.group(2))
            where = _CAST_PARAMETER.sub(column, found.group(2))
            head, tail = f"DELETE FROM {found.group(1)} USING ", f" WHERE {where}"
        else:
            return None, None
    except ValueError:
        return None, None
    positions = sorted(types)
    if "$" in head + tail or positions != list(range(1, len(positions) + 1)):
        return None, None  # a parameter without a cast, or one the pattern did not see
    arrays = ", ".join(f"${p}::{types[p]}[]" for p in positions)
    names = ", ".join(f"p{p}" for p in positions)
    return f"{head}unnest({arrays}) AS _rows({names}){tail}", keys


def _keys(where: str) -> tuple[int, ...]:
    """The parameter positions (from 0) of a WHERE of `table.column = $N` terms joined by AND."""
    keys = []
    for term in where.split(" AND "):
        found = _KEY_TERM.match(term)
        if found is None:
            raise ValueError
        keys.append(int(found.group(1)) - 1)
    return tuple(keys)


def _disjoint(plan: _Plan, parameters: list[tuple[Any, ...]]) -> bool:
    """Whether the rows of an UPDATE or DELETE meet different table rows each (as one
    statement, a table row met twice would take only one row's values)."""
    if plan.keyed is None:
        return True
    keys = {tuple(row[i] for i in plan.keyed) for row in parameters}
    return len(keys) == len(parameters)


# One remembering processor per datetime format, shared by every plan's datetime binds.
_DATETIME_BINDS: dict[tuple[str, str, str], _LastValue] = {}


def _datetime_bind(
    dialect: sa.Dialect, implementation: Any, process: Callable[[Any], Any]
) -> _LastValue:
    """A batch binds one clock reading (`txn.now`) in many rows of several statements, and
    SQLite's datetime formatting costs microseconds each: it is done once per batch."""
    key = (dialect.name, dialect.driver, repr(implementation))  # repr: the format's options
    found = _DATETIME_BINDS.get(key)
    if found is None:
        found = _DATETIME_BINDS[key] = _LastValue(process)
    return found


class _LastValue:
    """A bind processor that remembers its last value and what it made of it."""

    __slots__ = ("process", "last")

    def __init__(self, process: Callable[[Any], Any]) -> None:
        self.process = process
        self.last: tuple[Any, Any] = (None, None)  # (value, processed): one object, so a
        # thread reading it while another replaces it sees one pair or the other

    def __call__(self, value: Any) -> Any:
        last = self.last
        if value is last[0] and value is not None:
            return last[1]
        processed = self.process(value)
        self.last = (value, processed)
        return processed


def _taker(
    names: tuple[str, ...], constants: dict[str, Any]
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function giving a parameter dict's values in the SQL's order, constants in place."""
    if constants:
        return lambda row: tuple(constants[n] if n in constants else row[n] for n in names)
    if len(names) == 1:
        single = names[0]
        return lambda row: (row[single],)
    return operator.itemgetter(*names)
