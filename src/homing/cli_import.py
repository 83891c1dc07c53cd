"""`homing zone import` and `homing host import`: bulk loads for an operator moving from
another server or provider; the new hosts' secrets come out as CSV."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from homing.cli import fail, host_app, run_with_store, zone_app
from homing.service import imports


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
