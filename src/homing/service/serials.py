"""Each zone's serial as the store holds it: what /metrics sets beside the served one."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.store.db import Database
from homing.store.schema import zones


async def stored_serials(db: Database) -> dict[str, int]:
    """Zone name to serial, for every zone in the store (StoreUnavailable when it is down)."""

    async def read(conn: AsyncConnection) -> dict[str, int]:
        rows = await conn.execute(sa.select(zones.c.name, zones.c.serial))
        return {row.name: row.serial for row in rows}

    return await db.read(read)
