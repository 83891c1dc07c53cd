"""Webhooks connect only to the public address that was checked: names resolving to
internal space, DNS rebinding and addresses hidden inside IPv6 forms are refused."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from homing.service.courier import (
    WEBHOOK_NOT_PUBLIC,
    Courier,
    CourierPolicy,
    DeliveryError,
    Notification,
)
from homing.service.webhooktarget import TargetRefused, refusal, webhook_target
from homing.store.db import Database
from tests.webhooks import Receiver, webhook_receiver

NOTE = Notification("test", "", "alice", datetime(2026, 1, 1, tzinfo=UTC), {"channel": "webhook"})


class NoMail:
    async def send(self, to: str, subject: str, body: str) -> None:
        raise AssertionError("no mail expected")


class Answers:
    """A resolver that gives each call its own answer, the last one repeated: a name
    under an attacker's control answering public to the check, private afterwards."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


def _port(receiver: Receiver) -> int:
    port = httpx.URL(receiver.url).port
    assert port is not None
    return port


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
        "0.0.0.0", "224.0.0.1", "239.1.2.3", "240.0.0.1", "255.255.255.255", "198.18.0.1",
        "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "ff0e::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1", "2002:c0a8:101::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1",
    ],
)  # fmt: skip
def test_internal_and_embedded_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


async def test_a_name_resolving_to_loopback_is_refused_and_nothing_is_sent(
    db: Database, receiver: Receiver
) -> None:
    resolve = Answers(["127.0.0.1"])
    courier = Courier(db, NoMail(), CourierPolicy(), resolve=resolve)
    url = f"http://hook.example.net:{_port(receiver)}/hook"
    with pytest.raises(DeliveryError) as refused:
        await courier.send_webhook(url, None, NOTE)
    assert refused.value.public == WEBHOOK_NOT_PUBLIC
    assert "127.0.0.1" not in refused.value.public
    assert resolve.asked == [("hook.example.net", _port(receiver))]
    assert receiver.requests == []


async def test_one_private_answer_among_public_ones_is_refused() -> None:
    with pytest.raises(TargetRefused, match="10.0.0.7: private"):
        await webhook_target("https://hook.example.net/", Answers(["8.8.8.8", "10.0.0.7"]))


async def test_rebinding_connects_only_to_the_checked_address(db: Database) -> None:
    resolve = Answers(["93.184.216.34"], ["127.0.0.1"])
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    courier = Courier(
        db, NoMail(), CourierPolicy(), transport=httpx.MockTransport(record), resolve=resolve
    )
    assert await courier.send_webhook("https://hook.example.net:8443/in", None, NOTE) == 204
    assert len(resolve.asked) == 1  # resolved once: the check and the connection agree
    [request] = seen
    assert str(request.url) == "https://93.184.216.34:8443/in"
    assert request.headers["host"] == "hook.example.net:8443"
    assert request.extensions["sni_hostname"] == "hook.example.net"


async def test_rebinding_over_real_sockets_reaches_the_first_address(
    db: Database, receiver: Receiver
) -> None:
    # The receiver listens on 127.0.0.1 only; a second resolution would say 127.0.0.2,
    # where nothing listens. The operator allows private targets here, as a LAN would.
    resolve = Answers(["127.0.0.1"], ["127.0.0.2"])
    courier = Courier(db, NoMail(), CourierPolicy(webhook_allow_private=True), resolve=resolve)
    url = f"http://hook.example.net:{_port(receiver)}/hook"
    assert await courier.send_webhook(url, None, NOTE) == 204
    received = await receiver.next()
    assert received.headers["host"] == f"hook.example.net:{_port(receiver)}"
    assert received.path == "/hook"
    assert len(resolve.asked) == 1
