"""The service's own HTTPS certificate by ACME: `homing serve` with HOMING_ACME_DIRECTORY
gets it from a real CA (Debian's pebble, validating DNS-01 against homing's own DNS),
serves it, and renews it when it is near expiry, the reloader serving the new one."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from homing.config import Settings
from homing.service import owncert
from homing.store.db import Database
from tests.e2e.conftest import LOOPBACK, ZONE, Server, module_server
from tests.pebble import Ports, running, self_signed

NAME = f"ddns.{ZONE}"
WAIT = 120.0  # seconds for an issuance (or a renewal) to be served, on a loaded machine

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, bytes]]:
    """homing with its own certificate from pebble (renewed at every check: "near expiry"
    is anything under ten years), pebble, and pebble's root certificate."""
    base = tmp_path_factory.mktemp("owncert")
    for part in ("pebble", "homing", "tls"):
        (base / part).mkdir()
    ca, _cert = self_signed(base / "pebble")  # pebble's HTTPS, trusted by homing
    ports = Ports.free()  # homing is told the directory before pebble starts
    tls = base / "tls"
    settings = {
        "HOMING_ACME_DIRECTORY": f"https://{LOOPBACK}:{ports.acme}/dir",
        "HOMING_ACME_EMAIL": "operator@example.org",
        "HOMING_ACME_CA_FILE": str(ca),
        "HOMING_TLS_NAMES": json.dumps([NAME]),
        "HOMING_TLS_CERT_FILE": str(tls / "cert.pem"),
        "HOMING_TLS_KEY_FILE": str(tls / "key.pem"),
        "HOMING_TLS_RELOAD_INTERVAL": "0.2",
        "HOMING_ACME_CHECK_INTERVAL": "1",
        "HOMING_ACME_RENEW_BEFORE": str(10 * 365 * 86400),
    }
    with (
        module_server(base / "homing", **settings) as server,
        running(base / "pebble", server.dns_port, ports) as pebble,
    ):
        server.ensure_zone(ZONE)  # until the name's zone exists, attempts fail and retry
        verify = ssl.create_default_context(cafile=pebble.ca)
        root = httpx.get(f"{pebble.management}/roots/0", verify=verify)
        assert root.status_code == 200
        yield server, tls, root.content


