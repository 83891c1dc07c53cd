"""The API's ACME challenge endpoints: a host's `_acme-challenge` TXT values, set and deleted
with a token that has the host's `acme` action (and may then do nothing else)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from homing.service import acmedns, challenges
from homing.service.context import Homing
from homing.web.api.auth import Authorized, need
from homing.web.api.errors import THROTTLED, ApiError, errors, missing_as

VALUE = r"^[!#-\[\]-~]+$"  # printable ASCII but space, quote and backslash (as txt_rdata)
HostName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The host's name, or its challenge name _acme-challenge.<host>",
        examples=["cam1.dyn.example.net"],
    ),
]


class ChallengeIn(BaseModel):
    value: str = Field(
        min_length=1,
        max_length=challenges.MAX_VALUE,
        description="The TXT value the ACME server asked for (its key authorisation digest)",
        examples=["LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"],
    )


class DelegationIn(BaseModel):
    fulldomain: str = Field(
        min_length=1,
        max_length=253,
        description="An acme-dns registration's fulldomain (from POST /register)",
    )


class DelegationOut(BaseModel):
    name: str = Field(description="_acme-challenge.<host>")
    target: str | None = Field(description="Where its CNAME points; null: no delegation")


class ChallengeOut(BaseModel):
    host: str
    name: str = Field(description="The TXT record's name, _acme-challenge.<host>")
    values: list[str] = Field(description="The values now published, sorted")
    changed: bool


def challenge_routes(homing: Homing) -> APIRouter:
    router = APIRouter(tags=["acme"], responses=THROTTLED)

    async def host_of(name: str, grant: Authorized) -> int:
        with missing_as("HOST_NOT_FOUND"):
            host_id = await challenges.owned_host(homing.db, grant.account.id, name)
        need(grant, "acme", host_id)
        return host_id

    def out(found: challenges.Challenge) -> ChallengeOut:
        return ChallengeOut(
            host=found.host, name=found.name, values=list(found.values), changed=found.changed
        )

    async def run(
        name: str, grant: Authorized, add: str | None, remove: str | None, clear: bool
    ) -> ChallengeOut:
        host_id = await host_of(name, grant)
        actor = f"token:{grant.token_id}"
        try:
            if add is not None:
                return out(await challenges.set_value(homing.db, host_id, add, actor=actor))
            if clear:
                return out(await challenges.delete_value(homing.db, host_id, None, actor=actor))
            return out(await challenges.delete_value(homing.db, host_id, remove, actor=actor))
        except challenges.ChallengeRefused as exc:
            raise ApiError(
                exc.code, str(exc), "value" if "VALUE_INVALID" in exc.code else None
            ) from exc

    @router.get(
        "/acme/{name}",
        response_model=ChallengeOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="The host's ACME challenge values",
    )
    async def get_challenge(name: HostName, grant: Authorized) -> ChallengeOut:
        host_id = await host_of(name, grant)
        return out(await challenges.values_of(homing.db, host_id))

    @router.post(
        "/acme/{name}",
        response_model=ChallengeOut,
        responses=errors(400, 401, 403, 404, 409, 422, 503),
        summary="Add a value to the host's ACME challenge (_acme-challenge TXT)",
    )
    async def add_challenge(name: HostName, body: ChallengeIn, grant: Authorized) -> ChallengeOut:
        return await run(name, grant, body.value, None, False)

    @router.delete(
        "/acme/{name}",
        response_model=ChallengeOut,
        responses=errors(400, 401, 403, 404, 409, 422, 503),
        summary="Delete one value of the host's ACME challenge, or (no value) all of them",
    )
    async def delete_challenge(
        name: HostName,
        grant: Authorized,
        value: Annotated[
            str | None, Query(min_length=1, max_length=challenges.MAX_VALUE, pattern=VALUE)
        ] = None,
    ) -> ChallengeOut:
        return await run(name, grant, None, value, value is None)

    async def delegation(name: str, grant: Authorized, fulldomain: str | None) -> DelegationOut:
        zone = homing.settings.acme_dns_zone
        if not zone:
            raise ApiError("NOT_FOUND", "This service offers no acme-dns API.")
        host_id = await host_of(name, grant)
        try:
            target = await acmedns.delegate(
                homing.db,
                host_id,
                fulldomain,
                zone.lower().rstrip("."),
                actor=f"token:{grant.token_id}",
            )
        except acmedns.AcmeDnsError as exc:
            code = "ACME_DELEGATION_CONFLICT" if exc.status == 409 else "ACME_DELEGATION_INVALID"
            raise ApiError(code, str(exc), "fulldomain" if exc.status == 422 else None) from exc
        host = await challenges.values_of(homing.db, host_id)
        return DelegationOut(name=host.name, target=target)

    @router.put(
        "/acme/{name}/delegation",
        response_model=DelegationOut,
        responses=errors(400, 401, 403, 404, 409, 422, 503),
        summary="Delegate the host's ACME challenge to an acme-dns registration (CNAME)",
    )
    async def put_delegation(
        name: HostName, body: DelegationIn, grant: Authorized
    ) -> DelegationOut:
        return await delegation(name, grant, body.fulldomain)

    @router.delete(
        "/acme/{name}/delegation",
        response_model=DelegationOut,
        responses=errors(401, 403, 404, 503),
        summary="Remove the host's acme-dns delegation",
    )
    async def delete_delegation(name: HostName, grant: Authorized) -> DelegationOut:
        return await delegation(name, grant, None)

    return router
