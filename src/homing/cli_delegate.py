"""`homing zone delegate` and `zone undelegate`: subzones served by other name servers."""

from __future__ import annotations

from typing import Annotated

import typer

from homing.cli import fail, run_with_store, zone_app
from homing.service import delegations


@zone_app.command("delegate")
def zone_delegate(
    zone: str,
    child: Annotated[str, typer.Argument(help="The subzone's name, below ZONE")],
    ns: Annotated[
        list[str],
        typer.Option(
            help="A name server of the subzone, NAME or NAME=ADDRESS (repeat for several);"
            " one inside the subzone needs its address"
        ),
    ],
    ds: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DS",
            help="A DS record for CHILD (TAG ALGORITHM TYPE DIGEST, or the line homing zone ds"
            " prints), repeatable: all of them; without, the DS stays as it is",
        ),
    ] = None,
    no_ds: Annotated[bool, typer.Option("--no-ds", help="Remove CHILD's DS records")] = False,
) -> None:
    """Delegate CHILD to other name servers: names at and below it are answered with a
    referral to them (NS at the cut, their addresses as glue), and its DS if given."""
    if ds and no_ds:
        fail("--ds and --no-ds exclude each other")
    records = [] if no_ds else ds
    done = run_with_store(lambda h: delegations.delegate(h.db, zone, child, ns, records))
    typer.echo(
        f"{done.child} delegated to {', '.join(done.servers)} ({done.changed} rrsets changed)"
    )


@zone_app.command("undelegate")
def zone_undelegate(
    zone: str, child: Annotated[str, typer.Argument(help="The delegated subzone's name")]
) -> None:
    """Remove the delegation of CHILD: its NS, DS and glue."""
    done = run_with_store(lambda h: delegations.undelegate(h.db, zone, child))
    typer.echo(f"{done.child} no longer delegated ({done.changed} rrsets removed)")
