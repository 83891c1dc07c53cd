"""Instructions per update of the real `homing serve` under callgrind.

    python bench/callgrind_updates.py                       # 6 connections, 300 rounds
    python bench/callgrind_updates.py --src /other/checkout/src --conc 1 --rounds 900
    python bench/callgrind_updates.py --postgres     # PostgreSQL on 127.0.0.1 (homing's side)

Wall-clock figures drift with the machine (up to 35% within half an hour here);
instructions counted by `valgrind --tool=callgrind` do not. The server (uvicorn, uvloop
and both of its threads) runs under valgrind; `--conc` keep-alive connections each send
one `/nic/update` per round (a new address every time) and wait for all the answers. The
counters are zeroed after the warm-up rounds (`callgrind_control -z`) and dumped after
the measured ones, and the total is divided by the updates between. The journal
follower's and the courier's polls are set to an hour and the hash seed is fixed, so
what is counted is the updates; identical runs agree within about 1.5% (how a round's
requests fall into batches depends on timing). `--src` measures another checkout's code
with this venv, for an A/B. With `--postgres` the store is a schema of its own in
PostgreSQL (127.0.0.1:5432, database `test`), dropped after the run; only homing's
instructions are counted, not the backends'.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from updates import Host, add_hosts, address, bench_env, cli, drop_schema  # noqa: E402

SRC = Path(__file__).resolve().parent.parent / "src"
TIMEOUT = 600  # seconds for any one step under valgrind


async def rounds(port: int, hosts: list[Host], first: int, count: int) -> None:
    """`count` rounds: one update per host, all sent, then all answers read (`good`)."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in hosts]
    try:
        for round_ in range(first, first + count):
            for i, ((_, writer), host) in enumerate(zip(connections, hosts, strict=True)):
                writer.write(
                    f"GET /nic/update?hostname={host.name}&myip={address(i, round_)} HTTP/1.1\r\n"
                    f"Host: bench\r\nAuthorization: Basic {host.auth}\r\nUser-Agent: cg\r\n\r\n"
                    .encode()
                )  # fmt: skip
            for reader, _ in connections:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
                found = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
                if found is None:
                    raise RuntimeError(f"no content-length: {head!r}")
                body = await reader.readexactly(int(found.group(1)))
                if not body.startswith(b"good"):
                    raise RuntimeError(f"not good: {body!r}")
    finally:
        for _, writer in connections:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conc", type=int, default=6, help="connections, one host each")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--src", type=Path, default=SRC, help="the code to measure")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL on 127.0.0.1")
    parser.add_argument(
        "--keep", type=Path, help="copy the measured callgrind output here (callgrind_annotate)"
    )
    args = parser.parse_args()
    if not (1 <= args.conc <= 100 and 1 <= args.rounds <= 5000 and 0 <= args.warmup <= 500):
        parser.error("--conc in [1, 100], --rounds in [1, 5000], --warmup in [0, 500]")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env, schema = bench_env(tmp, postgres=args.postgres)
        try:
            per_update = measure(env, tmp, args)
        finally:
            if schema:
                drop_schema(schema)
        print(
            f"{args.src}: {per_update / 1000:.1f}k instructions per update "
            f"({'PostgreSQL, ' if args.postgres else ''}{args.conc} connections, "
            f"{args.rounds} rounds)"
        )


def measure(env: dict[str, str], tmp: Path, args: argparse.Namespace) -> float:
    """Instructions per update of one server run under callgrind."""
    cli(env, "zone", "add", "bench.example.net")
    hosts = add_hosts(env, tmp, args.conc)
    env.update(
        PYTHONPATH=str(args.src.resolve()),
        PYTHONHASHSEED="0",
        HOMING_FOLLOW_INTERVAL="3600",
        HOMING_NOTIFY_INTERVAL="3600",
    )
    out = tmp / "callgrind.out"
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, "-m", "homing", "serve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"homing serve did not start: {line!r}")
        port = int(env["HOMING_HTTP_LISTEN"].rsplit(":", 1)[1])
        asyncio.run(rounds(port, hosts, 0, args.warmup))
        zero = ["callgrind_control", "-z", str(server.pid)]
        subprocess.run(zero, check=True, timeout=TIMEOUT, capture_output=True)
        asyncio.run(rounds(port, hosts, args.warmup, args.rounds))
        dump = ["callgrind_control", "-d", str(server.pid)]
        subprocess.run(dump, check=True, timeout=TIMEOUT, capture_output=True)
    finally:
        server.terminate()
        server.wait(timeout=TIMEOUT)
    counted = next(p for p in sorted(tmp.glob("callgrind.out*")) if p.name.endswith(".1"))
    if args.keep:
        shutil.copyfile(counted, args.keep)
    text = counted.read_text(errors="replace")
    found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if found is None:
        raise RuntimeError(f"no totals in {counted}")
    return int(found.group(1)) / (args.conc * args.rounds)


if __name__ == "__main__":
    main()
