"""Freshness benchmark: from `good` to the new answer on homing's DNS and on an NSD secondary.

    python bench/freshness.py --rounds 50 [--postgres]

One host, updated `--rounds` times with a new address through /nic/update. After each
`good` the script asks homing's DNS at once (the design says the index moved before the
answer was sent: the new address must be there, 0 ms) and then polls a real NSD,
configured as a secondary of the zone (NOTIFY from homing, IXFR by address), every
millisecond until it answers the new address (bounded by `--timeout`). Another host's
updates by `--background` closed-loop clients (wrk) can run meanwhile, so the figure
is also taken with the writer busy. Loopback only; NSD is our own process in a temp dir.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import (  # noqa: E402
    cli,
    homing_version,
    load_average,
    record,
    start_server,
    stop_process,
)
from updates import add_hosts, background_load, bench_env, stop_server  # noqa: E402

from tests.e2e.secondaries import Nsd, version_line  # noqa: E402  (the tests' NSD set-up)

ZONE = "bench.example.net"
POLL = 0.001  # seconds between questions to NSD: the figure's resolution


def addresses(port: int, name: str) -> list[str]:
    """A answer of the server on 127.0.0.1:port (no RD), [] on anything else."""
    query = dns.message.make_query(name, "A")
    query.flags = 0
    try:
        answer = dns.query.udp(query, "127.0.0.1", timeout=0.5, port=port)
    except (dns.exception.Timeout, OSError):
        return []
    if answer.rcode() != dns.rcode.NOERROR:
        return []
    return sorted(r.to_text() for rrset in answer.answer for r in rrset)


def wait_until(port: int, name: str, wanted: str, timeout: float) -> float | None:
    """Seconds until the server answers `wanted` for `name`, polling; None at the timeout."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if addresses(port, name) == [wanted]:
            return time.perf_counter() - started
        time.sleep(POLL)  # polling: a secondary tells nobody it loaded a transfer
    return None


def summary(values: list[float], prefix: str) -> dict[str, float]:
    if not values:
        return {f"{prefix}_samples": 0}
    ordered = sorted(values)
    q = (
        statistics.quantiles(ordered, n=100, method="inclusive")
        if len(ordered) > 1
        else [ordered[0]] * 99
    )
    return {
        f"{prefix}_samples": len(ordered),
        f"{prefix}_p50_ms": round(q[49] * 1000, 2),
        f"{prefix}_p90_ms": round(q[89] * 1000, 2),
        f"{prefix}_p99_ms": round(q[98] * 1000, 2),
        f"{prefix}_max_ms": round(ordered[-1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=5.0, help="per round, for NSD")
    parser.add_argument("--background", type=int, default=0, help="wrk clients meanwhile")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 10_000:
        parser.error("--rounds must be in 1..10000")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        nsd = Nsd(tmp / "nsd")
        nsd.directory.mkdir()
        # The zone, with NOTIFY to NSD and transfers allowed to loopback, before the hosts.
        env, schema = bench_env(tmp / "homing", args.postgres)
        cli(env, "zone", "add", ZONE, "--ns", "ns1.example.org",
            "--notify", f"127.0.0.1:{nsd.port}", "--allow-transfer", "127.0.0.1/32")  # fmt: skip
        hosts = add_hosts(env, tmp, 1 + args.background)
        server = start_server(env)
        nsd.configure(ZONE, server.dns_port)
        nsd.start()
        spy = None
        target = hosts[0]
        homing_stale: list[str] = []
        nsd_delays: list[float] = []
        nsd_missed = 0
        load_before = load_average()
        try:
            url = f"http://127.0.0.1:{server.http_port}/nic/update"
            with httpx.Client(auth=(target.name, target.secret), timeout=10) as client:
                first = "192.0.2.1"
                assert client.get(url, params={"myip": first}).text.startswith("good")
                if wait_until(nsd.port, target.name, first, 30) is None:
                    raise RuntimeError(f"NSD never took the zone:\n{nsd.log_text()[-3000:]}")
                if args.background:
                    spy = background_load(server.http_port, hosts[1:], 3600, tmp)
                for n in range(args.rounds):
                    address = f"198.51.100.{n % 250 + 1}" if n % 2 else f"203.0.113.{n % 250 + 1}"
                    body = client.get(url, params={"myip": address}).text.strip()
                    if body != f"good {address}":
                        raise RuntimeError(f"update answered {body!r}")
                    # Asked after `good` was read: 0 ms if the index moved before the answer.
                    got = addresses(server.dns_port, target.name)
                    if got != [address]:
                        homing_stale.append(f"{address}: {got}")
                    delay = wait_until(nsd.port, target.name, address, args.timeout)
                    if delay is None:
                        nsd_missed += 1
                    else:
                        nsd_delays.append(delay)
        finally:
            if spy is not None:
                stop_process(spy)
            nsd.stop()
            stop_server(server, schema)
    record(
        "freshness",
        {
            "backend": "postgresql" if args.postgres else "sqlite",
            "rounds": args.rounds,
            "background_clients": args.background,
            "homing": homing_version(),
            "nsd": version_line("nsd", "-v"),
            "load_before": load_before,
            "load_after": load_average(),
            "homing_fresh_at_good": args.rounds - len(homing_stale),
            "homing_stale": homing_stale[:10],
            "nsd_poll_ms": POLL * 1000,
            "nsd_missed": nsd_missed,
            **summary(nsd_delays, "nsd"),
            "nsd_delays_ms": [round(d * 1000, 2) for d in nsd_delays],
        },
    )


if __name__ == "__main__":
    main()
