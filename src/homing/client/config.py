"""The client's TOML configuration: parsed once into frozen values, with one-line errors.

Each table of the file has a pydantic model (`_File`, `_Server`, `_Host`) that states its
keys, their types and their rules; the rules that tie tables together (a host's servers
exist, rfc2136 hosts use dns:// servers) follow in `parse_config`. Any refusal becomes one
ConfigError line naming the file, the table, the key and the value at fault.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

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
    def from_text(cls, text: str) -> SourceSpec:
        """The spec `text` names; ValueError says what is wrong with it."""
        kind, _, argument = text.strip().partition(":")
        kind = kind.strip().lower()
        argument = argument.strip()
        if kind == "none" and not argument:
            return cls("none")
        if kind == "web":
            if argument and urlsplit(argument).scheme not in ("http", "https"):
                raise ValueError("is not valid: web:URL needs an http or https URL")
            return cls("web", argument)
        if kind == "interface":
            if not re.fullmatch(r"[^\s/:]{1,15}", argument):
                raise ValueError("is not valid: interface:NAME needs an interface name like eth0")
            return cls("interface", argument)
        if kind == "command":
            if not argument:
                raise ValueError("is not valid: command:CMD needs a command")
            return cls("command", argument)
        raise ValueError("is not one of interface:NAME, web, web:URL, command:CMD, none")

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


def servers_of(servers: tuple[ServerConfig, ...], host: HostConfig) -> tuple[ServerConfig, ...]:
    """The servers a host uses: the ones it names, or all, in order."""
    if not host.servers:
        return servers
    by_name = {s.name: s for s in servers}
    return tuple(by_name[name] for name in host.servers)


# -- the file's tables --------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY}
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    re.IGNORECASE,
)


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "90s", "10m", "2h", "25d"."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds is None:
        raise ValueError('is not valid: expected a duration like 30, "90s", "10m" or "25d"')
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _url(text: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(text)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError("is not a " + " or ".join(f"{s}://" for s in schemes) + " URL")
    return text.rstrip("/") if parts.path in ("", "/") else text


def _names(value: object) -> object:
    """A host's `server`: one name or a list of them."""
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


def _source(value: object) -> SourceSpec:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return SourceSpec.from_text(value)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
Source = Annotated[SourceSpec, BeforeValidator(_source)]


class _Table(BaseModel):
    # strict: a TOML string is no boolean or number, and no key goes unread
    model_config = ConfigDict(extra="forbid", strict=True)


class _Server(_Table):
    url: Text
    name: str = ""
    ca_file: str | None = None
    verify: bool = True

    @field_validator("url")
    @classmethod
    def _update_url(cls, url: str) -> str:
        return _url(url, ("http", "https", "dns"))


class _Host(_Table):
    name: Text
    secret: Text
    protocol: Text = "dyndns2"
    ipv4: Source = SourceSpec("none")
    ipv6: Source = SourceSpec("none")
    username: Text | None = None
    server: Annotated[tuple[str, ...], BeforeValidator(_names)] = ()
    zone: str | None = None
    force_interval: Duration = 25 * DAY
    min_interval: Duration = 10.0
    retry_initial: Duration = 30.0
    retry_max: Duration = 1800.0
    allow_private: bool = False
    allow_temporary: bool = False
    allow_deprecated: bool = False

    @field_validator("name", "zone")
    @classmethod
    def _domain(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is None:
            return None
        name = name.rstrip(".").lower()
        if not _HOST_RE.match(name):
            raise ValueError(
                "is not a fully qualified host name"
                if info.field_name == "name"
                else "must be a domain name"
            )
        return name

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, protocol: str) -> str:
        if protocol.lower() not in PROTOCOLS:
            raise ValueError("must be dyndns2, dvr or rfc2136")
        return protocol.lower()

    @model_validator(mode="after")
    def _together(self) -> _Host:
        if self.ipv4.kind == "none" and self.ipv6.kind == "none":
            raise ValueError('set ipv4 or ipv6 (both are "none")')
        if self.retry_initial <= 0 or self.retry_max < self.retry_initial:
            raise ValueError("need 0 < retry_initial <= retry_max")
        if self.protocol == "rfc2136":
            from homing.client.rfc2136 import TsigKey

            TsigKey.parse(self.secret)  # its KeyError_ is a ValueError naming the rule
        return self

    def value(self) -> HostConfig:
        fields = {key: value for key, value in self if key != "server"}
        return HostConfig(**fields, servers=self.server)


class _File(_Table):
    cache_dir: Text = "/var/lib/homing-client"
    server: list[_Server] = []
    host: list[_Host] = []
    checkip_urls: list[str] | None = None
    checkip_agree: int | None = None
    checkip_interval: Duration = 300.0
    timeout: Duration = 10.0

    @field_validator("checkip_urls")
    @classmethod
    def _checkip(cls, urls: list[str] | None) -> list[str] | None:
        if urls is not None and not urls:
            raise ValueError("must be a non-empty list of URLs")
        return None if urls is None else [_url(u, ("http", "https")) for u in urls]


