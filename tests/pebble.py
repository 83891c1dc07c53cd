"""Debian's pebble (a test ACME CA) on loopback, resolving names (so validating DNS-01)
at one DNS server only: homing's port under test."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import peers

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A CA and a localhost certificate it signed, for pebble's HTTPS listener; the CA's
    and the certificate's paths (its key is key.pem beside them)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homing test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path


@dataclass(frozen=True)
class Pebble:
    directory: str  # the ACME directory URL
    ca: Path  # what its HTTPS (directory and management) verifies against
    management: str  # https://.../ : /roots/0 is the root its certificates chain to


@dataclass(frozen=True)
class Ports:
    """Chosen before the CA starts, so a server can be told its directory first."""

    acme: int
    management: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port())


@contextlib.contextmanager
def running(base: Path, dns_port: int, ports: Ports | None = None) -> Iterator[Pebble]:
    """pebble with its files in `base`, validating against LOOPBACK:dns_port; stopped by PID."""
    program = peers.program("pebble")
    ports = ports or Ports.free()
    ca = base / "ca.pem"
    if not ca.exists():
        self_signed(base)
    config = base / "pebble.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"{LOOPBACK}:{ports.acme}",
                    "managementListenAddress": f"{LOOPBACK}:{ports.management}",
                    "certificate": str(base / "cert.pem"),
                    "privateKey": str(base / "key.pem"),
                    "httpPort": free_port(),
                    "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    # Pebble refuses 5% of good nonces by default, to try a client's retry; certbot 2.1
    # retries once, so two refusals in a row fail a test of homing's DNS at random.
    env = dict(
        os.environ,
        PEBBLE_VA_NOSLEEP="1",
        PEBBLE_VA_ALWAYS_VALID="0",
        PEBBLE_WFE_NONCEREJECT="0",
    )
    log = (base / "pebble.log").open("wb")
    process = subprocess.Popen(
        [program, "-config", str(config), "-dnsserver", f"{LOOPBACK}:{dns_port}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        for port in (ports.acme, ports.management):
            while True:  # pebble prints no ready line of its own: its ports answering is the event
                assert process.poll() is None, (base / "pebble.log").read_text()
                try:
                    socket.create_connection((LOOPBACK, port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "pebble did not listen"
                    time.sleep(0.1)
        yield Pebble(
            f"https://{LOOPBACK}:{ports.acme}/dir", ca, f"https://{LOOPBACK}:{ports.management}"
        )
    finally:
        peers.stop(process, 10)
        log.close()
