"""The long DNS fuzz: a million packets through the in-process wire path, none may crash.

    python bench/fuzz_dns.py [--count 1000000] [--seconds 3600] [--seed 1] [--quick]
    python bench/fuzz_dns.py --atheris [--seconds 600]     # coverage-guided, '.[fuzz]'

Each packet is a mutation of a valid query (bit flips, truncation, lying counts and
lengths, compression pointer loops, many OPT records and options, huge label counts;
tests/fuzz/queries.py), now and then random bytes or a valid query with a random name,
type and case. It goes through the path the transports take (tests/fuzz/wire.py), over
UDP and over TCP, against a store holding the test zone, and every reply is checked as
the CI's fuzz targets check it (tests/fuzz/properties.py). Reported, and each makes the
exit status non-zero:

- crashes: an exception escaping the wire path, or one homing logged as its own bug
  (answered SERVFAIL);
- broken properties: a reply dnspython cannot parse, without the query's ID, over the
  UDP size the query allows without TC, or signed for a query whose MAC did not verify;
  a plain query's reply different from a fresh Responder's (checked every
  --reference-every packets);
- changes: the zone index (its generation after every packet, its contents every 1,000)
  or the store's serials and rows (at the end).

`--quick` is 10,000 packets. The packets are seeded (--seed), so a run repeats; each
failure is printed with its packet in hex and its traceback, the summary is appended to
bench/results/fuzz_dns.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import RESULTS, record  # noqa: E402


def _coverage() -> contextlib.AbstractContextManager[object]:
    """With --atheris, homing's modules are imported instrumented (only those: instrumenting
    everything loaded takes minutes and slows every run)."""
    if "--atheris" not in sys.argv:
        return contextlib.nullcontext()
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install -e '.[fuzz]'")
    return atheris.instrument_imports(include=["homing"])  # type: ignore[no-any-return]


with _coverage():
    from tests.fuzz.properties import check_tcp, check_udp
    from tests.fuzz.queries import mutate, seeds
    from tests.fuzz.wire import (
        ALLOWED_PEER,
        OTHER_PEER,
        BugLogged,
        WirePath,
        client_bytes,
        zone_state,
    )

SHOWN = 20  # failures printed in full; the rest are counted by kind
STATE_EVERY = 1000


@dataclass
class Findings:
    packets: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    shown: list[str] = field(default_factory=list)

    def add(self, kind: str, packet: bytes, detail: str) -> None:
        self.kinds[kind] += 1
        if len(self.shown) < SHOWN:
            self.shown.append(f"--- {kind}: packet {packet.hex()}\n{detail}")

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def _random_query(rng: random.Random) -> bytes:
    """A valid query with a random name (often under the zone), type, class and case."""
    labels = [rng.randbytes(rng.randint(1, 12)) for _ in range(rng.randrange(4))]
    if rng.random() < 0.7:
        labels += [b"dyn", b"example", b"net"]
    labels = [
        bytes(c ^ 0x20 if rng.random() < 0.5 and chr(c).isalpha() else c for c in label)
        for label in labels
    ]
    qname = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
    qtype = rng.choice((1, 28, 15, 16, 5, 6, 2, 255, rng.randrange(65536)))
    qclass = rng.choice((1, 1, 1, 3, 255, rng.randrange(65536)))
    flags = rng.randrange(65536) & 0x07F0
    opt = b""
    if rng.random() < 0.5:
        opt = b"\x00" + struct.pack("!HHBBHH", 41, rng.choice((0, 512, 1232, 4096)), 0, 0, 0, 0)
    header = struct.pack("!HHHHHH", rng.randrange(65536), flags, 1, 0, 0, 1 if opt else 0)
    return header + qname + struct.pack("!HH", qtype, qclass) + opt


def packet(rng: random.Random, pool: list[bytes]) -> bytes:
    roll = rng.random()
    if roll < 0.05:
        return rng.randbytes(rng.randrange(600))
    if roll < 0.15:
        return _random_query(rng)
    return mutate(rng, rng.choice(pool))


def one(path: WirePath, wire: bytes, peer: str, findings: Findings, *, reference: bool) -> None:
    """One packet over UDP and TCP, every check; what fails goes to `findings`."""
    generation = path.index.generation
    try:
        if reference:
            path.exercise(wire, peer)
        else:
            check_udp(wire, path.udp(wire, peer), path.keyring)
            check_tcp(wire, path.tcp_message(wire, peer), path.keyring)
    except BugLogged as exc:
        findings.add("bug logged (answered SERVFAIL)", wire, str(exc))
    except AssertionError as exc:
        findings.add("property", wire, str(exc)[:2000])
    except Exception:
        findings.add("crash", wire, traceback.format_exc())
    if path.index.generation != generation:
        findings.add(
            "zone index changed", wire, f"generation {generation} -> {path.index.generation}"
        )


def run(args: argparse.Namespace) -> int:
    findings = Findings()
    rng = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, WirePath(Path(tmp)) as path:
        pool = seeds(path.keyring, path.cookies, client_bytes(ALLOWED_PEER))
        deadline = started + args.seconds
        for n in range(args.count):
            if time.monotonic() >= deadline:
                break
            wire = packet(rng, pool)
            peer = ALLOWED_PEER if n % 2 else OTHER_PEER
            one(path, wire, peer, findings, reference=n % args.reference_every == 0)
            findings.packets += 1
            if n % STATE_EVERY == 0 and zone_state(path.index) != path.state:
                findings.add(
                    "zone index changed", wire, "contents differ (within the last packets)"
                )
                path.state = zone_state(path.index)
            if args.progress and n and n % args.progress == 0:
                rate = n / (time.monotonic() - started)
                print(f"{n} packets, {rate:.0f}/s, {findings.total} findings", flush=True)
        if not path.store_unchanged():
            findings.add("store changed", b"", "zone serials, journal or RRset rows differ")
    seconds = time.monotonic() - started
    for text in findings.shown:
        print(text)
    result = {
        "engine": "random",
        "seed": args.seed,
        "packets": findings.packets,
        "seconds": round(seconds, 1),
        "packets_per_second": round(findings.packets / seconds),
        "findings": dict(findings.kinds),
    }
    record("fuzz_dns", result)
    if findings.packets < args.count:
        print(f"stopped by --seconds after {findings.packets} of {args.count} packets")
    return 1 if findings.total else 0


def run_atheris(args: argparse.Namespace) -> int:
    """libFuzzer's coverage-guided mutation over the same path and checks: it stops at the
    first failure and leaves the packet in bench/results/fuzz_dns-atheris/crash-*."""
    import atheris

    # The corpus libFuzzer grows and any crash-* file it leaves stay for the next run.
    work = RESULTS / "fuzz_dns-atheris"
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir()
    path = WirePath(store).__enter__()
    for i, wire in enumerate(seeds(path.keyring, path.cookies, client_bytes(ALLOWED_PEER))):
        (corpus / f"seed-{i}").write_bytes(wire)
    findings = Findings()

    def target(data: bytes) -> None:
        one(path, data, ALLOWED_PEER, findings, reference=True)
        if findings.total:
            print("\n".join(findings.shown), file=sys.stderr)
            raise RuntimeError(f"DNS wire path: {dict(findings.kinds)}")

    libfuzzer = [sys.argv[0], str(corpus), f"-max_total_time={int(args.seconds)}"]
    libfuzzer += [f"-runs={args.count}", "-max_len=4096", f"-seed={args.seed}"]
    libfuzzer += [f"-artifact_prefix={work}/"]
    atheris.Setup(libfuzzer, target)
    atheris.Fuzz()  # exits the process when done
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="packets to send")
    parser.add_argument("--seconds", type=float, default=3600.0, help="stop after this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="10,000 packets")
    parser.add_argument(
        "--reference-every",
        type=int,
        default=10,
        help="compare with a fresh Responder (and ask again) every Nth packet",
    )
    parser.add_argument("--progress", type=int, default=50_000, help="a line every N packets")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided, with atheris")
    args = parser.parse_args()
    if args.quick:
        args.count = min(args.count, 10_000)
    if args.reference_every < 1:
        parser.error("--reference-every must be at least 1")
    return run_atheris(args) if args.atheris else run(args)


if __name__ == "__main__":
    sys.exit(main())
