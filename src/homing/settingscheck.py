"""Settings mistakes said in one line an operator can act on: which setting, which value."""

from __future__ import annotations

import difflib
import errno
import os
import socket
from collections.abc import Mapping

from pydantic import ValidationError

from homing.config import Settings
from homing.dns.server import parse_listen

# HOMING_* variables read by something other than Settings.
OTHER_VARIABLES = frozenset(
    {
        "HOMING_CONFIG",  # the settings file
        "HOMING_CLIENT_CONFIG",  # the update client's file
        "HOMING_WORKER_INDEX",  # set by `homing serve --workers` for its workers
        "HOMING_REQUIRE_PEERS",  # the test suite's: missing peers fail instead of skip
    }
)


def variable(field: str) -> str:
    return f"HOMING_{field.upper()}"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Each HOMING_* variable no setting reads, with the setting it most resembles."""
    known = {variable(name) for name in Settings.model_fields}
    found = []
    for name in sorted(environ):
        if not name.startswith("HOMING_") or name in known or name in OTHER_VARIABLES:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        found.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return found


def describe(exc: Exception) -> str:
    """A settings error as one line naming each setting and its bad value."""
    if not isinstance(exc, ValidationError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not location:  # a rule over several settings: its message names them
            parts.append(message)
            continue
        field = str(error["loc"][0])
        if error["type"] == "extra_forbidden":
            parts.append(f"{field} is not a setting (in the settings file)")
            continue
        parts.append(f"{variable(field)}={error.get('input')!r}: {message}")
    return "; ".join(parts)


def check(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """The checks pydantic cannot make: unknown variables, listen addresses. ValueError."""
    unknown = unknown_variables(os.environ if environ is None else environ)
    if unknown:
        raise ValueError(f"unknown setting {', '.join(unknown)}")
    for field in ("dns_listen", "http_listen"):
        value = getattr(settings, field)
        try:
            parse_listen(value)
        except ValueError as exc:
            raise ValueError(f"{variable(field)}={value!r}: {exc}") from None


def _busy(host: str, port: int, kind: socket.SocketKind) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return exc.errno == errno.EADDRINUSE
    return False


def listen_failure(exc: OSError, settings: Settings) -> str:
    """Why the server could not listen, naming the port and the setting that chooses it."""
    if exc.errno == errno.EADDRINUSE:
        # HTTP first: the DNS sockets, bound before it, are still ours when HTTP fails.
        checks = [
            ("http_listen", socket.SOCK_STREAM),
            ("dns_listen", socket.SOCK_DGRAM),
            ("dns_listen", socket.SOCK_STREAM),
        ]
        for field, kind in checks:
            value = getattr(settings, field)
            host, port = parse_listen(value)
            if port and _busy(host, port, kind):
                proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
                return (
                    f"cannot listen on {value}: {proto} port {port} is in use by another"
                    f" program; stop it or choose another address with {variable(field)}"
                )
    return f"cannot listen: {exc}"
