"""`homing serve --workers N`: N processes share the DNS and HTTP ports (SO_REUSEPORT).

The parent starts the workers, prints READY once all of them are listening, restarts
one that dies, and stops them all on SIGTERM/SIGINT. Worker 0 also sends NOTIFYs and
ages groups, so that work is done once. After each commit a worker wakes the others'
journal followers with a datagram on a Unix socket, so every worker answers a change
within milliseconds instead of at its next poll. The sockets live in Linux's abstract
namespace (a file path is limited to 107 bytes, which a deep data directory exceeds);
each worker lists its socket's name in `{data_dir}/run/worker-PID.sock` for the others. Each worker
also writes how many DNS messages it answered, and how many answers response rate
limiting held back, to `{data_dir}/run/queries-PID` about once a second, so any of
them can tell the totals (`queries_answered`, `answers_limited`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

WORKER_ENV = "HOMING_WORKER_INDEX"  # set by the parent for each worker it starts
READY_TIMEOUT = 600.0  # a worker loads every zone first: 1M hosts took over a minute
STOP_TIMEOUT = 20.0
RESTARTS_PER_MINUTE = 5
COUNT_INTERVAL = 1.0  # seconds between a worker's writes of its DNS query count
# A count file not rewritten for this long belongs to a worker that was killed.
COUNT_STALE = 10 * COUNT_INTERVAL


_NOTIFY = b"N"  # a SiblingWake datagram: a NOTIFY for the zone named after it


def worker_index() -> int | None:
    """This process's worker number, or None when it is not one of several workers."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value and value.isdigit() else None


class SiblingWake(asyncio.DatagramProtocol):
    """A Unix datagram socket per worker: `poke()` after a commit, `on_wake` when poked;
    `notify(zone)` hands a NOTIFY one worker accepted to the others (`on_notify`)."""

    def __init__(
        self,
        run_dir: Path,
        on_wake: Callable[[], None],
        on_notify: Callable[[str], None] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.on_wake = on_wake
        self.on_notify = on_notify
        self.path = run_dir / f"worker-{os.getpid()}.sock"  # holds the socket's name
        self._transport: asyncio.DatagramTransport | None = None
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)

    async def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A socket of our own: uvloop takes no Unix address as a local address.
        digest = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:32]
        address = b"\0homing-" + digest.encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(address)
        sock.setblocking(False)
        partial = self.path.with_suffix(".partial")
        partial.write_bytes(address)
        partial.replace(self.path)  # whole, or not there
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self._transport = transport

    def datagram_received(self, data: bytes, addr: object) -> None:
        if data.startswith(_NOTIFY):
            if self.on_notify is not None:
                self.on_notify(data[len(_NOTIFY) :].decode("ascii", "replace"))
            return
        self.on_wake()

    def poke(self, _emitted: object = None) -> None:
        """Wake every other worker (a db.on_commit hook)."""
        self._send(b"!")

    def notify(self, zone: str) -> None:
        """Tell the other workers that a NOTIFY for `zone` was accepted here."""
        self._send(_NOTIFY + zone.encode("ascii", "replace"))

    def _send(self, message: bytes) -> None:
        """To every other worker; a gone worker's socket is removed."""
        for path in self.run_dir.glob("worker-*.sock"):
            if path == self.path:
                continue
            try:
                self._sender.sendto(message, path.read_bytes())
            except BlockingIOError:
                pass  # its queue is full: it has a wake-up pending already
            except OSError:  # refused, or gone, or a socket file an older version left
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # its worker is gone

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._sender.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _count_path(run_dir: Path, pid: int) -> Path:
    return run_dir / f"queries-{pid}"


async def publish_query_count(
    run_dir: Path, count: Callable[[], int], limited: Callable[[], int] = lambda: 0
) -> None:
    """Write `count()` and `limited()` to this worker's file every COUNT_INTERVAL until
    cancelled."""
    path = _count_path(run_dir, os.getpid())
    try:
        while True:
            # A few bytes once a second: not worth a thread.
            _write_count(path, f"{count()} {limited()}")
            await asyncio.sleep(COUNT_INTERVAL)  # a periodic job: there is no event to wait for
    finally:
        _remove_count(path)


