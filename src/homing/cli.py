"""The `homing` command: its apps, the store each command runs against, and the server's
own commands (serve, migrate, check). Every command migrates a fresh store itself and
fails with one line. The other commands live in the cli_* modules beside this one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from homing.client.cli import client_app
from homing.config import Settings, load
from homing.domain.errors import AccountError, HomingError
from homing.service import checks
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

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON array instead of a table")]


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
            # The usage line as click writes it: ZONE, [FILE], NAME... (typer: {ZONE}).
            shown = param.metavar if param.required else f"[{param.metavar}]"
            shown += "..." if param.nargs != 1 else ""
            param._usage_display_name = lambda shown=shown: shown
        else:
            bare = getattr(param, "bare_type", lambda: "str")()
            param.metavar = _METAVARS.get(bare, (param.name or "value").upper())
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)


def main() -> None:
    command = typer.main.get_command(app)
    plain_metavars(command)
    command()


# The commands of each concern register on the apps above.
from homing import (  # noqa: E402, F401
    cli_accounts,
    cli_backup,
    cli_delegate,
    cli_dnssec,
    cli_import,
    cli_keys,
    cli_zone,
)
