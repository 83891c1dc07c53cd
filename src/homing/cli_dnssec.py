"""`homing zone ds` and the --dnssec options of `zone add` and `zone set`: signed zones."""

from __future__ import annotations

from typing import Annotated

import typer

from homing.cli import fail, run_with_store, zone_app
from homing.dnssec import keys
from homing.service import dnssec, keyroll

DEFAULT_ALGORITHM: str = keys.DEFAULT_ALGORITHM

# The options `zone add` and `zone set` take, declared once.
DnssecSwitch = Annotated[
    str | None,
    typer.Option(
        "--dnssec",
        metavar="on|off",
        help="on: sign the zone (new keys, every RRset signed now and as it changes; give"
        " the parent its DS); off: ask the parent to remove its DS (CDS/CDNSKEY DELETE), then"
        " remove keys and signatures once it has (--parent-ns) or with --now",
    ),
]
DnssecNow = Annotated[
    bool,
    typer.Option(
        "--now",
        help="With --dnssec off: remove keys and signatures at once, without waiting for the"
        " parent (only once its DS is gone and the DS TTL has passed)",
    ),
]
ParentNs = Annotated[
    list[str] | None,
    typer.Option(
        "--parent-ns",
        metavar="ADDRESS[:PORT]",
        help="A name server of the parent zone, asked for this zone's DS before a KSK roll's"
        " switch and before signing ends (repeatable; all of them; '' for none)",
    ),
]
DnssecFlag = Annotated[bool, typer.Option("--dnssec", help="Sign the zone (see zone set --dnssec)")]
Algorithm = Annotated[
    str,
    typer.Option(
        "--dnssec-algorithm", help=f"The signing algorithm: {' or '.join(keys.ALGORITHMS)}"
    ),
]
SplitKeys = Annotated[
    bool,
    typer.Option("--split-keys", help="A KSK and a ZSK instead of one combined signing key"),
]


def set_dnssec(
    zone: str,
    value: str,
    algorithm: str = DEFAULT_ALGORITHM,
    split: bool = False,
    *,
    at_once: bool = False,
) -> None:
    """Turn signing on or off, saying what was done (and what the operator does next)."""
    if value not in ("on", "off"):
        fail("--dnssec takes on or off")
    if at_once and value != "off":
        fail("--now goes with --dnssec off")
    if value == "on":
        done = run_with_store(lambda h: dnssec.enable(h.db, zone, algorithm=algorithm, split=split))
        if done.state == "resumed":
            typer.echo(
                f"zone {done.zone}: stays signed; CDS and CDNSKEY DELETE withdrawn"
                f" (if the parent removed the DS, give it again: homing zone ds {done.zone})"
            )
            return
        typer.echo(
            f"zone {done.zone}: signed ({done.keys} key{'s' if done.keys > 1 else ''},"
            f" {done.changed} rrsets written); resolvers validate it once the parent"
            f" publishes its DS: give the parent the lines of homing zone ds {done.zone}"
        )
        return
    done = run_with_store(lambda h: dnssec.disable(h.db, zone, at_once=at_once))
    if done.state == "unsigned":
        typer.echo(f"zone {done.zone}: unsigned ({done.changed} rrsets removed)")
        return
    typer.echo(
        f"zone {done.zone}: unsigning: it stays signed and asks the parent to remove its DS"
        " (CDS and CDNSKEY DELETE); remove the DS at the parent (registrar). Once the parent"
        " servers named with --parent-ns have no DS and its TTL has passed, the keys and"
        f" signatures go by themselves; or homing zone set {done.zone} --dnssec off --now"
        f" once the DS is gone; homing zone set {done.zone} --dnssec on keeps it signed"
    )


def set_parent_ns(zone: str, servers: list[str]) -> None:
    """Name the parent's name servers the leader asks for the zone's DS."""
    chosen = run_with_store(
        lambda h: dnssec.set_parent_servers(h.db, zone, [s for s in servers if s.strip()])
    )
    told = ", ".join(chosen) if chosen else "none (KSK switch and unsigning wait for the operator)"
    typer.echo(f"zone {zone}: parent name servers: {told}")


@zone_app.command("ds")
def zone_ds(zone: str) -> None:
    """Print the DS records of a signed zone, for its parent (the registrar)."""
    for line in run_with_store(lambda h: dnssec.ds_records(h.db, zone)):
        typer.echo(line)


@zone_app.command("roll")
def zone_roll(
    zone: str,
    zsk: Annotated[bool, typer.Option("--zsk", help="Roll the zone-signing key")] = False,
    ksk: Annotated[
        bool, typer.Option("--ksk", help="Roll the key the parent's DS points at (KSK or CSK)")
    ] = False,
    step: Annotated[
        bool, typer.Option("--step", help="Take the next step of the roll under way now")
    ] = False,
) -> None:
    """Roll a signed zone's keys: start a roll, or take its next step (docs/dnssec.md)."""
    if zsk == ksk:
        fail("give --zsk or --ksk")
    done = run_with_store(lambda h: keyroll.roll(h.db, zone, "zsk" if zsk else "ksk", step=step))
    said = {
        "started": "a new key is published; it signs at the next step",
        "switched": "the new key signs; the old one stays published until the last step",
        "done": "the old key is gone",
    }
    typer.echo(f"zone {done.zone}: {done.role} roll {done.state}: {said[done.state]}")
    if done.state != "done" and done.role == "ksk":
        for line in run_with_store(lambda h: dnssec.ds_records(h.db, zone)):
            typer.echo(line)