def _write_count(path: Path, value: str) -> None:
    spare = path.with_name(path.name + ".new")
    path.parent.mkdir(parents=True, exist_ok=True)
    spare.write_text(value)
    os.replace(spare, path)  # written aside and renamed: a reader never sees half a number


def _remove_count(path: Path) -> None:
    for gone in (path, path.with_name(path.name + ".new")):
        with contextlib.suppress(FileNotFoundError):
            gone.unlink()


def queries_answered(run_dir: Path) -> int:
    """DNS messages answered by this process (live) and by the other workers (as they
    last wrote it, at most COUNT_INTERVAL ago). Without --workers: this process's alone.

    `run_dir` is `{data_dir}/run`. A rate is the difference of two readings; it can drop
    when a worker restarts.
    """
    from homing.dns.server import query_count  # the DNS stack only when asked

    return query_count() + _others(run_dir, 0)


def answers_limited(run_dir: Path) -> int:
    """UDP answers response rate limiting dropped or truncated, in this process and (as
    they last wrote it) in the other workers."""
    from homing.dns.server import limited_count

    return limited_count() + _others(run_dir, 1)


def _others(run_dir: Path, field: int) -> int:
    """The sum of one field of the other workers' count files that are fresh."""
    total = 0
    now = time.time()
    for path in run_dir.glob("queries-*"):
        pid = path.name.removeprefix("queries-")
        if not pid.isdigit() or int(pid) == os.getpid():
            continue  # ours, or a file being written
        try:
            if now - path.stat().st_mtime > COUNT_STALE:
                continue
            fields = path.read_text().split()
            total += int(fields[field]) if field < len(fields) else 0
        except (OSError, ValueError):
            continue  # its worker just went away, or wrote something we cannot read
    return total


class _Worker:
    def __init__(self, index: int, argv: list[str]) -> None:
        self.index = index
        self.argv = argv
        self.process: subprocess.Popen[bytes] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.started_at = 0.0

    def start(self, changed: threading.Event) -> None:
        """Start the process; `changed` is set when it exits."""
        env = {**os.environ, WORKER_ENV: str(self.index)}
        process = subprocess.Popen(self.argv, env=env, stdout=subprocess.PIPE)
        self.process = process
        self.started_at = time.monotonic()
        self.lines = queue.Queue()
        assert process.stdout is not None
        threading.Thread(target=_pump, args=(process.stdout, self.lines), daemon=True).start()

        def watch() -> None:
            process.wait()
            changed.set()

        threading.Thread(target=watch, daemon=True).start()

    def await_ready(self, deadline: float) -> bool:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                return False
            if line is None:
                return False
            if line.startswith("READY"):
                return True
        return False


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    for raw in stream:
        lines.put(raw.decode(errors="replace"))
    lines.put(None)


def supervise(count: int, ready_line: str) -> int:
    """Run `count` workers of `homing serve` until a signal; the process's exit code."""
    argv = [sys.executable, "-m", "homing", "serve"]
    workers = [_Worker(i, argv) for i in range(count)]
    changed = threading.Event()  # a signal came or a worker exited
    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True
        changed.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    for worker in workers:
        worker.start(changed)
    deadline = time.monotonic() + READY_TIMEOUT
    if not all(worker.await_ready(deadline) for worker in workers):
        log.error("not every worker started; stopping")
        _stop_all(workers)
        return 1
    print(ready_line, flush=True)
    restarts: list[float] = []
    while True:
        changed.wait()
        changed.clear()
        if stopping:
            break
        for worker in workers:
            assert worker.process is not None
            code = worker.process.poll()
            if code is None:
                continue
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < 60] + [now]
            if len(restarts) > RESTARTS_PER_MINUTE:
                log.error("workers keep dying (last: %d, exit %s); stopping", worker.index, code)
                _stop_all(workers)
                return 1
            log.warning("worker %d exited with %s; restarting it", worker.index, code)
            worker.start(changed)
            worker.await_ready(time.monotonic() + READY_TIMEOUT)
    _stop_all(workers)
    return 0


def _stop_all(workers: list[_Worker]) -> None:
    running = [w.process for w in workers if w.process is not None and w.process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
