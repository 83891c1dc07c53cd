"""`homing zone add|set|list|delete`: the zones served here and every option they have."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated

import typer

from homing import cli_dnssec
from homing.cli import JsonOption, fail, run_with_store, zone_app
from homing.domain.errors import HomingError, NotFound
from homing.domain.names import in_zone, normalize
from homing.service import inventory, reverse, zonelist, zoneoptions, zones
from homing.service.context import Homing

Rname = Annotated[
    str | None, typer.Option(help="SOA contact mailbox as a name, e.g. hostmaster.example.net")
]
Ttl = Annotated[
    int | None,
    typer.Option(help="Default TTL, of the SOA too; also the negative TTL unless given [60]"),
]
NegativeTtl = Annotated[
    int | None, typer.Option(help="Negative-caching TTL, the SOA minimum (RFC 2308)")
]
Refresh = Annotated[int | None, typer.Option(help="SOA refresh: secondaries check every [3600] s")]
Retry = Annotated[int | None, typer.Option(help="SOA retry after a failed check [600] s")]
Expire = Annotated[
    int | None, typer.Option(help="SOA expire: secondaries answer this long alone [1209600] s")
]

Glue = Annotated[
    list[str] | None,
    typer.Option(metavar="NAME=ADDRESS", help="Address of an in-zone name server (repeatable)"),
]
Push = Annotated[str | None, typer.Option(help="Hidden primary: push changes to this HOST:PORT")]
PushKey = Annotated[
    str | None, typer.Option(help="The TSIG key (homing key add) that signs the pushes")
]
PrimaryKey = Annotated[
    str | None, typer.Option(help="The TSIG key (homing key add) of the transfers")
]


def zone_options(
    ns: Sequence[str] | None,
    glue: Sequence[str] | None,
    notify: Sequence[str] | None,
    allow_transfer: Sequence[str] | None,
    *,
    public: bool | None = None,
    no_notify: bool = False,
    no_allow_transfer: bool = False,
    soa: zoneoptions.Soa | None = None,
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
        soa=soa or zoneoptions.Soa(),
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
        try:
            await h.db.read(lambda conn: zones.zone_row(conn, normalize(zone)))
        except NotFound:
            return False
        return True

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


def set_options(zone: str, options: zoneoptions.ZoneOptions) -> str:
    """Apply the options to an existing zone; its name."""
    ref = run_with_store(lambda h: zoneoptions.set_zone_options(h.db, zone, options))
    return ref.name


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
    glue: Glue = None,
    notify: Annotated[
        list[str] | None,
        typer.Option(metavar="ADDRESS:PORT", help="Secondary to NOTIFY (repeatable)"),
    ] = None,
    allow_transfer: Annotated[
        list[str] | None,
        typer.Option(metavar="CIDR", help="Address or network allowed to transfer (repeatable)"),
    ] = None,
    rname: Rname = None,
    ttl: Ttl = None,
    negative_ttl: NegativeTtl = None,
    refresh: Refresh = None,
    retry: Retry = None,
    expire: Expire = None,
    private: Annotated[
        bool, typer.Option("--private", help="Not offered to sign-up users")
    ] = False,
    exist_ok: Annotated[
        bool, typer.Option("--exist-ok", help="Succeed if the zone exists")
    ] = False,
    push: Push = None,
    push_key: PushKey = None,
    primary: Annotated[
        str | None,
        typer.Option(help="A secondary zone: transferred from this primary, HOST:PORT"),
    ] = None,
    primary_key: PrimaryKey = None,
    auto_ptr: Annotated[
        bool,
        typer.Option(
            "--auto-ptr", help="A reverse zone: every host address inside it gets a PTR to the host"
        ),
    ] = False,
    dnssec: cli_dnssec.DnssecFlag = False,
    dnssec_algorithm: cli_dnssec.Algorithm = cli_dnssec.DEFAULT_ALGORITHM,
    split_keys: cli_dnssec.SplitKeys = False,
) -> None:
    """Add a zone served here (with --primary: a secondary zone, pulled, not edited here).

    Reverse zones: 2.0.192.in-addr.arpa, 0-63.2.0.192.in-addr.arpa (RFC 2317 classless),
    8.b.d.0.1.0.0.2.ip6.arpa."""
    soa = zoneoptions.Soa(rname, ttl, negative_ttl, refresh, retry, expire)
    options = zone_options(ns, glue, notify, allow_transfer, soa=soa)
    check_glue(zone, options)
    if exist_ok:
        fixed = {"--push": push, "--primary": primary, "--auto-ptr": auto_ptr, "--private": private}
        fixed["--dnssec"] = dnssec
        existing = update_existing(zone, options, fixed)
        if existing is not None:
            typer.echo(f"zone {existing} ready")
            warn_unaddressed(existing)
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
            negative_ttl=negative_ttl,
            refresh=zones.REFRESH if refresh is None else refresh,
            retry=zones.RETRY if retry is None else retry,
            expire=zones.EXPIRE if expire is None else expire,
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
        set_options(ref.name, zoneoptions.ZoneOptions(glue=options.glue))
    if primary is not None:
        typer.echo(f"zone {ref.name} ready: a secondary of {primary}")
    else:
        typer.echo(f"zone {ref.name} ready")
        warn_unaddressed(ref.name)
        if dnssec:
            cli_dnssec.set_dnssec(ref.name, "on", dnssec_algorithm, split_keys)


@zone_app.command("set")
def zone_set(
    zone: str,
    ns: Annotated[
        list[str] | None,
        typer.Option(
            "--ns", metavar="NAME[=ADDRESS]", help="The name servers, all of them (repeatable)"
        ),
    ] = None,
    glue: Glue = None,
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
    rname: Rname = None,
    ttl: Ttl = None,
    negative_ttl: NegativeTtl = None,
    refresh: Refresh = None,
    retry: Retry = None,
    expire: Expire = None,
    push: Push = None,
    push_key: PushKey = None,
    no_push: Annotated[bool, typer.Option("--no-push", help="Stop pushing this zone")] = False,
    primary: Annotated[
        str | None, typer.Option(help="A secondary zone's primary, HOST:PORT")
    ] = None,
    primary_key: PrimaryKey = None,
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
    dnssec: cli_dnssec.DnssecSwitch = None,
    dnssec_algorithm: cli_dnssec.Algorithm = cli_dnssec.DEFAULT_ALGORITHM,
    split_keys: cli_dnssec.SplitKeys = False,
    dnssec_now: cli_dnssec.DnssecNow = False,
    parent_ns: cli_dnssec.ParentNs = None,
) -> None:
    """Change an existing zone's settings: where its changes are pushed, or where a
    secondary zone comes from and with which key; the key its NOTIFYs are signed with;
    whether a reverse zone's PTRs follow the hosts (--auto-ptr on|off); its name servers
    and their addresses, its SOA (contact, TTLs, timers), the secondaries it notifies, who
    may transfer it, whether it is offered. A repeatable option replaces the whole list.
    Running servers answer with the new values within a second."""
    options = zone_options(
        ns, glue, notify, allow_transfer, public=offered,
        no_notify=no_notify, no_allow_transfer=no_allow_transfer,
        soa=zoneoptions.Soa(rname, ttl, negative_ttl, refresh, retry, expire),
    )  # fmt: skip
    if dnssec_now and dnssec is None:
        fail("--now goes with --dnssec off")
    # The settings taken after the zone options, below: each step returns when none follows.
    others = push or push_key or no_push or primary or primary_key or notify_key or auto_ptr
    if parent_ns is not None:
        cli_dnssec.set_parent_ns(zone, parent_ns)
        if dnssec is None and options.empty() and not others:
            return
    if dnssec is not None:
        cli_dnssec.set_dnssec(zone, dnssec, dnssec_algorithm, split_keys, at_once=dnssec_now)
        if options.empty() and not others:
            return
    if not options.empty():
        check_glue(zone, options)
        name = set_options(zone, options)
        typer.echo(f"zone {name}: options changed")
        warn_unaddressed(name)
        if not others:
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
            " or --ns, --glue, --notify, --allow-transfer, --offered/--private;"
            " or --rname, --ttl, --negative-ttl, --refresh, --retry, --expire"
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


@zone_app.command("list")
def zone_list(as_json: JsonOption = False) -> None:
    """The zones served here: name, serial, hosts, and whether users may add hosts in it."""
    rows = run_with_store(lambda h: zonelist.list_zones(h.db))
    if as_json:
        listed = [{"zone": r.name, "serial": r.serial, "hosts": r.hosts, "offered": r.public}
                  for r in rows]  # fmt: skip
        typer.echo(json.dumps(listed, indent=2))
        return
    typer.echo("zone\tserial\thosts\toffered")
    for row in rows:
        typer.echo(f"{row.name}\t{row.serial}\t{row.hosts}\t{'yes' if row.public else 'no'}")


@zone_app.command("delete")
def zone_delete(
    zone: str,
    force: Annotated[
        bool, typer.Option("--force", help="Delete it (otherwise only told what would go)")
    ] = False,
) -> None:
    """Delete a zone without hosts or groups, with its records, history and keys.

    Running servers answer REFUSED for it within a second, and stop pulling it (a
    secondary zone) or pushing it (a hidden primary's)."""
    if not force:
        found = run_with_store(lambda h: inventory.zone_contents(h.db, zone))
        if found.hosts or found.groups:
            fail(
                f"zone {found.name} still has {found.hosts} hosts and {found.groups} groups:"
                " delete them first"
            )
        fail(
            f"zone {found.name} has {found.rrsets} rrsets, {found.keys} keys and"
            f" {found.history} history entries: give --force to delete it"
        )
    name = run_with_store(lambda h: inventory.delete_zone(h.db, zone))
    typer.echo(f"zone {name} deleted")
