"""The client's TOML configuration: parsed once into frozen values, with one-line errors."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

Family = Literal[4, 6]
PROTOCOLS = ("dyndns2", "dvr", "rfc2136")
DAY = 86400.0


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why, in one line."""


@dataclass(frozen=True)
class SourceSpec:
    """Where one address family of a host comes from."""

    kind: Literal["none", "interface", "web", "command"]
    argument: str = ""  # interface name, check-IP URL (empty: the configured list), command

    @classmethod
    def parse(cls, text: str, where: str) -> SourceSpec:
        kind, _, argument = text.strip().partition(":")
        kind = kind.strip().lower()
        argument = argument.strip()
        if kind == "none" and not argument:
            return cls("none")
        if kind == "web":
            if argument and urlsplit(argument).scheme not in ("http", "https"):
                raise ConfigError(f"{where}: web:URL needs an http or https URL, not {argument!r}")
            return cls("web", argument)
        if kind == "interface":
            if not re.fullmatch(r"[^\s/:]{1,15}", argument):
                raise ConfigError(f"{where}: interface:NAME needs an interface name like eth0")
            return cls("interface", argument)
        if kind == "command":
            if not argument:
                raise ConfigError(f"{where}: command:CMD needs a command")
            return cls("command", argument)
        raise ConfigError(
            f"{where}: {text!r} is not one of interface:NAME, web, web:URL, command:CMD, none"
        )

    def to_text(self) -> str:
        return f"{self.kind}:{self.argument}" if self.argument else self.kind


