"""Update secrets (random tokens, stored as SHA-256) and account passwords (argon2id)."""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import hmac
import secrets

import argon2

_hasher = argon2.PasswordHasher()  # argon2id with the library's current parameters

# argon2 runs of this process by kind ("hash", "verify"): what the throttle must keep bounded.
argon2_runs: collections.Counter[str] = collections.Counter()


def new_secret() -> str:
    """A fresh update secret: 192 random bits, URL-safe (routers paste it into forms)."""
    return secrets.token_urlsafe(24)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """One hash and a constant-time comparison: update secrets are long random tokens."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


async def hash_password(password: str) -> str:
    """argon2id, off the event loop (it is slow on purpose)."""
    argon2_runs["hash"] += 1
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(password: str, stored_hash: str) -> bool:
    argon2_runs["verify"] += 1

    def verify() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


@functools.cache
def dummy_password_hash() -> str:
    """What a login for an unknown user is verified against, so that it is as slow as for a
    known one. Made on first use, not at import (one argon2 run that every CLI command and
    client start would pay); `serve` makes it before it listens, so no login waits for it."""
    return _hasher.hash("homing-no-such-account")
