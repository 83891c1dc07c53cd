"""`homing key add`: TSIG keys for RFC 2136 updates and zone transfers."""

from __future__ import annotations

from typing import Annotated

import typer

from homing.cli import key_app, run_with_store
from homing.service import keys


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
