"""Outgoing mail: through the operator's SMTP server, or into the log when none is set.

The message is built without I/O (`compose`); `Mailer.send` hands it to smtplib in a
worker thread so a slow relay never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email import errors
from email.headerregistry import Address
from email.message import EmailMessage

from homing.config import Settings

log = logging.getLogger("homing.mail")


class MailError(Exception):
    """A mail could not be built or handed to the SMTP server."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False  # implicit TLS from the first byte (port 465 style)
    ca_file: str | None = None  # trust this CA instead of the system's (a private relay)
    timeout: float = 10.0

    # A dataclass repr would print the password into tracebacks and logs.
    def __repr__(self) -> str:
        return f"SmtpServer({self.host}:{self.port}, user={self.user!r})"


def _address(text: str, what: str) -> Address:
    text = text.strip()
    try:
        if any(c in text for c in "\r\n") or text.count("@") != 1:
            raise ValueError("one address, one line")
        local, domain = text.split("@")
        # The parser refuses a non-ASCII local part that SMTPUTF8 servers carry fine.
        address = (
            Address(addr_spec=text) if local.isascii() else Address(username=local, domain=domain)
        )
        if not address.username or not address.domain:
            raise ValueError("needs a name and a domain")
    except (ValueError, IndexError, errors.HeaderParseError) as exc:
        raise MailError(f"{what} is not a mail address: {text!r}") from exc
    return address


def compose(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """The message as it goes on the wire; MailError for an address or header that cannot be."""
    if any(c in subject for c in "\r\n"):
        raise MailError("a subject is one line")
    message = EmailMessage()
    message["From"] = _address(sender, "mail_from")
    message["To"] = _address(to, "recipient")
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


class Mailer:
    """Sends one mail at a time; `send` returns once the server accepted it."""

    def __init__(self, sender: str, server: SmtpServer | None) -> None:
        _address(sender, "mail_from")  # a bad sender fails at start-up, not at the first mail
        self.sender = sender
        self.server = server

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        server = None
        if settings.smtp_host:
            server = SmtpServer(
                host=settings.smtp_host,
                port=settings.smtp_port,
                user=settings.smtp_user,
                password=(
                    settings.smtp_password.get_secret_value() if settings.smtp_password else None
                ),
                starttls=settings.smtp_starttls,
                tls=settings.smtp_tls,
                timeout=settings.smtp_timeout,
                ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
            )
        return cls(settings.mail_from, server)

    async def send(self, to: str, subject: str, body: str) -> None:
        """Deliver one mail; raises MailError when it was not accepted."""
        message = compose(self.sender, to, subject, body)
        if self.server is None:
            # The operator chose no SMTP server: the log is the mailbox.
            log.info("mail to %s, subject %r (no smtp_host set):\n%s", to, subject, body)
            return
        await asyncio.to_thread(_deliver, self.server, message)


def _deliver(server: SmtpServer, message: EmailMessage) -> None:
    try:
        # The system's trust store checks the relay's certificate and name unless the
        # operator names the CA of a private relay.
        context = ssl.create_default_context(cafile=server.ca_file)
        smtp: smtplib.SMTP
        if server.tls:
            smtp = smtplib.SMTP_SSL(
                server.host,
                server.port,
                timeout=server.timeout,
                context=context,
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
        with smtp:
            if server.starttls:
                smtp.starttls(context=context)
            if server.user is not None and server.password is not None:
                smtp.login(server.user, server.password)
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        # smtplib's messages name the server's answer, never our credentials.
        raise MailError(f"SMTP {server.host}:{server.port}: {exc}") from exc
    if refused:
        raise MailError(f"SMTP {server.host}:{server.port} refused {', '.join(refused)}")
