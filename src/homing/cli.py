"""The `homing` command. Every command migrates a fresh store itself and fails with one line."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from homing.client.cli import client_app
from homing.config import Settings, load
from homing.domain.errors import AccountError, HomingError
from homing.service import (
    accounts,
    admin,
    checks,
    hosts,
    imports,
    keys,
    prefixes,
    reverse,
    zoneoptions,
    zones,
)
from homing.service.context import Homing

T = TypeVar("T")

app = typer.Typer(
    help="homing: a self-hostable dynamic DNS provider and update client.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
zone_app = typer.Typer(help="Zones offered to users.", no_args_is_help=True)
user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
host_app = typer.Typer(help="Hosts.", no_args_is_help=True)
group_app = typer.Typer(help="Groups of hosts.", no_args_is_help=True)
app.add_typer(zone_app, name="zone")
app.add_typer(user_app, name="user")
app.add_typer(host_app, name="host")
app.add_typer(group_app, name="group")
key_app = typer.Typer(
    help="TSIG keys for RFC 2136 updates and zone transfers.", no_args_is_help=True
)
app.add_typer(key_app, name="key")
app.add_typer(client_app, name="client")


def fail(message: str) -> None:
    typer.echo(f"homing: {message}", err=True)
    raise typer.Exit(1)


def settings() -> Settings:
    from homing import settingscheck

    try:
        loaded = load()
        settingscheck.check(loaded)
        return loaded
    except Exception as exc:  # pydantic's message is long: name each setting and value
        fail(f"bad settings: {settingscheck.describe(exc)}")
        raise


def run_with_store(work: Callable[[Homing], Awaitable[T]]) -> T:
    """Migrate, run one use case, close; domain errors become a one-line failure."""
    homing = Homing.from_settings(settings())

    async def main() -> T:
        try:
            await homing.db.migrate()
            return await work(homing)
        finally:
            await homing.db.close()

    try:
        return asyncio.run(main())
    except AccountError as exc:
        fail(f"{exc} ({exc.code})")
    except HomingError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


@app.command()
def serve(
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Processes sharing the ports (SO_REUSEPORT)")
    ] = 1,
) -> None:
    """Serve DNS and HTTP (migrates the store first)."""
    from homing.logs import configure
    from homing.serve import run
    from homing.workers import supervise, worker_index

    config = settings()
    configure(config.log_format)
    if workers > 1 and worker_index() is None:
        run_with_store(lambda h: h.db.migrate())  # once, before the workers start
        ready = f"READY dns={config.dns_listen} http={config.http_listen} workers={workers}"
        raise typer.Exit(supervise(workers, ready))
    homing = Homing.from_settings(config)
    try:
        run(homing)
    except HomingError as exc:
        fail(str(exc))
    except OSError as exc:
        from homing.settingscheck import listen_failure

        fail(listen_failure(exc, config))


@app.command()
def migrate() -> None:
    """Bring the store's schema up to date."""

    async def work(_homing: Homing) -> None:
        return None

    run_with_store(work)
    typer.echo("store is up to date")


@app.command()
def check() -> None:
    """Find stored rows DNS cannot serve: one line each, exit 1 if there are any."""
    found = run_with_store(lambda h: checks.unservable_rows(h.db))
    for row in found:
        typer.echo(row.to_text())
    if found:
        typer.echo(f"homing: {len(found)} unservable rows (DNS skips them)", err=True)
        raise typer.Exit(1)
    typer.echo("no unservable rows")


