"""The secondary's refresh/retry/expire timers as a table, and RFC 1982 serial order."""

from __future__ import annotations

import pytest

from homing.dns.refresh import TABLE, Action, Event, Refresh, State, Timer, Timers
from homing.dns.xfr import newer

TIMERS = Timers(refresh=100.0, retry=10.0, expire=1000.0)
T0 = 1_000_000.0

# (state, event) -> (next state, actions, timer armed): the whole table, written out, so a
# changed transition shows up here as a changed line.
EXPECTED = {
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


def test_table_is_complete_and_as_written() -> None:
    assert set(TABLE) == {(s, e) for s in State for e in Event}
    assert TABLE == EXPECTED


def in_state(state: State, now: float = T0) -> Refresh:
    """A machine put in `state` through events only, its check finished."""
    if state is State.EMPTY:
        machine = Refresh(now)
        machine.step(Event.DUE, now)
        machine.step(Event.FAILURE, now)
        return machine
    machine = Refresh(now, timers=TIMERS, refreshed_at=now)
    machine.step(Event.DUE, now)
    machine.step(Event.SUCCESS, now)
    if state is State.RETRYING:
        machine.step(Event.DUE, now)
        machine.step(Event.FAILURE, now)
    if state is State.EXPIRED:
        machine.due(now + TIMERS.expire)
        machine.step(Event.FAILURE, now + TIMERS.expire)
    assert machine.state is state and not machine.checking
    return machine


@pytest.mark.parametrize(("state", "event"), sorted(EXPECTED, key=str))
def test_each_transition(state: State, event: Event) -> None:
    machine = in_state(state)
    now = T0 + 5
    if event in (Event.SUCCESS, Event.FAILURE):
        machine.step(Event.NOTIFY, now)  # a check under way, as the shell runs them
        assert machine.checking
    actions = machine.step(event, now, timers=TIMERS if event is Event.SUCCESS else None)
    next_state, expected_actions, timer = EXPECTED[(state, event)]
    assert machine.state is next_state
    assert actions == list(expected_actions)
    if timer is Timer.REFRESH:
        assert machine.next_check == now + TIMERS.refresh
        assert machine.expires_at == now + TIMERS.expire
    elif timer is Timer.RETRY:
        assert machine.next_check == now + machine.timers.retry
    assert machine.serving == (next_state in (State.FRESH, State.RETRYING))


def test_start_with_a_copy_checks_at_once_and_counts_expire_from_the_stored_contact() -> None:
    machine = Refresh(T0, timers=TIMERS, refreshed_at=T0 - 400)
    assert machine.state is State.FRESH and machine.serving
    assert machine.due(T0) == [Action.CHECK]
    assert machine.expires_at == T0 - 400 + TIMERS.expire
    # Restarted after the expire time: not answered, but still checked.
    late = Refresh(T0, timers=TIMERS, refreshed_at=T0 - 2000)
    assert late.state is State.EXPIRED and not late.serving
    assert late.due(T0) == [Action.CHECK]


def test_a_notify_during_a_check_asks_for_one_more() -> None:
    machine = in_state(State.FRESH)
    assert machine.step(Event.NOTIFY, T0) == [Action.CHECK]
    assert machine.step(Event.NOTIFY, T0) == []  # under way: remembered
    assert machine.step(Event.NOTIFY, T0) == []
    assert machine.step(Event.SUCCESS, T0 + 1, timers=TIMERS) == [Action.CHECK]  # once
    assert machine.step(Event.SUCCESS, T0 + 2, timers=TIMERS) == []


def test_retry_until_expire_then_servfail_then_back() -> None:
    machine = in_state(State.FRESH)
    now = T0
    assert machine.due(now + TIMERS.refresh - 1) == []
    now += TIMERS.refresh
    assert machine.due(now) == [Action.CHECK]
    machine.step(Event.FAILURE, now)
    assert machine.state is State.RETRYING and machine.serving
    assert machine.deadline() == now + TIMERS.retry
    while now + TIMERS.retry < T0 + TIMERS.expire:
        now += TIMERS.retry
        assert machine.due(now) == [Action.CHECK]
        machine.step(Event.FAILURE, now)
    assert machine.due(T0 + TIMERS.expire) == [Action.SERVFAIL, Action.CHECK]
    assert machine.state is State.EXPIRED and not machine.serving
    assert machine.step(Event.SUCCESS, T0 + TIMERS.expire + 1, timers=TIMERS) == [Action.SERVE]
    assert machine.serving


def test_timers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Timers(refresh=0, retry=1, expire=1)


@pytest.mark.parametrize(
    ("a", "b", "after"),
    [
        (2, 1, True),
        (1, 2, False),
        (1, 1, False),
        (0, 2**32 - 1, True),  # wrapped around
        (2**32 - 1, 0, False),
        (2**31 - 1, 0, True),  # the farthest still after
        (100, 100 + 2**31 + 1, True),  # more than half the space ahead is behind
    ],
)
def test_serial_order_rfc1982(a: int, b: int, after: bool) -> None:
    assert newer(a, b) is after
