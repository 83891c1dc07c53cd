"""The signing commands as an operator runs them: what they print, one-line refusals that
change nothing."""

from __future__ import annotations

from tests.test_cli import homing, ok, refused

ZONE = "signed.example"


def test_a_zone_added_signed_prints_its_ds_and_turns_off(env: dict[str, str]) -> None:
    out = ok(homing(env, "zone", "add", ZONE, "--ns", "ns1.example.org", "--dnssec",
                    "--dnssec-algorithm", "ed25519"))  # fmt: skip
    assert f"zone {ZONE}: signed (1 key" in out and f"homing zone ds {ZONE}" in out
    (ds,) = ok(homing(env, "zone", "ds", ZONE)).splitlines()
    assert ds.startswith(f"{ZONE}. IN DS ") and " 15 2 " in ds
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "on"), "signed already")
    refused(homing(env, "zone", "roll", ZONE, "--zsk"), "combined key")
    out = ok(homing(env, "zone", "roll", ZONE, "--ksk"))
    assert "ksk roll started" in out and len([x for x in out.splitlines() if " IN DS " in x]) == 2
    refused(homing(env, "zone", "roll", ZONE, "--ksk"), "--step")
    assert "unsigned" in ok(homing(env, "zone", "set", ZONE, "--dnssec", "off"))
    refused(homing(env, "zone", "ds", ZONE), "not signed")


def test_bad_values_are_refused_in_one_line(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns1.example.org"))
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "maybe"), "on or off")
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "on", "--dnssec-algorithm", "rsamd5"),
            "unknown DNSSEC algorithm")  # fmt: skip
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "off"), "not signed")
    refused(homing(env, "zone", "ds", ZONE), "not signed")
    refused(homing(env, "zone", "roll", ZONE), "--zsk or --ksk")
    refused(homing(env, "zone", "add", ZONE, "--exist-ok", "--dnssec"), "use homing zone set")
