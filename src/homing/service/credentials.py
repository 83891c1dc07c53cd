"""Whose update is it: a host's secret, a group's secret or an account's password.

The common case, a host's own secret, is decided inside the update batch
(service/updaterules.py, `decide`); this module answers the rest, outside it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import InvalidName
from homing.domain.names import normalize
from homing.service.accounts import authenticate
from homing.service.secrets import secret_matches
from homing.service.throttle import Throttle, Throttled
from homing.service.updatetypes import Grant, UpdateRequest
from homing.store.db import Database
from homing.store.schema import group_members, groups, hosts

UNKNOWN_NAME = Grant(frozenset(), ())  # the user name is a host name we do not know
_WRONG_SECRET = Grant(frozenset(), ())  # a host's or group's secret did not match


async def resolve_credentials(
    db: Database, request: UpdateRequest, throttle: Throttle | None
) -> Grant | None:
    """Host secret, group secret, or account password (in that order); None: badauth.

    UNKNOWN_NAME when the user name is a host name that is neither host, group nor
    account here: the request is about a domain we do not have (nohost), not a bad password.
    A wrong secret counts for the source; an account password goes through the throttle
    (badauth, without argon2, once the source or the account has failed too often).
    """
    username, password = request.username, request.password
    try:
        name = normalize(username) if "." in username else None
    except InvalidName:
        name = None

    async def by_secret(conn: AsyncConnection) -> Grant | None:
        if name is None:
            return None
        host = (
            await conn.execute(
                sa.select(hosts.c.id, hosts.c.secret_hash).where(hosts.c.name == name)
            )
        ).first()
        if host is not None:
            if secret_matches(password, host.secret_hash):
                return Grant(frozenset({host.id}), (name,))
            return _WRONG_SECRET
        group = (
            await conn.execute(
                sa.select(groups.c.id, groups.c.secret_hash).where(groups.c.name == name)
            )
        ).first()
        if group is not None and secret_matches(password, group.secret_hash):
            rows = await conn.execute(
                sa.select(hosts.c.id, hosts.c.name)
                .join(group_members, group_members.c.host_id == hosts.c.id)
                .where(group_members.c.group_id == group.id)
                .order_by(hosts.c.name)
            )
            members = rows.all()
            return Grant(
                frozenset(m.id for m in members), tuple(m.name for m in members), group=name
            )
        return None if group is None else _WRONG_SECRET

    grant = await db.read(by_secret)
    if grant is _WRONG_SECRET:
        if throttle is not None:
            await throttle.failed(throttle.source(request.client_ip))
        return None
    if grant is not None:
        return grant
    try:
        account = await authenticate(
            db, username, password, throttle=throttle, address=request.client_ip
        )
    except Throttled:
        return None
    if account is None:
        if name is not None and not await db.read(lambda conn: _name_exists(conn, name)):
            return UNKNOWN_NAME
        return None

    async def owned(conn: AsyncConnection) -> Grant:
        rows = await conn.execute(sa.select(hosts.c.id).where(hosts.c.owner_id == account.id))
        return Grant(frozenset(r.id for r in rows), ())

    return await db.read(owned)


async def _name_exists(conn: AsyncConnection, name: str) -> bool:
    for column in (hosts.c.name, groups.c.name):
        if await conn.scalar(sa.select(column).where(column == name)) is not None:
            return True
    return False
