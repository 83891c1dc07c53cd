"""A real SMTP server on loopback (aiosmtpd) whose accepted mails the tests can read."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

MAIL_WAIT = 15.0


@dataclass
class Inbox:
    """Mails the server accepted, in order; `next()` waits for the next one."""

    mails: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # recipients answered 550
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _taken: int = 0

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        mail = message_from_bytes(raw, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        with self._arrived:
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
            self.mails.append(mail)
            self._arrived.notify_all()
        return "250 Message accepted"

    def _wait(self, timeout: float) -> EmailMessage:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.mails) > self._taken, timeout):
                raise AssertionError(f"no mail arrived within {timeout}s")
            self._taken += 1
            return self.mails[self._taken - 1]

    async def next(self) -> EmailMessage:
        """The next mail not yet taken, waiting (at most MAIL_WAIT) for the server to accept it."""
        return await asyncio.to_thread(self._wait, MAIL_WAIT)


@dataclass
class MailServer:
    host: str
    port: int
    inbox: Inbox


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ThrowawayCA:
    """A throw-away certificate authority and a certificate for 127.0.0.1 signed by it."""

    ca_file: Path
    server_context: ssl.SSLContext


def throwaway_ca(directory: Path) -> ThrowawayCA:
    ca = trustme.CA()
    ca_file = directory / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return ThrowawayCA(ca_file, context)


@contextmanager
def smtp_server(
    credentials: tuple[str, str] | None = None,
    tls: ThrowawayCA | None = None,
    implicit_tls: bool = False,
) -> Iterator[MailServer]:
    """aiosmtpd on 127.0.0.1.

    With `tls`, STARTTLS is offered and required (or, with `implicit_tls`, TLS from the
    first byte); with `credentials` as well, AUTH PLAIN/LOGIN is required after it.
    """
    inbox = Inbox()
    extra: dict[str, Any] = {}
    if tls is not None:
        if implicit_tls:
            extra["ssl_context"] = tls.server_context
        else:
            extra.update(tls_context=tls.server_context, require_starttls=True)
    if credentials is not None:
        assert tls is not None, "AUTH goes over TLS"

        def authenticate(
            server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            given = (data.login.decode(), data.password.decode())
            ok = isinstance(data, LoginPassword) and given == credentials
            return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

        extra.update(authenticator=authenticate, auth_required=True)
    controller = Controller(
        inbox, hostname="127.0.0.1", port=_free_port(), enable_SMTPUTF8=True, **extra
    )
    controller.start()
    try:
        yield MailServer("127.0.0.1", controller.port, inbox)
    finally:
        controller.stop()
