"""HTTPS from a certificate and key on disk, picked up again when either file changes."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

log = logging.getLogger(__name__)


def _stamp(*paths: Path) -> tuple[tuple[int, int], ...] | None:
    try:
        return tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    except OSError:
        return None


class CertificateReloader:
    """Swaps the certificate chain of a live SSLContext: new handshakes get the new one,
    connections already open keep theirs. A pair that does not load (a renewal caught
    half written, a key that does not match) is logged and the old one kept."""

    def __init__(self, context: ssl.SSLContext, cert: Path, key: Path, interval: float) -> None:
        self.context = context
        self.cert = cert
        self.key = key
        self.interval = interval
        self.loaded = _stamp(cert, key)
        self.reloads = 0

    def check(self) -> bool:
        """Load the pair again if either file changed since the last load; True if it did."""
        stamp = _stamp(self.cert, self.key)
        if stamp is None or stamp == self.loaded:
            return False
        try:
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            log.warning("TLS certificate %s not reloaded, the old one stays: %s", self.cert, exc)
            self.loaded = stamp  # tried once; the next change is tried again
            return False
        self.loaded = stamp
        self.reloads += 1
        log.info("TLS certificate %s reloaded", self.cert)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)  # files have no event to await portably
            self.check()
