"""/tokens: the account's personal API tokens, each no wider than the one that makes it."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from homing.service import tokens
from homing.service.context import Homing
from homing.web.api.auth import Authorized, need
from homing.web.api.errors import THROTTLED, errors, missing_as
from homing.web.api.ids import DatabaseId, TokenId

Action = Literal["read", "update", "manage", "acme"]


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["backup script"])
    actions: list[Action] = Field(
        min_length=1,
        max_length=3,
        description="read: list hosts and history; update: set addresses; "
        "manage: create and delete hosts, new secrets, tokens",
        examples=[["update"]],
    )
    host_ids: list[DatabaseId] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Only these hosts (null or absent: all of the account's hosts)",
    )


class TokenOut(BaseModel):
    id: int
    name: str
    actions: list[str]
    host_ids: list[int] | None = Field(description="null: all of the account's hosts")
    host_names: list[str]
    created_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: tokens.Token) -> TokenOut:
        return cls(
            id=token.id,
            name=token.name,
            actions=list(token.actions),
            host_ids=None if token.host_ids is None else list(token.host_ids),
            host_names=list(token.host_names),
            created_at=token.created_at,
            last_used_at=token.last_used_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself, shown this once; only its SHA-256 is kept")


def token_routes(homing: Homing) -> APIRouter:
    router = APIRouter(responses=THROTTLED)

    @router.get(
        "/tokens",
        response_model=list[TokenOut],
        responses=errors(401, 403, 503),
        summary="The account's API tokens (never their secrets)",
    )
    async def list_tokens(grant: Authorized) -> list[TokenOut]:
        need(grant, "manage")
        return [TokenOut.of(t) for t in await tokens.list_tokens(homing.db, grant.account)]

    @router.post(
        "/tokens",
        status_code=201,
        response_model=TokenCreated,
        responses=errors(400, 401, 403, 409, 422, 503),
        summary="Create a token no wider than this one (shown once)",
    )
    async def create_token(body: TokenIn, grant: Authorized) -> TokenCreated:
        need(grant, "manage")
        created = await tokens.create_token(
            homing.db, grant.account, body.name, body.actions, body.host_ids, within=grant
        )
        return TokenCreated(**TokenOut.of(created.token).model_dump(), token=created.secret)

    @router.delete(
        "/tokens/{token_id}",
        status_code=204,
        response_class=Response,
        responses=errors(401, 403, 404, 422, 503),
        summary="Revoke a token",
    )
    async def revoke_token(token_id: TokenId, grant: Authorized) -> Response:
        need(grant, "manage")
        with missing_as("TOKEN_NOT_FOUND"):
            await tokens.revoke_token(homing.db, grant.account, token_id)
        return Response(status_code=204)

    return router
