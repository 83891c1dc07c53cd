"""`homing client status`: each host's last result, the way a DVR status screen shows it."""

from __future__ import annotations

import time
from collections.abc import Sequence

from homing.client.config import HostConfig
from homing.client.policy import HostState


def when(at: float | None) -> str:
    if at is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def host_status(host: HostConfig, state: HostState, now: float) -> tuple[str, list[str]]:
    """(status word, lines) for one host. The status word is ACT, ERR 0x8000800N (or ERR
    with the provider's word), RETRY (no usable answer yet, retrying) or NEW."""
    lines: list[str] = []
    last = state.last
    stopped = (
        state.stopped if state.stopped and state.stopped.config_hash == host.config_hash else None
    )
    if stopped is not None:
        word = last.status if last and last.status else f"ERR {stopped.code}"
        code = f" ({stopped.code})" if stopped.code != word else ""
        lines.append(f"  status   {word}  {stopped.meaning}{code}")
        lines.append("  action   updates stopped until the host's configuration changes")
    elif last is None:
        word = "NEW"
        lines.append("  status   NEW  not updated yet")
    elif last.status.startswith("ERR") and not state.failures:
        # Its stop was lifted by a changed configuration, which has not been tried yet.
        word = "NEW"
        lines.append(f"  status   NEW  not updated since its configuration changed ({last.code})")
    elif state.failures and state.retry_at is not None:
        word = "RETRY"
        lines.append(f"  status   RETRY  {last.code}: {last.meaning}")
        lines.append(
            f"  retry    #{state.failures} at {when(state.retry_at)}"
            + (f" (in {state.retry_at - now:.0f}s)" if state.retry_at > now else "")
        )
    else:
        word = "ACT"
        lines.append(f"  status   ACT  {last.meaning} ({last.code})")
    registered = state.registered.to_text() or "-"
    lines.append(f"  address  {registered} (registered {when(state.registered_at)})")
    if last is not None:
        where = f" via {last.server}" if last.server else ""
        lines.append(
            f"  last     {last.code}{where} at {when(last.at)} for {last.addresses or '-'}"
        )
    return word, lines


def render(
    hosts: Sequence[HostConfig], states: dict[str, HostState], now: float
) -> tuple[str, int]:
    """The status screen and the exit code: 0 all ACT, 3 a host is stopped, 4 otherwise."""
    out: list[str] = []
    code = 0
    for host in hosts:
        state = states.get(host.name, HostState())
        word, lines = host_status(host, state, now)
        out.append(f"{host.name} ({host.protocol})")
        out.extend(lines)
        if word.startswith("ERR"):
            code = 3
        elif word != "ACT" and code == 0:
            code = 4
    return "\n".join(out), code
