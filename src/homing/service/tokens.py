"""Personal API tokens: random, shown once, stored as SHA-256, scoped to actions and hosts.

A token's scope is a set of actions (read, update, manage, acme) and either all of the
account's hosts or a chosen few. `Grant.allows` is the one place that decides.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import NotFound
from homing.service.accounts import Account
from homing.service.portal import PortalError
from homing.service.secrets import hash_secret
from homing.store.db import Database, Txn, as_utc, now
from homing.store.schema import accounts, api_token_hosts, api_tokens, hosts

ACTIONS = ("read", "update", "manage", "acme")
ACTION_HELP = {
    "read": "list hosts, their addresses, status and history",
    "update": "set a host's address",
    "manage": "create and delete hosts, new secrets, tokens",
    "acme": "set and delete a host's ACME challenge (_acme-challenge TXT) only",
}
PREFIX = "hom_"  # recognisable in logs and by secret scanners
MAX_TOKENS = 50  # per account
MAX_NAME = 64
TOUCH_EVERY = timedelta(minutes=1)


def new_token() -> str:
    """256 random bits, URL-safe, with a recognisable prefix."""
    return PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Token:
    """A token as listed: never its secret."""

    id: int
    name: str
    actions: tuple[str, ...]
    host_ids: tuple[int, ...] | None  # None: all of the account's hosts
    host_names: tuple[str, ...]
    created_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class CreatedToken:
    token: Token
    secret: str  # shown once


@dataclass(frozen=True)
class Grant:
    """What an authenticated API request may do, on whose behalf."""

    account: Account
    token_id: int
    actions: frozenset[str]
    host_ids: frozenset[int] | None  # None: all of the account's hosts

    def allows(self, action: str, host_id: int | None = None) -> bool:
        """`action` on `host_id` (None: on the account as a whole, e.g. create a host)."""
        if action not in self.actions:
            return False
        if self.host_ids is None:
            return True
        return host_id is not None and host_id in self.host_ids

    def covers(self, actions: Iterable[str], host_ids: Iterable[int] | None) -> bool:
        """Whether a token with this scope is no wider than this grant's."""
        if not set(actions) <= self.actions:
            return False
        if self.host_ids is None:
            return True
        return host_ids is not None and set(host_ids) <= self.host_ids


def parse_actions(chosen: Iterable[str]) -> tuple[str, ...]:
    """The chosen actions in canonical order; PortalError for none or an unknown one."""
    wanted = {a.strip().lower() for a in chosen if a.strip()}
    unknown = wanted - set(ACTIONS)
    if unknown:
        raise PortalError(
            "TOKEN_ACTION_INVALID",
            f"Unknown action {sorted(unknown)[0][:32]!r}; choose from {', '.join(ACTIONS)}.",
            "actions",
        )
    if not wanted:
        raise PortalError("TOKEN_ACTION_INVALID", "Choose at least one action.", "actions")
    return tuple(a for a in ACTIONS if a in wanted)


