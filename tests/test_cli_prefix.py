"""homing host add --prefix-of ROUTER --iid IID: a prefix host, or one line and no host."""

from __future__ import annotations

from tests.test_cli import env, homing, ok, refused

__all__ = ["env"]  # the fixture, used by name


def test_prefix_host_add_and_refusals(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", "dyn.example.net", "--ns", "ns1.example.net"))
    for user in ("alice", "bob"):
        ok(homing(env, "user", "add", user, "--email", f"{user}@example.org",
                  "--password-stdin", stdin="correct horse battery\n"))  # fmt: skip
    ok(homing(env, "host", "add", "router.dyn.example.net", "--owner", "alice"))
    ok(homing(env, "host", "add", "bobs.dyn.example.net", "--owner", "bob"))

    pc = ["host", "add", "pc.dyn.example.net", "--owner", "alice"]
    refused(homing(env, *pc, "--prefix-of", "router.dyn.example.net"), "go together")
    refused(
        homing(env, *pc, "--prefix-of", "router.dyn.example.net", "--iid", "1::1"),
        "longer than the host part",
    )
    refused(homing(env, *pc, "--prefix-of", "bobs.dyn.example.net", "--iid", "::1"), "no host")
    refused(homing(env, *pc, "--prefix-of", "router.dyn.example.net", "--iid", "x"), "interface")
    out = ok(homing(env, *pc, "--prefix-of", "router.dyn.example.net", "--iid", "::5"))
    assert out.strip().splitlines()[-1]  # the secret, on the last line as always
    # Only the last attempt made a host: the name is taken now, and was free before.
    refused(homing(env, *pc), "taken")
