"""/zones and /hosts: the zones offered, a token's hosts, their addresses, secrets, history
and prefix set-up."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from homing.domain.errors import Conflict, InvalidAddress, InvalidName, NotFound
from homing.service import hostcare, portal, prefixes, tokens
from homing.service.context import Homing
from homing.web.api.auth import Authorized, need, source_of
from homing.web.api.errors import THROTTLED, ApiError, errors, existing, missing_as
from homing.web.api.ids import HostId


class DvrStatus(BaseModel):
    code: str = Field(description="ACT, ERR 0x8000800N, or — before the first update")
    meaning: str
    ok: bool | None


class HostOut(BaseModel):
    id: int
    name: str
    zone: str
    addresses: list[str] = Field(description="IPv4 first, then IPv6")
    status: str = Field(description="active, blocked or disabled")
    dvr_status: DvrStatus
    last_update_at: datetime | None
    last_client_ip: str | None
    last_via: str | None
    last_agent: str | None

    @classmethod
    def of(cls, host: portal.HostView) -> HostOut:
        return cls(
            id=host.id,
            name=host.name,
            zone=host.zone,
            addresses=list(host.addresses),
            status=host.status,
            dvr_status=DvrStatus(
                code=host.display.code, meaning=host.display.meaning, ok=host.display.ok
            ),
            last_update_at=host.last_update_at,
            last_client_ip=host.last_client_ip,
            last_via=host.last_via,
            last_agent=host.last_agent,
        )


class HostRef(BaseModel):
    id: int
    name: str


class PrefixIn(BaseModel):
    router: str = Field(
        max_length=255,
        description="Another of your hosts, whose updates carry its IPv6 prefix",
        examples=["router.dyn.example.net"],
    )
    iid: str = Field(
        max_length=64,
        description="The interface id on that prefix, in IPv6 form",
        examples=["::1234:56ff:fe78:9abc"],
    )


class PrefixOut(BaseModel):
    router: str
    iid: str
    address: str | None = Field(description="The AAAA the router's last prefix gives, or null")


class HostIn(BaseModel):
    label: str = Field(max_length=255, description="One label, e.g. cam", examples=["cam"])
    zone: str = Field(max_length=255, description="One of GET /zones", examples=["dyn.example.net"])
    prefix: PrefixIn | None = Field(
        default=None, description="Make it a prefix host: its AAAA follows the router's prefix"
    )


class HostSecret(BaseModel):
    id: int
    name: str
    secret: str = Field(description="The update secret, shown this once")


class AddressIn(BaseModel):
    ipv4: str = Field(default="", max_length=64, description="Empty or absent: no A record")
    ipv6: str = Field(default="", max_length=64, description="Empty or absent: no AAAA record")


class AddressOut(BaseModel):
    name: str
    changed: bool
    addresses: list[str]


class HistoryEntryOut(BaseModel):
    at: datetime | None
    serial: int
    rtype: str
    old: list[str]
    new: list[str]
    actor: str
    via: str
    challenge: bool = Field(
        default=False, description="At the host's _acme-challenge name, not the host's own"
    )


class HistoryOut(BaseModel):
    entries: list[HistoryEntryOut]
    page: int
    has_next: bool


@contextlib.contextmanager
def prefix_refusals() -> Iterator[None]:
    """A refused prefix set-up as the API's error (the message names the rule)."""
    try:
        yield
    except (InvalidAddress, NotFound, Conflict, InvalidName) as exc:
        raise ApiError("PREFIX_HOST_INVALID", str(exc), "prefix") from exc