def _name(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise PortalError("TOKEN_NAME_INVALID", "Give the token a name.", "name")
    if len(name) > MAX_NAME:
        raise PortalError(
            "TOKEN_NAME_INVALID", f"A token name is at most {MAX_NAME} characters.", "name"
        )
    return name


async def _tokens(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> list[Token]:
    rows = (await conn.execute(sa.select(api_tokens).where(where).order_by(api_tokens.c.id))).all()
    if not rows:
        return []
    scoped: dict[int, list[tuple[int, str]]] = {}
    members = await conn.execute(
        sa.select(api_token_hosts.c.token_id, hosts.c.id, hosts.c.name)
        .join(hosts, hosts.c.id == api_token_hosts.c.host_id)
        .where(api_token_hosts.c.token_id.in_([r.id for r in rows]))
        .order_by(hosts.c.name)
    )
    for member in members:
        scoped.setdefault(member.token_id, []).append((member.id, member.name))
    tokens = []
    for r in rows:
        chosen = scoped.get(r.id, [])
        tokens.append(
            Token(
                id=r.id,
                name=r.name,
                actions=tuple(a for a in ACTIONS if a in r.actions.split(",")),
                host_ids=None if r.all_hosts else tuple(i for i, _ in chosen),
                host_names=tuple(n for _, n in chosen),
                created_at=as_utc(r.created_at),
                last_used_at=as_utc(r.last_used_at),
            )
        )
    return tokens


async def list_tokens(db: Database, account: Account) -> list[Token]:
    """The account's tokens, oldest first."""
    return await db.read(lambda conn: _tokens(conn, api_tokens.c.account_id == account.id))


async def create_token(
    db: Database,
    account: Account,
    name: str,
    actions: Iterable[str],
    host_ids: Iterable[int] | None = None,
    *,
    within: Grant | None = None,
) -> CreatedToken:
    """A new token; its secret is returned once. `host_ids` None: all the account's hosts.

    `within`: the grant of the token asking (API), which the new one may not exceed.
    """
    token_name = _name(name)
    chosen_actions = parse_actions(actions)
    chosen_hosts = None if host_ids is None else sorted(set(host_ids))
    if chosen_hosts is not None and not chosen_hosts:
        raise PortalError("TOKEN_HOSTS_INVALID", "Choose at least one host.", "host_ids")
    if within is not None and not within.covers(chosen_actions, chosen_hosts):
        raise PortalError(
            "TOKEN_SCOPE", "A token cannot create a token wider than itself.", "actions"
        )
    secret = new_token()

    async def unit(txn: Txn) -> CreatedToken:
        count = await txn.conn.scalar(
            sa.select(sa.func.count())
            .select_from(api_tokens)
            .where(api_tokens.c.account_id == account.id)
        )
        if (count or 0) >= MAX_TOKENS:
            raise PortalError(
                "TOKEN_QUOTA", f"An account has at most {MAX_TOKENS} tokens; revoke one first."
            )
        if chosen_hosts is not None:
            owned = set(
                (
                    await txn.conn.scalars(
                        sa.select(hosts.c.id).where(
                            hosts.c.owner_id == account.id, hosts.c.id.in_(chosen_hosts)
                        )
                    )
                ).all()
            )
            if owned != set(chosen_hosts):
                raise PortalError("TOKEN_HOSTS_INVALID", "Choose among your own hosts.", "host_ids")
        token_id = (
            await txn.conn.execute(
                sa.insert(api_tokens)
                .values(
                    account_id=account.id,
                    name=token_name,
                    token_hash=hash_secret(secret),
                    actions=",".join(chosen_actions),
                    all_hosts=chosen_hosts is None,
                    created_at=txn.now,
                )
                .returning(api_tokens.c.id)
            )
        ).scalar_one()
        if chosen_hosts:
            await txn.conn.execute(
                sa.insert(api_token_hosts),
                [{"token_id": token_id, "host_id": h} for h in chosen_hosts],
            )
        (token,) = await _tokens(txn.conn, api_tokens.c.id == token_id)
        return CreatedToken(token, secret)

    return await db.write(unit)


async def revoke_token(db: Database, account: Account, token_id: int) -> str:
    """Delete one of the account's tokens (it stops working at the commit); its name."""

    async def unit(txn: Txn) -> str:
        name = await txn.conn.scalar(
            sa.select(api_tokens.c.name).where(
                api_tokens.c.id == token_id, api_tokens.c.account_id == account.id
            )
        )
        if name is None:
            raise NotFound("no such token")
        await txn.conn.execute(sa.delete(api_tokens).where(api_tokens.c.id == token_id))
        return str(name)

    return await db.write(unit)


async def revoke_all(conn: AsyncConnection, account_id: int) -> int:
    """Delete every token of the account in the caller's transaction; how many there were."""
    result = await conn.execute(sa.delete(api_tokens).where(api_tokens.c.account_id == account_id))
    return max(result.rowcount or 0, 0)


async def authenticate(db: Database, secret: str) -> Grant | None:
    """The grant of a presented token, or None (unknown, revoked, or its account disabled)."""
    if not secret.startswith(PREFIX) or len(secret) > 128:
        return None
    digest = hash_secret(secret)

    async def query(conn: AsyncConnection) -> tuple[Grant, datetime | None] | None:
        # The lookup is by SHA-256 of a 256-bit random token: nothing to learn from timing.
        row = (
            await conn.execute(
                sa.select(
                    api_tokens.c.id,
                    api_tokens.c.actions,
                    api_tokens.c.all_hosts,
                    api_tokens.c.last_used_at,
                    accounts.c.id.label("account_id"),
                    accounts.c.user_id,
                    accounts.c.email,
                    accounts.c.role,
                    accounts.c.status,
                    accounts.c.plan_id,
                )
                .join(accounts, accounts.c.id == api_tokens.c.account_id)
                .where(api_tokens.c.token_hash == digest)
            )
        ).first()
        if row is None or row.status != "active":
            return None
        host_ids: frozenset[int] | None = None
        if not row.all_hosts:
            host_ids = frozenset(
                (
                    await conn.scalars(
                        sa.select(api_token_hosts.c.host_id).where(
                            api_token_hosts.c.token_id == row.id
                        )
                    )
                ).all()
            )
        account = Account(row.account_id, row.user_id, row.email, row.role, row.status, row.plan_id)
        grant = Grant(account, row.id, frozenset(row.actions.split(",")), host_ids)
        return grant, as_utc(row.last_used_at)

    found = await db.read(query)
    if found is None:
        return None
    grant, last_used = found
    # "Last used" to the minute is enough for the list, and spares a write per request.
    if last_used is None or now() - last_used > TOUCH_EVERY:
        await db.write(
            lambda txn: txn.conn.execute(
                sa.update(api_tokens)
                .where(api_tokens.c.id == grant.token_id)
                .values(last_used_at=txn.now)
            )
        )
    return grant
