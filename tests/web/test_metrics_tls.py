"""/metrics tells when the served HTTPS certificate expires, and sees a renewal at once."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from homing.config import Settings
from homing.service import owncert
from homing.service.context import Homing
from homing.store.db import Database
from tests.pebble import self_signed
from tests.web.conftest import client_for
from tests.web.test_metrics import counted

NAME = "homing_tls_certificate_expiry_timestamp_seconds"


def _expiry(path: Path) -> float:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.timestamp()


async def test_certificate_expiry_follows_the_file(db: Database, tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    _ca, cert = self_signed(tmp_path / "first")
    settings = Settings(tls_cert_file=cert, tls_key_file=tmp_path / "first" / "key.pem")
    async with client_for(Homing(settings, db), "127.0.0.1") as client:
        text = (await client.get("/metrics")).text
        assert counted(text, NAME) == _expiry(cert)
        # A renewal replaces the file: the next scrape has the new date.
        renewed = tmp_path / "renewed.pem"
        renewed.write_bytes(owncert.self_signed(["ddns.example.net"], days=90)[0])
        renewed.replace(cert)
        text = (await client.get("/metrics")).text
        assert counted(text, NAME) == _expiry(cert) > _expiry(tmp_path / "first" / "ca.pem")
        cert.unlink()  # no file: no figure, and the scrape still answers
        answer = await client.get("/metrics")
        assert answer.status_code == 200 and NAME not in answer.text


async def test_no_certificate_no_figure(db: Database) -> None:
    async with client_for(Homing(Settings(), db), "127.0.0.1") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200 and NAME not in answer.text
