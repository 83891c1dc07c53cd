"""Response rate limiting measured: one source floods, another asks at a modest rate.

    python bench/rrl.py [--rate 50000] [--seconds 5] [--quick]

Starts `homing serve` with response rate limiting at its defaults (200 answers per
second per /24, slip 2: every other answer over the rate goes out empty with TC) and
one zone. Source A (127.0.0.1) sends `--rate` queries per second for `--seconds`;
source B (127.0.1.1, another /24) sends `--other` per second at the same time. Each
source's answers are counted, full and truncated; A's full answers may not exceed the
rate in any of the server's one-second windows (so at most rate x (seconds + 1) in all),
its truncated ones are about half of the rest, and B must get every answer. The figures
go to bench/results/rrl.jsonl. Bounded: the run stops after `--seconds` plus a second
to collect the last answers.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import cli, free_port, homing_env, record, start_server  # noqa: E402

ZONE = "rrl.example"
RATE = 200  # HOMING_RRL_RATE's default
SLIP = 2
SOURCE_A = "127.0.0.1"
SOURCE_B = "127.0.1.1"  # another /24 of loopback
TICK = 0.001  # the flood is sent in bursts of rate x TICK queries
_TC = 0x0200


def query(ident: int) -> bytes:
    """An SOA query for the zone with EDNS (1232), as a resolver asks it."""
    name = b"".join(bytes([len(label)]) + label.encode() for label in ZONE.split(".")) + b"\0"
    header = struct.pack("!HHHHHH", ident, 0, 1, 0, 0, 1)
    opt = b"\0" + struct.pack("!HHBBHH", 41, 1232, 0, 0, 0, 0)
    return header + name + struct.pack("!HH", 6, 1) + opt


def udp(source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((source, 0))
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket, counts: dict[str, int], per_second: list[int], start: float) -> None:
    while True:
        try:
            reply = sock.recv(4096)
        except BlockingIOError:
            return
        if len(reply) < 12:
            continue
        if struct.unpack_from("!H", reply, 2)[0] & _TC:
            counts["truncated"] += 1
        else:
            counts["full"] += 1
            second = int(time.monotonic() - start)
            while len(per_second) <= second:
                per_second.append(0)
            per_second[second] += 1


def run(port: int, rate: int, other: int, seconds: float) -> dict[str, object]:
    a, b = udp(SOURCE_A), udp(SOURCE_B)
    target = ("127.0.0.1", port)
    wires = [query(i) for i in range(65536)]
    counts_a = {"sent": 0, "send_failed": 0, "full": 0, "truncated": 0}
    counts_b = {"sent": 0, "send_failed": 0, "full": 0, "truncated": 0}
    per_second_a: list[int] = []
    per_second_b: list[int] = []
    burst = max(1, round(rate * TICK))
    start = time.monotonic()
    next_b = start
    stop = start + seconds
    while (now := time.monotonic()) < stop:
        due = int((now - start) * rate) - counts_a["sent"] - counts_a["send_failed"]
        for _ in range(min(due, burst * 4)):
            try:
                a.sendto(wires[counts_a["sent"] & 0xFFFF], target)
                counts_a["sent"] += 1
            except BlockingIOError:
                counts_a["send_failed"] += 1
        if now >= next_b:
            b.sendto(wires[counts_b["sent"] & 0xFFFF], target)
            counts_b["sent"] += 1
            next_b += 1 / other
        drain(a, counts_a, per_second_a, start)
        drain(b, counts_b, per_second_b, start)
        if due <= 0:
            time.sleep(TICK / 2)  # ahead of the schedule: nothing to send yet
    elapsed = time.monotonic() - start
    settle = time.monotonic() + 1.0  # answers still on their way
    while time.monotonic() < settle:
        drain(a, counts_a, per_second_a, start)
        drain(b, counts_b, per_second_b, start)
        time.sleep(0.01)
    a.close()
    b.close()
    limited = counts_a["sent"] - counts_a["full"]
    return {
        "offered_per_second": round(counts_a["sent"] / elapsed),
        "seconds": round(elapsed, 2),
        "flooder": counts_a,
        "flooder_full_per_second": per_second_a,
        "flooder_full_bound": RATE * (int(elapsed) + 2),
        "flooder_truncated_share_of_limited": round(counts_a["truncated"] / limited, 3)
        if limited
        else None,
        "other": counts_b,
        "other_answered_share": round(counts_b["full"] / counts_b["sent"], 4)
        if counts_b["sent"]
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=50_000, help="queries per second from A")
    parser.add_argument("--other", type=int, default=100, help="queries per second from B")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="10k q/s for 2 s: does it work")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds = 10_000, 2.0
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the server has core 0
    with tempfile.TemporaryDirectory(prefix="homing-rrl-") as tmp:
        env = homing_env(
            Path(tmp),
            free_port(),
            free_port(),
            HOMING_RRL_RATE=str(RATE),
            HOMING_RRL_SLIP=str(SLIP),
        )
        cli(env, "zone", "add", ZONE, "--ns", f"ns1.{ZONE}")
        server = start_server(env)
        try:
            result = run(server.dns_port, args.rate, args.other, args.seconds)
        finally:
            server.stop()
    flooder = result["flooder"]
    assert isinstance(flooder, dict)
    result["holds"] = (
        flooder["full"] <= result["flooder_full_bound"]  # type: ignore[operator]
        and result["other_answered_share"] == 1.0
    )
    record("rrl", {"rrl_rate": RATE, "rrl_slip": SLIP, **result})


if __name__ == "__main__":
    main()
