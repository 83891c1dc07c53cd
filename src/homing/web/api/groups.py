"""/groups: names that publish the addresses of several hosts. Groups span hosts, so every
group operation needs its action on all of the account's hosts."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from homing.service import groupcare, tokens
from homing.service.context import Homing
from homing.web.api.auth import Authorized, need
from homing.web.api.errors import THROTTLED, errors, existing, missing_as
from homing.web.api.hosts import HostRef, HostSecret
from homing.web.api.ids import DatabaseId, GroupId, HostId


class GroupIn(BaseModel):
    label: str = Field(
        max_length=253,
        description="With a zone: one label. Without: a full name with a dot outside our zones",
        examples=["office"],
    )
    zone: str = Field(
        default="",
        max_length=255,
        description="One of GET /zones to publish the group there; empty: not published",
    )
    members: list[DatabaseId] = Field(default=[], max_length=100, description="Host ids")


class GroupOut(BaseModel):
    id: int
    name: str
    zone: str | None = Field(description="null: not published")
    members: list[HostRef]
    addresses: list[str] = Field(description="What the published name answers now")

    @classmethod
    def of(cls, group: groupcare.GroupView) -> GroupOut:
        return cls(
            id=group.id,
            name=group.name,
            zone=group.zone,
            members=[HostRef(id=m.id, name=m.name) for m in group.members],
            addresses=list(group.addresses),
        )


def group_routes(homing: Homing) -> APIRouter:
    router = APIRouter(responses=THROTTLED)

    @router.get(
        "/groups",
        response_model=list[GroupOut],
        responses=errors(401, 403, 503),
        summary="The account's groups with members and published addresses",
    )
    async def list_groups(grant: Authorized) -> list[GroupOut]:
        need(grant, "read")
        return [GroupOut.of(g) for g in await groupcare.list_groups(homing.db, grant.account)]

    @router.post(
        "/groups",
        status_code=201,
        response_model=HostSecret,
        responses=errors(400, 401, 403, 409, 422, 503),
        summary="Create a group (its secret is shown once)",
    )
    async def create_group(body: GroupIn, grant: Authorized) -> HostSecret:
        need(grant, "manage")
        created = await groupcare.create_group(
            homing.db,
            grant.account,
            body.label,
            body.zone.strip(),
            body.members,
            group_max_age=homing.settings.group_member_max_age,
        )
        return HostSecret(id=created.id, name=created.name, secret=created.secret)

    @router.put(
        "/groups/{group_id}/members/{host_id}",
        response_model=GroupOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="Add a host to the group",
    )
    async def add_member(group_id: GroupId, host_id: HostId, grant: Authorized) -> GroupOut:
        return await set_member(group_id, host_id, grant, True)

    @router.delete(
        "/groups/{group_id}/members/{host_id}",
        response_model=GroupOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="Remove a host from the group",
    )
    async def remove_member(group_id: GroupId, host_id: HostId, grant: Authorized) -> GroupOut:
        return await set_member(group_id, host_id, grant, False)

    async def set_member(
        group_id: int, host_id: int, grant: tokens.Grant, member: bool
    ) -> GroupOut:
        need(grant, "manage")
        with missing_as("GROUP_NOT_FOUND"):
            await groupcare.set_member(
                homing.db,
                grant.account,
                group_id,
                host_id,
                member,
                group_max_age=homing.settings.group_member_max_age,
            )
        group = await groupcare.get_group(homing.db, grant.account, group_id)
        return GroupOut.of(existing(group, "GROUP_NOT_FOUND"))

    @router.post(
        "/groups/{group_id}/secret",
        response_model=HostSecret,
        responses=errors(401, 403, 404, 422, 503),
        summary="A new group secret (the old one stops working)",
    )
    async def new_group_secret(group_id: GroupId, grant: Authorized) -> HostSecret:
        need(grant, "manage")
        with missing_as("GROUP_NOT_FOUND"):
            created = await groupcare.regenerate_secret(homing.db, grant.account, group_id)
        return HostSecret(id=created.id, name=created.name, secret=created.secret)

    @router.delete(
        "/groups/{group_id}",
        status_code=204,
        response_class=Response,
        responses=errors(401, 403, 404, 422, 503),
        summary="Delete a group and its published records",
    )
    async def delete_group(group_id: GroupId, grant: Authorized) -> Response:
        need(grant, "manage")
        with missing_as("GROUP_NOT_FOUND"):
            await groupcare.delete_group(homing.db, grant.account, group_id)
        return Response(status_code=204)

    return router