def _served_certificate(server: Server, root: bytes) -> x509.Certificate | None:
    """The certificate homing's HTTPS port presents for NAME, if it verifies against
    pebble's root (None while the placeholder is served)."""
    context = ssl.create_default_context(cadata=root.decode())
    try:
        with (
            socket.create_connection((LOOPBACK, server.http_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=NAME) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError:
        return None
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _await_served(
    server: Server, root: bytes, unlike: x509.Certificate | None = None
) -> x509.Certificate:
    """Until HTTPS serves a certificate from pebble (other than `unlike`), bounded."""
    deadline = time.monotonic() + WAIT
    while True:
        cert = _served_certificate(server, root)
        if cert is not None and (unlike is None or cert.serial_number != unlike.serial_number):
            return cert
        assert server.running, server.stderr_text()
        assert time.monotonic() < deadline, server.stderr_text()[-3000:]
        time.sleep(0.2)  # issuance happens in homing and pebble: no event reaches the test


def test_serve_gets_its_certificate_and_renews_it(served: tuple[Server, Path, bytes]) -> None:
    server, tls, root = served
    first = _await_served(server, root)
    san = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [NAME]
    assert stat.S_IMODE((tls / "key.pem").stat().st_mode) == 0o600
    # The service answers over it, verified against pebble's root for its name.
    verify = ssl.create_default_context(cadata=root.decode())
    with httpx.Client(verify=verify) as client:
        url = f"https://{LOOPBACK}:{server.http_port}/checkip"
        answer = client.request("GET", url, extensions={"sni_hostname": NAME})
    assert answer.status_code == 200 and f"Current IP Address: {LOOPBACK}<" in answer.text
    # Renewal: the next check finds it "near expiry", a new one replaces the files and
    # the reloader serves it, with no restart.
    second = _await_served(server, root, unlike=first)
    assert second.issuer == first.issuer  # pebble's intermediate, not a placeholder
    assert server.running


def test_placeholder_then_renewal_reasons(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        acme_directory="https://ca.invalid/dir",
        tls_names=[NAME],
        tls_cert_file=tmp_path / "cert.pem",
        tls_key_file=tmp_path / "key.pem",
    )
    plan = owncert.Plan.from_settings(settings)
    assert plan is not None
    now = datetime.datetime.now(datetime.UTC)
    assert owncert.renewal_reason(plan, now) is not None  # no file
    assert owncert.ensure_placeholder(plan) is True
    assert owncert.ensure_placeholder(plan) is False  # a pair is there: kept
    assert stat.S_IMODE(plan.key.stat().st_mode) == 0o600
    assert owncert.renewal_reason(plan, now) == "the placeholder is served"
    key = serialization.load_pem_private_key(plan.key.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(plan.cert.read_bytes())
    assert cert.public_key() == key.public_key()


def test_with_workers_the_leader_gets_it_and_every_worker_serves_it(
    served: tuple[Server, Path, bytes],
) -> None:
    """From no files: the workers share one placeholder, worker 0 asks the CA, and every
    worker's reloader serves what it wrote, renewals included."""
    server, tls, root = served
    server.stop()
    for name in ("cert.pem", "key.pem"):
        (tls / name).unlink()
    server.args = ("--workers", "2")
    server.start()
    first = _await_served(server, root)
    renewed = _await_served(server, root, unlike=first)
    # Whichever worker the kernel hands a connection, it presents a certificate of
    # pebble's, none of them the placeholder (a renewal may land between two).
    for _ in range(12):
        cert = _served_certificate(server, root)
        assert cert is not None and cert.issuer == renewed.issuer
    assert stat.S_IMODE((tls / "key.pem").stat().st_mode) == 0o600


class _Warnings(logging.Handler):
    """Sets `enough` once `count` warnings came: the retries are awaited, not slept on."""

    def __init__(self, count: int) -> None:
        super().__init__(logging.WARNING)
        self.count = count
        self.messages: list[str] = []
        self.enough = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if len(self.messages) >= self.count:
            self.enough.set()


async def test_failures_are_logged_and_retried(tmp_path: Path) -> None:
    """A name in no zone of ours (looked at before the CA, which does not even listen,
    is asked): each attempt fails, is logged and tried again; the loop never ends by
    itself and the placeholder stays."""
    closed = Ports.free().acme  # nothing listens there
    settings = Settings(
        data_dir=tmp_path,
        acme_directory=f"https://{LOOPBACK}:{closed}/dir",
        tls_names=[NAME],
        tls_cert_file=tmp_path / "cert.pem",
        tls_key_file=tmp_path / "key.pem",
        acme_check_interval=0.05,  # the retry waits at most this long
    )
    plan = owncert.Plan.from_settings(settings)
    assert plan is not None
    owncert.ensure_placeholder(plan)
    placeholder = plan.cert.read_bytes()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'homing.db'}")
    await db.migrate()  # no zone: the name cannot be proved here
    caught = _Warnings(3)
    logger = logging.getLogger(owncert.__name__)
    logger.addHandler(caught)
    task = asyncio.create_task(owncert.run(db, plan))
    try:
        await asyncio.wait_for(caught.enough.wait(), 60)
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logger.removeHandler(caught)
        await db.close()
    assert all(m.startswith("ACME certificate not obtained, retrying") for m in caught.messages)
    assert any("is in no zone served here" in m for m in caught.messages)
    assert plan.cert.read_bytes() == placeholder


def test_settings_refuse_what_cannot_work(tmp_path: Path) -> None:
    files = {"tls_cert_file": tmp_path / "c.pem", "tls_key_file": tmp_path / "k.pem"}
    with pytest.raises(ValueError, match="needs tls_cert_file"):
        Settings(acme_directory="https://ca.example/dir", tls_names=[NAME])
    with pytest.raises(ValueError, match="must start with https://"):
        Settings(acme_directory="http://ca.example/dir", tls_names=[NAME], **files)
    with pytest.raises(ValueError, match="is not a host name"):
        Settings(acme_directory="https://ca.example/dir", tls_names=["not a name"], **files)
    settings = Settings(
        data_dir=tmp_path,
        acme_directory="https://ca.example/dir",
        tls_names=["DDNS.dyn.example.net.", f"*.{NAME}"],
        **files,
    )
    plan = owncert.Plan.from_settings(settings)
    assert plan is not None and plan.names == (NAME, f"*.{NAME}")
