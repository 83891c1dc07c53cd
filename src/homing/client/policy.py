"""When to update: pure functions over a host's remembered state and the observed addresses.

`decide(state, observed, now, rules)` answers Update, Wait or Halt; `record(...)` folds an
update's result into the state. Times are wall-clock seconds (they are persisted).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace

from homing.client.protocol import Result, Verdict
from homing.domain.addresses import AddressSet, IPAddress


@dataclass(frozen=True)
class Rules:
    """A host's timing rules (from its configuration)."""

    config_hash: str
    force_interval: float = 25 * 86400.0
    min_interval: float = 10.0
    retry_initial: float = 30.0
    retry_max: float = 1800.0


@dataclass(frozen=True)
class LastResult:
    """The last answer, for the status screen."""

    code: str
    meaning: str
    status: str  # ACT / ERR 0x8000800N, empty when no server answered
    at: float
    server: str = ""
    addresses: str = ""


@dataclass(frozen=True)
class Stopped:
    """A fatal answer stopped this host; it stays stopped while its config hash matches."""

    code: str
    meaning: str
    config_hash: str


@dataclass(frozen=True)
class HostState:
    """What the client remembers about one host (persisted in the cache)."""

    registered: AddressSet = AddressSet()
    registered_at: float | None = None
    last_attempt_at: float | None = None
    failures: int = 0
    retry_at: float | None = None
    stopped: Stopped | None = None
    last: LastResult | None = None

    def for_config(self, config_hash: str) -> HostState:
        """The state as it applies to this configuration: a changed config lifts a stop
        and forgets the back-off, keeping the registered address."""
        if self.stopped is None or self.stopped.config_hash == config_hash:
            return self
        return replace(self, stopped=None, failures=0, retry_at=None)


@dataclass(frozen=True)
class Update:
    addresses: AddressSet
    reason: str


@dataclass(frozen=True)
class Wait:
    """Nothing to do before `until` (None: until an address changes)."""

    until: float | None
    reason: str


@dataclass(frozen=True)
class Halt:
    reason: str


Action = Update | Wait | Halt


def _differs(observed: AddressSet, registered: AddressSet) -> bool:
    """A family we observe now that is not registered as such. A family we cannot observe
    right now is left alone (dyndns2 cannot delete a record)."""
    return (observed.ipv4 is not None and observed.ipv4 != registered.ipv4) or (
        observed.ipv6 is not None and observed.ipv6 != registered.ipv6
    )


def decide(state: HostState, observed: AddressSet, now: float, rules: Rules) -> Action:
    """What to do for one host now."""
    if state.stopped is not None and state.stopped.config_hash == rules.config_hash:
        return Halt(
            f"stopped after {state.stopped.code} ({state.stopped.meaning}) "
            "until its configuration changes"
        )
    if not observed:
        return Wait(None, "no usable address observed")
    if _differs(observed, state.registered):
        reason = f"address is {observed.to_text()}, registered {state.registered.to_text() or '-'}"
    elif state.registered_at is None or now >= state.registered_at + rules.force_interval:
        reason = "forced refresh"
    else:
        return Wait(state.registered_at + rules.force_interval, "up to date")
    not_before = 0.0
    if state.retry_at is not None:
        not_before = state.retry_at
    if state.last_attempt_at is not None:
        not_before = max(not_before, state.last_attempt_at + rules.min_interval)
    if now < not_before:
        why = (
            "backing off"
            if state.retry_at is not None and state.retry_at >= not_before
            else ("minimum interval")
        )
        return Wait(not_before, f"{reason}; {why}")
    return Update(observed, reason)


def backoff_delay(failures: int, initial: float, maximum: float, jitter: float) -> float:
    """Delay before retry number `failures` (1 = first retry): exponential, capped, jittered.

    `jitter` in [0, 1) picks a point in the upper half of the step ("equal jitter"), so
    retries from many clients spread out but never come sooner than half the step."""
    step = min(maximum, initial * 2.0 ** max(0, min(failures, 64) - 1))
    return step / 2.0 + step / 2.0 * min(max(jitter, 0.0), 1.0)


def record(
    state: HostState,
    sent: AddressSet,
    result: Result,
    now: float,
    rules: Rules,
    jitter: float,
    server: str = "",
) -> HostState:
    """The state after the update that sent `sent` ended with `result` (the last server's)."""
    last = LastResult(
        code=result.code,
        meaning=result.meaning,
        status=result.status,
        at=now,
        server=server,
        addresses=sent.to_text(),
    )
    if result.verdict is Verdict.OK:
        registered = AddressSet(
            ipv4=sent.ipv4 if sent.ipv4 is not None else state.registered.ipv4,
            ipv6=sent.ipv6 if sent.ipv6 is not None else state.registered.ipv6,
        )
        return HostState(registered=registered, registered_at=now, last_attempt_at=now, last=last)
    if result.verdict is Verdict.FATAL:
        stopped = Stopped(result.code, result.meaning, rules.config_hash)
        return replace(state, last_attempt_at=now, stopped=stopped, last=last, retry_at=None)
    failures = state.failures + 1
    delay = backoff_delay(failures, rules.retry_initial, rules.retry_max, jitter)
    if result.verdict is Verdict.RETRY:
        delay = max(delay, rules.min_interval)
    return replace(state, last_attempt_at=now, failures=failures, retry_at=now + delay, last=last)


def choose(candidates: Sequence[IPAddress], registered: IPAddress | None) -> IPAddress | None:
    """The address to publish among an interface's usable ones: keep the registered one while
    it is still there (no needless update when a second address comes), else the first."""
    if registered is not None and registered in candidates:
        return registered
    return candidates[0] if candidates else None


def observed_set(ipv4: IPAddress | None, ipv6: IPAddress | None) -> AddressSet:
    return AddressSet(
        ipv4=ipv4 if isinstance(ipv4, ipaddress.IPv4Address) else None,
        ipv6=ipv6 if isinstance(ipv6, ipaddress.IPv6Address) else None,
    )
