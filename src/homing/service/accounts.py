"""Accounts: sign-up with duplicate checks, availability, operator creation, login."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import AccountError
from homing.service.secrets import dummy_password_hash, hash_password, password_matches
from homing.service.throttle import Throttle, Throttled
from homing.store.db import Database, Txn
from homing.store.schema import accounts, plans

USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MIN_PASSWORD = 10
UNVERIFIED = "unverified"  # signed up, its address not confirmed yet: cannot log in
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Account:
    id: int
    user_id: str
    email: str
    role: str
    status: str
    plan_id: int | None
    session_epoch: int = 0  # a portal session made under another epoch has ended


def user_key(user_id: str) -> str:
    return user_id.casefold()


def check_user_id(user_id: str) -> None:
    if not USER_ID.match(user_id):
        raise AccountError(
            "USER_ID_INVALID",
            "User ID must be 3 to 32 letters, digits, dots, dashes or underscores, "
            "starting with a letter or digit.",
            "user_id",
        )


def check_email(email: str) -> None:
    if len(email) > 254 or not EMAIL.match(email):
        raise AccountError("USER_EMAIL_INVALID", "That is not a valid email address.", "email")


def check_password(password: str, confirmation: str | None, user_id: str) -> None:
    if confirmation is not None and password != confirmation:
        raise AccountError(
            "PASSWORD_MISMATCH", "The password and its confirmation differ.", "password_confirm"
        )
    if len(password) < MIN_PASSWORD or len(password) > MAX_PASSWORD:
        raise AccountError(
            "PASSWORD_WEAK", f"The password needs at least {MIN_PASSWORD} characters.", "password"
        )
    if password.casefold() == user_id.casefold() or len(set(password)) < 4:
        raise AccountError("PASSWORD_WEAK", "The password is too easy to guess.", "password")


async def user_id_available(db: Database, user_id: str) -> bool:
    """The live duplicate check (case-insensitive)."""
    check_user_id(user_id)

    async def query(conn: AsyncConnection) -> bool:
        found = await conn.scalar(
            sa.select(accounts.c.id).where(accounts.c.user_key == user_key(user_id))
        )
        return found is None

    return await db.read(query)


async def create_account(
    db: Database,
    user_id: str,
    email: str,
    password: str,
    confirmation: str | None = None,
    *,
    role: str = "user",
    throttle: Throttle | None = None,
    address: str = "",
    unverified: bool = False,
) -> Account:
    """Sign-up and operator creation: every rule re-checked here, nothing half-written.

    `unverified` (signup_verify_email): the account is made UNVERIFIED, active only once
    the link mailed to it is followed (service/verification.py).

    With a throttle (the sign-up doors): Throttled when the source prefix has signed up
    too often; an attempt the rules refuse costs nothing, one that is hashed counts.
    """
    user_id = user_id.strip()
    email = email.strip()
    check_user_id(user_id)
    check_email(email)
    check_password(password, confirmation, user_id)
    if throttle is not None:
        await throttle.reserve(throttle.signup(address))
    password_hash = await hash_password(password)

    async def unit(txn: Txn) -> Account:
        conn = txn.conn
        if await conn.scalar(
            sa.select(accounts.c.id).where(accounts.c.user_key == user_key(user_id))
        ):
            raise AccountError("USER_ID_DUPLICATE", "That user ID is already taken.", "user_id")
        if await conn.scalar(
            sa.select(accounts.c.id).where(accounts.c.email_key == email.casefold())
        ):
            raise AccountError(
                "USER_EMAIL_DUPLICATE", "An account with that email already exists.", "email"
            )
        plan_id = await conn.scalar(sa.select(plans.c.id).where(plans.c.is_default.is_(True)))
        try:
            new_id = (
                await conn.execute(
                    sa.insert(accounts)
                    .values(
                        user_id=user_id,
                        user_key=user_key(user_id),
                        email=email,
                        email_key=email.casefold(),
                        password_hash=password_hash,
                        role=role,
                        plan_id=plan_id,
                        status=UNVERIFIED if unverified else "active",
                        created_at=txn.now,
                    )
                    .returning(accounts.c.id)
                )
            ).scalar_one()
        except sa.exc.IntegrityError as exc:  # a concurrent sign-up won the race
            raise AccountError(
                "USER_ID_DUPLICATE", "That user ID is already taken.", "user_id"
            ) from exc
        return Account(
            new_id, user_id, email, role, UNVERIFIED if unverified else "active", plan_id
        )

    return await db.write(unit)


def account_of(row: sa.Row[tuple[object, ...]]) -> Account:
    return Account(
        row.id,
        row.user_id,
        row.email,
        row.role,
        row.status,
        row.plan_id,
        row.session_epoch,
    )


async def find_account(conn: AsyncConnection, user_id: str) -> Account | None:
    row = (
        await conn.execute(sa.select(accounts).where(accounts.c.user_key == user_key(user_id)))
    ).first()
    return None if row is None else account_of(row)


async def authenticate(
    db: Database,
    user_id: str,
    password: str,
    *,
    throttle: Throttle | None = None,
    address: str = "",
) -> Account | None:
    """The active account whose password matches, else None (equally slow either way).

    With a throttle (every door facing the network): Throttled, before any hashing, when
    the source, the account from that source or the account has failed too often; a
    password verified recently for the same stored hash is taken without argon2.
    """
    user_id = user_id.strip()
    if throttle is not None:
        await throttle.check_source(address)
        if not USER_ID.match(user_id) or len(password) > MAX_PASSWORD:
            # No account can have this user ID: nothing to hash, but a failure all the same.
            await throttle.failed(throttle.source(address))
            return None
    key = user_key(user_id)
    charges = [] if throttle is None else throttle.account(key, address)

    async def query(conn: AsyncConnection) -> tuple[Account | None, str, float]:
        # The keys' lock is read with the account: a remembered password passes no lock.
        wait = 0.0 if throttle is None else await throttle.wait_of(conn, charges)
        row = (await conn.execute(sa.select(accounts).where(accounts.c.user_key == key))).first()
        if row is None:
            return None, dummy_password_hash(), wait
        return account_of(row), row.password_hash, wait

    account, stored, wait = await db.read(query)
    if throttle is None:
        matches = await password_matches(password, stored)
    elif wait > 0:
        raise Throttled(wait)
    elif account is not None and throttle.remembered.known(key, password, stored):
        matches = True
    else:
        await throttle.reserve(charges)
        matches = await password_matches(password, stored)
        if matches and account is not None:
            await throttle.refund(charges)
            throttle.remembered.remember(key, password, stored)
    if not matches or account is None:
        return None
    return account if account.status == "active" else None