def host_routes(homing: Homing) -> APIRouter:
    router = APIRouter(responses=THROTTLED)
    db = homing.db

    @router.get("/zones", response_model=list[str], responses=errors(503), summary="Zones offered")
    async def list_zones() -> list[str]:
        return await portal.offered_zones(db)

    @router.get(
        "/hosts",
        response_model=list[HostOut],
        responses=errors(401, 403, 503),
        summary="The token's hosts with addresses and DVR status",
    )
    async def list_hosts(grant: Authorized) -> list[HostOut]:
        if "read" not in grant.actions:
            need(grant, "read")
        board = await portal.dashboard(db, grant.account)
        return [HostOut.of(h) for h in board.hosts if grant.allows("read", h.id)]

    @router.post(
        "/hosts",
        status_code=201,
        response_model=HostSecret,
        responses=errors(400, 401, 403, 409, 422, 503),
        summary="Create a host (its secret is shown once)",
    )
    async def create_host(body: HostIn, grant: Authorized) -> HostSecret:
        need(grant, "manage")
        if body.prefix is not None:
            with prefix_refusals():
                await prefixes.check_prefix_host(
                    db, grant.account.user_id, body.prefix.router, body.prefix.iid
                )
        created = await portal.create_host(db, grant.account, body.label, body.zone)
        if body.prefix is not None:
            with prefix_refusals():
                await set_prefix(created.name, body.prefix, grant)
        return HostSecret(id=created.id, name=created.name, secret=created.secret)

    async def set_prefix(name: str, body: PrefixIn, grant: tokens.Grant) -> PrefixOut:
        actor = f"user:{grant.account.user_id}"
        made = await prefixes.set_prefix_host(
            db, name, body.router, body.iid, actor=actor, via="api"
        )
        return PrefixOut(router=made.router, iid=made.iid, address=made.address)

    @router.put(
        "/hosts/{host_id}/prefix",
        response_model=PrefixOut,
        responses=errors(400, 401, 403, 404, 422, 503),
        summary="Make the host a prefix host of another of your hosts (its router)",
    )
    async def put_prefix(host_id: HostId, body: PrefixIn, grant: Authorized) -> PrefixOut:
        need(grant, "manage", host_id)
        host = existing(await portal.get_host(db, grant.account, host_id), "HOST_NOT_FOUND")
        with prefix_refusals():
            return await set_prefix(host.name, body, grant)

    @router.get(
        "/hosts/{host_id}/prefix",
        response_model=PrefixOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="The host's prefix set-up (404 when it follows no prefix)",
    )
    async def get_prefix(host_id: HostId, grant: Authorized) -> PrefixOut:
        need(grant, "read", host_id)
        host = await portal.get_host(db, grant.account, host_id)
        found = None if host is None else await prefixes.prefix_host_of(db, host_id)
        if found is None:
            raise ApiError("NOT_FOUND", "The host follows no prefix.")
        return PrefixOut(router=found.router, iid=found.iid, address=found.address)

    @router.delete(
        "/hosts/{host_id}/prefix",
        status_code=204,
        response_class=Response,
        responses=errors(401, 403, 404, 422, 503),
        summary="The host no longer follows a prefix (its AAAA stays until changed)",
    )
    async def delete_prefix(host_id: HostId, grant: Authorized) -> Response:
        need(grant, "manage", host_id)
        host = existing(await portal.get_host(db, grant.account, host_id), "HOST_NOT_FOUND")
        await prefixes.clear_prefix_host(db, host.name)
        return Response(status_code=204)

    @router.get(
        "/hosts/{host_id}",
        response_model=HostOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="One host",
    )
    async def get_host(host_id: HostId, grant: Authorized) -> HostOut:
        need(grant, "read", host_id)
        host = existing(await portal.get_host(db, grant.account, host_id), "HOST_NOT_FOUND")
        return HostOut.of(host)

    @router.delete(
        "/hosts/{host_id}",
        status_code=204,
        response_class=Response,
        responses=errors(401, 403, 404, 422, 503),
        summary="Delete a host and its records",
    )
    async def delete_host(host_id: HostId, grant: Authorized) -> Response:
        need(grant, "manage", host_id)
        with missing_as("HOST_NOT_FOUND"):
            await portal.delete_host(
                db, grant.account, host_id, group_max_age=homing.settings.group_member_max_age
            )
        return Response(status_code=204)

    @router.put(
        "/hosts/{host_id}/addresses",
        response_model=AddressOut,
        responses=errors(400, 401, 403, 404, 409, 422, 429, 503),
        summary="Set the host's addresses by hand",
    )
    async def set_addresses(
        host_id: HostId, body: AddressIn, grant: Authorized, request: Request
    ) -> AddressOut:
        need(grant, "update", host_id)
        with missing_as("HOST_NOT_FOUND"):
            result = await hostcare.set_addresses(
                db,
                grant.account,
                host_id,
                body.ipv4,
                body.ipv6,
                client_ip=source_of(request),
                group_max_age=homing.settings.group_member_max_age,
                allow_local=homing.policy.allow_local_addresses,
            )
        return AddressOut(
            name=result.name, changed=result.changed, addresses=list(result.addresses)
        )

    @router.post(
        "/hosts/{host_id}/secret",
        response_model=HostSecret,
        responses=errors(401, 403, 404, 422, 503),
        summary="A new update secret (the old one stops working)",
    )
    async def new_secret(host_id: HostId, grant: Authorized) -> HostSecret:
        need(grant, "manage", host_id)
        with missing_as("HOST_NOT_FOUND"):
            created = await hostcare.regenerate_secret(db, grant.account, host_id)
        return HostSecret(id=created.id, name=created.name, secret=created.secret)

    @router.get(
        "/hosts/{host_id}/history",
        response_model=HistoryOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="The host's record changes, newest first",
    )
    async def host_history(
        host_id: HostId,
        grant: Authorized,
        page: Annotated[int, Query(ge=1, le=hostcare.MAX_HISTORY_PAGE)] = 1,
    ) -> HistoryOut:
        need(grant, "read", host_id)
        with missing_as("HOST_NOT_FOUND"):
            found = await hostcare.history(db, grant.account, host_id, page)
        entries = [
            HistoryEntryOut(
                at=e.at,
                serial=e.serial,
                rtype=e.rtype,
                old=list(e.old),
                new=list(e.new),
                actor=e.actor,
                via=e.via,
                challenge=e.challenge,
            )
            for e in found.entries
        ]
        return HistoryOut(entries=entries, page=found.page, has_next=found.has_next)

    return router
