"""A secondary zone's refresh, retry and expire timers (RFC 1034 4.3.5, RFC 1996), sans-I/O.

`Refresh` is fed events (a timer came due, a NOTIFY arrived, a check of the primary
succeeded or failed, the expire time passed) and answers with what to do: check the
primary now, start or stop answering. The transitions are one table, `TABLE`; the
shell in `homing.dns.secondary` only keeps the clock and does the I/O.

Times are Unix times (seconds), not monotonic: the expire time counts from the last
contact with the primary, which is kept in the store and must mean the same after a
restart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["TABLE", "Action", "Event", "Refresh", "State", "Timers"]


class State(enum.Enum):
    EMPTY = "empty"  # no copy yet: not answered (SERVFAIL)
    FRESH = "fresh"  # the last check reached the primary
    RETRYING = "retrying"  # the last check failed; the copy is still answered
    EXPIRED = "expired"  # no contact for `expire` seconds: not answered (SERVFAIL)


class Event(enum.Enum):
    DUE = "due"  # the refresh or retry time came
    NOTIFY = "notify"  # the primary says the zone changed
    SUCCESS = "success"  # the primary answered: up to date, or a transfer was applied
    FAILURE = "failure"  # no answer, an error, a refused or badly signed transfer
    EXPIRE = "expire"  # `expire` seconds passed since the last success


class Action(enum.Enum):
    CHECK = "check"  # ask the primary's SOA, transfer if newer
    SERVE = "serve"  # answer from the copy
    SERVFAIL = "servfail"  # stop answering from the copy


# The timer armed after a transition: the next check comes after the SOA's refresh or
# retry interval, or stays as it was (None).
class Timer(enum.Enum):
    REFRESH = "refresh"
    RETRY = "retry"


# (state, event) -> (next state, actions, timer to arm). A check asked for while one is
# under way is remembered and done right after it (RFC 1996 4.4: a NOTIFY during a
# transfer is not lost); that bookkeeping is in Refresh, not in the table.
TABLE: dict[tuple[State, Event], tuple[State, tuple[Action, ...], Timer | None]] = {
    (State.EMPTY, Event.DUE): (State.EMPTY, (Action.CHECK,), None),
    (State.EMPTY, Event.NOTIFY): (State.EMPTY, (Action.CHECK,), None),
    (State.EMPTY, Event.SUCCESS): (State.FRESH, (Action.SERVE,), Timer.REFRESH),
    (State.EMPTY, Event.FAILURE): (State.EMPTY, (), Timer.RETRY),
    (State.EMPTY, Event.EXPIRE): (State.EMPTY, (), None),
    (State.FRESH, Event.DUE): (State.FRESH, (Action.CHECK,), None),
    (State.FRESH, Event.NOTIFY): (State.FRESH, (Action.CHECK,), None),
    (State.FRESH, Event.SUCCESS): (State.FRESH, (), Timer.REFRESH),
    (State.FRESH, Event.FAILURE): (State.RETRYING, (), Timer.RETRY),
    (State.FRESH, Event.EXPIRE): (State.EXPIRED, (Action.SERVFAIL,), None),
    (State.RETRYING, Event.DUE): (State.RETRYING, (Action.CHECK,), None),
    (State.RETRYING, Event.NOTIFY): (State.RETRYING, (Action.CHECK,), None),
    (State.RETRYING, Event.SUCCESS): (State.FRESH, (), Timer.REFRESH),
    (State.RETRYING, Event.FAILURE): (State.RETRYING, (), Timer.RETRY),
    (State.RETRYING, Event.EXPIRE): (State.EXPIRED, (Action.SERVFAIL,), None),
    (State.EXPIRED, Event.DUE): (State.EXPIRED, (Action.CHECK,), None),
    (State.EXPIRED, Event.NOTIFY): (State.EXPIRED, (Action.CHECK,), None),
    (State.EXPIRED, Event.SUCCESS): (State.FRESH, (Action.SERVE,), Timer.REFRESH),
    (State.EXPIRED, Event.FAILURE): (State.EXPIRED, (), Timer.RETRY),
    (State.EXPIRED, Event.EXPIRE): (State.EXPIRED, (), None),
}


@dataclass(frozen=True)
class Timers:
    """The SOA's refresh, retry and expire intervals, in seconds."""

    refresh: float
    retry: float
    expire: float

    def __post_init__(self) -> None:
        if not (self.refresh > 0 and self.retry > 0 and self.expire > 0):
            raise ValueError(f"SOA timers must be positive: {self}")


# Before the first transfer there is no SOA to take the intervals from.
EMPTY_TIMERS = Timers(refresh=60.0, retry=10.0, expire=float("inf"))


class Refresh:
    """One secondary zone's timers. `step()` takes an event and returns the actions."""

    def __init__(
        self, now: float, *, timers: Timers | None = None, refreshed_at: float | None = None
    ) -> None:
        """A zone as loaded at start: with a copy (`timers` from its SOA and the last
        contact `refreshed_at`) or without (EMPTY). Either way the first check is due now."""
        self.timers = timers or EMPTY_TIMERS
        self.checking = False
        self.pending = False  # a check was asked for while one was under way
        self.next_check = now
        if timers is None:
            self.state = State.EMPTY
            self.expires_at = float("inf")
        else:
            contact = now if refreshed_at is None else refreshed_at
            self.expires_at = contact + timers.expire
            self.state = State.FRESH if now < self.expires_at else State.EXPIRED

    @property
    def serving(self) -> bool:
        """Whether the copy is answered (not before the first transfer, nor after expire)."""
        return self.state in (State.FRESH, State.RETRYING)

    def deadline(self) -> float:
        """When `due()` next has something to say (a check or the expire time)."""
        if self.checking:
            return self.expires_at  # the check under way ends with SUCCESS or FAILURE
        return min(self.next_check, self.expires_at)

    def due(self, now: float) -> list[Action]:
        """The timer events that came by `now`, stepped in order: expire, then a check."""
        actions: list[Action] = []
        if now >= self.expires_at and self.state in (State.FRESH, State.RETRYING):
            actions += self.step(Event.EXPIRE, now)
        if not self.checking and now >= self.next_check:
            actions += self.step(Event.DUE, now)
        return actions

    def step(self, event: Event, now: float, *, timers: Timers | None = None) -> list[Action]:
        """Apply one event; `timers` with SUCCESS are the SOA's intervals after the check."""
        state, actions, timer = TABLE[(self.state, event)]
        out = list(actions)
        if event in (Event.SUCCESS, Event.FAILURE):
            self.checking = False
        if event is Event.SUCCESS:
            if timers is not None:
                self.timers = timers
            self.expires_at = now + self.timers.expire
        if timer is Timer.REFRESH:
            self.next_check = now + self.timers.refresh
        elif timer is Timer.RETRY:
            self.next_check = now + self.timers.retry
        self.state = state
        if Action.CHECK in out:
            if self.checking:
                self.pending = True  # after the one under way
                out.remove(Action.CHECK)
            else:
                self.checking = True
        elif event in (Event.SUCCESS, Event.FAILURE) and self.pending:
            # RFC 1996 4.4: a NOTIFY that came during the check asks for one more.
            self.pending = False
            self.checking = True
            out.append(Action.CHECK)
        return out
