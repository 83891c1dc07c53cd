"""The Mailer against a real SMTP server on loopback (aiosmtpd), and into the log."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from homing.config import Settings
from homing.service.context import Homing
from homing.service.mail import Mailer, MailError, compose
from tests.mailserver import ThrowawayCA, smtp_server, throwaway_ca

BODY = "Follow https://homing.test/reset/abc to choose a new password.\n"


def mailer_for(port: int, **more: object) -> Mailer:
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, mail_from="ops@homing.test", **more)
    return Mailer.from_settings(settings)


async def test_a_mail_arrives_at_the_smtp_server_with_its_headers() -> None:
    with smtp_server() as server:
        await mailer_for(server.port).send("ann@example.org", "Reset your password", BODY)
        mail = await server.inbox.next()
        assert server.inbox.envelopes == [("ops@homing.test", ["ann@example.org"])]
    assert mail["From"] == "ops@homing.test"
    assert mail["To"] == "ann@example.org"
    assert mail["Subject"] == "Reset your password"
    assert mail["Message-ID"] and mail["Date"]
    assert mail.get_content() == BODY


async def test_non_ascii_subject_and_body_survive_the_trip() -> None:
    with smtp_server() as server:
        await mailer_for(server.port).send("zoë@example.org", "Grüße — ça va", "Grüße\n")
        mail = await server.inbox.next()
    assert mail["Subject"] == "Grüße — ça va"
    assert mail.get_content() == "Grüße\n"


def login_mailer(port: int, ca: ThrowawayCA, password: str) -> Mailer:
    """STARTTLS with the test CA, then AUTH as "relay"."""
    return mailer_for(
        port,
        smtp_user="relay",
        smtp_password=password,
        smtp_starttls=True,
        smtp_ca_file=ca.ca_file,
    )


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCA:
    return throwaway_ca(tmp_path)


async def test_starttls_and_login_with_the_configured_credentials(ca: ThrowawayCA) -> None:
    with smtp_server(credentials=("relay", "s3cret"), tls=ca) as server:
        await login_mailer(server.port, ca, "s3cret").send("ann@example.org", "hello", BODY)
        assert (await server.inbox.next())["To"] == "ann@example.org"


async def test_implicit_tls(ca: ThrowawayCA) -> None:
    with smtp_server(tls=ca, implicit_tls=True) as server:
        await mailer_for(server.port, smtp_tls=True, smtp_ca_file=ca.ca_file).send(
            "ann@example.org", "hello", BODY
        )
        assert (await server.inbox.next())["To"] == "ann@example.org"


async def test_a_certificate_the_mailer_does_not_trust_is_a_mail_error(ca: ThrowawayCA) -> None:
    with smtp_server(tls=ca) as server:  # the system's store knows nothing of the test CA
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
            await mailer_for(server.port, smtp_starttls=True).send("ann@example.org", "hi", BODY)
        assert server.inbox.mails == []


async def test_a_server_that_requires_starttls_refuses_a_plain_mailer(ca: ThrowawayCA) -> None:
    with smtp_server(tls=ca) as server:
        with pytest.raises(MailError):
            await mailer_for(server.port).send("ann@example.org", "hi", BODY)
        assert server.inbox.mails == []


async def test_wrong_credentials_are_a_mail_error_that_does_not_show_the_password(
    ca: ThrowawayCA,
) -> None:
    with smtp_server(credentials=("relay", "s3cret"), tls=ca) as server:
        mailer = login_mailer(server.port, ca, "wrong-one")
        with pytest.raises(MailError) as caught:
            await mailer.send("ann@example.org", "hello", BODY)
        assert server.inbox.mails == []
    assert "wrong-one" not in str(caught.value)
    assert "wrong-one" not in repr(mailer.server)


async def test_a_refused_recipient_is_a_mail_error() -> None:
    with smtp_server() as server:
        server.inbox.refuse.add("nobody@example.org")
        with pytest.raises(MailError, match="nobody@example.org"):
            await mailer_for(server.port).send("nobody@example.org", "hello", BODY)
        assert server.inbox.mails == []


async def test_no_server_listening_is_a_mail_error() -> None:
    with socket.socket() as s:  # a port bound but not listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(MailError, match=f"127.0.0.1:{port}"):
            await mailer_for(port).send("ann@example.org", "hello", BODY)


@pytest.mark.parametrize(
    "to", ["", "ann", "ann@", "@example.org", "a@b@c", "ann@example.org\r\nBcc: eve@example.org"]
)
async def test_a_bad_recipient_is_refused_before_any_connection(to: str) -> None:
    with smtp_server() as server:
        with pytest.raises(MailError, match="recipient"):
            await mailer_for(server.port).send(to, "hello", BODY)
        assert server.inbox.mails == []


async def test_a_subject_with_a_line_break_is_refused() -> None:
    with pytest.raises(MailError, match="one line"):
        compose("ops@homing.test", "ann@example.org", "hi\r\nBcc: eve@example.org", BODY)


async def test_without_smtp_host_the_mail_is_one_log_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailer = Homing(Settings(), db=None).mailer  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="homing.mail"):
        await mailer.send("ann@example.org", "Reset your password", BODY)
    records = [r for r in caplog.records if r.name == "homing.mail"]
    assert len(records) == 1
    text = records[0].getMessage()
    assert "ann@example.org" in text and "Reset your password" in text and BODY in text


async def test_bad_mail_settings_are_refused_with_a_clear_reason() -> None:
    with pytest.raises(ValidationError, match="exclude each other"):
        Settings(smtp_host="127.0.0.1", smtp_starttls=True, smtp_tls=True)
    with pytest.raises(ValidationError, match="go together"):
        Settings(smtp_host="127.0.0.1", smtp_user="relay")
    with pytest.raises(ValidationError, match="mail_from"):
        Settings(mail_from="not an address")


def test_the_settings_never_print_the_smtp_password() -> None:
    settings = Settings(smtp_host="127.0.0.1", smtp_user="relay", smtp_password="s3cret")
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
