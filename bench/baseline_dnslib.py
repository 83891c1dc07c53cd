"""The straightforward Python DNS server the issue compares against: dnslib on asyncio.

    python bench/baseline_dnslib.py --zone FILE --origin bench.example.net --port 5300

Loads the benchmark zone (one record per line, as bench/zonegen.py writes it) into a dict
and answers A/AAAA with NXDOMAIN/NODATA (SOA in authority) by parsing every query with
dnslib and packing every reply. Prints READY once listening. Only as a baseline.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import cast

from dnslib import QTYPE, RCODE, RR, DNSRecord


def load(path: Path, origin: str) -> tuple[dict[str, dict[int, list[RR]]], RR]:
    """Owner (lower case, with final dot) -> type -> records; and the SOA."""
    names: dict[str, dict[int, list[RR]]] = {}
    soa: RR | None = None
    default_ttl = 3600
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(";"):
            continue
        if fields[0] == "$TTL":
            default_ttl = int(fields[1])
            continue
        if fields[0].startswith("$"):
            continue
        owner = fields[0]
        fqdn = f"{origin}." if owner == "@" else f"{owner}.{origin}."
        rest = fields[1:]
        ttl = int(rest.pop(0)) if rest[0].isdigit() else default_ttl
        if rest[0] == "IN":
            rest.pop(0)
        text = f"{fqdn} {ttl} IN {' '.join(rest)}"
        for record in RR.fromZone(text):
            names.setdefault(fqdn.lower(), {}).setdefault(record.rtype, []).append(record)
            if record.rtype == QTYPE.SOA:
                soa = record
    if soa is None:
        raise SystemExit(f"{path}: no SOA")
    return names, soa


class Protocol(asyncio.DatagramProtocol):
    def __init__(self, names: dict[str, dict[int, list[RR]]], soa: RR, origin: str) -> None:
        self.names = names
        self.soa = soa
        self.suffix = f"{origin}.".lower()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return
        reply = request.reply()
        qname = str(request.q.qname).lower()
        if not qname.endswith(self.suffix):
            reply.header.rcode = RCODE.REFUSED
            reply.header.aa = 0
        else:
            node = self.names.get(qname)
            if node is None:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(self.soa)
            else:
                records = node.get(request.q.qtype)
                if records:
                    for record in records:
                        reply.add_answer(record)
                else:
                    reply.add_auth(self.soa)
        assert self.transport is not None
        self.transport.sendto(reply.pack(), addr)


async def serve(args: argparse.Namespace) -> None:
    names, soa = load(args.zone, args.origin)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Protocol(names, soa, args.origin), local_addr=("127.0.0.1", args.port)
    )
    print(f"READY dnslib {len(names)} names on 127.0.0.1:{args.port}", flush=True)
    try:
        await asyncio.Event().wait()  # until SIGTERM ends the process
    finally:
        transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zone", type=Path, required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