@zone_app.command("add")
def zone_add(
    zone: str,
    ns: Annotated[
        list[str] | None,
        typer.Option(
            "--ns",
            metavar="NAME[=ADDRESS]",
            help="Name server (repeatable); one inside the zone needs its ADDRESS",
        ),
    ] = None,
    glue: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME=ADDRESS", help="Address of an in-zone name server (repeatable)"),
    ] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option(metavar="ADDRESS:PORT", help="Secondary to NOTIFY (repeatable)"),
    ] = None,
    allow_transfer: Annotated[
        list[str] | None,
        typer.Option(metavar="CIDR", help="Address or network allowed to transfer (repeatable)"),
    ] = None,
    rname: Annotated[
        str | None, typer.Option(help="SOA contact, e.g. hostmaster.example.net")
    ] = None,
    ttl: Annotated[
        int | None, typer.Option(help="Default TTL and negative-caching TTL [default: 60]")
    ] = None,
    private: Annotated[
        bool, typer.Option("--private", help="Not offered to sign-up users")
    ] = False,
    exist_ok: Annotated[
        bool, typer.Option("--exist-ok", help="Succeed if the zone exists")
    ] = False,
    push: Annotated[
        str | None, typer.Option(help="Hidden primary: push changes to this HOST:PORT")
    ] = None,
    push_key: Annotated[
        str | None, typer.Option(help="The TSIG key (homing key add) that signs the pushes")
    ] = None,
    primary: Annotated[
        str | None,
        typer.Option(help="A secondary zone: transferred from this primary, HOST:PORT"),
    ] = None,
    primary_key: Annotated[
        str | None, typer.Option(help="The TSIG key (homing key add) of the transfers")
    ] = None,
    auto_ptr: Annotated[
        bool,
        typer.Option(
            "--auto-ptr", help="A reverse zone: every host address inside it gets a PTR to the host"
        ),
    ] = False,
) -> None:
    """Add a zone served here (with --primary: a secondary zone, pulled, not edited here).

    Reverse zones: 2.0.192.in-addr.arpa, 0-63.2.0.192.in-addr.arpa (RFC 2317 classless),
    8.b.d.0.1.0.0.2.ip6.arpa."""
    options = cli_manage.zone_options(ns, glue, notify, allow_transfer)
    cli_manage.check_glue(zone, options)
    if exist_ok:
        fixed = {"--rname": rname, "--ttl": ttl, "--push": push, "--primary": primary}
        fixed.update({"--auto-ptr": auto_ptr, "--private": private})
        existing = cli_manage.update_existing(zone, options, fixed)
        if existing is not None:
            typer.echo(f"zone {existing} ready")
            cli_manage.warn_unaddressed(existing)
            return
    ref = run_with_store(
        lambda h: zones.add_zone(
            h.db,
            zone,
            ns=options.ns,
            rname=rname or h.settings.soa_rname,
            notify=notify,
            allow_transfer=allow_transfer,
            ttl=ttl or h.settings.default_ttl,
            public=not private,
            exist_ok=exist_ok,
            push=push,
            push_key=push_key,
            primary=primary,
            primary_key=primary_key,
            auto_ptr=auto_ptr,
        )
    )
    if options.glue:
        cli_manage.set_options(ref.name, zoneoptions.ZoneOptions(glue=options.glue))
    if primary is not None:
        typer.echo(f"zone {ref.name} ready: a secondary of {primary}")
    else:
        typer.echo(f"zone {ref.name} ready")
        cli_manage.warn_unaddressed(ref.name)


