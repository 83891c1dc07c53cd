"""`homing user|host|group`: accounts, their hosts and groups, listed, added, deleted."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from homing.cli import JsonOption, fail, group_app, host_app, run_with_store, user_app
from homing.service import accounts, hosts, inventory, prefixes
from homing.service.context import Homing

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    typer.echo("\t".join(header))
    for row in rows:
        typer.echo("\t".join("" if v is None else str(v) for v in row))


def _json(rows: Sequence[object]) -> None:
    typer.echo(json.dumps([inventory.as_json(r) for r in rows], indent=2))


@user_app.command("add")
def user_add(
    user: str,
    email: Annotated[str, typer.Option(help="The account's email address")],
    password_stdin: PasswordStdin = False,
    admin: Annotated[bool, typer.Option("--admin", help="Make an operator account")] = False,
) -> None:
    """Add an account; its password is asked twice at a terminal, or read with --password-stdin."""
    password = read_password(password_stdin)
    account = run_with_store(
        lambda h: accounts.create_account(
            h.db, user, email, password, role="admin" if admin else "user"
        )
    )
    typer.echo(f"user {account.user_id} added")


@host_app.command("add")
def host_add(
    fqdn: str,
    owner: Annotated[str, typer.Option(help="The owning user")],
    ttl: Annotated[int, typer.Option(help="TTL of the host's records")] = 60,
    prefix_of: Annotated[
        str | None,
        typer.Option("--prefix-of", help="Its AAAA follows this router's IPv6 prefix"),
    ] = None,
    iid: Annotated[
        str | None, typer.Option("--iid", help="Interface id on that prefix, e.g. ::1234:56ff:fe9a")
    ] = None,
) -> None:
    """Add a host; prints its update secret alone on the last line (shown once)."""
    if (prefix_of is None) != (iid is None):
        fail("--prefix-of and --iid go together")

    async def add(h: Homing) -> hosts.Created:
        if prefix_of is not None and iid is not None:
            await prefixes.check_prefix_host(h.db, owner, prefix_of, iid)
        created = await hosts.add_host(h.db, fqdn, owner, ttl=ttl, enforce_quota=False)
        if prefix_of is not None and iid is not None:
            await prefixes.set_prefix_host(
                h.db, created.name, prefix_of, iid, actor="operator", via="cli"
            )
        return created

    created = run_with_store(add)
    typer.echo(f"host {created.name} added; its update secret (shown once):")
    typer.echo(created.secret)


@group_app.command("add")
def group_add(
    name: str,
    owner: Annotated[str, typer.Option(help="The owning user")],
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Member host (repeatable)")
    ] = None,
) -> None:
    """Add a group of hosts; prints its update secret alone on the last line (shown once)."""
    created = run_with_store(
        lambda h: hosts.add_group(
            h.db,
            name,
            owner,
            host or [],
            enforce_quota=False,
            max_age=h.settings.group_member_max_age,
        )
    )
    typer.echo(f"group {created.name} added; its update secret (shown once):")
    typer.echo(created.secret)


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
    password_stdin: PasswordStdin = False,
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
