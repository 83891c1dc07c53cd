"""/metrics and /readyz in process: who may read the metrics, readiness before the
zones are loaded, and the counters an update moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from homing.config import Settings
from homing.dns.index import ZoneIndex
from homing.service.context import Homing
from homing.service.meters import METERS, Meters
from homing.store.db import Database
from homing.web import metrics
from tests.web.conftest import HOST, Site, client_for


class _Follower:
    errors = 0
    passes = 0


@pytest.fixture
def node() -> Iterator[metrics.NodeState]:
    state = metrics.NodeState(ZoneIndex(), _Follower())
    metrics.NODE = state
    try:
        yield state
    finally:
        metrics.NODE = None


def counted(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def test_readyz_waits_for_the_zones(site: Site) -> None:
    metrics.NODE = None
    response = await site.client.get("/readyz")
    assert response.status_code == 503 and response.text == "zones loading\n"


async def test_metrics_only_for_allowed_networks_or_the_token(
    db: Database, node: metrics.NodeState
) -> None:
    settings = Settings(metrics_allow=["198.51.100.0/24"], metrics_token="t0ken-for-scrapes")
    homing = Homing(settings, db)
    async with client_for(homing, "203.0.113.5") as outside:
        assert (await outside.get("/metrics")).status_code == 403
        wrong = await outside.get("/metrics", headers={"Authorization": "Bearer t0ken"})
        assert wrong.status_code == 403
        basic = await outside.get("/metrics", auth=("t0ken-for-scrapes", ""))
        assert basic.status_code == 403
        good = await outside.get("/metrics", headers={"Authorization": "Bearer t0ken-for-scrapes"})
        assert good.status_code == 200 and good.headers["content-type"].startswith("text/plain")
    async with client_for(homing, "198.51.100.9") as inside:
        assert (await inside.get("/metrics")).status_code == 200
    async with client_for(homing, "::ffff:198.51.100.9") as mapped:
        assert (await mapped.get("/metrics")).status_code == 200


async def test_an_update_moves_its_counters(site: Site, node: metrics.NodeState) -> None:
    async with client_for(site.homing, "127.0.0.1") as local:
        before = (await local.get("/metrics")).text
        response = await site.client.get(
            "/nic/update", params={"hostname": HOST, "myip": "192.0.2.9"}, auth=site.auth()
        )
        assert response.text.strip() == "good 192.0.2.9"
        after = (await local.get("/metrics")).text
    labels = {"protocol": "dyndns2", "answer": "good"}
    assert counted(after, "homing_updates_total", **labels) == (
        counted(before, "homing_updates_total", **labels) + 1
    )
    assert counted(after, "homing_store_up") == 1
    assert counted(after, "homing_http_request_duration_seconds_count", route="update") >= 1


def test_snapshots_add_up() -> None:
    one, two = Meters(), Meters()
    one.update("dyndns2", ["good", "good"], 0.003)
    two.update("dyndns2", ["good", "badauth"], 2.0)
    two.secondary("z.example", "192.0.2.1", 7)
    one.secondary("z.example", "192.0.2.1", 9)
    total = Meters()
    total.add(one.snapshot())
    total.add(two.snapshot())
    assert total.updates == {("dyndns2", "good"): 3, ("dyndns2", "badauth"): 1}
    histogram = total.update_latency["dyndns2"]
    assert sum(histogram.counts) == 2 and histogram.total == pytest.approx(2.003)
    assert total.secondaries == {("z.example", "192.0.2.1"): 9}
    assert METERS is not total
