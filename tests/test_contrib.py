"""contrib/: the container image definition, the compose file and the Grafana dashboard,
checked for what they promise (no container runtime here: they are parsed)."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from homing.config import Settings
from homing.web.metrics import NodeState, families

CONTRIB = Path(__file__).resolve().parents[1] / "contrib"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def test_containerfile_runs_unprivileged_with_ports_volume_and_entrypoint() -> None:
    steps = instructions(CONTRIB / "Containerfile")
    keywords = [k for k, _ in steps]
    assert keywords[0] == "FROM"
    users = [rest for k, rest in steps if k == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    # Nothing runs as root after the switch.
    assert "RUN" not in keywords[keywords.index("USER") :]
    exposed = {port for k, rest in steps if k == "EXPOSE" for port in rest.split()}
    assert {"8053/udp", "8053/tcp", "8080/tcp"} <= exposed
    assert ("VOLUME", "/var/lib/homing") in steps
    entrypoint = json.loads(next(rest for k, rest in steps if k == "ENTRYPOINT"))
    assert entrypoint == ["homing"]
    assert json.loads(next(rest for k, rest in steps if k == "CMD")) == ["serve"]
    env = dict(item.split("=", 1) for k, rest in steps if k == "ENV" for item in shlex.split(rest))
    assert env["HOMING_DATA_DIR"] == "/var/lib/homing"
    settings = Settings(**{k.removeprefix("HOMING_").lower(): v for k, v in env.items()
                           if k.startswith("HOMING_")})  # fmt: skip
    assert settings.dns_listen.endswith(":8053") and settings.http_listen.endswith(":8080")
    assert any(k == "HEALTHCHECK" and "/readyz" in rest for k, rest in steps)


def test_compose_has_postgres_homing_and_nsd_wired_together() -> None:
    compose = yaml.safe_load((CONTRIB / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "homing", "nsd"}
    homing = services["homing"]
    assert homing["build"]["dockerfile"] == "contrib/Containerfile"
    assert (CONTRIB / homing["build"]["context"] / homing["build"]["dockerfile"]).is_file()
    assert {"53:8053/udp", "53:8053/tcp", "8080:8080/tcp"} <= set(homing["ports"])
    assert "homing-data:/var/lib/homing" in homing["volumes"]
    assert homing["depends_on"]["postgres"]["condition"] == "service_healthy"
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"]
    # Every HOMING_ variable is a real setting with a valid value.
    env = homing["environment"]
    settings = Settings(**{k.removeprefix("HOMING_").lower(): v for k, v in env.items()})
    assert settings.database_url and settings.database_url.startswith("postgresql+asyncpg://")
    # The database URL, NSD's primary and homing's notify target are the static addresses.
    address = {name: s["networks"]["homing"]["ipv4_address"] for name, s in services.items()}
    subnet = ipaddress.ip_network(compose["networks"]["homing"]["ipam"]["config"][0]["subnet"])
    assert all(ipaddress.ip_address(a) in subnet for a in address.values())
    assert f"@{address['postgres']}:5432/" in settings.database_url
    nsd_conf = (CONTRIB / services["nsd"]["build"]["context"] / "nsd.conf").read_text()
    assert f"request-xfr: {address['homing']}@8053 NOKEY" in nsd_conf
    assert f"allow-notify: {address['homing']} NOKEY" in nsd_conf
    assert f"--notify {address['nsd']}:53" in (CONTRIB / "compose.yaml").read_text()


class _Index:
    def serial_of(self, name: str) -> int | None:
        return 1


class _Follower:
    errors = 0
    passes = 0


class _Listener:
    connected = True
    notifications = 0


def metric_names() -> set[str]:
    """Every sample name /metrics can carry."""
    node = NodeState(_Index(), _Follower(), listener=_Listener(), queries=lambda: 0,
                     limited=lambda: 0)  # fmt: skip
    names = set()
    for family in families(node, {"example.net": 1}):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        for suffix in suffixes.get(family.type, [""]):
            names.add(family.name + suffix)
    return names


def test_grafana_dashboard_has_the_documented_shape_and_real_metrics() -> None:
    dashboard: dict[str, Any] = json.loads((CONTRIB / "grafana" / "homing.json").read_text())
    # Grafana's dashboard JSON model: these top-level keys, panels with a grid position.
    assert {"title", "uid", "schemaVersion", "panels", "time", "templating"} <= set(dashboard)
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    known = metric_names()
    used = set()
    ids = set()
    for panel in dashboard["panels"]:
        assert {"id", "type", "title", "gridPos", "datasource", "targets"} <= set(panel)
        assert panel["id"] not in ids
        ids.add(panel["id"])
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"]
            names = set(re.findall(r"\bhoming_[a-z_]+", target["expr"]))
            assert names, target["expr"]
            assert names <= known, names - known
            used |= names
    # The dashboard shows what the brief of /metrics promises.
    for name in ("homing_updates_total", "homing_journal_lag", "homing_dns_queries_total"):
        assert name in used
