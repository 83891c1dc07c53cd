"""HTTPS served directly from tls_cert_file/tls_key_file, picked up again when replaced;
JSON log lines with log_format = "json"."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography import x509

from tests.e2e.conftest import LOOPBACK, Server

RELOAD_DEADLINE = 15.0


def served_serial(server: Server, ca: trustme.CA) -> int:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with (
        socket.create_connection((LOOPBACK, server.http_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=LOOPBACK) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def issue(ca: trustme.CA, directory: Path) -> int:
    leaf = ca.issue_cert(LOOPBACK)
    # Written as a renewal tool does: the new files replace the old ones.
    for blob, name in ((leaf.private_key_pem, "key.pem"), (leaf.cert_chain_pems[0], "cert.pem")):
        temporary = directory / f"{name}.new"
        blob.write_to_path(str(temporary))
        temporary.replace(directory / name)
    return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).serial_number


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_https_from_files_reloaded_on_change_and_json_logs(
    server: Server, tmp_path: Path
) -> None:
    ca = trustme.CA()
    tls = tmp_path / "tls"
    tls.mkdir()
    first = issue(ca, tls)
    server.stop()
    server.env.update(
        HOMING_TLS_CERT_FILE=str(tls / "cert.pem"),
        HOMING_TLS_KEY_FILE=str(tls / "key.pem"),
        HOMING_TLS_RELOAD_INTERVAL="0.2",
        HOMING_LOG_FORMAT="json",
    )
    server.start()
    with ca.cert_pem.tempfile() as ca_file:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_file)) as http:
            response = await http.get(f"https://{LOOPBACK}:{server.http_port}/healthz")
            assert response.text == "ok\n"
            # Plain HTTP on the same port is no way in.
            with pytest.raises(httpx.HTTPError):
                await http.get(f"http://{LOOPBACK}:{server.http_port}/healthz")
    assert served_serial(server, ca) == first

    second = issue(ca, tls)
    deadline = time.monotonic() + RELOAD_DEADLINE
    while served_serial(server, ca) != second:  # the reload is on a timer: no event
        assert time.monotonic() < deadline, server.stderr_text()[-2000:]
        await asyncio.sleep(0.05)

    # A broken pair (a key that does not match) is refused; the served one stays.
    ca.issue_cert(LOOPBACK).private_key_pem.write_to_path(str(tls / "key.pem"))
    bad_deadline = time.monotonic() + RELOAD_DEADLINE
    while "not reloaded" not in server.stderr_text():  # logged once tried
        assert time.monotonic() < bad_deadline, server.stderr_text()[-2000:]
        await asyncio.sleep(0.05)
    assert served_serial(server, ca) == second

    records = [json.loads(line) for line in server.stderr_path.read_text().splitlines() if line]
    assert any(r["message"].startswith("TLS certificate") and r["level"] == "info"
               for r in records)  # fmt: skip
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