_TABLES: dict[str, type[_Table]] = {"server": _Server, "host": _Host}
# What a refusal of pydantic's own says after the key's name; the rest keep pydantic's words.
_PHRASES = {
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "list_type": "must be a list",
    "tuple_type": "must be a server name or a list of them",
    "model_type": "must be a table",
    "string_too_short": "must be a non-empty string",
    "missing": "is missing",
}
_SECRET_KEYS = {"secret"}  # never repeated in an error


def _where(data: dict[str, Any], loc: tuple[int | str, ...]) -> tuple[str, tuple[int | str, ...]]:
    """The table an error is in ("config", "[[server]] #2", "host NAME") and the rest of loc."""
    if len(loc) < 2 or loc[0] not in _TABLES or not isinstance(loc[1], int):
        return "config", loc
    table, index = str(loc[0]), loc[1]
    raw = data[table][index] if isinstance(data.get(table), list) else None
    name = raw.get("name") if isinstance(raw, dict) else None
    if table == "host" and isinstance(name, str) and name.strip():
        return f"host {name.strip().rstrip('.').lower()}", loc[2:]
    return f"[[{table}]] #{index + 1}", loc[2:]


def _one_line(data: dict[str, Any], error: ErrorDetails) -> str:
    where, rest = _where(data, error["loc"])
    key = next((str(part) for part in rest if isinstance(part, str)), "")
    kind = error["type"]
    if kind == "extra_forbidden":
        table = _TABLES.get(str(error["loc"][0]), _File) if where != "config" else _File
        known = ", ".join(sorted(table.model_fields))
        return f"{where}: unknown key {key!r} (known: {known})"
    if kind == "value_error":
        text = str(error.get("ctx", {}).get("error", error["msg"]))
    else:
        text = _PHRASES.get(kind, error["msg"])
    if not key and kind == "value_error":  # a rule over the whole table
        return f"{where}: {text}"
    shown = "" if key in _SECRET_KEYS or kind == "missing" else f" (got {error['input']!r})"
    return f"{where}: {key} {text}{shown}" if key else f"{where}: {text}{shown}"


def parse_config(data: dict[str, Any], path: Path | None = None) -> ClientConfig:
    """Validate a parsed TOML document."""
    try:
        raw = _File.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(data, exc.errors()[0])) from None
    if not raw.server:
        raise ConfigError("config: add at least one [[server]] with a url")
    if not raw.host:
        raise ConfigError("config: add at least one [[host]]")
    servers = tuple(
        ServerConfig(url=s.url, name=s.name, ca_file=s.ca_file, verify=s.verify) for s in raw.server
    )
    hosts = tuple(h.value() for h in raw.host)
    _check_references(servers, hosts)
    checkip = _checkip_urls(raw.checkip_urls, servers, hosts)
    agree = raw.checkip_agree if raw.checkip_agree is not None else max(1, min(2, len(checkip)))
    if not 1 <= agree <= max(1, len(checkip)):
        raise ConfigError(
            f"config: checkip_agree must be a whole number from 1 to {len(checkip)} "
            f"(the number of check-IP URLs) (got {agree!r})"
        )
    if raw.checkip_interval < 1 or raw.timeout <= 0:
        raise ConfigError("config: checkip_interval must be at least 1s and timeout above 0")
    cache_dir = Path(raw.cache_dir)
    if path is not None and not cache_dir.is_absolute():
        cache_dir = path.parent / cache_dir
    return ClientConfig(
        cache_dir=cache_dir,
        servers=servers,
        hosts=hosts,
        checkip_urls=checkip,
        checkip_agree=agree,
        checkip_interval=raw.checkip_interval,
        timeout=raw.timeout,
        path=path,
    )


def _check_references(servers: tuple[ServerConfig, ...], hosts: tuple[HostConfig, ...]) -> None:
    """The rules between tables: names unique, named servers exist, protocols match them."""
    names = [s.name for s in servers if s.name]
    if len(names) != len(set(names)):
        raise ConfigError("config: two [[server]] entries have the same name")
    seen: set[str] = set()
    for h in hosts:
        if h.name in seen:
            raise ConfigError(f"config: host {h.name} appears twice")
        seen.add(h.name)
        for s in h.servers:
            if s not in names:
                raise ConfigError(f"host {h.name}: no [[server]] is named {s!r}")
        kinds = {s.url.startswith("dns://") for s in servers_of(servers, h)}
        if kinds != {h.protocol == "rfc2136"}:
            raise ConfigError(
                f"host {h.name}: protocol rfc2136 needs dns:// servers, and only rfc2136 uses them"
                " (name the servers of each host with server = [...])"
            )


def _checkip_urls(
    urls: list[str] | None, servers: tuple[ServerConfig, ...], hosts: tuple[HostConfig, ...]
) -> tuple[str, ...]:
    """The check-IP URLs: the configured ones, or /checkip of each http server."""
    if urls is not None:
        return tuple(urls)
    checkip = tuple(s.base + "/checkip" for s in servers if not s.url.startswith("dns://"))
    web = any(spec.kind == "web" and not spec.argument for h in hosts for spec in (h.ipv4, h.ipv6))
    if web and not checkip:
        raise ConfigError("config: a web address source needs checkip_urls (no http server given)")
    return checkip


def load_config(path: Path) -> ClientConfig:
    """Read and validate the TOML file at `path`; an error names the file first."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return parse_config(data, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
