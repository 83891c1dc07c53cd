"""`homing serve`: DNS + HTTP + journal follower in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from homing.config import Settings
from homing.dns.access import AccessLoader
from homing.dns.chaos import ServerIdentity
from homing.dns.cookies import ServerCookies, load_secret
from homing.dns.dispatch import Dispatcher, NotifyJudge
from homing.dns.index import ZoneIndex
from homing.dns.notify import ChangeWatch, Notifier
from homing.dns.push import Pusher, PushWatch
from homing.dns.rrl import RateLimiter
from homing.dns.secondary import ForwardedNotify, Secondaries
from homing.dns.server import limited_count, parse_listen, query_count, start_dns
from homing.domain.records import JournalEntry
from homing.service import owncert, querycounts
from homing.service.challenges import expire as expire_challenges
from homing.service.context import Homing
from homing.service.dnssec import maintain as maintain_signatures
from homing.service.figures import QueryMeter
from homing.service.hosts import refresh_all_groups
from homing.service.inactivity import get_policy, run_policy
from homing.service.journal import Follower
from homing.service.meters import publish as publish_meters
from homing.service.secrets import dummy_password_hash
from homing.store.db import Database, now
from homing.store.notify import JournalListener
from homing.web import metrics
from homing.web.app import create_app
from homing.web.connections import ConnectionLimits, guarded_protocol
from homing.web.portal.sessions import trusted_networks
from homing.web.tls import CertificateReloader
from homing.workers import (
    COUNT_INTERVAL,
    SiblingWake,
    answers_limited,
    publish_query_count,
    queries_answered,
    worker_index,
)

log = logging.getLogger(__name__)


def _track_owner_tables(index: ZoneIndex) -> None:
    """Have the collector track each zone's table of owners, so that gc.freeze() takes it.

    A full collection untracks a dict whose values are all untracked (the owners' tuples
    of bytes and ints), and the first change after the freeze, a new tuple, tracks it
    again outside the frozen objects: from then on every collection of any generation
    walks all its entries, most of a second at 10M hosts (docs/benchmarks.md). A dict
    tracked stays tracked: one tracked value in and out is enough.
    """
    for zone in index.zones.values():
        for table in (zone.owners, zone.outside):
            if _UNUSED_KEY not in table:
                table[_UNUSED_KEY] = []  # type: ignore[assignment]  # a list is always tracked
                del table[_UNUSED_KEY]


# No owner's key: a wire label is at most 63 bytes long, this one says 255.
_UNUSED_KEY = b"\xff"


def _known(serial_of: Callable[[str], int | None], db: Database, zone: str, serial: int) -> bool:
    """Whether this process answers with `serial` of `zone` already (`serial_of`, its zone
    index's), or is about to: a commit of its own, heard of through the store before its
    hooks moved the index."""
    if (serial_of(zone) or -1) >= serial:
        return True
    return any(
        isinstance(entry, JournalEntry) and entry.zone == zone and entry.serial == serial
        for batch in db.committing
        for entry in batch
    )


def _http_socket(listen: str, *, reuse_port: bool = False) -> socket.socket:
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _http_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        request_timeout=settings.http_request_timeout,
        per_source=settings.http_connections_per_source,
        total=settings.http_max_connections,
        requests=settings.http_max_requests,
        exempt=trusted_networks(settings.trusted_proxies),
    )


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` decides how the process ends."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _age_groups(homing: Homing) -> None:
    """Members that stop updating leave their group's answer."""
    interval = max(5.0, homing.settings.group_member_max_age / 10)
    while True:
        await asyncio.sleep(interval)  # a periodic job: there is no event to wait for
        try:
            await refresh_all_groups(homing.db, homing.settings.group_member_max_age)
        except Exception:
            log.exception("group ageing failed; retrying")


async def _inactivity(homing: Homing) -> None:
    """The operator's inactivity policy, as saved at each run (warn, disable, delete)."""
    settings = homing.settings
    while True:
        try:
            policy, _saved = await get_policy(homing.db, settings)
            report = await run_policy(
                homing.db, policy, now(), group_max_age=settings.group_member_max_age
            )
            if report.warned or report.disabled or report.deleted:
                log.info("inactivity policy: %s", report)
        except Exception:
            log.exception("inactivity policy run failed; retrying")
        await asyncio.sleep(settings.inactivity_interval)  # a periodic job, like group ageing


async def _expire_challenges(homing: Homing) -> None:
    """ACME challenge TXT values left behind by a client go after their lifetime."""
    settings = homing.settings
    while True:
        await asyncio.sleep(settings.acme_expiry_interval)  # a periodic job, like group ageing
        try:
            await expire_challenges(
                homing.db,
                settings.acme_challenge_lifetime,
                acme_dns_zone=settings.acme_dns_zone,
            )
        except Exception:
            log.exception("challenge expiry failed; retrying")


async def _meter_queries(homing: Homing, run_dir: Path) -> None:
    """Every worker's DNS answers so far, read each second for the admin overview's rate."""
    meter = homing.dns_meter = QueryMeter()
    while True:
        meter.add(time.time(), queries_answered(run_dir))
        meter.limited = answers_limited(run_dir)
        await asyncio.sleep(COUNT_INTERVAL)  # a periodic reading: there is no event to wait for


async def serve(homing: Homing) -> None:
    """Migrate, load the zones, listen, print READY, run until SIGINT/SIGTERM.

    As one of several workers (`--workers`), it shares the ports with the others, wakes
    their journal followers after its commits, and only worker 0 notifies secondaries
    and ages groups.
    """
    settings = homing.settings
    worker = worker_index()
    leader = worker in (None, 0)
    if worker is None:
        await homing.db.migrate()  # workers find the store migrated by their parent
    # Made beside the zones' loading (argon2 leaves the GIL), awaited before HTTP listens:
    # no login waits for it.
    unknown_user_hash = asyncio.create_task(asyncio.to_thread(dummy_password_hash))
    index = ZoneIndex()
    # TSIG keys and zone transfer lists, for UPDATE, AXFR/IXFR and NOTIFY: reloaded when
    # the store's settings generation moves, looked at as often as the journal.
    access = AccessLoader(
        homing.db, allow_md5=settings.tsig_allow_md5, interval=settings.follow_interval
    )
    await access.reload()
    # Every serial move, committed here or picked up from the journal, notifies the
    # zone's secondaries (at start too: they may have missed changes while we were down).
    notifier = Notifier(index, access, held=True)  # released once our DNS listens
    # Hidden primary: the same serial moves push zones to their external primary; an
    # update answers good once its change got there (worker 0 pushes, the others ask the store).
    pusher = Pusher(homing.db, access)
    homing.push_waiter = pusher if leader else PushWatch(homing.db, access)
    sink = ChangeWatch(index, notifier.changed, pusher.changed) if leader else index
    # Secondary zones (zone add --primary) are pulled from their primary by worker 0, which
    # notifies their own secondaries after each transfer; the other workers reload them
    # from the store when their serial moves.
    secondaries = None
    if leader:
        secondaries = Secondaries(index, homing.db, access, on_transfer=notifier.changed)
    # The follower keeps the index at the store: this process's commits (every update's
    # batch) through Follower.committed, a db.on_commit hook; others' by wake and poll.
    follower = Follower(homing.db, sink, settings.follow_interval, secondaries=not leader)
    await follower.sync()
    if secondaries is not None:
        await secondaries.load()
    # The loaded zones are hundreds of thousands of long-lived objects: keep them out of
    # the collector's full passes, which otherwise stall answers for hundreds of ms.
    gc.collect()
    _track_owner_tables(index)
    gc.freeze()
    siblings = None
    if worker is not None:
        siblings = SiblingWake(
            settings.data_dir / "run",
            follower.wake,
            on_notify=None if secondaries is None else secondaries.wake,
        )
        await siblings.start()
        homing.db.on_commit.append(siblings.poke)
    notified: NotifyJudge | None = None
    if secondaries is not None:
        notified = secondaries.notified
    elif siblings is not None:
        notified = ForwardedNotify(access, siblings.notify)  # worker 0 pulls the zones
    dns_host, dns_port = parse_listen(settings.dns_listen)
    dns_server = await start_dns(
        index,
        dns_host,
        dns_port,
        reuse_port=worker is not None,
        dispatch=lambda responder: Dispatcher(
            index,
            homing.db,
            access,
            responder,
            notified,
            allow_local_addresses=settings.allow_local_addresses,
        ),
        rrl=RateLimiter(settings.rrl_rate, settings.rrl_slip) if settings.rrl_rate else None,
        cookies=ServerCookies(load_secret(settings.data_dir)),
        identity=ServerIdentity(settings.dns_identity, settings.dns_version, settings.dns_nsid),
    )
    notifier.release()  # secondaries told of the loaded serials can now ask us back
    own_cert = owncert.Plan.from_settings(settings)
    if own_cert is not None:
        owncert.ensure_placeholder(own_cert)  # HTTPS listens before the first certificate
    await unknown_user_hash
    http_sock = _http_socket(settings.http_listen, reuse_port=worker is not None)
    config = uvicorn.Config(
        create_app(homing),
        log_level="warning",
        # JSON logs: uvicorn's records go to the root logger's JSON handler, not its own.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        access_log=False,
        lifespan="off",
        # httptools with our deadlines and caps (web/connections.py); no WebSocket upgrades.
        http=guarded_protocol(_http_limits(settings)),
        ws="none",
        timeout_keep_alive=10,
        h11_max_incomplete_event_size=16 * 1024,
        server_header=False,
        # X-Forwarded-For is ours to judge (trusted_proxies), not uvicorn's.
        proxy_headers=False,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    config.load()  # builds the SSLContext the reloader swaps certificates in
    http_server = _HttpServer(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # First signal: finish in-flight requests and stop; a second SIGINT: stop at once.
        loop.add_signal_handler(sig, http_server.handle_exit, sig, None)
    background = [
        asyncio.create_task(follower.run(), name="journal-follower"),
        asyncio.create_task(access.run(), name="tsig-keys"),
        asyncio.create_task(_meter_queries(homing, settings.data_dir / "run"), name="dns-meter"),
    ]
    # This process's DNS queries, added to the store's count per bucket (the 24-hour chart).
    counting = querycounts.record(homing.db, settings.node_name, query_count)
    background.append(asyncio.create_task(counting, name="query-counts"))
    if worker is not None:
        background.append(
            asyncio.create_task(
                publish_query_count(settings.data_dir / "run", query_count, limited_count),
                name="query-count",
            )
        )
        background.append(
            asyncio.create_task(publish_meters(settings.data_dir / "run"), name="meters")
        )
    listener = None
    if not homing.db.is_sqlite:
        # Other nodes' commits wake the follower (and settings changes the key and zone
        # list loader) at once; their polls stay the fallback.
        listener = JournalListener(
            homing.db.url,
            homing.db.schema,
            follower.wake,
            known=functools.partial(_known, index.serial_of, homing.db),
            on_settings=access.wake,
            on_zone=follower.moved,
        )
        background.append(asyncio.create_task(listener.run(), name="journal-listener"))
    if config.ssl is not None and settings.tls_cert_file and settings.tls_key_file:
        reloader = CertificateReloader(
            config.ssl, settings.tls_cert_file, settings.tls_key_file, settings.tls_reload_interval
        )
        background.append(asyncio.create_task(reloader.run(), name="tls-reload"))
    metrics.NODE = metrics.NodeState(
        index=index,
        follower=follower,
        run_dir=settings.data_dir / "run" if worker is not None else None,
        listener=listener,
        queries=lambda: queries_answered(settings.data_dir / "run"),
        limited=lambda: answers_limited(settings.data_dir / "run"),
    )
    if leader:  # once for all workers
        background.append(asyncio.create_task(_age_groups(homing), name="group-ageing"))
        # Notifications: the outbox is delivered from here, looked at after each local
        # commit and every notify_interval (other workers' rows); the policy runs hourly.
        courier = homing.courier()
        homing.db.on_commit.append(courier.wake)
        background.append(asyncio.create_task(courier.run(), name="notifications"))
        background.append(asyncio.create_task(_inactivity(homing), name="inactivity"))
        signing = maintain_signatures(
            homing.db,
            interval=settings.dnssec_interval,
            parents=settings.dnssec_parent_interval,
        )
        background.append(asyncio.create_task(signing, name="dnssec"))
        background.append(asyncio.create_task(_expire_challenges(homing), name="acme-expiry"))
        if own_cert is not None:
            own = owncert.run(homing.db, own_cert)
            background.append(asyncio.create_task(own, name="own-certificate"))
    print(f"READY dns={settings.dns_listen} http={settings.http_listen}", flush=True)
    log.info("serving DNS on %s, HTTP on %s", settings.dns_listen, settings.http_listen)
    if leader and not settings.public_url:
        # Links are never built from a request's Host header, which the asker chooses.
        log.warning("public_url (HOMING_PUBLIC_URL) is not set: password reset mails are not sent")
    try:
        await http_server.serve(sockets=[http_sock])
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if secondaries is not None:
            await secondaries.close()
        await notifier.close()
        await pusher.close()
        if siblings is not None:
            siblings.close()
        await dns_server.close()
        await homing.db.close()


def run(homing: Homing) -> None:
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(homing))
    sys.stdout.flush()
