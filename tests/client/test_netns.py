"""Acceptance: the client in a network namespace follows its veth's addresses in real time.

The homing server listens on the root-namespace end of the veth; the client runs inside
the namespace (`ip netns exec`). The test changes the address inside the namespace and
records the time until the server's DNS answers the new address (a figure for
docs/client.md, not an assertion: speed is measured, never asserted in tests).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from tests import peers
from tests.client.conftest import (
    ClientProcess,
    HomingServer,
    Netns,
    record_result,
    write_config,
)


async def change(ns: Netns, *commands: str) -> None:
    """Run `ip -batch` inside the namespace (one process for an add and a del)."""
    process = await asyncio.create_subprocess_exec(
        peers.program("ip"), "-netns", ns.name, "-batch", "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate("\n".join(commands).encode()), 15)
    assert process.returncode == 0, err.decode()


async def started(
    netns: Netns,
    make_server: Callable[..., HomingServer],
    start_client: Callable[..., object],
    tmp_path: Path,
    extra: str = "",
    **host: object,
) -> tuple[HomingServer, ClientProcess, str]:
    """Server and client up, and the client's first `good` for the namespace's first IPv4."""
    server = make_server(http_address=netns.gateway)
    fqdn, secret = server.new_host("cam")
    server.start()
    config = write_config(
        tmp_path / "client.toml",
        servers=[server.url],
        hosts=[{"name": fqdn, "secret": secret, "allow_private": True, "min_interval": 0, **host}],
        extra=extra.replace("{url}", server.url),
    )
    client = await start_client(config, netns=netns.name)  # type: ignore[operator]
    assert isinstance(client, ClientProcess)
    await client.wait_for(good(fqdn, netns.v4(2)), within=30)
    return server, client, fqdn


def good(fqdn: str, address: str) -> str:
    return rf"{re.escape(fqdn)}: good (\S+,)?{re.escape(address)}[, ]"


async def test_interface_changes_reach_dns(
    netns: Netns,
    make_server: Callable[..., HomingServer],
    start_client: Callable[..., object],
    tmp_path: Path,
) -> None:
    server, client, fqdn = await started(
        netns, make_server, start_client, tmp_path,
        ipv4=f"interface:{netns.inside}", ipv6=f"interface:{netns.inside}",
    )  # fmt: skip
    assert await server.resolve(fqdn, "A") == [netns.v4(2)]
    assert await server.resolve(fqdn, "AAAA") == [netns.v6(2)]

    timings: list[float] = []
    previous = 2
    for new in (3, 4, 5, 6, 7):
        mark = len(client.lines)
        began = time.monotonic()
        await change(
            netns,
            f"addr add {netns.v4(new)}/24 dev {netns.inside}",
            f"addr del {netns.v4(previous)}/24 dev {netns.inside}",
        )
        await client.wait_for(good(fqdn, netns.v4(new)), within=10, start=mark)
        answer = await server.resolve(fqdn, "A")
        timings.append(time.monotonic() - began)
        assert answer == [netns.v4(new)]
        previous = new

    # IPv6: a new address replaces the old one; the A record stays as it is.
    mark = len(client.lines)
    began = time.monotonic()
    await change(
        netns,
        f"addr add {netns.v6(3)}/64 dev {netns.inside} nodad",
        f"addr del {netns.v6(2)}/64 dev {netns.inside}",
    )
    await client.wait_for(good(fqdn, netns.v6(3)), within=10, start=mark)
    answer6 = await server.resolve(fqdn, "AAAA")
    v6_time = time.monotonic() - began
    assert answer6 == [netns.v6(3)]
    assert await server.resolve(fqdn, "A") == [netns.v4(previous)]

    text = (
        f"IPv4 n={len(timings)} median={statistics.median(timings) * 1000:.1f}ms "
        f"max={max(timings) * 1000:.1f}ms; IPv6 {v6_time * 1000:.1f}ms"
    )
    print(f"\naddress change -> DNS answer: {text}")
    record_result("client-netns-address-to-dns", text)
    # One update per change, and nothing more.
    assert client.count(rf"{re.escape(fqdn)}: good ") == len(timings) + 2


async def test_ignored_addresses_cause_no_update(
    netns: Netns,
    make_server: Callable[..., HomingServer],
    start_client: Callable[..., object],
    tmp_path: Path,
) -> None:
    """A second (secondary) IPv4 and a temporary or deprecated IPv6 do not move the name."""
    server, client, fqdn = await started(
        netns, make_server, start_client, tmp_path,
        ipv4=f"interface:{netns.inside}", ipv6=f"interface:{netns.inside}",
    )  # fmt: skip
    mark = len(client.lines)
    await change(
        netns,
        f"addr add {netns.v4(9)}/24 dev {netns.inside}",
        f"addr add {netns.v6(9)}/64 dev {netns.inside} nodad preferred_lft 0",
        f"addr add {netns.v6(10)}/64 dev {netns.inside} nodad",
    )
    # The client saw the new addresses (the interface log line lists them) ...
    await client.wait_for(rf"IPv6 from interface .*{re.escape(netns.v6(10))}", start=mark)
    # ... and a removal of the registered IPv6 moves the name to the other usable one,
    # never to the deprecated one.
    await change(netns, f"addr del {netns.v6(2)}/64 dev {netns.inside}")
    await client.wait_for(good(fqdn, netns.v6(10)), within=10, start=mark)
    assert await server.resolve(fqdn, "AAAA") == [netns.v6(10)]
    assert await server.resolve(fqdn, "A") == [netns.v4(2)]
    assert client.count(rf"{re.escape(fqdn)}: good ") == 2


async def test_public_address_from_check_ip_follows_route_changes(
    netns: Netns,
    make_server: Callable[..., HomingServer],
    start_client: Callable[..., object],
    tmp_path: Path,
) -> None:
    """`ipv4 = "web"`: two check-IP URLs must agree; a route change makes the client ask again."""
    server, client, fqdn = await started(
        netns, make_server, start_client, tmp_path, ipv4="web",
        extra=(
            'checkip_urls = ["{url}/checkip", "{url}/checkip.json"]\n'
            "checkip_agree = 2\ncheckip_interval = 3600"
        ),
    )  # fmt: skip
    mark = len(client.lines)
    began = time.monotonic()
    await change(
        netns,
        f"addr add {netns.v4(8)}/24 dev {netns.inside}",
        f"addr del {netns.v4(2)}/24 dev {netns.inside}",
    )
    await client.wait_for(good(fqdn, netns.v4(8)), within=10, start=mark)
    assert await server.resolve(fqdn, "A") == [netns.v4(8)]
    elapsed = time.monotonic() - began
    print(f"\nroute change -> check-IP -> DNS answer: {elapsed * 1000:.1f}ms")
    record_result("client-netns-checkip-to-dns", f"{elapsed * 1000:.1f}ms")
