"""`homing zone add/set --auto-ptr` and `homing key add --zone --zone --grant` as an operator
runs them: what they print, and one-line refusals that change nothing."""

from __future__ import annotations

from tests.test_cli import env, homing, ok, refused

__all__ = ["env"]  # the fixture, shared with test_cli.py

REV = "2.0.192.in-addr.arpa"


def test_auto_ptr_on_and_off(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", "dyn.example.net"))
    ok(homing(env, "user", "add", "alice", "--email", "a@example.org", "--password-stdin",
              stdin="correct horse battery\n"))  # fmt: skip
    ok(homing(env, "host", "add", "cam.dyn.example.net", "--owner", "alice"))
    ok(homing(env, "zone", "add", REV))
    assert "auto-ptr on, 0 PTRs written" in ok(homing(env, "zone", "set", REV, "--auto-ptr", "on"))
    assert "auto-ptr off" in ok(homing(env, "zone", "set", REV, "--auto-ptr", "off"))
    refused(homing(env, "zone", "set", REV, "--auto-ptr", "maybe"), "on or off")
    refused(homing(env, "zone", "set", "dyn.example.net", "--auto-ptr", "on"), "not a reverse zone")
    refused(homing(env, "zone", "add", "x.example.net", "--auto-ptr"), "not a reverse zone")
    assert "x.example.net" not in ok(homing(env, "zone", "list"))


def test_key_over_two_zones_with_grants(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", "lan.example.net"))
    ok(homing(env, "zone", "add", REV))
    out = ok(
        homing(
            env, "key", "add", "dhcp", "--zone", "lan.example.net", "--zone", REV,
            "--grant", "subdomain lan.example.net A DHCID", "--grant", f"subdomain {REV} PTR DHCID",
        )
    )  # fmt: skip
    first, secret = out.strip().splitlines()
    assert f"zone lan.example.net, {REV}" in first
    assert "subdomain lan.example.net A DHCID" in first
    assert secret.startswith("hmac-sha256:dhcp:")
    refused(
        homing(
            env, "key", "add", "k2", "--zone", "lan.example.net", "--grant", "subdomain x.org A"
        ),
        "in none of the key's zones",
    )
    refused(homing(env, "key", "add", "dhcp", "--zone", REV), "exists")
    help_text = ok(homing(env, "key", "add", "--help"))
    assert "--grant" in help_text and "subdomain NAME" in help_text