@dataclass(frozen=True)
class ServerConfig:
    """One update server; `url` without a path gets the protocol's usual path."""

    url: str
    name: str = ""
    ca_file: str | None = None  # verify TLS against this bundle instead of the system's
    verify: bool = True

    @property
    def base(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def update_url(self, protocol: str) -> str:
        path = urlsplit(self.url).path
        if path not in ("", "/"):
            return self.url
        return self.base + ("/dvr/update" if protocol == "dvr" else "/nic/update")

    @property
    def label(self) -> str:
        return self.name or self.base


@dataclass(frozen=True)
class HostConfig:
    """One host name the client keeps pointed at this device."""

    name: str
    secret: str
    protocol: str = "dyndns2"
    ipv4: SourceSpec = SourceSpec("none")
    ipv6: SourceSpec = SourceSpec("none")
    username: str | None = None  # dyndns2 user name; default the host name (homing's host secret)
    servers: tuple[str, ...] = ()  # names of [[server]] entries to use; default all, in order
    force_interval: float = 25 * DAY
    min_interval: float = 10.0
    retry_initial: float = 30.0
    retry_max: float = 1800.0
    allow_private: bool = False
    allow_temporary: bool = False
    allow_deprecated: bool = False
    zone: str | None = None  # rfc2136: the zone to update (default: the name minus its first label)

    @property
    def user(self) -> str:
        return self.username or self.name

    def source(self, family: Family) -> SourceSpec:
        return self.ipv4 if family == 4 else self.ipv6

    @property
    def config_hash(self) -> str:
        """Fingerprint of everything that decides this host's updates (the secret included).

        A host stopped by a fatal answer stays stopped until this changes."""
        blob = json.dumps(
            {
                "name": self.name,
                "secret": self.secret,
                "protocol": self.protocol,
                "username": self.username,
                "servers": list(self.servers),
                "ipv4": self.ipv4.to_text(),
                "ipv6": self.ipv6.to_text(),
                "zone": self.zone,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClientConfig:
    """The whole configuration file."""

    cache_dir: Path
    servers: tuple[ServerConfig, ...]
    hosts: tuple[HostConfig, ...]
    checkip_urls: tuple[str, ...] = ()
    checkip_agree: int = 1
    checkip_interval: float = 300.0
    timeout: float = 10.0
    path: Path | None = field(default=None, compare=False)

    def servers_for(self, host: HostConfig) -> tuple[ServerConfig, ...]:
        return servers_of(self.servers, host)


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY}


def parse_duration(value: object, where: str) -> float:
    """Seconds from a number or a string like "90s", "10m", "2h", "25d"."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ConfigError(f'{where}: expected a duration like 30, "90s", "10m" or "25d"')
    if seconds < 0:
        raise ConfigError(f"{where}: a duration cannot be negative")
    return seconds


_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    re.IGNORECASE,
)

_TOP_KEYS = {
    "cache_dir", "server", "host", "checkip_urls", "checkip_agree", "checkip_interval", "timeout",
}  # fmt: skip
_SERVER_KEYS = {"url", "name", "ca_file", "verify"}
_HOST_DURATIONS = ("force_interval", "min_interval", "retry_initial", "retry_max")
_HOST_FLAGS = ("allow_private", "allow_temporary", "allow_deprecated")
_HOST_KEYS = {
    "name", "secret", "protocol", "ipv4", "ipv6", "username", "server", "zone",
    *_HOST_DURATIONS, *_HOST_FLAGS,
}  # fmt: skip


def _unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise ConfigError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def _string(table: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _url(text: str, where: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    parts = urlsplit(text)
    if parts.scheme not in schemes or not parts.netloc:
        shown = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{where}: {text!r} is not a {shown} URL")
    return text.rstrip("/") if parts.path in ("", "/") else text


def _server(table: object, index: int) -> ServerConfig:
    where = f"[[server]] #{index + 1}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _unknown(table, _SERVER_KEYS, where)
    url = _url(_string(table, "url", where), where, ("http", "https", "dns"))
    name = table.get("name", "")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name must be a string")
    ca_file = table.get("ca_file")
    if ca_file is not None and not isinstance(ca_file, str):
        raise ConfigError(f"{where}: ca_file must be a path")
    verify = table.get("verify", True)
    if not isinstance(verify, bool):
        raise ConfigError(f"{where}: verify must be true or false")
    return ServerConfig(url=url, name=name, ca_file=ca_file, verify=verify)


def _host(table: object, index: int, server_names: set[str]) -> HostConfig:
    where = f"[[host]] #{index + 1}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _unknown(table, _HOST_KEYS, where)
    name = _string(table, "name", where).rstrip(".").lower()
    where = f"host {name}"
    if not _HOST_RE.match(name):
        raise ConfigError(f"{where}: not a fully qualified host name")
    secret = _string(table, "secret", where)
    protocol = _string(table, "protocol", where, "dyndns2").lower()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{where}: protocol must be dyndns2, dvr or rfc2136, not {protocol!r}")
    zone = table.get("zone")
    if zone is not None and (not isinstance(zone, str) or not _HOST_RE.match(zone.rstrip("."))):
        raise ConfigError(f"{where}: zone must be a domain name")
    if protocol == "rfc2136":
        from homing.client.rfc2136 import KeyError_, TsigKey

        try:
            TsigKey.parse(secret)
        except KeyError_ as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    ipv4 = SourceSpec.parse(_string(table, "ipv4", where, "none"), f"{where}: ipv4")
    ipv6 = SourceSpec.parse(_string(table, "ipv6", where, "none"), f"{where}: ipv6")
    if ipv4.kind == "none" and ipv6.kind == "none":
        raise ConfigError(f'{where}: set ipv4 or ipv6 (both are "none")')
    username = table.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        raise ConfigError(f"{where}: username must be a non-empty string")
    servers = table.get("server", [])
    if isinstance(servers, str):
        servers = [servers]
    if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
        raise ConfigError(f"{where}: server must be a server name or a list of them")
    for s in servers:
        if s not in server_names:
            raise ConfigError(f"{where}: no [[server]] is named {s!r}")
    durations = {
        key: parse_duration(table[key], f"{where}: {key}")
        for key in _HOST_DURATIONS
        if key in table
    }
    flags: dict[str, bool] = {}
    for key in _HOST_FLAGS:
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(f"{where}: {key} must be true or false")
            flags[key] = table[key]
    extra: dict[str, Any] = {**durations, **flags}
    host = HostConfig(
        name=name,
        secret=secret,
        protocol=protocol,
        ipv4=ipv4,
        ipv6=ipv6,
        username=username,
        servers=tuple(servers),
        zone=zone.rstrip(".").lower() if zone else None,
        **extra,
    )
    if host.retry_initial <= 0 or host.retry_max < host.retry_initial:
        raise ConfigError(f"{where}: need 0 < retry_initial <= retry_max")
    return host


def servers_of(servers: tuple[ServerConfig, ...], host: HostConfig) -> tuple[ServerConfig, ...]:
    """The servers a host uses: the ones it names, or all, in order."""
    if not host.servers:
        return servers
    by_name = {s.name: s for s in servers}
    return tuple(by_name[name] for name in host.servers)


def parse_config(data: dict[str, Any], path: Path | None = None) -> ClientConfig:
    """Validate a parsed TOML document."""
    _unknown(data, _TOP_KEYS, "config")
    cache_dir = Path(_string(data, "cache_dir", "config", "/var/lib/homing-client"))
    if path is not None and not cache_dir.is_absolute():
        cache_dir = path.parent / cache_dir
    raw_servers = data.get("server", [])
    if not isinstance(raw_servers, list) or not raw_servers:
        raise ConfigError("config: add at least one [[server]] with a url")
    servers = tuple(_server(t, i) for i, t in enumerate(raw_servers))
    names = [s.name for s in servers if s.name]
    if len(names) != len(set(names)):
        raise ConfigError("config: two [[server]] entries have the same name")
    raw_hosts = data.get("host", [])
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise ConfigError("config: add at least one [[host]]")
    hosts = tuple(_host(t, i, set(names)) for i, t in enumerate(raw_hosts))
    seen: set[str] = set()
    for h in hosts:
        if h.name in seen:
            raise ConfigError(f"config: host {h.name} appears twice")
        seen.add(h.name)
    for h in hosts:
        kinds = {s.url.startswith("dns://") for s in servers_of(servers, h)}
        if kinds != {h.protocol == "rfc2136"}:
            raise ConfigError(
                f"host {h.name}: protocol rfc2136 needs dns:// servers, and only rfc2136 uses them"
                " (name the servers of each host with server = [...])"
            )
    urls = data.get("checkip_urls")
    if urls is None:
        checkip = tuple(s.base + "/checkip" for s in servers if not s.url.startswith("dns://"))
    if (
        urls is None
        and not checkip
        and any(
            spec.kind == "web" and not spec.argument for h in hosts for spec in (h.ipv4, h.ipv6)
        )
    ):
        raise ConfigError("config: a web address source needs checkip_urls (no http server given)")
    if urls is None:
        pass
    elif isinstance(urls, list) and all(isinstance(u, str) for u in urls) and urls:
        checkip = tuple(_url(u, "config: checkip_urls") for u in urls)
    else:
        raise ConfigError("config: checkip_urls must be a non-empty list of URLs")
    agree = data.get("checkip_agree", max(1, min(2, len(checkip))))
    if (
        isinstance(agree, bool)
        or not isinstance(agree, int)
        or not 1 <= agree <= max(1, len(checkip))
    ):
        raise ConfigError(
            f"config: checkip_agree must be a whole number from 1 to {len(checkip)} "
            "(the number of check-IP URLs)"
        )
    interval = parse_duration(data.get("checkip_interval", 300), "config: checkip_interval")
    timeout = parse_duration(data.get("timeout", 10), "config: timeout")
    if interval < 1 or timeout <= 0:
        raise ConfigError("config: checkip_interval must be at least 1s and timeout above 0")
    return ClientConfig(
        cache_dir=cache_dir,
        servers=servers,
        hosts=hosts,
        checkip_urls=checkip,
        checkip_agree=agree,
        checkip_interval=interval,
        timeout=timeout,
        path=path,
    )


def load_config(path: Path) -> ClientConfig:
    """Read and validate the TOML file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, path)
