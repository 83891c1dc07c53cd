"""The client as users run it, against the real server on loopback: cache, fatal answers,
back-off, failover, status and exit codes. A counting forwarder in front of the server
counts the update requests that really arrive."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tests.client.conftest import (
    ClientProcess,
    CountingProxy,
    HomingServer,
    free_port,
    run_client,
    write_config,
)


async def _setup(
    tmp_path: Path,
    make_server: Callable[..., HomingServer],
    proxy_factory: Callable[..., object],
) -> tuple[HomingServer, CountingProxy, str, str]:
    server = make_server()
    fqdn, secret = server.new_host("cam")
    server.start()
    proxy = await proxy_factory(("127.0.0.1", server.http_port))  # type: ignore[operator]
    assert isinstance(proxy, CountingProxy)
    return server, proxy, fqdn, secret


def _address_file(tmp_path: Path, address: str) -> str:
    path = tmp_path / "address.txt"
    path.write_text(address + "\n")
    return f"command:cat {path}"


async def test_cache_prevents_a_second_update_after_restart(
    tmp_path: Path, make_server: Callable[..., HomingServer], proxy_factory: Callable[..., object],
    start_client: Callable[..., object],
) -> None:  # fmt: skip
    server, proxy, fqdn, secret = await _setup(tmp_path, make_server, proxy_factory)
    host = {"name": fqdn, "secret": secret, "ipv4": _address_file(tmp_path, "192.0.2.7"),
            "allow_private": True, "min_interval": 0}  # fmt: skip
    config = write_config(tmp_path / "client.toml", servers=[proxy.url], hosts=[host])

    code, out, err = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert (code, out.strip()) == (0, f"{fqdn}: good 192.0.2.7"), err
    assert proxy.updates() == 1
    assert await server.resolve(fqdn) == ["192.0.2.7"]
    state = (tmp_path / "cache" / "state.json").read_text()
    assert '"ipv4": "192.0.2.7"' in state
    assert not list((tmp_path / "cache").glob(".state-*"))  # no temp file left behind

    # A second run with the same address sends nothing (a nochg would count toward abuse).
    code, out, err = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert (code, out.strip()) == (0, f"{fqdn}: up to date (192.0.2.7)"), err
    assert proxy.updates() == 1

    # The daemon, restarted, also trusts its cache ...
    client = await start_client(config)  # type: ignore[operator]
    assert isinstance(client, ClientProcess)
    await client.wait_for(rf"{re.escape(fqdn)}: up to date \(192\.0\.2\.7, registered ")
    assert proxy.updates() == 1
    assert await client.stop() == 0
    assert client.count(r"stopping \(SIGTERM\)") == 1

    # ... and a different address is sent at once.
    _address_file(tmp_path, "192.0.2.8")
    code, out, err = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert (code, out.strip()) == (0, f"{fqdn}: good 192.0.2.8"), err
    assert proxy.updates() == 2
    assert await server.resolve(fqdn) == ["192.0.2.8"]


async def test_fatal_answer_stops_the_host_until_its_config_changes(
    tmp_path: Path, make_server: Callable[..., HomingServer], proxy_factory: Callable[..., object],
) -> None:  # fmt: skip
    server, proxy, fqdn, secret = await _setup(tmp_path, make_server, proxy_factory)
    source = _address_file(tmp_path, "192.0.2.20")
    host = {"name": fqdn, "secret": "not-the-secret", "ipv4": source, "allow_private": True,
            "min_interval": 0}  # fmt: skip
    config = write_config(tmp_path / "client.toml", servers=[proxy.url], hosts=[host])

    code, out, _ = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert (code, out.strip()) == (3, f"{fqdn}: badauth: wrong user name or password")
    assert proxy.updates() == 1

    code, out, _ = await run_client("status", "--config", str(config), cwd=tmp_path)
    assert code == 3
    assert "status   ERR 0x80008002  wrong user name or password (badauth)" in out
    assert "updates stopped until the host's configuration changes" in out

    # Stopped, even for a new address, and across restarts: no request reaches the server.
    _address_file(tmp_path, "192.0.2.21")
    for _ in range(2):
        code, out, _ = await run_client("once", "--config", str(config), cwd=tmp_path)
        assert code == 3
        assert "stopped after badauth" in out
    assert proxy.updates() == 1
    assert await server.resolve(fqdn) == []

    # Fixing the configuration lifts the stop.
    config = write_config(
        tmp_path / "client.toml", servers=[proxy.url], hosts=[host | {"secret": secret}]
    )
    code, out, _ = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert (code, out.strip()) == (0, f"{fqdn}: good 192.0.2.21")
    assert proxy.updates() == 2
    code, out, _ = await run_client("status", "--config", str(config), cwd=tmp_path)
    assert code == 0 and "status   ACT" in out and "192.0.2.21" in out


async def test_dvr_protocol_and_its_error_codes(
    tmp_path: Path, make_server: Callable[..., HomingServer], proxy_factory: Callable[..., object],
) -> None:  # fmt: skip
    server, proxy, fqdn, secret = await _setup(tmp_path, make_server, proxy_factory)
    source = _address_file(tmp_path, "192.0.2.30")
    base = {"ipv4": source, "allow_private": True, "min_interval": 0, "protocol": "dvr"}
    unknown = {"name": f"nobody.{fqdn.split('.', 1)[1]}", "secret": "x" * 16} | base
    config = write_config(
        tmp_path / "client.toml",
        servers=[proxy.url],
        hosts=[{"name": fqdn, "secret": secret} | base, unknown],
    )
    code, out, _ = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert code == 3
    assert f"{fqdn}: ACT 192.0.2.30" in out
    assert f"{unknown['name']}: ERR 0x80008001: no such host, or not yours" in out
    assert await server.resolve(fqdn) == ["192.0.2.30"]
    assert proxy.paths.count("/dvr/update") == 2
    code, out, _ = await run_client("status", "--config", str(config), cwd=tmp_path)
    assert code == 3
    assert re.search(rf"{re.escape(fqdn)} \(dvr\)\n  status   ACT", out)
    assert "status   ERR 0x80008001  no such host, or not yours\n" in out


async def test_failover_reaches_the_secondary_when_the_primary_is_down(
    tmp_path: Path, make_server: Callable[..., HomingServer], proxy_factory: Callable[..., object],
) -> None:  # fmt: skip
    server, proxy, fqdn, secret = await _setup(tmp_path, make_server, proxy_factory)
    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    host = {"name": fqdn, "secret": secret, "ipv4": _address_file(tmp_path, "192.0.2.40"),
            "allow_private": True}  # fmt: skip
    config = write_config(tmp_path / "client.toml", servers=[closed, proxy.url], hosts=[host])
    code, out, err = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert (code, out.strip()) == (0, f"{fqdn}: good 192.0.2.40"), err
    assert f"unreachable from {closed}" in err and f"trying {proxy.url}" in err
    assert proxy.updates() == 1
    assert await server.resolve(fqdn) == ["192.0.2.40"]
    code, out, _ = await run_client("status", "--config", str(config), cwd=tmp_path)
    assert code == 0 and f"good via {proxy.url}" in out


def _stamp(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


async def test_backoff_spaces_retries_against_a_closed_port(
    tmp_path: Path, start_client: Callable[..., object]
) -> None:
    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    host = {"name": "cam.dyn.example.net", "secret": "s" * 16, "allow_private": True,
            "ipv4": _address_file(tmp_path, "192.0.2.50"), "min_interval": 0,
            "retry_initial": 0.2, "retry_max": 0.8}  # fmt: skip
    config = write_config(tmp_path / "client.toml", servers=[closed], hosts=[host])
    client = await start_client(config)  # type: ignore[operator]
    assert isinstance(client, ClientProcess)
    attempts: list[float] = []
    delays: list[float] = []
    index = 0
    for n in range(1, 6):
        # Each attempt logs its failure from the server, then (after the client's cache
        # is saved, which can take a while on a busy disk) when it will retry: the
        # backoff counts from the attempt, so the attempt's own line is the stamp.
        attempt, line = await client.wait_for(r"unreachable from http://", start=index)
        attempts.append(_stamp(line))
        index, line = await client.wait_for(rf"unreachable: .*; retry {n} in ", start=attempt)
        delays.append(float(re.search(r"retry \d+ in ([\d.]+)s", line).group(1)))  # type: ignore[union-attr]
        index += 1
    await client.stop()
    # the schedule: half to all of min(0.8, 0.2 * 2**(n-1))
    for n, delay in enumerate(delays, start=1):
        step = min(0.8, 0.2 * 2 ** (n - 1))
        assert step / 2 <= delay <= step, (n, delays)
    # the attempts really were spaced that way
    for n in range(1, len(attempts)):
        gap = attempts[n] - attempts[n - 1]
        assert delays[n - 1] - 0.05 <= gap <= delays[n - 1] + 0.5, (n, attempts, delays)
    assert (tmp_path / "cache" / "state.json").exists()
    code, out, _ = await run_client("status", "--config", str(config), cwd=tmp_path)
    assert code == 4 and "status   RETRY  unreachable" in out


async def test_bad_configuration_exits_1_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "client.toml"
    config.write_text('cache_dir = "c"\n[[server]]\nurl = "ftp://x"\n')
    code, out, err = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert code == 1
    assert err.strip().splitlines() == [
        f"homing client: {config}: [[server]] #1: url is not a http:// or https:// or dns:// "
        "URL (got 'ftp://x')"
    ]
    code, _, err = await run_client(
        "status", "--config", str(tmp_path / "absent.toml"), cwd=tmp_path
    )
    assert code == 1 and "cannot read" in err
    config.write_text(
        'cache_dir = "c"\n[[server]]\nurl = "http://127.0.0.1:9"\n'
        '[[host]]\nname = "a.example.net"\nsecret = "s"\nprotocol = "rfc2136"\nipv4 = "web"\n'
    )
    code, _, err = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert code == 1 and "hmac-sha256:NAME:BASE64SECRET" in err


async def test_sighup_rereads_the_config_and_resumes_a_stopped_host(
    tmp_path: Path, make_server: Callable[..., HomingServer], proxy_factory: Callable[..., object],
    start_client: Callable[..., object],
) -> None:  # fmt: skip
    server, proxy, fqdn, secret = await _setup(tmp_path, make_server, proxy_factory)
    host = {"name": fqdn, "secret": "wrong-secret", "allow_private": True,
            "ipv4": _address_file(tmp_path, "192.0.2.60"), "min_interval": 0}  # fmt: skip
    config = write_config(tmp_path / "client.toml", servers=[proxy.url], hosts=[host])
    client = await start_client(config)  # type: ignore[operator]
    assert isinstance(client, ClientProcess)
    await client.wait_for(rf"{re.escape(fqdn)}: badauth from .*updates stopped")
    write_config(tmp_path / "client.toml", servers=[proxy.url], hosts=[host | {"secret": secret}])
    os.kill(client.process.pid, signal.SIGHUP)
    await client.wait_for("configuration reloaded")
    await client.wait_for(rf"{re.escape(fqdn)}: good 192\.0\.2\.60 ")
    assert proxy.updates() == 2
    assert await server.resolve(fqdn) == ["192.0.2.60"]
    assert await client.stop() == 0


async def test_rfc2136_updates_homing_with_the_hosts_tsig_key(
    tmp_path: Path, make_server: Callable[..., HomingServer]
) -> None:
    """The client's signed DNS UPDATE against the real server; a wrong key stops the host."""
    server = make_server()
    fqdn, _ = server.new_host("ns-cam")
    key = server.cli("key", "add", "ns-cam-key", "--host", fqdn).strip().splitlines()[-1]
    server.start()
    dns_url = f"dns://127.0.0.1:{server.dns_port}"
    host = {"name": fqdn, "secret": key, "protocol": "rfc2136", "allow_private": True,
            "ipv4": _address_file(tmp_path, "192.0.2.70"), "min_interval": 0}  # fmt: skip
    config = write_config(tmp_path / "client.toml", servers=[dns_url], hosts=[host])
    code, out, err = await run_client("once", "--config", str(config), cwd=tmp_path)
    assert (code, out.strip()) == (0, f"{fqdn}: NOERROR 192.0.2.70"), err
    assert await server.resolve(fqdn) == ["192.0.2.70"]

    algorithm, name, secret = key.split(":")
    wrong = f"{algorithm}:{name}:{'A' * len(secret)}"
    other = tmp_path / "wrong"
    other.mkdir()
    bad = write_config(
        other / "client.toml",
        servers=[dns_url],
        hosts=[host | {"secret": wrong, "ipv4": _address_file(other, "192.0.2.71")}],
    )
    code, out, _ = await run_client("once", "--config", str(bad), cwd=other)
    assert code == 3, out
    assert await server.resolve(fqdn) == ["192.0.2.70"]
