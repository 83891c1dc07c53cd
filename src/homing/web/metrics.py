"""GET /metrics (Prometheus text format) and GET /readyz; the HTTP latency timer.

Nothing here runs per DNS query: the DNS figures are the counters the transports keep
anyway, read at scrape time. With `serve --workers N` each worker publishes its counters
to the run directory once a second and the scraped worker adds them up (the figures of
the other workers are at most a second old); the journal figures are the scraped
worker's own, which follows the journal like every other.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from homing.domain.errors import StoreUnavailable
from homing.service import meters, serials
from homing.service.context import Homing
from homing.web.clientip import ClientAddress


class _Serials(Protocol):
    def serial_of(self, name: str) -> int | None: ...


class _Counts(Protocol):
    errors: int
    passes: int


@dataclass
class NodeState:
    """What `homing serve` hands the endpoints once its zones are loaded."""

    index: _Serials
    follower: _Counts
    run_dir: Path | None = None  # set with --workers: the others' published counters
    listener: Any = None  # a JournalListener on PostgreSQL
    queries: Any = None  # () -> int: DNS messages answered by every worker
    limited: Any = None  # () -> int: UDP answers RRL dropped or truncated
    started: float = field(default_factory=time.time)


READY_CACHE = 1.0  # seconds a readiness answer about the store is reused

# Set by `homing serve` once the zones are loaded: until then the node is not ready.
NODE: NodeState | None = None


def _histogram(name: str, doc: str, label: str, values: dict[str, meters.Histogram]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for key, histogram in sorted(values.items()):
        cumulative = 0
        buckets = []
        for bound, count in zip((*meters.BUCKETS, float("inf")), histogram.counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family.add_metric([key], buckets, histogram.total)
    return family


def families(node: NodeState | None, stored: dict[str, int] | None) -> list[Metric]:
    """Every metric, from the node's live state and the zones' stored serials (None: the
    store did not answer)."""
    out: list[Metric] = []
    up = GaugeMetricFamily("homing_store_up", "1 if the store answered this scrape")
    up.add_metric([], 0 if stored is None else 1)
    out.append(up)
    total = meters.merged(node.run_dir if node else None)
    updates = CounterMetricFamily(
        "homing_updates",
        "Host updates answered, by protocol and answer",
        labels=["protocol", "answer"],
    )
    for (protocol, answer), count in sorted(total.updates.items()):
        updates.add_metric([protocol, answer], count)
    out.append(updates)
    out.append(
        _histogram(
            "homing_update_duration_seconds",
            "Time from an update request's parse to its answer (commit included)",
            "protocol",
            total.update_latency,
        )
    )
    out.append(
        _histogram(
            "homing_http_request_duration_seconds",
            "HTTP requests by route group, time spent in the application",
            "route",
            total.http_latency,
        )
    )
    secondaries = GaugeMetricFamily(
        "homing_secondary_serial",
        "The serial a secondary has, as its last transfer request showed",
        labels=["zone", "secondary"],
    )
    for (zone, peer), known in sorted(total.secondaries.items()):
        secondaries.add_metric([zone, peer], known)
    out.append(secondaries)
    if node is None:
        return out
    if node.queries is not None:
        queries = CounterMetricFamily("homing_dns_queries", "DNS messages answered, all workers")
        queries.add_metric([], node.queries())
        out.append(queries)
    if node.limited is not None:
        limited = CounterMetricFamily(
            "homing_dns_rrl_limited", "UDP answers response rate limiting dropped or truncated"
        )
        limited.add_metric([], node.limited())
        out.append(limited)
    errors = CounterMetricFamily(
        "homing_follower_errors", "Journal follow passes that failed (the store unreachable)"
    )
    errors.add_metric([], node.follower.errors)
    out.append(errors)
    passes = CounterMetricFamily(
        "homing_follower_passes", "Journal follow passes run (woken, or at the poll interval)"
    )
    passes.add_metric([], node.follower.passes)
    out.append(passes)
    if node.listener is not None:
        connected = GaugeMetricFamily(
            "homing_journal_listener_connected", "1 while PostgreSQL notifications are heard"
        )
        connected.add_metric([], 1 if node.listener.connected else 0)
        out.append(connected)
        heard = CounterMetricFamily(
            "homing_journal_notifications", "Journal notifications received from PostgreSQL"
        )
        heard.add_metric([], node.listener.notifications)
        out.append(heard)
    if stored is not None:
        serial = GaugeMetricFamily(
            "homing_zone_serial", "Zone serial in the store", labels=["zone"]
        )
        lag = GaugeMetricFamily(
            "homing_journal_lag",
            "Store serial minus the serial this process answers with",
            labels=["zone"],
        )
        for zone, stored_serial in sorted(stored.items()):
            serial.add_metric([zone], stored_serial)
            applied = node.index.serial_of(zone)
            lag.add_metric([zone], stored_serial - (applied if applied is not None else 0))
        out.extend([serial, lag])
    return out


class _Fixed:
    """A collector handing out families built before rendering (the store read is async)."""

    def __init__(self, built: list[Metric]) -> None:
        self.built = built

    def collect(self) -> Iterator[Metric]:
        return iter(self.built)


def render(built: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(built))
    return generate_latest(registry)


async def _stored_serials(homing: Homing) -> dict[str, int] | None:
    try:
        return await serials.stored_serials(homing.db)
    except StoreUnavailable:
        return None


class MetricsAccess:
    """Who may read /metrics: a client address in `metrics_allow`, or the bearer token."""

    def __init__(self, allow: list[str], token: str | None, client: ClientAddress) -> None:
        try:
            self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in allow)
        except ValueError as exc:
            raise ValueError(f"metrics_allow: {exc}") from exc
        self.token = f"Bearer {token}".encode() if token else None
        self.client = client

    def allows(self, scope: Scope) -> bool:
        if self.token is not None:
            import hmac

            for name, value in scope.get("headers", ()):
                if name == b"authorization" and hmac.compare_digest(value, self.token):
                    return True
        try:
            address = ipaddress.ip_address(self.client.of_scope(scope))
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


class CertificateExpiry:
    """When the served HTTPS certificate (the file's first) expires, read again only when
    the file changes: a renewal, by homing's ACME or any other client, shows at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: tuple[int, int] | None = None
        self.expires: float | None = None

    def read(self) -> float | None:
        try:
            status = self.path.stat()
            stamp = (status.st_mtime_ns, status.st_size)
            if stamp != self.stamp:
                self.stamp, self.expires = stamp, None
                cert = x509.load_pem_x509_certificate(self.path.read_bytes())
                self.expires = cert.not_valid_after_utc.timestamp()
        except (OSError, ValueError):
            return None
        return self.expires

    def family(self) -> list[Metric]:
        expires = self.read()
        if expires is None:
            return []
        gauge = GaugeMetricFamily(
            "homing_tls_certificate_expiry_timestamp_seconds",
            "When the HTTPS certificate served expires, Unix time",
        )
        gauge.add_metric([], expires)
        return [gauge]


def metrics_endpoints(homing: Homing, client: ClientAddress) -> tuple[Any, Any]:
    """The /metrics and /readyz endpoints."""
    settings = homing.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    access = MetricsAccess(settings.metrics_allow, token, client)
    expiry = CertificateExpiry(settings.tls_cert_file) if settings.tls_cert_file else None

    async def metrics(request: Request) -> Response:
        if not access.allows(request.scope):
            return PlainTextResponse("Forbidden\n", status_code=403)
        stored = await _stored_serials(homing)
        body = render(families(NODE, stored) + (expiry.family() if expiry else []))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    checked = [0.0, False]  # when the store last answered a readiness check, and if it did

    async def ready(_request: Request) -> Response:
        if NODE is None:
            return PlainTextResponse("zones loading\n", status_code=503)
        # Anyone may ask: the store is asked at most once a second, whatever the rate.
        now = time.monotonic()
        if now - checked[0] >= READY_CACHE:
            checked[:] = [now, await _stored_serials(homing) is not None]
        if not checked[1]:
            return PlainTextResponse("store unreachable\n", status_code=503)
        return PlainTextResponse("ready\n")

    return metrics, ready


def _route_group(path: str) -> str:
    if path in _UPDATE_PATHS:
        return "update"
    if path.startswith("/api/"):
        return "api"
    if path in ("/metrics", "/healthz", "/readyz"):
        return "status"
    if path.startswith("/static/"):
        return "static"
    return "portal"


_UPDATE_PATHS = frozenset(
    (
        "/nic/update",
        "/nic/update/",
        "/v3/update",
        "/update",
        "/update/",
        "/nic/dyndns",
        "/nic/statdns",
        "/dvr/update",
        "/checkip",
        "/myip",
        "/checkip.json",
    )
)


class HttpTimer:
    """Times each HTTP request through the application (two clock reads and a bucket)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            meters.METERS.http(_route_group(scope["path"]), time.perf_counter() - started)
