"""DNS queries answered, per node and 5-minute bucket, kept in the store for a day so the
operator's overview can chart the last 24 hours across workers and nodes.

The counts live in each DNS process's memory (dns.server.query_count); every process adds
what it answered in a bucket to that bucket's row once the bucket is over, and once more
when it stops: one small write per process per bucket, never one per query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.service.activity import HOURS, Hourly
from homing.store.db import Database, Txn
from homing.store.schema import query_counts

log = logging.getLogger(__name__)

BUCKET = 300  # seconds
KEEP = 86_400 + 3600  # a day and the hour in progress


def bucket_of(at: float) -> int:
    return int(at // BUCKET) * BUCKET


class Buckets:
    """A process's running total turned into per-bucket counts; sans-I/O."""

    def __init__(self, at: float, total: int) -> None:
        self.bucket = bucket_of(at)
        self.counted = total  # the total when the current bucket began

    def closed(self, at: float, total: int) -> tuple[int, int] | None:
        """The bucket that ended before `at` and its count, once; None within a bucket.
        Queries answered since its end are counted in it: the reading comes right after."""
        now = bucket_of(at)
        if now <= self.bucket:
            return None
        ended = (self.bucket, total - self.counted)
        self.bucket, self.counted = now, total
        return ended

    def rest(self, total: int) -> tuple[int, int]:
        """The bucket in progress and its count so far (at stop)."""
        ended = (self.bucket, total - self.counted)
        self.counted = total
        return ended


async def add(db: Database, node: str, bucket: int, queries: int) -> None:
    """Add `queries` to the node's bucket (other workers add theirs) and drop old rows."""
    if queries <= 0:
        return

    async def unit(txn: Txn) -> None:
        insert = (sqlite.insert if db.is_sqlite else postgresql.insert)(query_counts)
        statement = insert.values(bucket=bucket, node=node, queries=queries)
        statement = statement.on_conflict_do_update(
            index_elements=[query_counts.c.bucket, query_counts.c.node],
            set_={"queries": query_counts.c.queries + statement.excluded.queries},
        )
        await txn.conn.execute(statement)
        await txn.conn.execute(sa.delete(query_counts).where(query_counts.c.bucket < bucket - KEEP))

    await db.write(unit)


async def record(db: Database, node: str, count: Callable[[], int]) -> None:
    """Until cancelled: after each bucket, add this process's count of it; at the end,
    the bucket in progress."""
    # From zero: `count` is this process's total since it started, queries answered before
    # this task first ran included.
    buckets = Buckets(time.time(), 0)
    try:
        while True:
            # The bucket's end is a time, not an event.
            await asyncio.sleep(buckets.bucket + BUCKET - time.time() + 0.05)
            ended = buckets.closed(time.time(), count())
            if ended is not None:
                try:
                    await add(db, node, *ended)
                except Exception:  # one bucket lost from a chart; the service goes on
                    log.exception("DNS query count of bucket %d not stored", ended[0])
    finally:
        with contextlib.suppress(Exception):
            await add(db, node, *buckets.rest(count()))


async def queries_by_hour(
    db: Database, at: datetime | None = None, hours: int = HOURS
) -> tuple[Hourly, dict[str, int]]:
    """Queries answered in each of the last `hours` hours up to `at`, over every node, and
    each node's total over them."""
    at = at or datetime.now(UTC)
    end = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    starts = [end - timedelta(hours=hours - i) for i in range(hours)]
    first = int(starts[0].timestamp())

    async def read(conn: AsyncConnection) -> list[tuple[int, str, int]]:
        rows = await conn.execute(
            sa.select(query_counts.c.bucket, query_counts.c.node, query_counts.c.queries).where(
                query_counts.c.bucket >= first, query_counts.c.bucket < int(end.timestamp())
            )
        )
        return [(int(b), str(n), int(q)) for b, n, q in rows]

    counts = [0] * hours
    nodes: dict[str, int] = {}
    for bucket, node, queries in await db.read(read):
        counts[(bucket - first) // 3600] += queries
        nodes[node] = nodes.get(node, 0) + queries
    return Hourly(starts, counts), dict(sorted(nodes.items()))