@zone_app.command("set")
def zone_set(
    zone: str,
    ns: Annotated[
        list[str] | None,
        typer.Option(
            "--ns", metavar="NAME[=ADDRESS]", help="The name servers, all of them (repeatable)"
        ),
    ] = None,
    glue: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME=ADDRESS", help="Address of an in-zone name server (repeatable)"),
    ] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option(metavar="ADDRESS:PORT", help="The secondaries to NOTIFY, all of them"),
    ] = None,
    no_notify: Annotated[bool, typer.Option("--no-notify", help="Notify no secondary")] = False,
    allow_transfer: Annotated[
        list[str] | None,
        typer.Option(metavar="CIDR", help="Who may transfer without a key, all of them"),
    ] = None,
    no_allow_transfer: Annotated[
        bool, typer.Option("--no-allow-transfer", help="Transfers only with a key")
    ] = False,
    offered: Annotated[
        bool | None,
        typer.Option("--offered/--private", help="Offered to sign-up users, or not"),
    ] = None,
    push: Annotated[
        str | None, typer.Option(help="Hidden primary: push changes to this HOST:PORT")
    ] = None,
    push_key: Annotated[
        str | None, typer.Option(help="The TSIG key (homing key add) that signs the pushes")
    ] = None,
    no_push: Annotated[bool, typer.Option("--no-push", help="Stop pushing this zone")] = False,
    primary: Annotated[
        str | None, typer.Option(help="A secondary zone's primary, HOST:PORT")
    ] = None,
    primary_key: Annotated[
        str | None, typer.Option(help="The TSIG key (homing key add) of the transfers")
    ] = None,
    notify_key: Annotated[
        str | None, typer.Option(help="Sign this zone's NOTIFYs with this TSIG key")
    ] = None,
    auto_ptr: Annotated[
        str | None,
        typer.Option(
            "--auto-ptr",
            help="on: PTRs follow the hosts' addresses (filled now); off: removes those PTRs",
        ),
    ] = None,
) -> None:
    """Change an existing zone's settings: where its changes are pushed, or where a
    secondary zone comes from and with which key; the key its NOTIFYs are signed with;
    whether a reverse zone's PTRs follow the hosts (--auto-ptr on|off); its name servers
    and their addresses, the secondaries it notifies, who may transfer it, whether it is
    offered. A repeatable option replaces the whole list."""
    options = cli_manage.zone_options(
        ns, glue, notify, allow_transfer, public=offered,
        no_notify=no_notify, no_allow_transfer=no_allow_transfer,
    )  # fmt: skip
    if not options.empty():
        cli_manage.check_glue(zone, options)
        name = cli_manage.set_options(zone, options)
        typer.echo(f"zone {name}: options changed")
        cli_manage.warn_unaddressed(name)
        if not (push or push_key or no_push or primary or primary_key or notify_key or auto_ptr):
            return
    if auto_ptr is not None:
        if auto_ptr not in ("on", "off"):
            fail("--auto-ptr takes on or off")
        name, count = run_with_store(lambda h: reverse.set_auto_ptr(h.db, zone, auto_ptr == "on"))
        done = "PTRs written" if auto_ptr == "on" else "PTRs removed"
        typer.echo(f"zone {name}: auto-ptr {auto_ptr}, {count} {done}")
        if not (push or push_key or no_push or primary or primary_key or notify_key):
            return
    pushing = no_push or push is not None or push_key is not None
    pulling = primary is not None or primary_key is not None or notify_key is not None
    if pushing == pulling:
        fail(
            "give --push HOST:PORT with --push-key NAME, or --no-push;"
            " or --primary HOST:PORT [--primary-key NAME]; or --notify-key NAME;"
            " or --ns, --glue, --notify, --allow-transfer, --offered/--private"
        )
    if pulling:
        ref = run_with_store(
            lambda h: zones.set_primary(h.db, zone, primary, primary_key, notify_key=notify_key)
        )
        parts = []
        if primary is not None:
            signed = f" (key {primary_key})" if primary_key else ""
            parts.append(f"a secondary of {primary}{signed}")
        if notify_key is not None:
            parts.append(f"NOTIFYs signed with {notify_key}")
        typer.echo(f"zone {ref.name}: " + ", ".join(parts))
        return
    if no_push == (push is not None or push_key is not None):
        fail("give --push HOST:PORT with --push-key NAME, or --no-push")
    ref = run_with_store(lambda h: zones.set_push(h.db, zone, push, push_key))
    typer.echo(f"zone {ref.name}: " + (f"pushes to {push}" if push else "pushes nowhere"))


def _write_secrets(result: imports.ImportResult, secrets_out: Path | None) -> None:
    """New secrets as CSV (name,secret): to a private file, or to stdout."""
    if not result.secrets:
        return
    lines = "".join(f"{name},{secret}\n" for name, secret in result.secrets)
    if secrets_out is None:
        typer.echo("name,secret\n" + lines, nl=False)
        return
    fd = os.open(secrets_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("name,secret\n" + lines)


@zone_app.command("list")
def zone_list(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON array instead of a table")
    ] = False,
) -> None:
    """The zones served here: name, serial, hosts, and whether users may add hosts in it."""
    rows = run_with_store(lambda h: admin.list_zones(h.db))
    if as_json:
        listed = [{"zone": r.name, "serial": r.serial, "hosts": r.hosts, "offered": r.public}
                  for r in rows]  # fmt: skip
        typer.echo(json.dumps(listed, indent=2))
        return
    typer.echo("zone\tserial\thosts\toffered")
    for row in rows:
        typer.echo(f"{row.name}\t{row.serial}\t{row.hosts}\t{'yes' if row.public else 'no'}")


