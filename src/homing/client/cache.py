"""The on-disk cache: each host's state, in one JSON file, replaced atomically."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from homing.client.policy import HostState, LastResult, Stopped
from homing.domain.addresses import AddressSet

log = logging.getLogger(__name__)

FILE_NAME = "state.json"
VERSION = 1


class CacheError(Exception):
    """The cache directory cannot be written."""


def state_to_json(state: HostState) -> dict[str, Any]:
    return {
        "ipv4": str(state.registered.ipv4) if state.registered.ipv4 else None,
        "ipv6": str(state.registered.ipv6) if state.registered.ipv6 else None,
        "registered_at": state.registered_at,
        "last_attempt_at": state.last_attempt_at,
        "failures": state.failures,
        "retry_at": state.retry_at,
        "stopped": (
            {
                "code": state.stopped.code,
                "meaning": state.stopped.meaning,
                "config_hash": state.stopped.config_hash,
            }
            if state.stopped
            else None
        ),
        "last": (
            {
                "code": state.last.code,
                "meaning": state.last.meaning,
                "status": state.last.status,
                "at": state.last.at,
                "server": state.last.server,
                "addresses": state.last.addresses,
            }
            if state.last
            else None
        ),
    }


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def state_from_json(data: dict[str, Any]) -> HostState:
    """Parse one host's entry; raises (KeyError, TypeError, ValueError) on a damaged one."""
    texts = [t for t in (data.get("ipv4"), data.get("ipv6")) if t]
    stopped = data.get("stopped")
    last = data.get("last")
    return HostState(
        # What the server took: a local address is here only because it was allowed then.
        registered=AddressSet.parse(texts, allow_local=True) if texts else AddressSet(),
        registered_at=_number(data.get("registered_at")),
        last_attempt_at=_number(data.get("last_attempt_at")),
        failures=int(data.get("failures") or 0),
        retry_at=_number(data.get("retry_at")),
        stopped=(
            Stopped(str(stopped["code"]), str(stopped["meaning"]), str(stopped["config_hash"]))
            if stopped
            else None
        ),
        last=(
            LastResult(
                code=str(last["code"]),
                meaning=str(last["meaning"]),
                status=str(last.get("status", "")),
                at=float(last["at"]),
                server=str(last.get("server", "")),
                addresses=str(last.get("addresses", "")),
            )
            if last
            else None
        ),
    )


class Cache:
    """`cache_dir/state.json`: {"version": 1, "hosts": {name: state}}."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME

    def load(self) -> dict[str, HostState]:
        """Every host's state; a missing file is an empty cache, a damaged entry is dropped
        with a warning (the worst case is one extra update)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cache %s is unreadable (%s); starting afresh", self.path, exc)
            return {}
        hosts = raw.get("hosts") if isinstance(raw, dict) else None
        if not isinstance(hosts, dict):
            log.warning("cache %s has no hosts table; starting afresh", self.path)
            return {}
        states: dict[str, HostState] = {}
        for name, entry in hosts.items():
            try:
                states[str(name)] = state_from_json(entry)
            except Exception as exc:  # damaged entry: any parse error means "forget it"
                log.warning("cache entry for %s is damaged (%s); forgetting it", name, exc)
        return states

    def save(self, states: dict[str, HostState]) -> None:
        """Write all states: temp file in the same directory, fsync, rename, fsync the dir."""
        payload = json.dumps(
            {"version": VERSION, "hosts": {n: state_to_json(s) for n, s in sorted(states.items())}},
            indent=1,
            sort_keys=True,
        ).encode()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.directory)
        except OSError as exc:
            raise CacheError(f"cannot write the cache in {self.directory}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise CacheError(f"cannot write the cache {self.path}: {exc}") from exc
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def check_writable(self) -> None:
        """Fail early (at start) rather than after the first update."""
        self.save(self.load())
