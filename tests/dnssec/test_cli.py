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
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "off"), "key roll is under way")
    assert "unsigned" in ok(homing(env, "zone", "set", ZONE, "--dnssec", "off", "--now"))
    refused(homing(env, "zone", "ds", ZONE), "not signed")


def test_turning_off_asks_the_parent_and_says_what_comes_next(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns1.example.org", "--dnssec"))
    out = ok(homing(env, "zone", "set", ZONE, "--dnssec", "off"))
    assert "unsigning" in out and "CDS and CDNSKEY DELETE" in out and "--now" in out
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "off"), "being unsigned already")
    refused(homing(env, "zone", "roll", ZONE, "--ksk"), "being unsigned")
    assert "DELETE withdrawn" in ok(homing(env, "zone", "set", ZONE, "--dnssec", "on"))
    ok(homing(env, "zone", "set", ZONE, "--dnssec", "off"))
    assert "unsigned" in ok(homing(env, "zone", "set", ZONE, "--dnssec", "off", "--now"))


def test_parent_servers_and_the_parents_ds(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", "example.org", "--ns", "ns1.example.org=192.0.2.53"))
    ok(homing(env, "zone", "add", "dyn.example.org", "--ns", "ns1.example.org", "--dnssec"))
    out = ok(homing(env, "zone", "set", "dyn.example.org", "--parent-ns", "127.0.0.1:5300",
                    "--parent-ns", "2001:db8::53"))  # fmt: skip
    assert "127.0.0.1:5300, [2001:db8::53]:53" in out
    refused(homing(env, "zone", "set", "dyn.example.org", "--parent-ns", "ns1.example.org"),
            "not ADDRESS[:PORT]")  # fmt: skip
    refused(homing(env, "zone", "set", "dyn.example.org", "--parent-ns", "127.0.0.1:99999"),
            "port")  # fmt: skip
    refused(homing(env, "zone", "set", "dyn.example.org", "--now"), "--dnssec off")
    assert "none" in ok(homing(env, "zone", "set", "dyn.example.org", "--parent-ns", ""))
    (ds,) = ok(homing(env, "zone", "ds", "dyn.example.org")).splitlines()
    ok(homing(env, "zone", "delegate", "example.org", "dyn.example.org",
              "--ns", "ns1.example.org", "--ds", ds))  # fmt: skip
    refused(homing(env, "zone", "delegate", "example.org", "dyn.example.org",
                   "--ns", "ns1.example.org", "--ds", "1 2 3"), "not a DS record")  # fmt: skip
    refused(homing(env, "zone", "delegate", "example.org", "dyn.example.org",
                   "--ns", "ns1.example.org", "--ds", ds.replace("dyn.", "other.")),
            "not dyn.example.org")  # fmt: skip
    ok(homing(env, "zone", "delegate", "example.org", "dyn.example.org",
              "--ns", "ns1.example.org", "--no-ds"))  # fmt: skip


def test_bad_values_are_refused_in_one_line(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns1.example.org"))
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "maybe"), "on or off")
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "on", "--dnssec-algorithm", "rsamd5"),
            "unknown DNSSEC algorithm")  # fmt: skip
    refused(homing(env, "zone", "set", ZONE, "--dnssec", "off"), "not signed")
    refused(homing(env, "zone", "ds", ZONE), "not signed")
    refused(homing(env, "zone", "roll", ZONE), "--zsk or --ksk")
    refused(homing(env, "zone", "add", ZONE, "--exist-ok", "--dnssec"), "use homing zone set")