@zone_app.command("import")
def zone_import(
    zone: str,
    file: Annotated[Path, typer.Argument(help="A standard (RFC 1035) zone file")],
    owner: Annotated[
        str | None, typer.Option(help="Make every A/AAAA name a host owned by this user")
    ] = None,
    secrets_out: Annotated[
        Path | None, typer.Option(help="Write the new hosts' secrets here (CSV) instead of stdout")
    ] = None,
) -> None:
    """Load a zone file, creating the zone if absent."""
    result = run_with_store(lambda h: imports.import_zone(h.db, zone, file, owner=owner))
    typer.echo(
        f"zone {zone}: {result.rrsets} rrsets changed, {result.delegations} delegations,"
        f" {result.hosts} hosts added",
        err=True,
    )
    _write_secrets(result, secrets_out)


@host_app.command("import")
def host_import(
    file: Annotated[Path, typer.Argument(help="CSV: name[,owner][,ipv4][,ipv6][,ttl][,secret]")],
    owner: Annotated[str | None, typer.Option(help="Owner for rows without one")] = None,
    secrets_out: Annotated[
        Path | None, typer.Option(help="Write the new secrets here (CSV) instead of stdout")
    ] = None,
) -> None:
    """Bulk-add hosts (moving from another provider); new secrets come out as CSV."""
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}")
    result = run_with_store(
        lambda h: imports.import_hosts(
            h.db, text, default_owner=owner, allow_local=h.policy.allow_local_addresses
        )
    )
    typer.echo(f"{result.hosts} hosts added, {result.rrsets} rrsets set", err=True)
    _write_secrets(result, secrets_out)


@user_app.command("add")
def user_add(
    user: str,
    email: Annotated[str, typer.Option(help="The account's email address")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Make an operator account")] = False,
) -> None:
    """Add an account; its password is asked twice at a terminal, or read with --password-stdin."""
    password = cli_manage.read_password(password_stdin)
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


@key_app.command("add")
def key_add(
    name: str,
    zone: Annotated[
        list[str] | None,
        typer.Option(
            help="A zone this key may change (and, without --grant, transfer); repeatable"
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="The one host this key may change")] = None,
    grant: Annotated[
        list[str] | None,
        typer.Option(
            help="Update policy, repeatable: 'subdomain NAME [TYPE...]', 'name NAME [TYPE...]'"
            " or 'self [TYPE...]'; the key may then change only that, and transfers nothing"
        ),
    ] = None,
    algorithm: Annotated[str, typer.Option(help="hmac-sha256, hmac-sha512, ...")] = "hmac-sha256",
    secret: Annotated[
        str | None,
        typer.Option(help="Base64 secret to use (the same key on another server), not a new one"),
    ] = None,
) -> None:
    """Add a TSIG key; prints ALG:NAME:SECRET (the `nsupdate -y` form) on the last line.

    A key covers one host (--host: what its update secret may change), or one or more zones
    (--zone, repeatable: a DHCP server's forward and reverse zones under one key). A zone key
    without --grant may change anything in its zones but the SOA and apex NS, and transfer
    them; with --grant only the names and types granted, e.g.
    --grant 'subdomain dhcp.example.net A DHCID' --grant 'subdomain 2.0.192.in-addr.arpa PTR DHCID'.
    """
    zone_names = zone or []
    key = run_with_store(
        lambda h: keys.add_key(
            h.db,
            name,
            zone=zone_names[0] if zone_names else None,
            also=zone_names[1:],
            grants=grant or [],
            host=host,
            algorithm=algorithm,
            allow_legacy=h.settings.tsig_allow_md5,
            secret=secret,
        )
    )
    target = f"zone {', '.join(key.zones)}" if key.zone else f"host {key.host}"
    if key.policy is not None:
        target += " (" + "; ".join(g.to_text() for g in key.policy) + ")"
    typer.echo(f"key {key.name} added for {target}; its secret (shown once):")
    typer.echo(key.nsupdate_form())


def main() -> None:
    command = typer.main.get_command(app)
    cli_manage.plain_metavars(command)
    command()


# The list, delete and passwd commands live beside this module and register on its apps.
# backup and restore likewise, and zone delegate/undelegate.
from homing import cli_backup, cli_delegate, cli_manage  # noqa: E402, F401
