"""The operator's `list`, `delete`, `passwd` commands and the zone options shared by
`zone add` and `zone set`; registered on the apps of homing.cli."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.cli import group_app, host_app, run_with_store, user_app, zone_app
from homing.domain.errors import HomingError
from homing.domain.names import in_zone, normalize
from homing.service import inventory, zoneoptions
from homing.service.context import Homing
from homing.store.schema import zones

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON array instead of a table")]


def fail(message: str) -> None:
    typer.echo(f"homing: {message}", err=True)
    raise typer.Exit(1)


_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH"}


def plain_metavars(command: Any) -> None:
    """Help as click writes it: flags take no value, other options a word for theirs
    (typer would print its Python types: <bool>, <str>). Duck-typed: typer's click is its own."""
    for param in command.params:
        if param.metavar is not None:
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.param_type_name == "argument":
            param.metavar = (param.name or "value").upper()
            param.display_type_rich = lambda ctx: None  # its name says it
        else:
            bare = getattr(param, "bare_type", lambda: "str")()
            param.metavar = _METAVARS.get(bare, (param.name or "value").upper())
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)


def zone_options(
    ns: Sequence[str] | None,
    glue: Sequence[str] | None,
    notify: Sequence[str] | None,
    allow_transfer: Sequence[str] | None,
    *,
    public: bool | None = None,
    no_notify: bool = False,
    no_allow_transfer: bool = False,
) -> zoneoptions.ZoneOptions:
    """The options given on the command line; what was not given stays None."""
    try:
        names, addresses = zoneoptions.split_nameservers(ns or [], glue or [])
    except HomingError as exc:
        fail(str(exc))
    if no_notify and notify:
        fail("--notify and --no-notify exclude each other")
    if no_allow_transfer and allow_transfer:
        fail("--allow-transfer and --no-allow-transfer exclude each other")
    return zoneoptions.ZoneOptions(
        ns=names or None,
        glue=addresses or None,
        notify=[] if no_notify else (list(notify) if notify else None),
        allow_transfer=[]
        if no_allow_transfer
        else (list(allow_transfer) if allow_transfer else None),
        public=public,
    )


def warn_unaddressed(zone: str) -> None:
    """A name server inside its own zone with no address cannot be reached: say so."""
    for server in run_with_store(lambda h: zoneoptions.nameservers_without_address(h.db, zone)):
        typer.echo(
            f"homing: warning: name server {server} is inside the zone and has no address;"
            f" give it one: homing zone set {zone} --glue {server}=ADDRESS",
            err=True,
        )


def check_glue(zone: str, options: zoneoptions.ZoneOptions) -> None:
    """Addresses are for name servers inside the zone (others get theirs elsewhere)."""
    if not options.glue:
        return
    try:
        name = normalize(zone)
    except HomingError as exc:
        fail(str(exc))
    for server in options.glue:
        if server == name or not in_zone(server, name):
            fail(f"{server} is not a name inside zone {name}: it needs no address here")


def update_existing(
    zone: str, options: zoneoptions.ZoneOptions, fixed: Mapping[str, object]
) -> str | None:
    """`zone add --exist-ok` on a zone that exists: apply the options `zone set` can change,
    refuse those it cannot; the zone's name, or None when it does not exist yet."""

    async def exists(h: Homing) -> bool:
        return await h.db.read(lambda conn: _zone_exists(conn, normalize(zone)))

    if not run_with_store(exists):
        return None
    given = [name for name, value in fixed.items() if value not in (None, False)]
    if given:
        fail(
            f"zone {normalize(zone)} exists and {', '.join(given)} cannot change with zone add:"
            f" use homing zone set"
        )
    if options.empty():
        return normalize(zone)
    return set_options(zone, options)


async def _zone_exists(conn: AsyncConnection, name: str) -> bool:
    return await conn.scalar(sa.select(zones.c.id).where(zones.c.name == name)) is not None


def set_options(zone: str, options: zoneoptions.ZoneOptions) -> str:
    """Apply the options to an existing zone; its name."""
    ref = run_with_store(lambda h: zoneoptions.set_zone_options(h.db, zone, options))
    return ref.name


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    typer.echo("\t".join(header))
    for row in rows:
        typer.echo("\t".join("" if v is None else str(v) for v in row))


def _json(rows: Sequence[object]) -> None:
    typer.echo(json.dumps([inventory.as_json(r) for r in rows], indent=2))


@zone_app.command("delete")
def zone_delete(zone: str) -> None:
    """Delete a zone without hosts or groups, with its records, history and keys.

    Servers running now keep answering for it until they are restarted."""
    name = run_with_store(lambda h: inventory.delete_zone(h.db, zone))
    typer.echo(f"zone {name} deleted")


@host_app.command("list")
def host_list(
    owner: Annotated[str | None, typer.Option(help="Only this user's hosts")] = None,
    as_json: JsonOption = False,
) -> None:
    """The hosts: name, owner, status, addresses, last update."""
    rows = run_with_store(lambda h: inventory.list_hosts(h.db, owner))
    if as_json:
        return _json(rows)
    _table(
        ("host", "owner", "status", "addresses", "last_update"),
        [
            (r.name, r.owner, r.status, ",".join(r.addresses) or "-", r.last_update or "never")
            for r in rows
        ],
    )


@host_app.command("delete")
def host_delete(fqdn: str) -> None:
    """Delete a host: its records, its group memberships, its secret."""

    name = run_with_store(
        lambda h: inventory.delete_host(h.db, fqdn, group_max_age=h.settings.group_member_max_age)
    )
    typer.echo(f"host {name} deleted")


@user_app.command("list")
def user_list(as_json: JsonOption = False) -> None:
    """The accounts: user, email, role, status, hosts."""
    rows = run_with_store(lambda h: inventory.list_users(h.db))
    if as_json:
        return _json(rows)
    _table(
        ("user", "email", "role", "status", "hosts"),
        [(r.user, r.email, r.role, r.status, r.hosts) for r in rows],
    )


def read_password(from_stdin: bool) -> str:
    """From standard input (one line), or typed twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("give the password on standard input with --password-stdin (no terminal to ask on)")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        fail("the passwords differ")
    return first


@user_app.command("passwd")
def user_passwd(
    user: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Set an account's password (asked twice at a terminal); its portal logins end."""
    password = read_password(password_stdin)
    name = run_with_store(lambda h: inventory.set_password(h.db, user, password))
    typer.echo(f"password of {name} changed")


@group_app.command("list")
def group_list(as_json: JsonOption = False) -> None:
    """The groups: name, owner, whether its name is published, members."""
    rows = run_with_store(lambda h: inventory.list_groups(h.db))
    if as_json:
        return _json(rows)
    _table(
        ("group", "owner", "published", "members"),
        [(r.name, r.owner, "yes" if r.published else "no", ",".join(r.members)) for r in rows],
    )
